//! DTM's reply envelope (docs/dtm-protocol.md, The coordinator's HTTP API): `200
//! {"dtm_result":"SUCCESS"}` for nothing to return, the object itself otherwise; FAILURE is 409 and
//! ONGOING 425, with a body that is both DTM's (`dtm_result`, `message`) and kratos' (`code`,
//! `reason`, `message`, `metadata`); bad input is a kratos 400 (DTM would answer 500 or accept
//! it). And the request readers the handlers share.

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::biz::TransError;
use crate::service::body::TransRequest;

/// A handler's query parameters, or why they did not parse.
pub(super) type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// DTM's envelope for handlers that return nothing.
pub(super) fn done(r: Result<(), TransError>) -> Response {
    reply(r.map(|()| json!({"dtm_result": "SUCCESS"})))
}

/// DTM's envelope: the object with 200, or the error as kratos shapes it — with `dtm_result`
/// added for FAILURE and ONGOING, which DTM's SDKs read.
pub(super) fn reply(r: Result<Value, TransError>) -> Response {
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
pub(super) fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, kit::Error> {
    body.map_err(|e| kit::Error::new(e.status().as_u16(), "BODY", e.body_text()))
}

/// A prepare / submit / abort body, read as DTM reads it.
pub(super) fn trans_request(
    body: Result<Bytes, BytesRejection>,
) -> Result<TransRequest, kit::Error> {
    Ok(TransRequest::from_json(&bytes(body)?)?)
}

/// The gid of a body shaped like a transaction (forceStop, resetNextCronTime).
pub(super) fn gid_of(body: Result<Bytes, BytesRejection>) -> Result<String, kit::Error> {
    Ok(trans_request(body)?.gid)
}

/// A number parameter, if given; a 400 naming it if it is not one.
pub(super) fn number<T: std::str::FromStr>(
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

/// Query parameters that did not parse: a 400.
pub(super) fn bad_query(e: QueryRejection) -> Response {
    kit::Error::bad_request("INVALID_ARGUMENT", e.body_text()).into_response()
}
