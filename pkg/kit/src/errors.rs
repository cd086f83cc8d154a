//! Errors as kratos shapes them, and the one table between HTTP and gRPC codes.
//!
//! An [`Error`] is `{code, reason, message, metadata}`: `code` is an HTTP status, `reason` a stable
//! machine-readable word. Over HTTP it is the JSON body with that status; over gRPC it is a status
//! whose code comes from [`grpc_code`] with the reason in an `ErrorInfo` detail. Both directions go
//! through [`CODES`], so HTTP 409 is always gRPC `Aborted` and 425 always `FailedPrecondition` —
//! which is what DTM reads as FAILURE and ONGOING. (kratos' own converter sends 425 as `Unknown`;
//! we do not reuse it, see docs/protocol.md.)

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// A kratos-style error: the body of every non-2xx HTTP answer and the content of every gRPC error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("error: code = {code} reason = {reason} message = {message}")]
pub struct Error {
    /// HTTP status code.
    pub code: u16,
    /// Stable, machine-readable cause (`FAILURE`, `SKU_NOT_FOUND`, `CODEC`, …).
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra key/value facts (e.g. the business `cause` of a FAILURE).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// HTTP status ↔ gRPC code. Read top-down, the first row that matches wins in either direction,
/// so the extra rows at the bottom only add mappings for codes not named above them.
pub const CODES: &[(u16, Code)] = &[
    (200, Code::Ok),
    (400, Code::InvalidArgument),
    (401, Code::Unauthenticated),
    (403, Code::PermissionDenied),
    (404, Code::NotFound),
    (409, Code::Aborted),            // DTM FAILURE
    (425, Code::FailedPrecondition), // DTM ONGOING
    (429, Code::ResourceExhausted),
    (499, Code::Cancelled),
    (500, Code::Internal),
    (501, Code::Unimplemented),
    (503, Code::Unavailable),
    (504, Code::DeadlineExceeded),
    // One-way extras.
    (408, Code::DeadlineExceeded),
    (413, Code::ResourceExhausted),
    (409, Code::AlreadyExists),
    (400, Code::OutOfRange),
    (500, Code::Unknown),
    (500, Code::DataLoss),
];

/// The gRPC code of an HTTP status (`Unknown` when the table has no row).
pub fn grpc_code(http: u16) -> Code {
    CODES
        .iter()
        .find(|(h, _)| *h == http)
        .map_or(Code::Unknown, |(_, c)| *c)
}

/// The HTTP status of a gRPC code (500 when the table has no row).
pub fn http_code(grpc: Code) -> u16 {
    CODES
        .iter()
        .find(|(_, c)| *c == grpc)
        .map_or(500, |(h, _)| *h)
}

impl Error {
    /// An error with no metadata.
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            code,
            reason: reason.into(),
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// 400 with the given reason.
    pub fn bad_request(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(400, reason, message)
    }

    /// 500 that tells the client nothing of the cause; the cause is logged here.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Error::new(500, "INTERNAL", "internal error")
    }

    /// Adds one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let metadata: std::collections::HashMap<_, _> = e.metadata.into_iter().collect();
        tonic::Status::with_error_details(
            grpc_code(e.code),
            e.message,
            ErrorDetails::with_error_info(e.reason, "", metadata),
        )
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        let (reason, metadata) = match s.get_details_error_info() {
            Some(info) => (info.reason, info.metadata.into_iter().collect()),
            None => (String::new(), BTreeMap::new()),
        };
        Error {
            code: http_code(s.code()),
            reason,
            message: s.message().to_owned(),
            metadata,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = http::StatusCode::from_u16(self.code)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let reason = ErrorReason(self.reason.clone());
        let mut res = (status, axum::Json(self)).into_response();
        // The access log prints the reason of every error answer.
        res.extensions_mut().insert(reason);
        res
    }
}

/// The `reason` of an error response, for the access log.
#[derive(Debug, Clone)]
pub struct ErrorReason(pub String);

/// An error and its sources on one line ("error sending request: connection refused"), for
/// logs and messages that must say why, not only what.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// `text` cut after `max` bytes (at a character boundary) with `…` to say so: for what a peer
/// sent that ends up in an answer, a log line or a stored reason.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtm_codes_map_both_ways() {
        assert_eq!(grpc_code(409), Code::Aborted);
        assert_eq!(grpc_code(425), Code::FailedPrecondition);
        assert_eq!(http_code(Code::Aborted), 409);
        assert_eq!(http_code(Code::FailedPrecondition), 425);
        assert_eq!(http_code(Code::AlreadyExists), 409);
        assert_eq!(grpc_code(418), Code::Unknown);
        assert_eq!(http_code(Code::Unknown), 500);
    }

    #[test]
    fn error_survives_a_trip_through_grpc() {
        let e = Error::new(409, "FAILURE", "not enough stock")
            .with_metadata("cause", "INSUFFICIENT_STOCK");
        let status = tonic::Status::from(e.clone());
        assert_eq!(status.code(), Code::Aborted);
        assert_eq!(Error::from(status), e);
    }

    #[test]
    fn body_is_kratos_shaped() {
        let body = serde_json::to_value(Error::new(425, "ONGOING", "later")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code":425,"reason":"ONGOING","message":"later","metadata":{}})
        );
    }

    #[test]
    fn clip_cuts_at_a_character_boundary_and_says_so() {
        assert_eq!(clip("short", 8), "short");
        assert_eq!(clip("ééé", 3), "é…");
        assert_eq!(clip(&"x".repeat(10), 4), "xxxx…");
    }
}
