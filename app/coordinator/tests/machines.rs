//! The state machines as units: the coordinator's use case over the in-memory store and
//! branches scripted in-process — no database, no network, no sleeping (the clock is moved) —
//! so each runs in milliseconds. The saga's order graph forward and back, the retry limit, the
//! doubling back-off and its cap, and a round that lost its lease or its status to someone else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coordinator::biz::{
    BranchStatus, Clock, NewTrans, Options, Status, StatusChange, TransError, TransStore,
    TransType, TransUsecase, Unobserved,
};
use dtmcli::DtmResult;
use dtmtest::eventually;
use support::memory::MemoryStore;
use support::{Branches, policy};

mod support;

/// A use case over a fresh in-memory store; the store too, to look inside.
fn coordinator(branches: &Branches) -> (TransUsecase, Arc<MemoryStore>, Clock) {
    let store = Arc::new(MemoryStore::default());
    let clock = Clock::default();
    let uc = TransUsecase::new(
        store.clone(),
        Arc::new(branches.clone()),
        policy(),
        clock.clone(),
        Arc::new(Unobserved),
    );
    (uc, store, clock)
}

/// A saga of `n` steps: step i's action is `a<i>`, its compensation `c<i>`.
fn saga(gid: &str, n: usize, custom_data: &str, options: Options) -> NewTrans {
    NewTrans {
        gid: gid.into(),
        trans_type: Some(TransType::Saga),
        protocol: "http".into(),
        steps: (0..n)
            .map(|i| {
                BTreeMap::from([
                    ("action".into(), format!("http://branch/a{i}")),
                    ("compensate".into(), format!("http://branch/c{i}")),
                ])
            })
            .collect(),
        payloads: vec![b"{}".to_vec(); n],
        custom_data: custom_data.into(),
        options,
        ..NewTrans::default()
    }
}

fn waiting() -> Options {
    Options {
        wait_result: true,
        ..Options::default()
    }
}

/// Submits (waiting for the result) a one-step saga whose action `slow0` waits at its gate;
/// returns once the action is being called.
async fn submit_slow(
    uc: &TransUsecase,
    branches: &Branches,
    gid: &str,
) -> tokio::task::JoinHandle<Result<(), TransError>> {
    let mut t = saga(gid, 1, "", waiting());
    t.steps[0].insert("action".into(), "http://branch/slow0".into());
    let submit = tokio::spawn({
        let uc = uc.clone();
        async move { uc.submit(t).await }
    });
    eventually("the action is being called", async || {
        branches.called("slow0")
    })
    .await;
    submit
}

/// The names called, in order.
fn called(branches: &Branches) -> Vec<String> {
    branches.calls().into_iter().map(|(name, _)| name).collect()
}

fn position(calls: &[String], name: &str) -> usize {
    calls
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("{name} was not called: {calls:?}"))
}

#[tokio::test]
async fn a_saga_calls_each_action_after_the_actions_it_depends_on() {
    let branches = Branches::default();
    let (uc, store, _clock) = coordinator(&branches);
    // a2 after a0 and a1; a3 after a2.
    let orders = r#"{"concurrent":true,"orders":{"2":[0,1],"3":[2]}}"#;
    uc.submit(saga("fwd", 4, orders, waiting()))
        .await
        .expect("succeeds");
    let calls = called(&branches);
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(position(&calls, "a2") > position(&calls, "a0").max(position(&calls, "a1")));
    assert!(position(&calls, "a3") > position(&calls, "a2"));
    let g = store.find("fwd").await.expect("find").expect("stored");
    assert_eq!(g.status, Status::Succeed);
    let actions: Vec<BranchStatus> = store
        .branches("fwd")
        .await
        .expect("branches")
        .iter()
        .filter(|b| b.url.contains("/a"))
        .map(|b| b.status)
        .collect();
    assert_eq!(actions, vec![BranchStatus::Succeed; 4]);
}

#[tokio::test]
async fn a_failed_saga_undoes_what_may_have_run_dependents_first() {
    // a3 refuses; a0, a1, a2 ran (a2 after both), a3 may have run: everything is compensated,
    // c3 first, c2 before c0 and c1 (they depend on nothing, c2 depended on them).
    let branches = Branches::new(&[("a3", DtmResult::Failure)]);
    let (uc, store, _clock) = coordinator(&branches);
    let orders = r#"{"concurrent":true,"orders":{"2":[0,1],"3":[2]}}"#;
    let err = uc
        .submit(saga("back", 4, orders, waiting()))
        .await
        .expect_err("rolled back");
    assert!(matches!(err, TransError::Failure(_)), "{err:?}");
    let calls = called(&branches);
    assert_eq!(calls[..4].iter().filter(|c| c.starts_with('a')).count(), 4);
    let c = |name| position(&calls, name);
    assert!(c("c3") < c("c2"), "{calls:?}");
    assert!(c("c2") < c("c0").min(c("c1")), "{calls:?}");
    let g = store.find("back").await.expect("find").expect("stored");
    assert_eq!(g.status, Status::Failed);
    assert!(g.rollback_reason.contains("a3 return failed"), "{g:?}");
}

#[tokio::test]
async fn a_sequential_saga_compensates_in_reverse_and_skips_steps_never_started() {
    let branches = Branches::new(&[("a1", DtmResult::Failure)]);
    let (uc, _store, _clock) = coordinator(&branches);
    uc.submit(saga("seq", 3, "", waiting()))
        .await
        .expect_err("rolled back");
    // a2 never started, so c2 is not called; c1 is (a1 may have done part of its work).
    assert_eq!(called(&branches), ["a0", "a1", "c1", "c0"]);
}

