//! Rounds as a client sees them: a client that hangs up does not stop its transaction, and a
//! transaction that times out says after how long.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coordinator::biz::{Clock, NewTrans, Options, Status, TransType, TransUsecase};
use coordinator::conf::Store;
use dtmcli::testing::eventually;
use support::{Branches, policy};

mod support;

async fn coordinator(branches: Branches) -> (TransUsecase, Clock, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/dtm.db", dir.path().display());
    let store = coordinator::data::open_store(&Store::new("sqlite", &url))
        .await
        .expect("store");
    let clock = Clock::default();
    let uc = TransUsecase::new(store, Arc::new(branches), policy(), clock.clone());
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
    while uc.cron_once().await.expect("cron") {}
    let (g, _) = uc.query("tcc-late").await.expect("query").expect("stored");
    assert_eq!(g.status, Status::Failed);
    assert_eq!(g.rollback_reason, "Timeout after 30 seconds");
}
