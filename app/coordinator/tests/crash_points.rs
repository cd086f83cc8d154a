//! Crash points: every scenario of every transaction type is run once per store write, with that
//! write failing (the process lives on) or with the process "dying" there (that write and
//! everything after it is lost, in-memory state is dropped, as a SIGKILL would). A fresh
//! coordinator on the same store then finishes the transaction, and the outcome is checked against
//! what the branches answered: never `succeed` with a failed action, every action that ran
//! compensated on rollback, confirms only when the client submitted, no action called after a
//! compensation.
//!
//! The branches are scripted in-process (a `BranchCaller`) so that hundreds of runs take a
//! second; the store is the real SQLite store.

use std::collections::BTreeMap;

use coordinator::biz::{
    NewTrans, Op, Options, Phase2, Registration, Status, TransType, TransUsecase,
};
use dtmcli::DtmResult;

mod support;

use support::crash::{ClientEnd, Run, every_crash_point};

fn saga(steps: &[(&str, &str)]) -> NewTrans {
    NewTrans {
        trans_type: Some(TransType::Saga),
        protocol: "http".into(),
        steps: steps
            .iter()
            .map(|(a, c)| {
                BTreeMap::from([
                    ("action".into(), format!("http://branch/{a}")),
                    ("compensate".into(), format!("http://branch/{c}")),
                ])
            })
            .collect(),
        payloads: vec![b"{}".to_vec(); steps.len()],
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    }
}

/// Submits the three-step saga (`custom_data` as given) and waits for its result.
async fn submit_saga(uc: TransUsecase, gid: String, custom_data: &str) -> ClientEnd {
    let t = NewTrans {
        gid,
        custom_data: custom_data.into(),
        ..saga(&[
            ("out", "out-undo"),
            ("in", "in-undo"),
            ("third", "third-undo"),
        ])
    };
    match uc.submit(t).await {
        Ok(()) => ClientEnd::Submitted,
        Err(_) => ClientEnd::Gave,
    }
}

fn saga_client(
    uc: TransUsecase,
    gid: String,
    _: support::Branches,
) -> futures_util::future::BoxFuture<'static, ClientEnd> {
    Box::pin(submit_saga(uc, gid, ""))
}

/// The three steps at once.
fn concurrent_saga_client(
    uc: TransUsecase,
    gid: String,
    _: support::Branches,
) -> futures_util::future::BoxFuture<'static, ClientEnd> {
    Box::pin(submit_saga(uc, gid, r#"{"concurrent":true}"#))
}

/// The saga's rules: final; `succeed` only if no action answered FAILURE and every one ran; on
/// `failed`, every action that was called is compensated; no action after a compensation.
fn check_saga(run: &Run, failing: Option<&str>) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let calls = run.branches.calls();
    let gid = &run.gid;
    match (status, failing) {
        (Status::Succeed, None) => {
            for a in ["out", "in", "third"] {
                assert!(run.branches.called(a), "{gid}: succeed without calling {a}");
            }
            assert!(
                calls.iter().all(|(_, op)| op == "action"),
                "{gid}: a compensation in a saga that succeeded: {calls:?}"
            );
        }
        (Status::Failed, Some(_)) => {
            for a in ["out", "in", "third"] {
                if run.branches.called(a) {
                    let undo = format!("{a}-undo");
                    assert!(
                        run.branches.called(&undo),
                        "{gid}: {a} ran but {undo} never did: {calls:?}"
                    );
                }
            }
            if let Some(first_undo) = calls.iter().position(|(_, op)| op == "compensate") {
                assert!(
                    calls[first_undo..].iter().all(|(_, op)| op == "compensate"),
                    "{gid}: an action after a compensation: {calls:?}"
                );
            }
        }
        other => panic!(
            "{gid}: ended {other:?}, branches {calls:?}, client {:?}",
            run.end
        ),
    }
}

