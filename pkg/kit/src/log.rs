//! Logging: tracing set-up, and one access-log line per request on either transport, named by
//! the operation `/pkg.Service/Method` (gRPC path, or the HTTP route's annotated method).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing_subscriber::EnvFilter;

use crate::errors::ErrorReason;
use crate::metrics::{Metrics, Request};
use crate::transcode::Operation;

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), text or JSON lines on
/// stdout; colours only when stdout is a terminal (a log file gets no escape codes).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// For tests: silent unless `TEST_LOG` is set, then text to the test's output.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// Tower layer writing the access log of a server (`transport` is `http` or `grpc`) and
/// counting each request in the app's [`Metrics`].
#[derive(Clone)]
pub struct AccessLogLayer {
    transport: &'static str,
    metrics: Metrics,
}

impl AccessLogLayer {
    /// A layer for the given transport.
    pub fn new(transport: &'static str, metrics: Metrics) -> Self {
        AccessLogLayer { transport, metrics }
    }
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            transport: self.transport,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`AccessLogLayer`] wraps around a server.
#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    transport: &'static str,
    metrics: Metrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for AccessLog<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let transport = self.transport;
        let metrics = self.metrics.clone();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?;
            let elapsed = start.elapsed();
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            let operation = match res.extensions().get::<Operation>() {
                Some(op) => op.0.to_owned(),
                None if transport == "grpc" => path.clone(),
                None => String::new(),
            };
            // gRPC errors are trailers-only responses: their status is a header. Success puts
            // it in the trailers, which a unary log line need not wait for.
            let code = match res.headers().get("grpc-status") {
                Some(v) => v.to_str().unwrap_or("?").to_owned(),
                None if transport == "grpc" => "0".to_owned(),
                None => res.status().as_u16().to_string(),
            };
            let reason = res
                .extensions()
                .get::<ErrorReason>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            tracing::info!(kind = "server", component = transport, %operation, %method, %path, %code, %reason, latency_ms, "request");
            let failed = match transport {
                "grpc" => code != "0",
                _ => res.status().as_u16() >= 400,
            };
            metrics.observe(&Request {
                transport,
                operation: &operation,
                path: &path,
                code: &code,
                failed,
                reason: &reason,
                elapsed,
            });
            Ok(res)
        })
    }
}
