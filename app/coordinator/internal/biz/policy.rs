//! The timing rules: retry intervals and their back-off, timeouts, the lease
//! (docs/dtm-protocol.md, Timing).

use std::time::Duration;

use kit::time::UnixMs;

use crate::biz::Options;

/// The server-wide timing rules (config keys of the same names).
#[derive(Debug, Clone)]
pub struct Policy {
    /// `RetryInterval`: base interval between visits of an unfinished transaction.
    pub retry_interval: Duration,
    /// `RetryMaxInterval`: the cap of the doubling back-off (DTM has none).
    pub retry_max_interval: Duration,
    /// `TimeoutToFail`: default timeout of every transaction type but a saga, which has none
    /// unless it asks.
    pub timeout_to_fail: Duration,
    /// `RequestTimeout`: default time one branch call may take.
    pub request_timeout: Duration,
    /// `BranchConcurrency`: the most branch calls one transaction makes at once (≥ 1).
    pub branch_concurrency: usize,
    /// `TransCronInterval`: how long the poller sleeps when nothing is due.
    pub trans_cron_interval: Duration,
}

impl Policy {
    /// How long a lease lasts; it is renewed every third of it while a round runs.
    pub fn lease(&self) -> Duration {
        (self.request_timeout * 3).max(Duration::from_secs(1))
    }

    /// The base retry interval of a transaction (docs/dtm-protocol.md, Timing).
    pub fn base_interval(&self, o: &Options) -> Duration {
        let server = self.retry_interval;
        if o.retry_interval > 0 {
            secs(o.retry_interval)
        } else if o.timeout_to_fail > 0 && secs(o.timeout_to_fail) < server {
            secs(o.timeout_to_fail)
        } else {
            server
        }
    }
}

/// The largest `timeout_to_fail`, `retry_interval` and msg `delay`: one year, in seconds. Larger
/// values cannot be meant, and time arithmetic must not overflow.
pub const MAX_TIMEOUT_SECS: i64 = 366 * 24 * 3600;

/// The largest `request_timeout`: one day, in seconds.
pub const MAX_REQUEST_TIMEOUT_SECS: i64 = 24 * 3600;

/// The largest `retry_limit`.
pub const MAX_RETRY_LIMIT: i64 = 1_000_000;

/// When a transaction with no timeout times out: never, yet a number every store keeps exactly
/// (Redis' Lua sees numbers as doubles, exact only up to 2^53).
pub(crate) const NEVER: UnixMs = UnixMs(i64::MAX / 4);

/// An option's seconds as a duration (negative ones are zero: options are range-checked at
/// submit, but no stored value may break the arithmetic).
pub(crate) fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}
