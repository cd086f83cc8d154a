//! The msg, TCC and XA rounds as units, like the saga's in `machines.rs`: the use case over the
//! in-memory store and branches scripted in-process — no database, no network, no sleeping
//! (the clock is moved). A msg's check-back decides it; a msg waits for its delay; TCC confirms
//! and cancels last registered first; XA commits and rolls back in registration order; a
//! prepared TCC or XA past its timeout rolls back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coordinator::biz::{
    Clock, NewTrans, Options, Phase2, Registration, Status, TransType, TransUsecase, Unobserved,
};
use dtmcli::DtmResult;
use support::{Branches, policy};

mod support;

/// A use case over a fresh in-memory store.
fn coordinator(branches: &Branches) -> (TransUsecase, Clock) {
    let store = Arc::new(support::memory::MemoryStore::default());
    let clock = Clock::default();
    let uc = TransUsecase::new(
        store,
        Arc::new(branches.clone()),
        policy(),
        clock.clone(),
        Arc::new(Unobserved),
    );
    (uc, clock)
}

/// A msg with actions `a0`, `a1` and the check-back `check`.
fn msg(gid: &str, custom_data: &str) -> NewTrans {
    NewTrans {
        gid: gid.into(),
        trans_type: Some(TransType::Msg),
        protocol: "http".into(),
        steps: (0..2)
            .map(|i| BTreeMap::from([("action".into(), format!("http://branch/a{i}"))]))
            .collect(),
        payloads: vec![b"{}".to_vec(); 2],
        custom_data: custom_data.into(),
        query_prepared: "http://branch/check".into(),
        ..NewTrans::default()
    }
}

/// `gid` of `trans_type` (tcc or xa) with nothing but its identity; `wait`: the client waits
/// for the result.
fn two_phase(gid: &str, trans_type: TransType, wait: bool) -> NewTrans {
    NewTrans {
        gid: gid.into(),
        trans_type: Some(trans_type),
        protocol: "http".into(),
        options: Options {
            wait_result: wait,
            ..Options::default()
        },
        ..NewTrans::default()
    }
}

/// Prepares `gid` and registers branches `01`, `02`, `03`: TCC `confirm<i>` / `cancel<i>`, XA
/// `x<i>`.
async fn prepared_with_three(uc: &TransUsecase, gid: &str, trans_type: TransType) {
    uc.prepare(two_phase(gid, trans_type, false))
        .await
        .expect("prepare");
    for i in 1..=3 {
        let phase2 = match trans_type {
            TransType::Xa => Phase2::Xa {
                url: format!("http://branch/x{i}"),
            },
            _ => Phase2::Tcc {
                confirm: format!("http://branch/confirm{i}"),
                cancel: format!("http://branch/cancel{i}"),
            },
        };
        uc.register_branch(Registration {
            gid: gid.into(),
            branch_id: format!("0{i}"),
            phase2,
            data: Vec::new(),
        })
        .await
        .expect("register");
    }
}

/// Every poller step due now.
async fn poll(uc: &TransUsecase) {
    while uc.poller().once().await.expect("cron") {}
}

async fn status(uc: &TransUsecase, gid: &str) -> Status {
    uc.query(gid)
        .await
        .expect("query")
        .expect("stored")
        .0
        .status
}

/// (name, op) of each call.
fn calls(branches: &Branches) -> Vec<(String, String)> {
    branches.calls()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect()
}

#[tokio::test]
async fn a_prepared_msg_whose_check_back_says_success_sends_its_actions() {
    let branches = Branches::default();
    let (uc, clock) = coordinator(&branches);
    uc.prepare(msg("m-ok", "")).await.expect("prepare");
    // Before its timeout nobody asks.
    poll(&uc).await;
    assert!(calls(&branches).is_empty());
    clock.advance(Duration::from_secs(31));
    poll(&uc).await;
    assert_eq!(status(&uc, "m-ok").await, Status::Succeed);
    assert_eq!(
        calls(&branches),
        pairs(&[("check", "msg"), ("a0", "action"), ("a1", "action")])
    );
}

#[tokio::test]
async fn a_prepared_msg_whose_check_back_says_failure_fails_without_an_action() {
    let branches = Branches::new(&[("check", DtmResult::Failure)]);
    let (uc, clock) = coordinator(&branches);
    uc.prepare(msg("m-no", "")).await.expect("prepare");
    clock.advance(Duration::from_secs(31));
    poll(&uc).await;
    let (g, _) = uc.query("m-no").await.expect("query").expect("stored");
    assert_eq!(g.status, Status::Failed);
    assert!(
        g.rollback_reason.contains("FAILURE"),
        "{}",
        g.rollback_reason
    );
    assert_eq!(calls(&branches), pairs(&[("check", "msg")]));
}

#[tokio::test]
async fn a_msg_whose_check_back_is_ongoing_stays_prepared_and_is_asked_again() {
    let branches = Branches::new(&[("check", DtmResult::Ongoing)]);
    let (uc, clock) = coordinator(&branches);
    uc.prepare(msg("m-wait", "")).await.expect("prepare");
    clock.advance(Duration::from_secs(31));
    poll(&uc).await;
    assert_eq!(status(&uc, "m-wait").await, Status::Prepared);
    // Asked again after the base interval, not before.
    poll(&uc).await;
    assert_eq!(calls(&branches).len(), 1);
    clock.advance(Duration::from_secs(2));
    poll(&uc).await;
    assert_eq!(
        calls(&branches),
        pairs(&[("check", "msg"), ("check", "msg")])
    );
}

