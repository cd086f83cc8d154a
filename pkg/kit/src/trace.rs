//! Traces: `tracing` spans as OpenTelemetry spans, W3C trace context (`traceparent`) in and out
//! on both transports, OTLP export when configured.
//!
//! - Configuration: the OpenTelemetry SDKs' own variables. `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   (e.g. `http://127.0.0.1:4317`, OTLP over gRPC) turns export on; `OTEL_SERVICE_NAME`
//!   overrides the app's name. Unset, nothing is exported: spans are not sampled (no span data
//!   is kept), yet trace ids still flow from request to branch call and into the logs.
//! - In: every server request runs in a `request` span whose parent is the caller's
//!   `traceparent` (HTTP header or gRPC metadata: the same header on the wire), with the DTM
//!   context (`gid`, `trans_type`, `branch_id`, `op`) as attributes; every log line of the
//!   request, the access log included, carries its `trace_id`.
//! - Out: [`inject`] writes the current span's context into outgoing headers (the SDK's branch
//!   caller and coordinator client do it on every call, retries included).
//! - Across time: [`traceparent`] and [`span_from`] carry a context through a store (the
//!   coordinator keeps the submit's context with the transaction, so its later rounds and their
//!   branch calls stay in the same trace).

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The provider, kept to flush at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The layer that turns this process's `tracing` spans into OpenTelemetry spans, exporting them
/// over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Call it inside a Tokio runtime (the
/// exporter's client is tonic).
pub fn layer<S>(service: &str) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let provider = PROVIDER.get_or_init(|| provider(service));
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("kratos-dtm-rs"))
        .with_tracked_inactivity(false)
}

fn provider(service: &str) -> SdkTracerProvider {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if endpoint.is_empty() {
        // Off: a caller's sampled context is still followed (its ids go on), nothing is kept.
        return builder
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build();
    }
    // The exporter reads the endpoint (and OTEL_EXPORTER_OTLP_* options) itself.
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => builder
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_batch_exporter(exporter)
            .build(),
        Err(e) => {
            eprintln!("OTLP export to {endpoint} is off: {e}");
            builder
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
                .build()
        }
    }
}

/// Exports what is still buffered (call before the process exits). The export needs the
/// runtime's tasks to make progress, so the blocking flush runs off the runtime's threads.
pub async fn shutdown() {
    if let Some(provider) = PROVIDER.get().cloned() {
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// The current span's context, as a `traceparent` value (empty when there is none).
pub fn traceparent() -> String {
    let mut headers = http::HeaderMap::new();
    inject(&mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `span`, made a child of the context in `traceparent` (left a new trace if that is empty or
/// malformed), with its `trace_id` field recorded.
pub fn span_from(span: tracing::Span, traceparent: &str) -> tracing::Span {
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", v);
    }
    continue_from(&span, &headers);
    span
}

/// Writes the current span's context into `headers` (`traceparent`, `tracestate`).
pub fn inject(headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(
        &tracing::Span::current().context(),
        &mut HeadersMut(headers),
    );
}

/// Writes the current span's context into gRPC `metadata`.
pub fn inject_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    let mut headers = http::HeaderMap::new();
    inject(&mut headers);
    for (k, v) in &headers {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(k.as_str().as_bytes()),
            v.to_str().map(tonic::metadata::MetadataValue::try_from),
        ) && let Ok(v) = v
        {
            metadata.insert(k, v);
        }
    }
}

/// Makes `span` a child of the context in `headers` (if any) and records its trace id in the
/// span's `trace_id` field.
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
    record_trace_id(span);
}

/// Records `span`'s trace id in its `trace_id` field (for the log lines inside it).
pub fn record_trace_id(span: &tracing::Span) {
    let id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(id));
}

/// The trace id of `traceparent` (`00-<trace id>-<span id>-<flags>`), if it has one.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1).filter(|id| id.len() == 32)
}

/// `headers` as OpenTelemetry's carrier, to write a context into.
struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// `headers` as OpenTelemetry's carrier, to read a context from.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
