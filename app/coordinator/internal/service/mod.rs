//! The coordinator's API, implemented once: DTO ↔ domain for both transports. The HTTP routes
//! (`server`) and the `dtmgimp.Dtm` gRPC service (below) call the same [`DtmService`] methods.

pub mod body;
mod grpc;
mod json;
mod workflow;

use std::collections::BTreeMap;

use body::{BodyError, TransRequest, validate_gid};

use crate::biz::{
    NewTrans, Options, Phase2, Registration, ScanQuery, TopicUsecase, TransError, TransType,
    TransUsecase,
};

pub use json::{branch_json, global_json};
pub use workflow::Progresses;

/// The coordinator service.
#[derive(Clone)]
pub struct DtmService {
    uc: TransUsecase,
    topics: TopicUsecase,
    redact_headers: bool,
}

impl DtmService {
    /// A service over the use cases.
    pub fn new(uc: TransUsecase, topics: TopicUsecase) -> Self {
        DtmService {
            uc,
            topics,
            redact_headers: false,
        }
    }

    /// Shows `branch_headers` values as `***` in `query` and `all` (they may carry credentials).
    pub fn redacting_headers(mut self, redact: bool) -> Self {
        self.redact_headers = redact;
        self
    }

    /// `newGid`.
    pub fn new_gid(&self) -> String {
        crate::biz::new_gid()
    }

    /// `prepare`.
    pub async fn prepare(&self, t: TransRequest, payloads: Payloads) -> Result<(), TransError> {
        if is_workflow(&t) {
            return Err(TransError::BadRequest(
                "trans_type: a workflow starts with prepareWorkflow".into(),
            ));
        }
        self.uc.prepare(new_trans(t, payloads)?).await
    }

    /// `submit` (a workflow's end, with its `req_extra`, included).
    pub async fn submit(&self, t: TransRequest, payloads: Payloads) -> Result<(), TransError> {
        if is_workflow(&t) {
            return self.end_workflow(t).await;
        }
        self.uc.submit(new_trans(t, payloads)?).await
    }

    /// `abort`.
    pub async fn abort(&self, t: TransRequest, payloads: Payloads) -> Result<(), TransError> {
        self.uc.abort(new_trans(t, payloads)?).await
    }

    /// `registerBranch`: `fields` are the string fields of the body (HTTP) or the `Data` map plus
    /// `gid, trans_type, branch_id` (gRPC); `data` the branch body (a workflow step's answer).
    pub async fn register_branch(
        &self,
        fields: &BTreeMap<String, String>,
        data: Vec<u8>,
    ) -> Result<(), TransError> {
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let gid = get("gid");
        validate_gid(&gid).map_err(bad)?;
        let phase2 = match TransType::parse(&get("trans_type")) {
            Some(TransType::Tcc) => Phase2::Tcc {
                confirm: get("confirm"),
                cancel: get("cancel"),
            },
            Some(TransType::Xa) => Phase2::Xa { url: get("url") },
            Some(TransType::Workflow) => {
                return self.record_workflow_step(gid, fields, data).await;
            }
            _ => {
                let t = get("trans_type");
                return Err(TransError::BadRequest(format!(
                    "trans_type: branches can be registered for tcc, xa and workflow only, got {t:?}"
                )));
            }
        };
        self.uc
            .register_branch(Registration {
                gid,
                branch_id: get("branch_id"),
                phase2,
                data,
            })
            .await
    }

    /// `subscribe`: `url` receives the msgs sent to `topic://<topic>`.
    pub async fn subscribe(&self, topic: &str, url: &str, remark: &str) -> Result<(), TransError> {
        self.topics.subscribe(topic, url, remark).await
    }

    /// `unsubscribe`.
    pub async fn unsubscribe(&self, topic: &str, url: &str) -> Result<(), TransError> {
        self.topics.unsubscribe(topic, url).await
    }

    /// `deleteTopic`.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransError> {
        self.topics.delete_topic(topic).await
    }

    /// `forceStop`.
    pub async fn force_stop(&self, gid: &str) -> Result<(), TransError> {
        validate_gid(gid).map_err(bad)?;
        self.uc.force_stop(gid).await
    }

    /// `query`: `{"transaction": …, "branches": [...]}`; an unknown gid gives
    /// `{"transaction": null, "branches": []}` as in DTM.
    pub async fn query(&self, gid: &str) -> Result<serde_json::Value, TransError> {
        if gid.is_empty() {
            return Err(TransError::BadRequest("no gid specified".into()));
        }
        Ok(match self.uc.query(gid).await? {
            Some((g, branches)) => serde_json::json!({
                "transaction": global_json(&g, self.redact_headers),
                "branches": branches.iter().map(branch_json).collect::<Vec<_>>(),
            }),
            None => serde_json::json!({"transaction": null, "branches": []}),
        })
    }

    /// `all`: `{"transactions": [...], "next_position": "…"}`.
    pub async fn all(&self, q: &ScanQuery) -> Result<serde_json::Value, TransError> {
        // Every store's cursor is the last id of the previous page.
        if let Some(p) = q.position.as_deref().filter(|p| !p.is_empty())
            && p.parse::<u64>().is_err()
        {
            return Err(TransError::BadRequest(format!(
                "position: {p:?} is not a cursor this coordinator gave"
            )));
        }
        let page = self.uc.all(q).await?;
        Ok(serde_json::json!({
            "transactions": page
                .transactions
                .iter()
                .map(|g| global_json(g, self.redact_headers))
                .collect::<Vec<_>>(),
            "next_position": page.next_position,
        }))
    }

    /// `resetCronTime`.
    pub async fn reset_cron_time(
        &self,
        timeout_secs: Option<u64>,
        limit: u32,
    ) -> Result<serde_json::Value, TransError> {
        let after = timeout_secs.map(std::time::Duration::from_secs);
        let (count, remaining) = self.uc.reset_cron_time(after, limit).await?;
        Ok(serde_json::json!({"has_remaining": remaining, "succeed_count": count}))
    }

    /// `resetNextCronTime`.
    pub async fn reset_next_cron_time(&self, gid: &str) -> Result<(), TransError> {
        validate_gid(gid).map_err(bad)?;
        self.uc.reset_next_cron_time(gid).await
    }
}