#[tokio::test]
async fn a_submitted_msg_waits_for_its_delay() {
    let branches = Branches::default();
    let (uc, clock) = coordinator(&branches);
    uc.submit(msg("m-later", r#"{"delay":10}"#))
        .await
        .expect("submit");
    poll(&uc).await;
    assert_eq!(status(&uc, "m-later").await, Status::Submitted);
    assert!(calls(&branches).is_empty(), "called before its delay");
    clock.advance(Duration::from_secs(11));
    poll(&uc).await;
    assert_eq!(status(&uc, "m-later").await, Status::Succeed);
    assert_eq!(
        calls(&branches),
        pairs(&[("a0", "action"), ("a1", "action")])
    );
}

#[tokio::test]
async fn a_submitted_tcc_confirms_last_registered_first() {
    let branches = Branches::default();
    let (uc, _clock) = coordinator(&branches);
    prepared_with_three(&uc, "t-ok", TransType::Tcc).await;
    uc.submit(two_phase("t-ok", TransType::Tcc, true))
        .await
        .expect("submit");
    assert_eq!(status(&uc, "t-ok").await, Status::Succeed);
    assert_eq!(
        calls(&branches),
        pairs(&[
            ("confirm3", "confirm"),
            ("confirm2", "confirm"),
            ("confirm1", "confirm")
        ])
    );
}

#[tokio::test]
async fn an_aborted_tcc_cancels_last_registered_first() {
    let branches = Branches::default();
    let (uc, _clock) = coordinator(&branches);
    prepared_with_three(&uc, "t-no", TransType::Tcc).await;
    uc.abort(two_phase("t-no", TransType::Tcc, true))
        .await
        .expect("abort");
    assert_eq!(status(&uc, "t-no").await, Status::Failed);
    assert_eq!(
        calls(&branches),
        pairs(&[
            ("cancel3", "cancel"),
            ("cancel2", "cancel"),
            ("cancel1", "cancel")
        ])
    );
}

#[tokio::test]
async fn a_cancel_that_answers_failure_is_retried_until_it_succeeds() {
    let branches = Branches::new(&[("cancel2", DtmResult::Failure)]);
    let (uc, clock) = coordinator(&branches);
    prepared_with_three(&uc, "t-stuck", TransType::Tcc).await;
    let aborted = uc.abort(two_phase("t-stuck", TransType::Tcc, true)).await;
    assert!(aborted.is_err(), "not final yet: {aborted:?}");
    // A cancel may not refuse: the TCC stays aborting and cancel2 is called again, cancel1 not
    // before it succeeds.
    assert_eq!(status(&uc, "t-stuck").await, Status::Aborting);
    clock.advance(Duration::from_secs(2));
    poll(&uc).await;
    let names: Vec<String> = calls(&branches).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cancel3", "cancel2", "cancel2"]);
    assert_eq!(status(&uc, "t-stuck").await, Status::Aborting);
}

#[tokio::test]
async fn a_prepared_tcc_past_its_timeout_is_cancelled() {
    let branches = Branches::default();
    let (uc, clock) = coordinator(&branches);
    prepared_with_three(&uc, "t-late", TransType::Tcc).await;
    poll(&uc).await;
    assert_eq!(status(&uc, "t-late").await, Status::Prepared);
    clock.advance(Duration::from_secs(31));
    poll(&uc).await;
    let (g, _) = uc.query("t-late").await.expect("query").expect("stored");
    assert_eq!(g.status, Status::Failed);
    assert_eq!(g.rollback_reason, "Timeout after 30 seconds");
    let names: Vec<String> = calls(&branches).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cancel3", "cancel2", "cancel1"]);
}

#[tokio::test]
async fn a_submitted_xa_commits_in_registration_order() {
    let branches = Branches::default();
    let (uc, _clock) = coordinator(&branches);
    prepared_with_three(&uc, "x-ok", TransType::Xa).await;
    uc.submit(two_phase("x-ok", TransType::Xa, true))
        .await
        .expect("submit");
    assert_eq!(status(&uc, "x-ok").await, Status::Succeed);
    assert_eq!(
        calls(&branches),
        pairs(&[("x1", "commit"), ("x2", "commit"), ("x3", "commit")])
    );
}

#[tokio::test]
async fn an_aborted_or_timed_out_xa_rolls_back_in_registration_order() {
    let branches = Branches::default();
    let (uc, clock) = coordinator(&branches);
    prepared_with_three(&uc, "x-no", TransType::Xa).await;
    uc.abort(two_phase("x-no", TransType::Xa, true))
        .await
        .expect("abort");
    assert_eq!(status(&uc, "x-no").await, Status::Failed);
    prepared_with_three(&uc, "x-late", TransType::Xa).await;
    clock.advance(Duration::from_secs(31));
    poll(&uc).await;
    assert_eq!(status(&uc, "x-late").await, Status::Failed);
    let rollback = pairs(&[("x1", "rollback"), ("x2", "rollback"), ("x3", "rollback")]);
    let mut both = rollback.clone();
    both.extend(rollback);
    assert_eq!(calls(&branches), both);
}
