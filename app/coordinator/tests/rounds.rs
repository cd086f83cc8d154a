//! Rounds as a client sees them: a client that hangs up does not stop its transaction, slow
//! transactions cannot starve the poller, and a transaction that times out says after how long.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coordinator::biz::{Clock, NewTrans, Options, Status, TransType, TransUsecase, Unobserved};
use dtmtest::eventually;
use support::{Branches, policy};

mod support;

async fn coordinator(branches: Branches) -> (TransUsecase, Clock, tempfile::TempDir) {
    let (store, dir) = support::sqlite_store().await;
    let clock = Clock::default();
    let uc = TransUsecase::new(
        store,
        Arc::new(branches),
        policy(),
        clock.clone(),
        Arc::new(Unobserved),
    );
    (uc, clock, dir)
}

#[tokio::test]
async fn a_client_that_hangs_up_does_not_stop_its_round() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let branches = Branches::default().gated(gate.clone());
    let (uc, _clock, _dir) = coordinator(branches.clone()).await;
    let saga = NewTrans {
        gid: "hang-up".into(),
        trans_type: Some(TransType::Saga),
        protocol: "http".into(),
        steps: vec![BTreeMap::from([
            ("action".into(), "http://branch/slow".into()),
            ("compensate".into(), "http://branch/slow-undo".into()),
        ])],
        payloads: vec![b"{}".to_vec()],
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    };
    // The request's future, as axum or tonic drop it when the client disconnects.
    let request = tokio::spawn({
        let uc = uc.clone();
        async move { uc.submit(saga).await }
    });
    eventually("the action is being called", async || {
        branches.called("slow")
    })
    .await;
    request.abort();
    assert!(request.await.expect_err("aborted").is_cancelled());
    // The branch answers; nobody polls (no poller runs, the clock stands still).
    gate.add_permits(1);
    eventually("the saga finishes without its client", async || {
        let g = uc.query("hang-up").await.expect("query");
        g.is_some_and(|(g, _)| g.status == Status::Succeed)
    })
    .await;
}

#[tokio::test]
async fn a_tcc_that_times_out_on_the_default_names_that_timeout() {
    let (uc, clock, _dir) = coordinator(Branches::default()).await;
    let tcc = NewTrans {
        gid: "tcc-late".into(),
        trans_type: Some(TransType::Tcc),
        protocol: "http".into(),
        ..NewTrans::default()
    };
    uc.prepare(tcc).await.expect("prepare");
    clock.advance(Duration::from_secs(31));
    while uc.poller().once().await.expect("cron") {}
    let (g, _) = uc.query("tcc-late").await.expect("query").expect("stored");
    assert_eq!(g.status, Status::Failed);
    assert_eq!(g.rollback_reason, "Timeout after 30 seconds");
}

fn saga(gid: &str, action: &str, wait: bool) -> NewTrans {
    NewTrans {
        gid: gid.into(),
        trans_type: Some(TransType::Saga),
        protocol: "http".into(),
        steps: vec![BTreeMap::from([
            ("action".into(), format!("http://branch/{action}")),
            ("compensate".into(), String::new()),
        ])],
        payloads: vec![b"{}".to_vec()],
        options: Options {
            wait_result: wait,
            ..Options::default()
        },
        ..NewTrans::default()
    }
}

#[tokio::test]
async fn slow_transactions_do_not_starve_the_poller() {
    // Every `slow…` branch hangs for the whole test.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let branches = Branches::default().gated(gate.clone());
    let (uc, clock, _dir) = coordinator(branches.clone()).await;
    // Several hundred: more than the slots and the overflow of old together (64 + 256).
    let slow = 500;
    for i in 0..slow {
        uc.submit(saga(&format!("slow-{i}"), &format!("slow-{i}"), false))
            .await
            .expect("submit");
    }
    // Their leases run out: the poller takes them all, and every round hangs.
    clock.advance(Duration::from_secs(600));
    let _poller = uc.poller().spawn();
    eventually("the poller drives every slow saga", async || {
        let calls = branches.calls();
        (0..slow).all(|i| {
            calls
                .iter()
                .filter(|(n, _)| *n == format!("slow-{i}"))
                .count()
                >= 2
        })
    })
    .await;
    // A msg that only the poller can settle (its check-back, once it times out).
    let msg = NewTrans {
        gid: "due".into(),
        trans_type: Some(TransType::Msg),
        protocol: "http".into(),
        steps: vec![BTreeMap::from([(
            "action".into(),
            "http://branch/fast".into(),
        )])],
        payloads: vec![b"{}".to_vec()],
        query_prepared: "http://branch/fast-check".into(),
        ..NewTrans::default()
    };
    uc.prepare(msg).await.expect("prepare");
    clock.advance(Duration::from_secs(31));
    eventually(
        "the msg is settled while every slow round still hangs",
        async || {
            let g = uc.query("due").await.expect("query");
            g.is_some_and(|(g, _)| g.status == Status::Succeed)
        },
    )
    .await;
}
