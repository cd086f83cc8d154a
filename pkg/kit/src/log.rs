//! Logging: tracing set-up, and one access-log line per request on either transport, named by
//! the operation `/pkg.Service/Method` (gRPC path, or the HTTP route's annotated method).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::errors::ErrorReason;
use crate::metrics::{Metrics, Request};
use crate::transcode::Operation;

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), text or JSON lines on
/// stdout (colours only when stdout is a terminal: a log file gets no escape codes), and the
/// OpenTelemetry layer of [`crate::trace`] for `service`. Log lines inside a request carry its
/// `trace_id`.
pub fn init(json: bool, service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(crate::trace::layer(service));
    let _ = if json {
        registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        registry.with(fmt).try_init()
    };
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
        let span = request_span(transport, &req);
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
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
            }
            .instrument(span),
        )
    }
}

/// The span a request runs in: a child of the caller's `traceparent`, with the DTM context of a
/// branch call (gRPC metadata `dtm-*`, or HTTP query parameters) as attributes.
fn request_span<B>(transport: &'static str, req: &http::Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        otel.name = %req.uri().path(),
        otel.kind = "server",
        rpc.system = transport,
        trace_id = tracing::field::Empty,
        gid = tracing::field::Empty,
        trans_type = tracing::field::Empty,
        branch_id = tracing::field::Empty,
        op = tracing::field::Empty,
    );
    crate::trace::continue_from(&span, req.headers());
    let query = req.uri().query().unwrap_or_default();
    for (key, metadata) in [
        ("gid", "dtm-gid"),
        ("trans_type", "dtm-trans_type"),
        ("branch_id", "dtm-branch_id"),
        ("op", "dtm-op"),
    ] {
        let value = req
            .headers()
            .get(metadata)
            .and_then(|v| v.to_str().ok())
            .or_else(|| query_value(query, key));
        if let Some(v) = value {
            span.record(key, v);
        }
    }
    span
}

/// The raw value of `key` in a query string (undecoded: a span attribute may show it as sent).
fn query_value<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}