/// Branch bodies as they arrived: JSON text over HTTP, protobuf bytes over gRPC.
#[derive(Debug, Clone)]
pub enum Payloads {
    /// HTTP: `payloads` of the JSON body (or legacy `steps[].data`).
    Json,
    /// gRPC: `BinPayloads`.
    Binary(Vec<Vec<u8>>),
}

fn is_workflow(t: &TransRequest) -> bool {
    TransType::parse(&t.trans_type) == Some(TransType::Workflow)
}

/// A request body → the domain's new transaction, refusing what DTM's protocol does not allow.
fn new_trans(t: TransRequest, payloads: Payloads) -> Result<NewTrans, TransError> {
    t.validate().map_err(bad)?;
    let protocol = match (&payloads, t.protocol.as_str()) {
        (Payloads::Binary(_), _) => "grpc",
        (Payloads::Json, "" | "http") => "http",
        (Payloads::Json, "grpc") => "grpc",
        (Payloads::Json, "json-rpc") => "json-rpc",
        (Payloads::Json, other) => {
            return Err(TransError::BadRequest(format!(
                "protocol: unknown protocol {other:?} (http, grpc or json-rpc)"
            )));
        }
    };
    let payloads = match payloads {
        Payloads::Binary(p) => p,
        // Legacy bodies (DTM < 1.10) carry each step's payload as `steps[].data`.
        Payloads::Json if t.payloads.is_empty() => t
            .steps
            .iter()
            .map(|s| s.get("data").cloned().unwrap_or_default().into_bytes())
            .collect(),
        Payloads::Json => t.payloads.iter().map(|p| p.clone().into_bytes()).collect(),
    };
    if protocol == "json-rpc" {
        check_json_rpc_payloads(&payloads)?;
    }
    if !t.steps.is_empty() && !payloads.is_empty() && payloads.len() != t.steps.len() {
        return Err(TransError::BadRequest(format!(
            "payloads: {} payloads for {} steps",
            payloads.len(),
            t.steps.len()
        )));
    }
    Ok(NewTrans {
        gid: t.gid,
        trans_type: TransType::parse(&t.trans_type),
        protocol: protocol.into(),
        steps: t.steps,
        payloads,
        custom_data: t.custom_data,
        query_prepared: t.query_prepared,
        options: Options {
            wait_result: t.wait_result,
            timeout_to_fail: t.timeout_to_fail,
            request_timeout: t.request_timeout,
            retry_interval: t.retry_interval,
            retry_limit: t.retry_limit,
            branch_headers: t.branch_headers,
            concurrent: t.concurrent,
            // Set by the use case from the request's span, never by the client.
            traceparent: String::new(),
        },
        rollback_reason: t.rollback_reason,
    })
}

/// A JSON-RPC branch takes its payload as the call's `params` object, with the DTM context
/// added: a payload that is not a JSON object could never be sent, so it is refused here rather
/// than retried for ever. (An empty payload is an empty object.)
fn check_json_rpc_payloads(payloads: &[Vec<u8>]) -> Result<(), TransError> {
    for (i, p) in payloads.iter().enumerate() {
        let object = p.is_empty()
            || serde_json::from_slice::<serde_json::Value>(p).is_ok_and(|v| v.is_object());
        if !object {
            return Err(TransError::BadRequest(format!(
                "payloads[{i}]: a json-rpc branch's payload must be a JSON object"
            )));
        }
    }
    Ok(())
}

fn bad(e: BodyError) -> TransError {
    TransError::BadRequest(e.to_string())
}

/// The one mapping from the domain's errors to kratos errors (and so to HTTP statuses and gRPC
/// codes): FAILURE 409 / Aborted, ONGOING 425 / FailedPrecondition, bad input 400 /
/// InvalidArgument.
impl From<TransError> for kit::Error {
    fn from(e: TransError) -> Self {
        use dtmcli::DtmResult;
        let message = e.to_string();
        match e {
            TransError::BadRequest(_) => kit::Error::bad_request("INVALID_ARGUMENT", message),
            TransError::NotFound(_) => kit::Error::new(404, "NOT_FOUND", message),
            TransError::Failure(_) => {
                let r = DtmResult::Failure;
                kit::Error::new(r.http_status(), r.as_str(), message)
            }
            TransError::Ongoing(_) => {
                let r = DtmResult::Ongoing;
                kit::Error::new(r.http_status(), r.as_str(), message)
            }
            TransError::Store(e) => kit::Error::internal(&e),
        }
    }
}
