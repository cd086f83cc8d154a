//! `dtmgimp.Dtm`, the gRPC API DTM's SDKs call (docs/dtm-protocol.md, The gRPC API). A transaction
//! created here has `protocol = grpc` and protobuf payloads (`BinPayloads`).

use std::collections::BTreeMap;

use crate::service::body::TransRequest;
use dtmcli::proto::dtm_server::Dtm;
use dtmcli::proto::{
    DtmBranchRequest, DtmGidReply, DtmProgressesReply, DtmRequest, DtmTopicRequest,
};
use tonic::{Request, Response, Status};

use crate::biz::TransError;
use crate::service::{DtmService, Payloads};

#[tonic::async_trait]
impl Dtm for DtmService {
    async fn new_gid(&self, _: Request<()>) -> Result<Response<DtmGidReply>, Status> {
        Ok(Response::new(DtmGidReply {
            gid: DtmService::new_gid(self),
        }))
    }

    async fn submit(&self, req: Request<DtmRequest>) -> Result<Response<()>, Status> {
        let (t, p) = from_grpc(req.into_inner())?;
        DtmService::submit(self, t, p).await.map_err(status)?;
        Ok(Response::new(()))
    }

    async fn prepare(&self, req: Request<DtmRequest>) -> Result<Response<()>, Status> {
        let (t, p) = from_grpc(req.into_inner())?;
        DtmService::prepare(self, t, p).await.map_err(status)?;
        Ok(Response::new(()))
    }

    async fn abort(&self, req: Request<DtmRequest>) -> Result<Response<()>, Status> {
        let (t, p) = from_grpc(req.into_inner())?;
        DtmService::abort(self, t, p).await.map_err(status)?;
        Ok(Response::new(()))
    }

    async fn register_branch(
        &self,
        req: Request<DtmBranchRequest>,
    ) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        let mut fields: BTreeMap<String, String> = r.data.into_iter().collect();
        // A workflow step's op travels in `Data` (Go's SDK); `Op` is read when it does not.
        if !r.op.is_empty() {
            fields.entry("op".into()).or_insert(r.op);
        }
        fields.insert("gid".into(), r.gid);
        fields.insert("trans_type".into(), r.trans_type);
        fields.insert("branch_id".into(), r.branch_id);
        DtmService::register_branch(self, &fields, r.busi_payload)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn prepare_workflow(
        &self,
        req: Request<DtmRequest>,
    ) -> Result<Response<DtmProgressesReply>, Status> {
        let (t, p) = from_grpc(req.into_inner())?;
        let progresses = DtmService::prepare_workflow(self, t, p)
            .await
            .map_err(status)?;
        Ok(Response::new(progresses.to_grpc()))
    }

    async fn subscribe(&self, req: Request<DtmTopicRequest>) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        DtmService::subscribe(self, &r.topic, &r.url, &r.remark)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn unsubscribe(&self, req: Request<DtmTopicRequest>) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        DtmService::unsubscribe(self, &r.topic, &r.url)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn delete_topic(&self, req: Request<DtmTopicRequest>) -> Result<Response<()>, Status> {
        DtmService::delete_topic(self, &req.into_inner().topic)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }
}

/// `DtmRequest` → the HTTP body's shape (so one validation serves both) and the binary payloads.
fn from_grpc(r: DtmRequest) -> Result<(TransRequest, Payloads), Status> {
    // dtmgrpc marshals a nil slice, so TCC's Prepare/Submit/Abort send `Steps: "null"`.
    let steps = if r.steps.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str::<Option<Vec<_>>>(&r.steps)
            .map_err(|e| {
                status(TransError::BadRequest(format!(
                    "Steps: not a JSON array of string maps: {e}"
                )))
            })?
            .unwrap_or_default()
    };
    let o = r.trans_options.unwrap_or_default();
    let t = TransRequest {
        gid: r.gid,
        trans_type: r.trans_type,
        steps,
        payloads: Vec::new(),
        custom_data: r.customed_data,
        query_prepared: r.query_prepared,
        protocol: "grpc".into(),
        wait_result: o.wait_result,
        timeout_to_fail: o.timeout_to_fail,
        request_timeout: o.request_timeout,
        retry_interval: o.retry_interval,
        branch_headers: o.branch_headers.into_iter().collect(),
        concurrent: false,
        retry_limit: o.retry_limit,
        rollback_reason: r.rollback_reason,
        req_extra: r.req_extra.into_iter().collect(),
    };
    Ok((t, Payloads::Binary(r.bin_payloads)))
}

fn status(e: TransError) -> Status {
    kit::Error::from(e).into()
}
