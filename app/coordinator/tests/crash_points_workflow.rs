//! Crash points of a workflow (the harness is tests/support/crash.rs): the client's run — a
//! saga-style workflow of two steps, `out` (undone by `out-undo`) then `in` — is cut at every
//! store write, by a failed write or the coordinator "dying" there; the workflow then ends only
//! through the coordinator's resume, which runs the client again, replaying what was recorded.
//! Whatever the cut: it ends, `succeed` only when `in` succeeded, `failed` only with `out` undone
//! (if it ran), nothing forward after the undo, and a recorded step is not called again.

use coordinator::biz::{
    BranchCaller, BranchStatus, NewTrans, Op, Status, TransType, TransUsecase, WorkflowEnd,
    WorkflowStep,
};
use dtmcli::caller::CallRequest;
use dtmcli::{BranchInfo, DtmResult};
use futures_util::future::BoxFuture;

mod support;

use support::Branches;
use support::crash::{ClientEnd, Run, every_crash_point_with};

/// The client's run of workflow `gid` against `uc`: load its progress, run each step not
/// recorded yet (recording its definite answer), undo on FAILURE, submit. An error anywhere
/// stops it unsubmitted, as the Go SDK stops (the coordinator resumes it). Its answer is what
/// its resume route would answer.
async fn run_workflow(uc: TransUsecase, gid: String, branches: Branches) -> DtmResult {
    let t = NewTrans {
        gid: gid.clone(),
        trans_type: Some(TransType::Workflow),
        protocol: "http".into(),
        custom_data: r#"{"name":"wf","data":""}"#.into(),
        query_prepared: "http://branch/resume".into(),
        ..NewTrans::default()
    };
    let Ok((g, recorded)) = uc.prepare_workflow(t).await else {
        return DtmResult::Ongoing;
    };
    match g.status {
        Status::Succeed => return DtmResult::Success,
        Status::Failed => return DtmResult::Failure,
        _ => {}
    }
    let replayed = |branch_id: &str, op: Op| {
        recorded
            .iter()
            .find(|b| b.branch_id == branch_id && b.op == op)
            .map(|b| b.status)
    };
    // One step: replayed when recorded, else called and its definite answer recorded.
    let step = async |branch_id: &str, op: Op, name: &str| -> Option<BranchStatus> {
        if let Some(status) = replayed(branch_id, op) {
            return Some(status);
        }
        let info = BranchInfo {
            gid: gid.clone(),
            trans_type: TransType::Workflow,
            branch_id: branch_id.into(),
            op,
            dtm: String::new(),
            phase2_url: String::new(),
        };
        let req = CallRequest {
            url: &format!("http://branch/{name}"),
            protocol: "http",
            body: b"{}",
            info: &info,
            headers: &Default::default(),
            timeout: std::time::Duration::from_secs(1),
            op_name: None,
        };
        let status = match branches.call(&req).await.ok()?.result {
            DtmResult::Success => BranchStatus::Succeed,
            DtmResult::Failure => BranchStatus::Failed,
            DtmResult::Ongoing => return None,
        };
        let s = WorkflowStep {
            gid: gid.clone(),
            branch_id: branch_id.into(),
            op,
            status,
            data: name.as_bytes().to_vec(),
        };
        uc.record_workflow_step(s).await.ok().map(|()| status)
    };
    let Some(out) = step("01", Op::Action, "out").await else {
        return DtmResult::Ongoing;
    };
    assert_eq!(out, BranchStatus::Succeed, "{gid}: out never refuses");
    let Some(inn) = step("02", Op::Action, "in").await else {
        return DtmResult::Ongoing;
    };
    let end = if inn == BranchStatus::Succeed {
        Status::Succeed
    } else {
        // Phase two, backward: the earlier step's undo (the failed step's own is skipped).
        if step("01", Op::Rollback, "out-undo").await.is_none() {
            return DtmResult::Ongoing;
        }
        Status::Failed
    };
    let ended = uc
        .end_workflow(WorkflowEnd {
            gid: gid.clone(),
            status: end,
            rollback_reason: if end == Status::Failed {
                "in refused".into()
            } else {
                String::new()
            },
            result: String::new(),
        })
        .await;
    match (ended, end) {
        (Ok(()), Status::Succeed) => DtmResult::Success,
        (Ok(()), _) => DtmResult::Failure,
        (Err(_), _) => DtmResult::Ongoing,
    }
}

fn resume(uc: TransUsecase, gid: String, branches: Branches) -> BoxFuture<'static, DtmResult> {
    Box::pin(run_workflow(uc, gid, branches))
}

/// The client's first run, with the branches the coordinator resumes through.
fn client(uc: TransUsecase, gid: String, branches: Branches) -> BoxFuture<'static, ClientEnd> {
    Box::pin(async move {
        match run_workflow(uc, gid, branches).await {
            DtmResult::Success | DtmResult::Failure => ClientEnd::Submitted,
            DtmResult::Ongoing => ClientEnd::Gave,
        }
    })
}

/// The workflow's rules (see the module docs).
fn check(run: &Run, in_fails: bool) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let gid = &run.gid;
    let calls = run.branches.calls();
    let called = |name: &str| calls.iter().filter(|(n, _)| n == name).count();
    match status {
        Status::Succeed => {
            assert!(!in_fails, "{gid}: succeed though in refused");
            assert!(called("out") >= 1 && called("in") >= 1, "{gid}: {calls:?}");
            assert_eq!(called("out-undo"), 0, "{gid}: {calls:?}");
        }
        Status::Failed => {
            assert!(in_fails, "{gid}: failed though in succeeded: {calls:?}");
            assert!(called("out-undo") >= 1, "{gid}: out not undone: {calls:?}");
            let undo = calls.iter().position(|(n, _)| n == "out-undo");
            let last_forward = calls.iter().rposition(|(n, _)| n == "out" || n == "in");
            assert!(
                undo > last_forward,
                "{gid}: forward after the undo: {calls:?}"
            );
        }
        s => panic!("{gid}: {s:?}"),
    }
    // A step recorded is replayed, never called again: each branch ran at most once more than
    // its record was lost — here, at most twice (one lost write per run).
    for name in ["out", "in", "out-undo"] {
        assert!(
            called(name) <= 2,
            "{gid}: {name} called {}: {calls:?}",
            called(name)
        );
    }
    // The rows: each step once, with its answer.
    let mut keys: Vec<_> = run
        .rows
        .iter()
        .map(|r| (r.branch_id.clone(), r.op))
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), run.rows.len(), "{gid}: a step recorded twice");
}

#[tokio::test]
async fn a_workflow_ends_right_at_every_crash_point() {
    let ok = every_crash_point_with(
        "wf-ok",
        || Branches::default().resuming(resume),
        client,
        |run| check(run, false),
    );
    let undo = every_crash_point_with(
        "wf-undo",
        || Branches::new(&[("in", DtmResult::Failure)]).resuming(resume),
        client,
        |run| check(run, true),
    );
    let (ok, undo) = tokio::join!(ok, undo);
    println!("{ok} + {undo} runs");
}
