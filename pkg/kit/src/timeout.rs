//! Per-request time limits, one per transport: an HTTP request past the server's timeout is a
//! kratos 504; a gRPC call past the server's timeout or the client's `grpc-timeout`, whichever
//! is shorter, is cancelled with tonic's own answer.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Error;

/// Answers 504 when an HTTP request takes longer than `timeout`.
pub(crate) async fn http(timeout: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Error::new(
            504,
            "TIMEOUT",
            format!("request took longer than {timeout:?}"),
        )
        .into_response(),
    }
}

/// Cancels a gRPC call that takes longer than `timeout` or the client's `grpc-timeout`.
pub(crate) async fn grpc(timeout: Duration, req: Request, next: Next) -> Response {
    let timeout = req
        .headers()
        .get("grpc-timeout")
        .and_then(|v| parse_grpc_timeout(v.to_str().ok()?))
        .map_or(timeout, |asked| asked.min(timeout));
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => tonic::Status::cancelled("Timeout expired").into_http(),
    }
}

/// gRPC's `grpc-timeout` header: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at_checked(v.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_protocol_writes_them() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        for bad in ["", "S", "5", "5x", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
