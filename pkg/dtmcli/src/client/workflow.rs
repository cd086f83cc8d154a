//! A workflow's three calls to the coordinator (docs/dtm-protocol.md, Workflow): prepareWorkflow
//! (create or load, with the steps recorded so far), registerBranch of one finished step, and
//! submit with `req_extra`. [`crate::workflow`] makes them; over HTTP or gRPC as [`Dtm`] is.

use base64::Engine;
use serde_json::json;

use crate::client::trans::Trans;
use crate::client::{ClientError, Dtm};
use crate::proto::DtmProgressesReply;
use crate::{BranchInfo, Op, TransType};

/// A workflow as the coordinator holds it: its status and, once it ended, its reason or result,
/// and every step recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// `prepared`, `succeed` or `failed`.
    pub(crate) status: String,
    /// Why it failed.
    pub(crate) rollback_reason: String,
    /// What it returned (base64, as submitted).
    pub(crate) result: String,
    /// The steps recorded so far.
    pub(crate) steps: Vec<RecordedStep>,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedStep {
    /// Its branch (`01`, …).
    pub(crate) branch_id: String,
    /// `action`, `commit`, `rollback` or `business`.
    pub(crate) op: String,
    /// `succeed` or `failed`.
    pub(crate) status: String,
    /// What the step answered.
    pub(crate) data: Vec<u8>,
}

impl Dtm {
    /// `prepareWorkflow`: creates workflow `gid` (`name` and `input` its `custom_data`,
    /// `resume` its `query_prepared`) or loads it.
    pub(crate) async fn prepare_workflow(
        &self,
        gid: &str,
        name: &str,
        input: &[u8],
        resume: &str,
    ) -> Result<Progress, ClientError> {
        let mut t = Trans::new(self, gid, TransType::Workflow);
        let data = base64::engine::general_purpose::STANDARD.encode(input);
        t.custom_data = json!({"name": name, "data": data}).to_string();
        t.query_prepared = resume.to_owned();
        let reply = match &self.api {
            super::Api::Http { client, base } => {
                let url = format!("{base}/prepareWorkflow");
                let body = self.post_for(client, &url, &t.to_json()).await?;
                from_json(&body)?
            }
            super::Api::Grpc { client, .. } => {
                let mut req = tonic::Request::new(t.to_grpc());
                req.set_timeout(self.timeout);
                kit::trace::inject_metadata(req.metadata_mut());
                let reply = self.within(client.clone().prepare_workflow(req)).await?;
                from_grpc(reply.into_inner())
            }
        };
        Ok(reply)
    }

    /// `registerBranch` of one finished step: `status` `succeed` or `failed`, `data` what it
    /// answered.
    pub(crate) async fn record_workflow_step(
        &self,
        gid: &str,
        branch_id: &str,
        op: Op,
        status: &str,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let info = BranchInfo {
            gid: gid.to_owned(),
            trans_type: TransType::Workflow,
            branch_id: branch_id.to_owned(),
            op,
            dtm: String::new(),
            phase2_url: String::new(),
        };
        let fields = [("op", op.as_str()), ("status", status)];
        self.register_branch(&info, &fields, data).await
    }

    /// `submit` of a workflow: how it ended (`succeed` or `failed`), why, and its result.
    pub(crate) async fn end_workflow(
        &self,
        gid: &str,
        status: &str,
        rollback_reason: &str,
        result: &[u8],
    ) -> Result<(), ClientError> {
        let result = base64::engine::general_purpose::STANDARD.encode(result);
        let extra = [
            ("status", status),
            ("rollback_reason", rollback_reason),
            ("result", result.as_str()),
        ];
        match &self.api {
            super::Api::Http { client, base } => {
                let extra: serde_json::Map<String, serde_json::Value> = (extra.iter())
                    .map(|(k, v)| ((*k).to_owned(), (*v).into()))
                    .collect();
                let body = json!({"gid": gid, "trans_type": "workflow", "req_extra": extra});
                self.post(client, &format!("{base}/submit"), &body).await
            }
            super::Api::Grpc { client, .. } => {
                let mut r = Trans::new(self, gid, TransType::Workflow).to_grpc();
                r.req_extra = (extra.iter())
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                let mut req = tonic::Request::new(r);
                req.set_timeout(self.timeout);
                kit::trace::inject_metadata(req.metadata_mut());
                self.within(client.clone().submit(req)).await.map(drop)
            }
        }
    }
}

/// The HTTP reply, read as the Go SDK reads it: `transaction.{status, rollback_reason,
/// result}` and `progresses[].{branch_id, op, status, bin_data (base64)}`.
fn from_json(body: &str) -> Result<Progress, ClientError> {
    let bad = |why: String| ClientError::Answer {
        status: "200 without a workflow's progress".into(),
        message: format!("{why}: {body}"),
    };
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| bad(e.to_string()))?;
    let t = &v["transaction"];
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let steps = v["progresses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(p["bin_data"].as_str().unwrap_or_default())
                .map_err(|e| bad(format!("bin_data: {e}")))?;
            Ok(RecordedStep {
                branch_id: text(p, "branch_id"),
                op: text(p, "op"),
                status: text(p, "status"),
                data,
            })
        })
        .collect::<Result<_, ClientError>>()?;
    if t["status"].as_str().is_none_or(str::is_empty) {
        return Err(bad("no transaction status".into()));
    }
    Ok(Progress {
        status: text(t, "status"),
        rollback_reason: text(t, "rollback_reason"),
        result: text(t, "result"),
        steps,
    })
}

fn from_grpc(r: DtmProgressesReply) -> Progress {
    let t = r.transaction.unwrap_or_default();
    Progress {
        status: t.status,
        rollback_reason: t.rollback_reason,
        result: t.result,
        steps: (r.progresses.into_iter())
            .map(|p| RecordedStep {
                branch_id: p.branch_id,
                op: p.op,
                status: p.status,
                data: p.bin_data,
            })
            .collect(),
    }
}