#[tokio::test]
async fn a_sequential_saga_survives_every_crash_point_whichever_action_fails() {
    for failing in [None, Some("out"), Some("in"), Some("third")] {
        let answers: Vec<_> = failing.iter().map(|f| (*f, DtmResult::Failure)).collect();
        let name = format!("saga-{}", failing.unwrap_or("ok"));
        let runs =
            every_crash_point(&name, &answers, saga_client, |r| check_saga(r, failing)).await;
        println!("{name}: {runs} runs");
    }
}

#[tokio::test]
async fn a_concurrent_saga_survives_every_crash_point_whichever_action_fails() {
    for failing in [None, Some("out"), Some("third")] {
        let answers: Vec<_> = failing.iter().map(|f| (*f, DtmResult::Failure)).collect();
        let name = format!("conc-{}", failing.unwrap_or("ok"));
        let runs = every_crash_point(&name, &answers, concurrent_saga_client, |r| {
            check_saga(r, failing)
        })
        .await;
        println!("{name}: {runs} runs");
    }
}

fn msg(gid: String) -> NewTrans {
    NewTrans {
        gid,
        trans_type: Some(TransType::Msg),
        protocol: "http".into(),
        steps: ["m1", "m2"]
            .iter()
            .map(|a| BTreeMap::from([("action".into(), format!("http://branch/{a}"))]))
            .collect(),
        payloads: vec![b"{}".to_vec(); 2],
        query_prepared: "http://branch/check".into(),
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    }
}

/// A msg's rules: `succeed` means every action succeeded; `failed` only through a check-back
/// that answered FAILURE, and then no action ran.
fn check_msg(run: &Run, check_back: DtmResult) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let gid = &run.gid;
    let calls = run.branches.calls();
    match status {
        Status::Succeed => {
            assert!(
                run.branches.called("m1") && run.branches.called("m2"),
                "{gid}: {calls:?}"
            );
        }
        Status::Failed => {
            assert_eq!(check_back, DtmResult::Failure, "{gid}: failed, {calls:?}");
            assert!(
                !run.branches.called("m1"),
                "{gid}: an action of a failed msg: {calls:?}"
            );
        }
        s => panic!("{gid}: {s:?}"),
    }
}

#[tokio::test]
async fn a_submitted_msg_finishes_at_every_crash_point() {
    let runs = every_crash_point(
        "msg",
        &[],
        |uc, gid, _| {
            Box::pin(async move {
                match uc.submit(msg(gid)).await {
                    Ok(()) => ClientEnd::Submitted,
                    Err(_) => ClientEnd::Gave,
                }
            })
        },
        |r| check_msg(r, DtmResult::Success),
    )
    .await;
    println!("{runs} runs");
}

/// A prepared msg whose client never submits: the check-back decides.
fn prepared_msg(
    uc: TransUsecase,
    gid: String,
    _: support::Branches,
) -> futures_util::future::BoxFuture<'static, ClientEnd> {
    Box::pin(async move {
        match uc.prepare(msg(gid)).await {
            Ok(()) => ClientEnd::Submitted,
            Err(_) => ClientEnd::Gave,
        }
    })
}

#[tokio::test]
async fn a_prepared_msg_is_settled_by_its_check_back_at_every_crash_point() {
    let ok = every_crash_point("msg-check-ok", &[], prepared_msg, |r| {
        check_msg(r, DtmResult::Success)
    });
    let fail = every_crash_point(
        "msg-check-fail",
        &[("check", DtmResult::Failure)],
        prepared_msg,
        |r| check_msg(r, DtmResult::Failure),
    );
    let (ok, fail) = tokio::join!(ok, fail);
    println!("{ok} + {fail} runs");
}

