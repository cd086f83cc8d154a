//! What rounds report as they go, for whoever counts them (the coordinator's Prometheus
//! families implement it in `metrics`): `biz` says what happened, and depends on no exporter.

use std::time::Duration;

use crate::biz::Status;

/// Receives the use case's events. Implementations must be cheap: they run in every round.
pub trait RoundObserver: Send + Sync + 'static {
    /// A round of a `model` transaction ended, `settled` when it left nothing to retry; `age`
    /// is the time since the transaction was created.
    fn transaction_processed(&self, model: &'static str, settled: bool, age: Duration);

    /// A branch call of a `model` transaction ended; `ok` when it answered SUCCESS.
    fn branch_processed(&self, model: &'static str, branch_id: &str, op: &str, ok: bool);

    /// The poller asked the store for a due transaction: it got one (`taken`), another
    /// instance took the one it chose (`raced`), or none was due (`empty`).
    fn poller_leased(&self, outcome: &'static str);

    /// The store's unfinished transactions by status, and how overdue the earliest is.
    fn backlog(&self, unfinished: &[(Status, u64)], lag: Duration);
}

/// Reports nowhere (tests that count nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl RoundObserver for Unobserved {
    fn transaction_processed(&self, _: &'static str, _: bool, _: Duration) {}
    fn branch_processed(&self, _: &'static str, _: &str, _: &str, _: bool) {}
    fn poller_leased(&self, _: &'static str) {}
    fn backlog(&self, _: &[(Status, u64)], _: Duration) {}
}
