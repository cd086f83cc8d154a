//! The coordinator's metrics, at `/metrics` and at DTM's path `/api/metrics`: DTM's families
//! under DTM's names and labels (so DTM's dashboards work), and what an operator of this
//! coordinator needs besides. docs/operations.md lists them and what to alert on.
//!
//! DTM's:
//! - `dtm_server_info{version}`;
//! - `dtm_server_process_total{type, api, status}` and `dtm_server_response_duration{type, api}`:
//!   API requests (`type` http or grpc, `api` the last path segment, `status` ok or fail);
//! - `dtm_transaction_process_total{model, status}` and `dtm_transaction_handled_duration{model}`:
//!   one per round (`status` ok when the round left nothing to retry), the transaction's age then;
//! - `dtm_branch_process_total{model, branchid, branchtype, status}`: one per branch call
//!   (`branchid` is the position, `01`, `02`…: bounded by the number of steps, never a gid).
//!
//! Ours:
//! - `dtm_unfinished_transactions{status}` and `dtm_poller_lag_seconds` (now − the earliest
//!   `next_cron_time` of an unfinished transaction), read from the store at each scrape;
//! - `dtm_poller_leases_total{result}`: the poller's requests for a due transaction (`taken`,
//!   `raced`: another instance took the one chosen, `empty`: none due) — contention between
//!   instances shows as `raced`;
//! - `dtm_store_write_seconds` and `dtm_store_batch_writes`: the SQL stores' group commits.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;

use crate::biz::{RoundObserver, Status};

/// The families the coordinator fills. Cheap to clone (clones share the counts).
#[derive(Clone)]
pub struct DtmMetrics {
    server_process: Family<ServerLabels, Counter>,
    response_duration: Family<ApiLabels, Histogram, fn() -> Histogram>,
    transaction_process: Family<TransactionLabels, Counter>,
    transaction_handled: Family<ModelLabels, Histogram, fn() -> Histogram>,
    branch_process: Family<BranchLabels, Counter>,
    unfinished: Family<StatusLabels, Gauge>,
    poller_lag: Gauge<f64, AtomicU64>,
    poller_leases: Family<ResultLabels, Counter>,
    /// The store's group commits.
    pub store: StoreMetrics,
}

/// The SQL stores' writer: how long a batch takes to commit and how many writes it holds.
#[derive(Clone)]
pub struct StoreMetrics {
    write_seconds: Histogram,
    batch_writes: Histogram,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    r#type: &'static str,
    api: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    r#type: &'static str,
    api: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransactionLabels {
    model: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BranchLabels {
    model: &'static str,
    branchid: String,
    branchtype: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// Seconds a transaction has lived when a round ends: a saga in milliseconds, a msg or TCC
/// left prepared up to its timeout.
fn age_buckets() -> Histogram {
    Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0])
}

impl Default for DtmMetrics {
    fn default() -> Self {
        DtmMetrics {
            server_process: Family::default(),
            response_duration: Family::new_with_constructor(kit::metrics::request_buckets),
            transaction_process: Family::default(),
            transaction_handled: Family::new_with_constructor(age_buckets),
            branch_process: Family::default(),
            unfinished: Family::default(),
            poller_lag: Gauge::default(),
            poller_leases: Family::default(),
            store: StoreMetrics::default(),
        }
    }
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            write_seconds: Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            batch_writes: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        }
    }
}