/// A TCC or XA client as Go's `TccGlobalTransaction` / `XaGlobalTransaction`: prepare,
/// register two branches (a TCC try, an XA action: the client's own call; the second answers
/// `second`), submit — or abort as soon as anything fails.
async fn two_phase_client(
    uc: TransUsecase,
    gid: String,
    trans_type: TransType,
    second: DtmResult,
) -> ClientEnd {
    let t = NewTrans {
        gid: gid.clone(),
        trans_type: Some(trans_type),
        protocol: "http".into(),
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    };
    let mut ok = uc.prepare(t.clone()).await.is_ok();
    for (i, name) in ["b1", "b2"].iter().enumerate() {
        if !ok {
            break;
        }
        let phase2 = match trans_type {
            TransType::Xa => Phase2::Xa {
                url: format!("http://branch/{name}"),
            },
            _ => Phase2::Tcc {
                confirm: format!("http://branch/{name}-confirm"),
                cancel: format!("http://branch/{name}-cancel"),
            },
        };
        let registered = uc
            .register_branch(Registration {
                gid: gid.clone(),
                branch_id: format!("0{}", i + 1),
                phase2,
                data: b"{}".to_vec(),
            })
            .await;
        ok = registered.is_ok() && (i == 0 || second == DtmResult::Success);
    }
    if ok && uc.submit(t.clone()).await.is_ok() {
        return ClientEnd::Submitted;
    }
    match uc.abort(t).await {
        Ok(()) => ClientEnd::Aborted,
        Err(_) => ClientEnd::Gave,
    }
}

/// TCC's and XA's rules: `succeed` means every registered branch got the forward phase two
/// (confirm, commit) and none the backward one (cancel, rollback), and only after a submit;
/// `failed`, every registered branch the backward one and none the forward one.
fn check_two_phase(run: &Run) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let gid = &run.gid;
    let calls = run.branches.calls();
    let ops = |op: Op| calls.iter().filter(|(_, o)| o == op.as_str()).count();
    let xa = run.global.as_ref().map(|g| g.trans_type) == Some(TransType::Xa);
    let (forward, backward) = if xa {
        (Op::Commit, Op::Rollback)
    } else {
        (Op::Confirm, Op::Cancel)
    };
    let (done, undone) = match status {
        Status::Succeed => {
            assert_ne!(run.end, ClientEnd::Aborted, "{gid}: forward after an abort");
            (forward, backward)
        }
        Status::Failed => {
            assert_ne!(
                run.end,
                ClientEnd::Submitted,
                "{gid}: rolled back after a submit"
            );
            (backward, forward)
        }
        s => panic!("{gid}: {s:?}"),
    };
    assert_eq!(ops(undone), 0, "{gid}: {calls:?}");
    // Every registered branch gets the phase two of the outcome (at least once: a write that
    // failed after a call means the call is made again, and branches are idempotent).
    for row in run.rows.iter().filter(|r| r.op == done) {
        let name = row.url.rsplit('/').next().unwrap_or_default();
        assert!(
            calls.iter().any(|(n, o)| n == name && o == done.as_str()),
            "{gid}: {name} never called with {done:?}: {calls:?}"
        );
    }
}

#[tokio::test]
async fn a_tcc_confirms_or_cancels_every_branch_at_every_crash_point() {
    let confirm = every_crash_point(
        "tcc-ok",
        &[],
        |uc, gid, _| {
            Box::pin(two_phase_client(
                uc,
                gid,
                TransType::Tcc,
                DtmResult::Success,
            ))
        },
        check_two_phase,
    );
    let cancel = every_crash_point(
        "tcc-cancel",
        &[],
        |uc, gid, _| {
            Box::pin(two_phase_client(
                uc,
                gid,
                TransType::Tcc,
                DtmResult::Failure,
            ))
        },
        check_two_phase,
    );
    let (confirm, cancel) = tokio::join!(confirm, cancel);
    println!("{confirm} + {cancel} runs");
}

#[tokio::test]
async fn an_xa_commits_or_rolls_back_every_branch_at_every_crash_point() {
    let commit = every_crash_point(
        "xa-ok",
        &[],
        |uc, gid, _| Box::pin(two_phase_client(uc, gid, TransType::Xa, DtmResult::Success)),
        check_two_phase,
    );
    let rollback = every_crash_point(
        "xa-rollback",
        &[],
        |uc, gid, _| Box::pin(two_phase_client(uc, gid, TransType::Xa, DtmResult::Failure)),
        check_two_phase,
    );
    let (commit, rollback) = tokio::join!(commit, rollback);
    println!("{commit} + {rollback} runs");
}
