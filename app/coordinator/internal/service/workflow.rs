//! The workflow's part of the API (docs/dtm-protocol.md, Workflow): `prepareWorkflow`, a step
//! recorded by `registerBranch`, the end by `submit` with `req_extra` — DTO ↔ domain for both
//! transports, checked here so that the use case gets only what can be right.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use crate::biz::{
    Branch, BranchStatus, Global, Op, STEP_OPS, Status, TransError, TransType, WorkflowEnd,
    WorkflowStep,
};
use crate::service::body::{TransRequest, validate_gid};
use crate::service::{DtmService, Payloads, bad, global_json, new_trans};

/// A workflow and the steps its client recorded, as `prepareWorkflow` answers.
#[derive(Debug, Clone)]
pub struct Progresses {
    /// The workflow.
    pub global: Global,
    /// Its recorded steps, in the order they were recorded.
    pub steps: Vec<Branch>,
}

impl DtmService {
    /// `prepareWorkflow`: creates the workflow or loads it, with the steps recorded so far.
    pub async fn prepare_workflow(
        &self,
        t: TransRequest,
        payloads: Payloads,
    ) -> Result<Progresses, TransError> {
        let t = new_trans(t, payloads)?;
        if t.trans_type != Some(TransType::Workflow) {
            return Err(TransError::BadRequest(
                "trans_type: prepareWorkflow takes a workflow".into(),
            ));
        }
        let (global, steps) = self.uc.prepare_workflow(t).await?;
        Ok(Progresses { global, steps })
    }

    /// `prepareWorkflow`'s JSON reply (HTTP, JSON-RPC).
    pub async fn prepare_workflow_json(&self, t: TransRequest) -> Result<Value, TransError> {
        let p = self.prepare_workflow(t, Payloads::Json).await?;
        Ok(p.to_json(self.redact_headers))
    }

    /// `registerBranch` of a workflow: `fields` carry `op` and `status`, `data` is what the step
    /// answered.
    pub(super) async fn record_workflow_step(
        &self,
        gid: String,
        fields: &BTreeMap<String, String>,
        data: Vec<u8>,
    ) -> Result<(), TransError> {
        let get = |k: &str| fields.get(k).map_or("", String::as_str);
        let op = Op::parse(get("op"))
            .filter(|op| STEP_OPS.contains(op))
            .ok_or_else(|| {
                let ops: Vec<&str> = STEP_OPS.iter().map(|o| o.as_str()).collect();
                TransError::BadRequest(format!(
                    "op: a workflow step is one of {}, got {:?}",
                    ops.join(", "),
                    get("op")
                ))
            })?;
        let status = match BranchStatus::parse(get("status")) {
            Some(s @ (BranchStatus::Succeed | BranchStatus::Failed)) => s,
            _ => {
                return Err(TransError::BadRequest(format!(
                    "status: a workflow step is succeed or failed, got {:?}",
                    get("status")
                )));
            }
        };
        self.uc
            .record_workflow_step(WorkflowStep {
                gid,
                branch_id: get("branch_id").to_owned(),
                op,
                status,
                data,
            })
            .await
    }

    /// `submit` of a workflow: its `req_extra` says how it ended.
    pub(super) async fn end_workflow(&self, t: TransRequest) -> Result<(), TransError> {
        validate_gid(&t.gid).map_err(bad)?;
        let get = |k: &str| t.req_extra.get(k).cloned().unwrap_or_default();
        let status = match get("status").as_str() {
            "succeed" => Status::Succeed,
            "failed" => Status::Failed,
            other => {
                return Err(TransError::BadRequest(format!(
                    "req_extra.status: a workflow ends succeed or failed, got {other:?}"
                )));
            }
        };
        self.uc
            .end_workflow(WorkflowEnd {
                gid: t.gid,
                status,
                rollback_reason: get("rollback_reason"),
                result: get("result"),
            })
            .await
    }
}

impl Progresses {
    /// The JSON reply, as the Go SDK reads it (protojson of `DtmProgressesReply`): the whole
    /// transaction as `query` shows it (its `gid, status, rollback_reason, result` are what
    /// the client reads), and `progresses` (never `null`) with `bin_data` in base64.
    fn to_json(&self, redact: bool) -> Value {
        let progresses: Vec<Value> = (self.steps.iter())
            .map(|b| {
                json!({
                    "branch_id": b.branch_id,
                    "op": b.op.as_str(),
                    "status": b.status.as_str(),
                    "bin_data": base64::engine::general_purpose::STANDARD.encode(&b.bin_data),
                })
            })
            .collect();
        json!({
            "transaction": global_json(&self.global, redact),
            "progresses": progresses,
        })
    }

    /// The gRPC reply; unlike Go DTM's, it carries `result` too.
    pub fn to_grpc(&self) -> dtmcli::proto::DtmProgressesReply {
        use dtmcli::proto::{DtmProgress, DtmProgressesReply, DtmTransaction};
        let g = &self.global;
        DtmProgressesReply {
            transaction: Some(DtmTransaction {
                gid: g.gid.clone(),
                status: g.status.as_str().to_owned(),
                rollback_reason: g.rollback_reason.clone(),
                result: g.result.clone(),
            }),
            progresses: (self.steps.iter())
                .map(|b| DtmProgress {
                    status: b.status.as_str().to_owned(),
                    bin_data: b.bin_data.clone(),
                    branch_id: b.branch_id.clone(),
                    op: b.op.as_str().to_owned(),
                })
                .collect(),
        }
    }
}