impl DtmMetrics {
    /// The families, registered in the app's `metrics`, whose requests feed DTM's server
    /// families.
    pub fn register(metrics: &kit::metrics::Metrics) -> DtmMetrics {
        let m = DtmMetrics::default();
        let version = vec![("version", env!("CARGO_PKG_VERSION"))];
        metrics.register(
            "dtm_server",
            "The information of this dtm server",
            Info::new(version),
        );
        metrics.register(
            "dtm_server_process",
            "All request received by dtm",
            m.server_process.clone(),
        );
        metrics.register(
            "dtm_server_response_duration",
            "The request durations of a dtm server api",
            m.response_duration.clone(),
        );
        metrics.register(
            "dtm_transaction_process",
            "All transactions processed by dtm",
            m.transaction_process.clone(),
        );
        metrics.register(
            "dtm_transaction_handled_duration",
            "Histogram of handling latency of the transaction that handled by the server",
            m.transaction_handled.clone(),
        );
        metrics.register(
            "dtm_branch_process",
            "All branches processed by dtm",
            m.branch_process.clone(),
        );
        metrics.register(
            "dtm_unfinished_transactions",
            "Unfinished transactions by status, read from the store at each scrape",
            m.unfinished.clone(),
        );
        metrics.register(
            "dtm_poller_lag_seconds",
            "Now minus the earliest next_cron_time of an unfinished transaction (0 when none is overdue)",
            m.poller_lag.clone(),
        );
        metrics.register(
            "dtm_poller_leases",
            "The poller's requests for a due transaction, by result (taken, raced, empty)",
            m.poller_leases.clone(),
        );
        metrics.register(
            "dtm_store_write_seconds",
            "Time to run and commit one batch of store writes",
            m.store.write_seconds.clone(),
        );
        metrics.register(
            "dtm_store_batch_writes",
            "Writes committed together in one batch",
            m.store.batch_writes.clone(),
        );
        let server = m.clone();
        metrics.on_request(Box::new(move |r| server.api_request(r)));
        m
    }

    /// DTM's `httpMetrics` / `grpcMetrics`: API requests by their last path segment.
    fn api_request(&self, r: &kit::metrics::Request<'_>) {
        let path = if r.transport == "grpc" {
            r.path
        } else {
            // Only DTM's API: the page, /metrics and /healthz are not DTM requests.
            match r.path.strip_prefix("/api/dtmsvr/") {
                Some(_) => r.path,
                None => return,
            }
        };
        let api = path.rsplit('/').next().unwrap_or_default().to_lowercase();
        let status = if r.failed { "fail" } else { "ok" };
        self.server_process
            .get_or_create(&ServerLabels {
                r#type: r.transport,
                api: api.clone(),
                status,
            })
            .inc();
        self.response_duration
            .get_or_create(&ApiLabels {
                r#type: r.transport,
                api,
            })
            .observe(r.elapsed.as_secs_f64());
    }
}

/// DTM's transaction and branch families, and our backlog gauges, filled by the rounds.
impl RoundObserver for DtmMetrics {
    fn transaction_processed(&self, model: &'static str, ok: bool, age: Duration) {
        self.transaction_process
            .get_or_create(&TransactionLabels {
                model,
                status: ok_or_fail(ok),
            })
            .inc();
        self.transaction_handled
            .get_or_create(&ModelLabels { model })
            .observe(age.as_secs_f64());
    }

    fn branch_processed(&self, model: &'static str, branch_id: &str, op: &str, ok: bool) {
        self.branch_process
            .get_or_create(&BranchLabels {
                model,
                branchid: branch_id.to_owned(),
                branchtype: op.to_owned(),
                status: ok_or_fail(ok),
            })
            .inc();
    }

    fn poller_leased(&self, result: &'static str) {
        self.poller_leases
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    fn backlog(&self, unfinished: &[(Status, u64)], lag: Duration) {
        for status in [Status::Prepared, Status::Submitted, Status::Aborting] {
            let n = unfinished
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            self.unfinished
                .get_or_create(&StatusLabels {
                    status: status.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.poller_lag.set(lag.as_secs_f64());
    }
}

impl StoreMetrics {
    /// A batch of `writes` writes committed (or failed) after `elapsed`.
    pub fn batch(&self, writes: usize, elapsed: Duration) {
        self.batch_writes.observe(writes as f64);
        self.write_seconds.observe(elapsed.as_secs_f64());
    }
}

fn ok_or_fail(ok: bool) -> &'static str {
    if ok { "ok" } else { "fail" }
}
