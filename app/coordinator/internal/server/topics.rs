//! The msg topic routes (DTM's; its SDKs send no token, so they stay open like submit).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{delete, get};

use crate::server::Svc;
use crate::server::envelope::{Params, bad_query, done};
use crate::service::DtmService;

/// `/subscribe`, `/unsubscribe`, `DELETE /topic/{name}`.
pub(super) fn router() -> Router<Arc<DtmService>> {
    Router::new()
        .route("/subscribe", get(subscribe))
        .route("/unsubscribe", get(unsubscribe))
        .route("/topic/{name}", delete(delete_topic))
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

async fn delete_topic(State(svc): Svc, Path(name): Path<String>) -> Response {
    done(svc.delete_topic(&name).await)
}
