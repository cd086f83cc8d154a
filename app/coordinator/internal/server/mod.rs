//! The servers: DTM's HTTP API under `/api/dtmsvr` (docs/dtm-protocol.md) and the `dtmgimp.Dtm`
//! gRPC server, both over one [`DtmService`].
//!
//! Replies follow DTM's envelope (docs/dtm-protocol.md, The coordinator's HTTP API): `200
//! {"dtm_result":"SUCCESS"}` for nothing to return, the object itself otherwise; FAILURE is 409 and
//! ONGOING 425, with a body that is both DTM's (`dtm_result`, `message`) and kratos' (`code`,
//! `reason`, `message`, `metadata`); bad input is a kratos 400 (DTM would answer 500 or accept it).

mod jsonrpc;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use dtmcli::proto::dtm_server::DtmServer;
use dtmcli::wire::{TransRequest, register_branch_from_json};
use kit::time::UnixMs;
use serde_json::{Value, json};

use crate::biz::{ScanQuery, TransError};
use crate::service::{DtmService, Payloads};

/// The HTTP router; with `token`, the admin routes require `Authorization: Bearer <token>`.
pub fn new_http_server(svc: Arc<DtmService>, token: Option<String>) -> Router<()> {
    let mut admin = Router::new()
        .route("/query", get(query))
        .route("/all", get(all))
        .route("/forceStop", post(force_stop))
        .route("/resetCronTime", get(reset_cron_time))
        .route("/resetNextCronTime", post(reset_next_cron_time));
    if let Some(token) = token {
        let token = Arc::new(token);
        admin = admin.route_layer(axum::middleware::from_fn(move |req, next| {
            bearer(token.clone(), req, next)
        }));
    }
    let dtm = Router::new()
        .route("/newGid", get(new_gid))
        .route("/prepare", post(prepare))
        .route("/submit", post(submit))
        .route("/abort", post(abort))
        .route("/registerBranch", post(register_branch))
        // Legacy aliases used by older SDKs (Node, PHP, DTM < 1.10).
        .route("/registerTccBranch", post(register_branch))
        .route("/registerXaBranch", post(register_branch))
        .route("/version", get(version))
        // Msg topics (DTM's routes; its SDKs send no token, so they stay open like submit).
        .route("/subscribe", get(subscribe))
        .route("/unsubscribe", get(unsubscribe))
        .route("/topic/{name}", axum::routing::delete(delete_topic))
        .merge(admin);
    Router::new()
        .nest("/api/dtmsvr", dtm)
        .route(
            "/api/ping",
            any(|| async { axum::Json(json!({"msg": "pong"})) }),
        )
        // DTM's JSON-RPC API: the same operations, JSON-RPC 2.0 framed.
        .route("/api/json-rpc", post(jsonrpc::json_rpc))
        // The admin page, at DTM's UI path and at /admin. It is static: the API calls it makes
        // carry the token the operator types in.
        .route("/", get(admin_page))
        .route("/admin", get(admin_page))
        .with_state(svc)
}

/// The admin page: one HTML file with its CSS and JavaScript, embedded at build time.
async fn admin_page() -> impl IntoResponse {
    (
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("admin.html"),
    )
}

/// The gRPC server, with the configured message size limit.
pub fn new_grpc_server(conf: &kit::ServersConf, svc: Arc<DtmService>) -> DtmServer<DtmService> {
    DtmServer::from_arc(svc).max_decoding_message_size(conf.grpc.max_body_bytes)
}

/// Lets a request through only with `Authorization: Bearer <token>` (compared in constant time).
async fn bearer(
    token: Arc<String>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "admin route without a valid bearer token");
        kit::Error::new(
            401,
            "UNAUTHORIZED",
            "this route needs Authorization: Bearer <ApiToken>",
        )
        .into_response()
    }
}

type Svc = State<Arc<DtmService>>;
type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

async fn new_gid(State(svc): Svc) -> Response {
    reply(Ok(json!({"gid": svc.new_gid(), "dtm_result": "SUCCESS"})))
}

async fn prepare(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans(body) {
        Ok(t) => done(svc.prepare(t, Payloads::Json).await),
        Err(e) => e.into_response(),
    }
}

async fn submit(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans(body) {
        Ok(t) => done(svc.submit(t, Payloads::Json).await),
        Err(e) => e.into_response(),
    }
}

