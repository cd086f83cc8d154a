//! Workflow (docs/dtm-protocol.md, Workflow): the transaction is code in its client, which calls
//! the branches itself; the coordinator keeps what the client tells it and resumes the client
//! when it stops half-way.
//!
//! `prepareWorkflow` stores it `prepared` with no branches (or loads it, with every step recorded
//! so far); each step the client finishes is recorded (`registerBranch`, op `action`, `commit`,
//! `rollback` or `business`, status `succeed` or `failed`, the step's answer as data); the
//! client's `submit` ends it (`req_extra`: `succeed` or `failed`, with the rollback reason and
//! the result) — no branch is called. A workflow still `prepared` when it falls due is resumed:
//! its `query_prepared` is called with op = the workflow's name and its input, and the client runs
//! it again, replaying the recorded steps. Workflows never time out (DTM's rule: the client
//! decides); resumes that fail back off like any branch call.

use dtmcli::DtmResult;
use serde::Deserialize;

use crate::biz::driver::Driver;
use crate::biz::round::{Next, Round, Step, not_done};
use crate::biz::trans_type::new_trans;
use crate::biz::{
    Branch, BranchStatus, Created, CustomData, Global, NewTrans, Op, Status, StatusChange,
    StoreError, TransError, TransType, TransUsecase, WorkflowData,
};

/// Whether a workflow that sets no `timeout_to_fail` times out: no — nor one that sets it. Its
/// client decides how it ends; the coordinator only resumes it.
pub(super) const TIMES_OUT_BY_DEFAULT: bool = false;

/// The branch id of the resume call (DTM's).
const RESUME_BRANCH_ID: &str = "00";

impl WorkflowData {
    /// Parses a workflow's `custom_data`: `{"name": …, "data": <input, base64>}` (Go's `[]byte`);
    /// the name is required, it is how the client finds the workflow's code.
    pub fn parse(text: &str) -> Result<WorkflowData, String> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Raw {
            #[serde(deserialize_with = "kit::gojson::null_default")]
            name: String,
            #[serde(deserialize_with = "kit::gojson::null_default")]
            data: String,
        }
        let raw: Raw = kit::gojson::from_slice(text.as_bytes()).map_err(|e| e.to_string())?;
        if raw.name.is_empty() {
            return Err("name: the workflow's name is required".into());
        }
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD
            .decode(raw.data.as_bytes())
            .map_err(|e| format!("data: not base64: {e}"))?;
        Ok(WorkflowData {
            name: raw.name,
            data,
        })
    }
}

/// One step a workflow's client finished, as `registerBranch` records it.
#[derive(Debug, Clone)]
pub struct WorkflowStep {
    /// Global transaction id.
    pub gid: String,
    /// The step's branch (`01`, `02`, …), chosen by the client.
    pub branch_id: String,
    /// `action`, `commit`, `rollback` or `business`.
    pub op: Op,
    /// `succeed` or `failed`.
    pub status: BranchStatus,
    /// What the step answered (an HTTP body, a protobuf reply, an error's text).
    pub data: Vec<u8>,
}

/// How a workflow's client ended it (`submit` with `req_extra`).
#[derive(Debug, Clone)]
pub struct WorkflowEnd {
    /// Global transaction id.
    pub gid: String,
    /// `succeed` or `failed`.
    pub status: Status,
    /// Why it failed (the error's text).
    pub rollback_reason: String,
    /// What it returned (base64 text, kept as sent).
    pub result: String,
}

/// The ops a recorded step may have.
pub const STEP_OPS: [Op; 4] = [Op::Action, Op::Commit, Op::Rollback, Op::Business];

impl TransUsecase {
    /// `prepareWorkflow`: stores a new workflow `prepared`, due for a resume after its base
    /// interval, or loads it; the workflow and every step recorded so far.
    pub async fn prepare_workflow(&self, t: NewTrans) -> Result<(Global, Vec<Branch>), TransError> {
        let d = &self.driver;
        if t.query_prepared.is_empty() {
            return Err(TransError::BadRequest(
                "query_prepared: a workflow needs its resume address".into(),
            ));
        }
        let trans = new_trans(d, &t, Status::Prepared, &Default::default())?;
        match d.store.create(&trans.global, &[]).await? {
            Created::Inserted => Ok((trans.global, Vec::new())),
            Created::Exists(g) if g.trans_type == TransType::Workflow => {
                let branches = d.store.branches(&g.gid).await?;
                Ok((*g, branches))
            }
            Created::Exists(g) => Err(other_type(&g)),
        }
    }

