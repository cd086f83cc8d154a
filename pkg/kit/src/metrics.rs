//! Prometheus metrics: one registry per app, served at `GET /metrics` on its HTTP port, with the
//! request families of kratos' metrics middleware filled by the access-log layer:
//!
//! - `server_requests_code_total{kind, operation, code, reason}`: requests by operation
//!   (`/pkg.Service/Method`) and result (HTTP status or gRPC code, kratos error reason);
//! - `server_requests_seconds{kind, operation}`: their duration.
//!
//! An app registers its own families with [`Metrics::register`] and may watch every request
//! with [`Metrics::on_request`] (the coordinator derives DTM's `dtm_server_*` families there).
//! Families are per app, not process-wide: several apps in one test process keep their counts
//! apart.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

/// An app's metrics. Cheap to clone: clones share the registry and the families.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    observers: Arc<RwLock<Vec<Observer>>>,
    scrape_hooks: Arc<RwLock<Vec<ScrapeHook>>>,
}

/// Run before each scrape, to refresh what is read rather than counted (a backlog in a store).
pub type ScrapeHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// How long a scrape waits for its hooks; past it, the figures they set stay as they were.
pub const SCRAPE_HOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// Something told of every request (see [`Metrics::on_request`]).
pub type Observer = Box<dyn Fn(&Request<'_>) + Send + Sync>;

/// One served request, as the access-log layer saw it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `http` or `grpc`.
    pub transport: &'static str,
    /// `/pkg.Service/Method`, or empty for a route no proto method serves.
    pub operation: &'a str,
    /// The request path.
    pub path: &'a str,
    /// HTTP status, or the gRPC code as a number.
    pub code: &'a str,
    /// Whether it failed: HTTP ≥ 400, a gRPC code other than OK.
    pub failed: bool,
    /// The kratos error reason, if it failed with one.
    pub reason: &'a str,
    /// How long it took.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    operation: String,
    code: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: &'static str,
    operation: String,
}

/// The buckets of request durations, seconds (kratos' example buckets, plus the long tail a
/// `wait_result` submit can have).
pub fn request_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry holding the request families.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Arc::default(),
            requests: Family::default(),
            seconds: Family::new_with_constructor(request_buckets),
            observers: Arc::default(),
            scrape_hooks: Arc::default(),
        };
        // The text encoder adds `_total` to a counter's name.
        metrics.register(
            "server_requests_code",
            "Requests served, by operation, code and reason",
            metrics.requests.clone(),
        );
        metrics.register(
            "server_requests_seconds",
            "Duration of the requests served, by operation",
            metrics.seconds.clone(),
        );
        metrics
    }

    /// Adds a metric (or a family) to this app's registry.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// Calls `observer` for every request either server answers.
    pub fn on_request(&self, observer: Observer) {
        self.observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(observer);
    }

    /// Runs `hook` before each scrape (bounded by [`SCRAPE_HOOK_TIMEOUT`]).
    pub fn on_scrape(&self, hook: ScrapeHook) {
        self.scrape_hooks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(hook);
    }

    /// Runs the scrape hooks, then encodes.
    pub async fn scrape(&self) -> String {
        let hooks: Vec<ScrapeHook> = self
            .scrape_hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for hook in hooks {
            let _ = tokio::time::timeout(SCRAPE_HOOK_TIMEOUT, hook()).await;
        }
        self.encode()
    }

    /// Counts one served request (the access-log layer calls this).
    pub fn observe(&self, r: &Request<'_>) {
        let operation = if r.operation.is_empty() {
            r.path
        } else {
            r.operation
        };
        self.requests
            .get_or_create(&RequestLabels {
                kind: "server",
                operation: operation.to_owned(),
                code: r.code.to_owned(),
                reason: r.reason.to_owned(),
            })
            .inc();
        self.seconds
            .get_or_create(&OperationLabels {
                kind: "server",
                operation: operation.to_owned(),
            })
            .observe(r.elapsed.as_secs_f64());
        for observer in self
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            observer(r);
        }
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An axum handler serving `metrics` (kit serves it at `/metrics`; the coordinator also at
/// DTM's `/api/metrics`).
pub fn handler(metrics: Metrics) -> axum::routing::MethodRouter {
    axum::routing::get(move || {
        let metrics = metrics.clone();
        async move {
            (
                [(http::header::CONTENT_TYPE, CONTENT_TYPE)],
                metrics.scrape().await,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation_and_code_and_observers_see_them() {
        let m = Metrics::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        m.on_request(Box::new(move |r| s.lock().unwrap().push(r.path.to_owned())));
        let request = |code, failed| Request {
            transport: "http",
            operation: "/api.stock.v1.Stock/TransOut",
            path: "/api/stock/v1/trans-out",
            code,
            failed,
            reason: "",
            elapsed: Duration::from_millis(3),
        };
        m.observe(&request("200", false));
        m.observe(&request("200", false));
        m.observe(&request("409", true));
        let text = m.encode();
        assert!(
            text.contains(r#"server_requests_code_total{kind="server",operation="/api.stock.v1.Stock/TransOut",code="200",reason=""} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"code="409",reason=""} 1"#), "{text}");
        assert!(
            text.contains(r#"server_requests_seconds_count{kind="server",operation="/api.stock.v1.Stock/TransOut"} 3"#),
            "{text}"
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
    }
}
