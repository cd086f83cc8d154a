//! The calls a workflow's steps and phase-two callbacks make, each with its branch's context,
//! and how their answers read: SUCCESS and FAILURE are definite (recorded), ONGOING and errors
//! are not.

use std::future::Future;

use crate::caller::{CallRequest, Caller};
use crate::workflow::WorkflowError;
use crate::workflow::run::Step;
use crate::{BranchInfo, DtmResult, Op};

/// A phase-two callback's context: its branch, op `commit` or `rollback`. Calls made through it
/// carry that context; they are not recorded one by one — the callback is, as a whole.
pub struct Phase2 {
    pub(super) info: BranchInfo,
    pub(super) http: reqwest::Client,
}

impl Phase2 {
    /// The context (for the barrier, [`crate::BranchDb::run`]).
    pub fn info(&self) -> &BranchInfo {
        &self.info
    }

    /// Whether the workflow is rolling back.
    pub fn is_rollback(&self) -> bool {
        self.info.op == Op::Rollback
    }

    /// The client the workflow's HTTP calls go through.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// An HTTP call with this context; anything but 200 is an error (retried on resume).
    pub async fn http(&self, req: reqwest::RequestBuilder) -> Result<(), WorkflowError> {
        send_http(&self.info, req).await.map(drop)
    }

    /// A call through the SDK's branch caller with this context (see
    /// [`crate::workflow::Branch::call`]); anything but SUCCESS is an error (retried on resume).
    pub async fn call(
        &self,
        caller: &Caller,
        protocol: &str,
        url: &str,
        body: &[u8],
    ) -> Result<(), WorkflowError> {
        call(caller, &self.info, protocol, url, body)
            .await
            .map(drop)
    }

    /// A gRPC call with this context; anything but OK is an error (retried on resume).
    pub async fn grpc<Req, Reply, F, Fut>(&self, req: Req, call: F) -> Result<Reply, WorkflowError>
    where
        F: FnOnce(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Reply>, tonic::Status>>,
    {
        send_grpc(&self.info, req, call).await
    }
}

/// SUCCESS and FAILURE are definite (recorded); ONGOING and errors are not.
pub(super) fn definite(result: Result<Vec<u8>, WorkflowError>) -> Result<Step, WorkflowError> {
    match result {
        Ok(data) => Ok(Step::Succeed(data)),
        Err(WorkflowError::Failure(m)) => Ok(Step::Failed(m.into_bytes())),
        Err(e) => Err(e),
    }
}

/// Calls a branch through `caller` with `info`, and reads its answer by DTM's table.
pub(super) async fn call(
    caller: &Caller,
    info: &BranchInfo,
    protocol: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<u8>, WorkflowError> {
    let req = CallRequest {
        url,
        protocol,
        body,
        info,
        headers: &Default::default(),
        timeout: crate::client::DEFAULT_TIMEOUT,
        op_name: None,
    };
    match caller.call(&req).await {
        Ok(r) => match r.result {
            DtmResult::Success => Ok(r.body.into_bytes()),
            DtmResult::Failure => Err(WorkflowError::Failure(r.body)),
            DtmResult::Ongoing => Err(WorkflowError::Ongoing(r.body)),
        },
        Err(e) => Err(WorkflowError::Error(e.to_string())),
    }
}

/// Sends an HTTP branch call with `info` in its query, and reads its answer by DTM's table.
pub(super) async fn send_http(
    info: &BranchInfo,
    req: reqwest::RequestBuilder,
) -> Result<Vec<u8>, WorkflowError> {
    let mut trace = http::HeaderMap::new();
    kit::trace::inject(&mut trace);
    let res = req
        .query(&info.to_query())
        .headers(trace)
        .send()
        .await
        .map_err(|e| WorkflowError::Error(kit::errors::chain(&e)))?;
    let status = res.status().as_u16();
    let body = res
        .bytes()
        .await
        .map_err(|e| WorkflowError::Error(kit::errors::chain(&e)))?;
    let text = || String::from_utf8_lossy(&body).into_owned();
    match DtmResult::from_http(status, &String::from_utf8_lossy(&body)) {
        Some(DtmResult::Success) => Ok(body.to_vec()),
        Some(DtmResult::Failure) => Err(WorkflowError::Failure(text())),
        Some(DtmResult::Ongoing) => Err(WorkflowError::Ongoing(text())),
        None => Err(WorkflowError::Error(format!(
            "answered {status}: {}",
            text()
        ))),
    }
}

/// Sends a gRPC branch call with `info` as `dtm-*` metadata, and reads its status by DTM's table.
pub(super) async fn send_grpc<Req, Reply, F, Fut>(
    info: &BranchInfo,
    req: Req,
    call: F,
) -> Result<Reply, WorkflowError>
where
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Reply>, tonic::Status>>,
{
    let mut req = tonic::Request::new(req);
    info.to_metadata(req.metadata_mut())
        .map_err(|e| WorkflowError::Error(e.message))?;
    kit::trace::inject_metadata(req.metadata_mut());
    match call(req).await {
        Ok(reply) => Ok(reply.into_inner()),
        Err(s) => Err(match DtmResult::from_grpc(s.code(), s.message()) {
            Some(DtmResult::Failure) => WorkflowError::Failure(s.message().to_owned()),
            Some(DtmResult::Ongoing) => WorkflowError::Ongoing(s.message().to_owned()),
            _ => WorkflowError::Error(format!("{:?}: {}", s.code(), s.message())),
        }),
    }
}
