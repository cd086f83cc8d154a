//! Several coordinators on one store: their pollers share the due transactions, and no
//! transaction is driven by two of them at once (each due transaction is leased to one).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use coordinator::biz::{
    Clock, RoundObserver, ScanQuery, Status, TransStore, TransType, TransUsecase,
};
use support::{Branches, global, policy, saga_branches, stores};

/// Counts what one coordinator's poller did.
#[derive(Default)]
struct Counts {
    rounds: AtomicUsize,
    raced: AtomicUsize,
}

impl RoundObserver for Counts {
    fn transaction_processed(&self, _: &'static str, _: bool, _: Duration) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
    }
    fn branch_processed(&self, _: &'static str, _: &str, _: &str, _: bool) {}
    fn poller_leased(&self, outcome: &'static str) {
        if outcome == "raced" {
            self.raced.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn backlog(&self, _: &[(Status, u64)], _: Duration) {}
}

/// 200 sagas left submitted and due, as a coordinator that died before their first round
/// leaves them, are drained by four coordinators' pollers: every saga succeeds, and every
/// branch was called exactly once — a transaction leased to two at once would call its
/// branches twice. Branch calls here take no time, so the pollers meet at the store as often
/// as they can.
#[tokio::test]
async fn four_coordinators_drive_each_due_transaction_once() -> Result<()> {
    const SAGAS: usize = 200;
    for (driver, store, _db) in stores().await? {
        let now = Clock::default().now().0;
        for i in 0..SAGAS {
            let gid = format!("backlog-{i}");
            let g = global(&gid, TransType::Saga, Status::Submitted, now, now - 1);
            store.create(&g, &saga_branches(&gid, now)).await?;
        }
        let branches = Branches::new(&[]);
        let counts: Vec<Arc<Counts>> = (0..4).map(|_| Arc::default()).collect();
        let pollers: Vec<_> = counts
            .iter()
            .map(|c| {
                TransUsecase::new(
                    store.clone(),
                    Arc::new(branches.clone()),
                    policy(),
                    Clock::default(),
                    c.clone(),
                )
                .poller()
                .spawn()
            })
            .collect();
        dtmtest::eventually_within(
            "four pollers finish the backlog",
            Duration::from_secs(60),
            async || succeeded(&*store).await == SAGAS,
        )
        .await;
        // A round counts itself just after its last write: wait for the last ones.
        let rounds = || -> usize {
            counts
                .iter()
                .map(|c| c.rounds.load(Ordering::Relaxed))
                .sum()
        };
        dtmtest::eventually("every round counted", async || rounds() >= SAGAS).await;
        pollers.iter().for_each(|p| p.abort());

        let calls = branches.times_called();
        let twice: Vec<_> = calls.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{driver}: called more than once: {twice:?}"
        );
        assert_eq!(calls.len(), SAGAS, "{driver}: one action per saga");
        let per_coordinator: Vec<_> = counts
            .iter()
            .map(|c| c.rounds.load(Ordering::Relaxed))
            .collect();
        let raced: Vec<_> = counts
            .iter()
            .map(|c| c.raced.load(Ordering::Relaxed))
            .collect();
        assert_eq!(rounds(), SAGAS, "{driver}: one round each");
        println!("{driver}: rounds per coordinator {per_coordinator:?}, leases raced {raced:?}");
    }
    Ok(())
}

/// How many of the store's transactions succeeded.
async fn succeeded(store: &dyn TransStore) -> usize {
    let query = ScanQuery {
        status: Some(Status::Succeed.as_str().into()),
        limit: 1000,
        ..ScanQuery::default()
    };
    store
        .scan(&query)
        .await
        .map_or(0, |page| page.transactions.len())
}