    /// `registerBranch` of a workflow: records one finished step, only while the workflow is
    /// `prepared`; the same `(branch_id, op)` twice is refused (the first record stands, and a
    /// client that lost its answer replays it on resume).
    pub async fn record_workflow_step(&self, s: WorkflowStep) -> Result<(), TransError> {
        let d = &self.driver;
        if s.branch_id.is_empty() || s.branch_id.len() > 128 {
            return Err(TransError::BadRequest(
                "branch_id must be 1 to 128 characters".into(),
            ));
        }
        let not_prepared = || {
            TransError::Failure(format!(
                "no trans with gid: {} status: prepared found",
                s.gid
            ))
        };
        let g = d.store.find(&s.gid).await?.ok_or_else(not_prepared)?;
        if g.trans_type != TransType::Workflow {
            return Err(other_type(&g));
        }
        let now = d.clock.now();
        let mut row = Branch::new(&s.gid, s.branch_id.clone(), s.op, "", &s.data, now);
        row.answered(s.status, now);
        match d.store.add_branches(&s.gid, Status::Prepared, &[row]).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_prepared()),
            Err(StoreError::Duplicate) => Err(TransError::Failure(format!(
                "step {}/{} of {} is recorded already",
                s.branch_id,
                s.op.as_str(),
                s.gid
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// `submit` of a workflow: `prepared` → the client's final status, with its rollback reason
    /// and result; no branch is called. A retried submit that finds it ended the same way is
    /// accepted.
    pub async fn end_workflow(&self, e: WorkflowEnd) -> Result<(), TransError> {
        let d = &self.driver;
        let g = d.must_find(&e.gid).await?;
        if g.trans_type != TransType::Workflow {
            return Err(other_type(&g));
        }
        let change = StatusChange {
            from: Status::Prepared,
            to: e.status,
            rollback_reason: Some(e.rollback_reason.as_str()).filter(|r| !r.is_empty()),
            result: Some(&e.result),
            now: d.clock.now(),
        };
        if g.status == Status::Prepared && d.store.change_status(&g.gid, &change).await? {
            crate::biz::driver::log_change(&g, &change);
            return Ok(());
        }
        let now = d.must_find(&e.gid).await?;
        if now.status == e.status {
            return Ok(());
        }
        Err(TransError::Failure(format!(
            "current status '{}', cannot submit",
            now.status.as_str()
        )))
    }
}

/// One step of a workflow's round: a `prepared` one is resumed; the others have nothing to do.
pub(super) async fn step(r: &mut Round<'_>) -> Result<Step, TransError> {
    match r.t.global.status {
        Status::Prepared => resume(r).await,
        Status::Succeed | Status::Failed => Ok(Step::Stop(Next::Done)),
        // Only a client's submit ends a workflow; no status in between is ever written here.
        s => Ok(Step::Stop(Next::Error(format!(
            "a workflow cannot be {}",
            s.as_str()
        )))),
    }
}

/// Calls the client back to run the workflow again (branch `00`, op = its name, its input as
/// the body — over gRPC wrapped in `WorkflowData`). The client ends it with its own submit, so
/// an answer is only a hint: the store says whether it ended.
async fn resume(r: &mut Round<'_>) -> Result<Step, TransError> {
    let CustomData::Workflow(w) = &r.t.custom else {
        return Ok(Step::Stop(Next::Error(
            "a workflow without its name".into(),
        )));
    };
    let (name, input) = (w.name.clone(), w.data.clone());
    let body = dtmcli::workflow::resume_body(&r.t.global.protocol, &input);
    let url = r.t.global.query_prepared.clone();
    let called = r
        .call_with(&url, &body, RESUME_BRANCH_ID, Op::Action, Some(&name))
        .await;
    match called {
        Ok(reply) if reply.result != DtmResult::Ongoing => {
            let g = r.d.must_find(&r.t.global.gid).await?;
            if g.status.is_final() {
                r.t.global = g;
                return Ok(Step::Stop(Next::Done));
            }
            Ok(Step::Stop(Next::Error(format!(
                "{url} answered {} yet the workflow was not submitted",
                reply.result.as_str()
            ))))
        }
        other => Ok(Step::Stop(not_done(&url, other))),
    }
}

/// The refusal of a gid that names a transaction of another type.
fn other_type(g: &Global) -> TransError {
    TransError::Failure(format!(
        "gid {} is a {} transaction, not workflow",
        g.gid,
        g.trans_type.as_str()
    ))
}

/// When a new workflow is first due: after its base interval, by which time its client should
/// have submitted it.
pub(super) fn first_resume(d: &Driver, g: &Global) -> kit::time::UnixMs {
    g.create_time + d.policy.base_interval(&g.options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_data_is_a_name_and_base64_input() {
        let w = WorkflowData::parse(r#"{"data":"eyJhIjoxfQ==","name":"wf_saga"}"#).unwrap();
        assert_eq!(
            (w.name.as_str(), w.data.as_slice()),
            ("wf_saga", &b"{\"a\":1}"[..])
        );
        assert_eq!(
            WorkflowData::parse(r#"{"name":"w","data":null}"#)
                .unwrap()
                .data,
            b""
        );
        assert!(
            WorkflowData::parse(r#"{"data":""}"#)
                .unwrap_err()
                .starts_with("name")
        );
        assert!(
            WorkflowData::parse(r#"{"name":"w","data":"%%"}"#)
                .unwrap_err()
                .starts_with("data")
        );
        assert!(WorkflowData::parse("").is_err());
    }
}
