//! The servers: DTM's HTTP API under `/api/dtmsvr` (docs/dtm-protocol.md) and the `dtmgimp.Dtm`
//! gRPC server, both over one [`DtmService`].
//!
//! The HTTP API is a router per concern, merged here (as realworld's `api_router()`): the
//! transactions (`trans`), msg topics (`topics`), the admin routes behind an optional token
//! (`admin`), DTM's JSON-RPC framing (`jsonrpc`) and the admin page (`page`). Every reply goes
//! through DTM's envelope (`envelope`).

mod admin;
mod envelope;
mod jsonrpc;
mod page;
mod topics;
mod trans;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, post};
use dtmcli::proto::dtm_server::DtmServer;
use serde_json::json;

use crate::service::DtmService;

/// The state every HTTP handler gets.
type Svc = axum::extract::State<Arc<DtmService>>;

/// The HTTP router; with `token`, the admin routes require `Authorization: Bearer <token>`.
pub fn new_http_server(svc: Arc<DtmService>, token: Option<String>) -> Router<()> {
    let dtm = trans::router()
        .merge(topics::router())
        .merge(admin::router(token));
    Router::new()
        .nest("/api/dtmsvr", dtm)
        .route(
            "/api/ping",
            any(|| async { axum::Json(json!({"msg": "pong"})) }),
        )
        // DTM's JSON-RPC API: the same operations, JSON-RPC 2.0 framed.
        .route("/api/json-rpc", post(jsonrpc::json_rpc))
        .merge(page::router())
        .with_state(svc)
}

/// The gRPC server, with the configured message size limit.
pub fn new_grpc_server(conf: &kit::ServersConf, svc: Arc<DtmService>) -> DtmServer<DtmService> {
    DtmServer::from_arc(svc).max_decoding_message_size(conf.grpc.max_body_bytes)
}