#[tokio::test]
async fn an_action_still_ongoing_after_its_retry_limit_rolls_the_saga_back() {
    let branches = Branches::new(&[("a0", DtmResult::Ongoing)]);
    let (uc, store, _clock) = coordinator(&branches);
    let options = Options {
        retry_limit: 2,
        ..waiting()
    };
    uc.submit(saga("limit", 1, "", options))
        .await
        .expect_err("rolled back");
    // The first call and two retries, then the compensation.
    assert_eq!(called(&branches), ["a0", "a0", "a0", "c0"]);
    let g = store.find("limit").await.expect("find").expect("stored");
    assert_eq!(
        (g.status, g.rollback_reason.as_str()),
        (
            Status::Failed,
            "RetryCount is greater than RetryLimit, RetryLimit: 2"
        )
    );
}

#[tokio::test]
async fn branch_errors_back_off_doubling_up_to_the_cap() {
    // Every call fails (the branch's process is dead): each round schedules the next visit
    // further away — 1 s, 2 s, 4 s, then the 8 s cap (policy: RetryInterval 1 s, max 8 s).
    let branches = Branches::default();
    branches
        .dead
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (uc, store, clock) = coordinator(&branches);
    let err = uc
        .submit(saga("backoff", 1, "", waiting()))
        .await
        .expect_err("not final");
    assert!(matches!(err, TransError::Ongoing(_)), "{err:?}");
    let mut waits = Vec::new();
    for _ in 0..5 {
        let g = store.find("backoff").await.expect("find").expect("stored");
        waits.push(g.next_cron_time - g.update_time);
        clock.advance(g.next_cron_time - clock.now());
        assert!(uc.poller().once().await.expect("cron"), "due");
    }
    assert_eq!(waits, [1, 2, 4, 8, 8].map(Duration::from_secs));
    assert_eq!(called(&branches).len(), 0, "a dead process calls nothing");
    // The branch comes back: the next visit finishes the saga.
    branches
        .dead
        .store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(8));
    assert!(uc.poller().once().await.expect("cron"));
    let g = store.find("backoff").await.expect("find").expect("stored");
    assert_eq!(g.status, Status::Succeed);
}

#[tokio::test]
async fn a_round_that_lost_its_lease_does_not_reschedule_over_the_new_owner() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let branches = Branches::new(&[("slow0", DtmResult::Ongoing)]).gated(gate.clone());
    let (uc, store, clock) = coordinator(&branches);
    let submit = submit_slow(&uc, &branches, "lease").await;
    // Meanwhile another instance takes the transaction over.
    let until = clock.now() + Duration::from_secs(600);
    assert!(
        store
            .take_lease("lease", "other", until, clock.now())
            .await
            .expect("take")
    );
    gate.add_permits(1);
    let err = submit.await.expect("joined").expect_err("not final");
    assert!(matches!(err, TransError::Ongoing(_)), "{err:?}");
    // ONGOING schedules a retry a second later, but only for the lease holder: the new
    // owner's schedule stands.
    let g = store.find("lease").await.expect("find").expect("stored");
    assert_eq!(
        (g.owner.as_str(), g.next_cron_time, g.status),
        ("other", until, Status::Submitted)
    );
}

#[tokio::test]
async fn a_round_whose_transaction_was_stopped_meanwhile_writes_no_result() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let branches = Branches::default().gated(gate.clone());
    let (uc, store, clock) = coordinator(&branches);
    let submit = submit_slow(&uc, &branches, "stopped").await;
    // forceStop's compare-and-set, while the action is out.
    let stop = StatusChange {
        from: Status::Submitted,
        to: Status::Failed,
        rollback_reason: Some("stopped by hand"),
        result: None,
        now: clock.now(),
    };
    assert!(store.change_status("stopped", &stop).await.expect("stop"));
    gate.add_permits(1);
    let err = submit.await.expect("joined").expect_err("not succeed");
    assert!(matches!(err, TransError::Failure(_)), "{err:?}");
    let g = store.find("stopped").await.expect("find").expect("stored");
    assert_eq!(
        (g.status, g.rollback_reason.as_str()),
        (Status::Failed, "stopped by hand")
    );
    // The action's SUCCESS came after the stop: it is not recorded.
    let statuses: Vec<BranchStatus> = store
        .branches("stopped")
        .await
        .expect("branches")
        .iter()
        .map(|b| b.status)
        .collect();
    assert_eq!(statuses, [BranchStatus::Prepared, BranchStatus::Prepared]);
}

#[tokio::test]
async fn a_stored_custom_data_that_no_longer_parses_is_an_error_not_a_sequential_saga() {
    let branches = Branches::default();
    let (uc, store, clock) = coordinator(&branches);
    let concurrent = r#"{"concurrent":true,"orders":{"1":[0]}}"#;
    uc.prepare(saga("corrupt", 2, concurrent, Options::default()))
        .await
        .expect("prepare");
    // The row as a bad restore or a hand edit could leave it: orders naming a step it lacks.
    store.edit("corrupt", |g| {
        g.custom_data = r#"{"concurrent":true,"orders":{"1":[7]}}"#.into();
        g.status = Status::Submitted;
        g.next_cron_time = clock.now();
    });
    let err = uc
        .poller()
        .once()
        .await
        .expect_err("the round refuses the row");
    assert!(
        err.to_string()
            .contains("the stored custom_data of corrupt is corrupt"),
        "{err}"
    );
    assert!(branches.calls().is_empty(), "{:?}", branches.calls());
    let g = store.find("corrupt").await.expect("find").expect("stored");
    assert_eq!(g.status, Status::Submitted);
}
