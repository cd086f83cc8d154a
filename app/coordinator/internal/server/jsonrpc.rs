//! DTM's JSON-RPC 2.0 API, `POST /api/json-rpc`: the methods `newGid`, `prepare`, `submit`,
//! `abort`, `registerBranch` and `prepareWorkflow`, their params the bodies of the HTTP API's
//! routes of the same names (docs/coordinator.md, JSON-RPC).
//!
//! JSON-RPC answers HTTP 200 with either `result` or `error` (DTM's SDKs read it so): `-32700`
//! unparsable JSON, `-32600` not a JSON-RPC 2.0 request (or no `id`), `-32601` unknown method,
//! `-32602` invalid params, `-32901` FAILURE, `-32902` ONGOING, `-32603` anything else.

use std::future::Future;
use std::sync::Arc;

use crate::service::body::{TransRequest, register_branch_from_json};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dtmcli::caller::{JSON_RPC_FAILURE, JSON_RPC_ONGOING};
use kit::errors::clip;
use serde_json::{Value, json};

use crate::biz::TransError;
use crate::service::{DtmService, Payloads};

/// `POST /api/json-rpc`.
pub async fn json_rpc(
    State(svc): State<Arc<DtmService>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // An unreadable or oversized body is an HTTP error, before any JSON-RPC.
    let body = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return answer(
                &Value::Null,
                Err((-32700, format!("Parse json error: {e}"))),
            );
        }
    };
    let id = &req["id"];
    // The reply carries the id back: a string id is bounded so that it cannot make it large.
    let has_id = id
        .as_str()
        .is_some_and(|s| !s.is_empty() && s.len() <= MAX_ECHO)
        || id.is_number();
    if req["jsonrpc"] != "2.0" || !has_id {
        let id = if has_id { id } else { &Value::Null };
        let request = clip(&req.to_string(), MAX_ECHO);
        return answer(id, Err((-32600, format!("Bad json request: {request}"))));
    }
    let params = &req["params"];
    let result = match req["method"].as_str().unwrap_or_default() {
        "newGid" => Ok(json!({ "gid": svc.new_gid() })),
        "prepare" => run(params, |t| svc.prepare(t, Payloads::Json)).await,
        "submit" => run(params, |t| svc.submit(t, Payloads::Json)).await,
        "abort" => run(params, |t| svc.abort(t, Payloads::Json)).await,
        "registerBranch" => register_branch(&svc, params).await,
        "prepareWorkflow" => prepare_workflow(&svc, params).await,
        other => Err((
            -32601,
            format!("Method not found: {}", clip(other, MAX_ECHO)),
        )),
    };
    answer(id, result)
}

/// How much of a bad request an error message quotes (DTM quotes it whole: a request of a
/// megabyte came back as one).
const MAX_ECHO: usize = 128;

/// A JSON-RPC error: its code and message.
type RpcError = (i64, String);

/// Runs a transaction method on `params` (a body of the HTTP API); `null` on success, as DTM.
async fn run<F, Fut>(params: &Value, method: F) -> Result<Value, RpcError>
where
    F: FnOnce(TransRequest) -> Fut,
    Fut: Future<Output = Result<(), TransError>>,
{
    let body = serde_json::to_vec(params).unwrap_or_default();
    let t = TransRequest::from_json(&body).map_err(|e| (-32602, e.to_string()))?;
    method(t).await.map(|()| Value::Null).map_err(rpc_error)
}

async fn prepare_workflow(svc: &DtmService, params: &Value) -> Result<Value, RpcError> {
    let body = serde_json::to_vec(params).unwrap_or_default();
    let t = TransRequest::from_json(&body).map_err(|e| (-32602, e.to_string()))?;
    svc.prepare_workflow_json(t).await.map_err(rpc_error)
}

async fn register_branch(svc: &DtmService, params: &Value) -> Result<Value, RpcError> {
    let body = serde_json::to_vec(params).unwrap_or_default();
    let fields = register_branch_from_json(&body).map_err(|e| (-32602, e.to_string()))?;
    let data = fields.get("data").cloned().unwrap_or_default().into_bytes();
    svc.register_branch(&fields, data)
        .await
        .map(|()| Value::Null)
        .map_err(rpc_error)
}

/// The use case's error as DTM's JSON-RPC codes.
fn rpc_error(e: TransError) -> RpcError {
    let code = match &e {
        TransError::Failure(_) => JSON_RPC_FAILURE,
        TransError::Ongoing(_) => JSON_RPC_ONGOING,
        TransError::BadRequest(_) | TransError::NotFound(_) => -32602,
        TransError::Store(_) => -32603,
    };
    (code, kit::Error::from(e).message)
}

/// The JSON-RPC reply, HTTP 200 either way; an error also goes to the access log's reason.
fn answer(id: &Value, result: Result<Value, RpcError>) -> Response {
    match result {
        Ok(result) => {
            axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result, "error": null}))
                .into_response()
        }
        Err((code, message)) => {
            tracing::info!(code, %message, "json-rpc error");
            let body = json!({"jsonrpc": "2.0", "id": id, "result": null,
                "error": {"code": code, "message": message}});
            let mut res = axum::Json(body).into_response();
            res.extensions_mut()
                .insert(kit::errors::ErrorReason(format!("JSON_RPC_{}", -code)));
            res
        }
    }
}
