//! The transaction routes: a new gid, prepare, submit, abort, prepareWorkflow and branch
//! registration.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::json;

use crate::server::Svc;
use crate::server::envelope::{bytes, done, reply, trans_request};
use crate::service::body::register_branch_from_json;
use crate::service::{DtmService, Payloads};

/// `/newGid`, `/prepare`, `/submit`, `/abort`, `/prepareWorkflow`, `/registerBranch` (and its
/// legacy aliases), `/version`.
pub(super) fn router() -> Router<Arc<DtmService>> {
    Router::new()
        .route("/newGid", get(new_gid))
        .route("/prepare", post(prepare))
        .route("/submit", post(submit))
        .route("/abort", post(abort))
        .route("/prepareWorkflow", post(prepare_workflow))
        .route("/registerBranch", post(register_branch))
        // Legacy aliases used by older SDKs (Node, PHP, DTM < 1.10).
        .route("/registerTccBranch", post(register_branch))
        .route("/registerXaBranch", post(register_branch))
        .route("/version", get(version))
}

async fn new_gid(State(svc): Svc) -> Response {
    reply(Ok(json!({"gid": svc.new_gid(), "dtm_result": "SUCCESS"})))
}

async fn prepare(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans_request(body) {
        Ok(t) => done(svc.prepare(t, Payloads::Json).await),
        Err(e) => e.into_response(),
    }
}

async fn submit(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans_request(body) {
        Ok(t) => done(svc.submit(t, Payloads::Json).await),
        Err(e) => e.into_response(),
    }
}

async fn abort(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans_request(body) {
        Ok(t) => done(svc.abort(t, Payloads::Json).await),
        Err(e) => e.into_response(),
    }
}

async fn prepare_workflow(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans_request(body) {
        Ok(t) => reply(svc.prepare_workflow_json(t).await),
        Err(e) => e.into_response(),
    }
}

async fn register_branch(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    let fields =
        match bytes(body).and_then(|b| register_branch_from_json(&b).map_err(kit::Error::from)) {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        };
    let data = fields.get("data").cloned().unwrap_or_default().into_bytes();
    done(svc.register_branch(&fields, data).await)
}

async fn version() -> Response {
    reply(Ok(
        json!({"version": concat!("v", env!("CARGO_PKG_VERSION"))}),
    ))
}