async fn abort(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match trans(body) {
        Ok(t) => done(svc.abort(t, Payloads::Json).await),
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

async fn subscribe(State(svc): Svc, params: Params) -> Response {
    match params {
        Ok(Query(p)) => {
            let get = |k: &str| p.get(k).map_or("", String::as_str);
            done(svc.subscribe(get("topic"), get("url"), get("remark")).await)
        }
        Err(e) => bad_query(e),
    }
}

async fn unsubscribe(State(svc): Svc, params: Params) -> Response {
    match params {
        Ok(Query(p)) => {
            let get = |k: &str| p.get(k).map_or("", String::as_str);
            done(svc.unsubscribe(get("topic"), get("url")).await)
        }
        Err(e) => bad_query(e),
    }
}

async fn delete_topic(
    State(svc): Svc,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    done(svc.delete_topic(&name).await)
}

async fn force_stop(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match gid_of(body) {
        Ok(gid) => done(svc.force_stop(&gid).await),
        Err(e) => e.into_response(),
    }
}

async fn reset_next_cron_time(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match gid_of(body) {
        Ok(gid) => done(svc.reset_next_cron_time(&gid).await),
        Err(e) => e.into_response(),
    }
}

async fn query(State(svc): Svc, params: Params) -> Response {
    match params {
        Ok(Query(p)) => reply(svc.query(p.get("gid").map_or("", String::as_str)).await),
        Err(e) => bad_query(e),
    }
}

async fn all(State(svc): Svc, params: Params) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return bad_query(e),
    };
    let text = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let q = (|| {
        Ok::<_, TransError>(ScanQuery {
            gid: text("gid"),
            gid_prefix: text("gidPrefix"),
            status: text("status"),
            trans_type: text("transType"),
            create_time_start: number(&p, "createTimeStart")?.map(UnixMs),
            create_time_end: number(&p, "createTimeEnd")?.map(UnixMs),
            position: text("position"),
            limit: number(&p, "limit")?.map_or(100, |l: u32| l.clamp(1, 1000)),
        })
    })();
    match q {
        Ok(q) => reply(svc.all(&q).await),
        Err(e) => reply(Err(e)),
    }
}

async fn reset_cron_time(State(svc): Svc, params: Params) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return bad_query(e),
    };
    let parsed = number(&p, "timeout").and_then(|t| Ok((t, number(&p, "limit")?)));
    match parsed {
        Ok((timeout, limit)) => reply(
            svc.reset_cron_time(timeout, limit.map_or(100, |l: u32| l.clamp(1, 1000)))
                .await,
        ),
        Err(e) => reply(Err(e)),
    }
}

async fn version() -> Response {
    reply(Ok(
        json!({"version": concat!("v", env!("CARGO_PKG_VERSION"))}),
    ))
}

/// DTM's envelope for handlers that return nothing.
fn done(r: Result<(), TransError>) -> Response {
    reply(r.map(|()| json!({"dtm_result": "SUCCESS"})))
}

/// DTM's envelope: the object with 200, or the error as kratos shapes it — with `dtm_result`
/// added for FAILURE and ONGOING, which DTM's SDKs read.
fn reply(r: Result<Value, TransError>) -> Response {
    let e = match r {
        Ok(v) => return axum::Json(v).into_response(),
        Err(e @ (TransError::Failure(_) | TransError::Ongoing(_))) => kit::Error::from(e),
        Err(e) => return kit::Error::from(e).into_response(),
    };
    let status = axum::http::StatusCode::from_u16(e.code)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::to_value(&e).unwrap_or_default();
    body["dtm_result"] = Value::String(e.reason.clone());
    let mut res = (status, axum::Json(body)).into_response();
    res.extensions_mut()
        .insert(kit::errors::ErrorReason(e.reason));
    res
}

/// The body, or 413/400 when it is too large or unreadable.
fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, kit::Error> {
    body.map_err(|e| kit::Error::new(e.status().as_u16(), "BODY", e.body_text()))
}

fn trans(body: Result<Bytes, BytesRejection>) -> Result<TransRequest, kit::Error> {
    Ok(TransRequest::from_json(&bytes(body)?)?)
}

fn gid_of(body: Result<Bytes, BytesRejection>) -> Result<String, kit::Error> {
    Ok(trans(body)?.gid)
}

fn number<T: std::str::FromStr>(
    p: &HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, TransError> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| TransError::BadRequest(format!("{key}: {v:?} is not a valid number"))),
    }
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> Response {
    kit::Error::bad_request("INVALID_ARGUMENT", e.body_text()).into_response()
}
