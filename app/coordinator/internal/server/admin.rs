//! The admin routes — looking at transactions and moving them by hand — behind an optional
//! bearer token.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use kit::time::UnixMs;

use crate::biz::{ScanQuery, TransError};
use crate::server::Svc;
use crate::server::envelope::{Params, bad_query, done, gid_of, number, reply};
use crate::service::DtmService;

/// `/query`, `/all`, `/forceStop`, `/resetCronTime`, `/resetNextCronTime`; with `token`, each
/// requires `Authorization: Bearer <token>`.
pub(super) fn router(token: Option<String>) -> Router<Arc<DtmService>> {
    let admin = Router::new()
        .route("/query", get(query))
        .route("/all", get(all))
        .route("/forceStop", post(force_stop))
        .route("/resetCronTime", get(reset_cron_time))
        .route("/resetNextCronTime", post(reset_next_cron_time));
    match token {
        Some(token) => {
            let token = Arc::new(token);
            admin.route_layer(axum::middleware::from_fn(move |req, next| {
                bearer(token.clone(), req, next)
            }))
        }
        None => admin,
    }
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

async fn force_stop(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match gid_of(body) {
        Ok(gid) => done(svc.force_stop(&gid).await),
        Err(e) => e.into_response(),
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

async fn reset_next_cron_time(State(svc): Svc, body: Result<Bytes, BytesRejection>) -> Response {
    match gid_of(body) {
        Ok(gid) => done(svc.reset_next_cron_time(&gid).await),
        Err(e) => e.into_response(),
    }
}
