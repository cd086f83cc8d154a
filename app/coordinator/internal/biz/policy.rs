//! The timing rules: retry intervals and their back-off, timeouts, the lease
//! (docs/dtm-protocol.md, Timing), and the arithmetic on Unix milliseconds they share.

use std::time::Duration;

use crate::biz::{Options, TransType};

/// The server-wide timing rules (config keys of the same names).
#[derive(Debug, Clone)]
pub struct Policy {
    /// `RetryInterval`: base interval between visits of an unfinished transaction.
    pub retry_interval: Duration,
    /// `RetryMaxInterval`: the cap of the doubling back-off (DTM has none).
    pub retry_max_interval: Duration,
    /// `TimeoutToFail`: default timeout of msg and tcc (a saga has none unless it asks).
    pub timeout_to_fail: Duration,
    /// `RequestTimeout`: default time one branch call may take.
    pub request_timeout: Duration,
    /// `TransCronInterval`: how long the poller sleeps when nothing is due.
    pub trans_cron_interval: Duration,
}

impl Policy {
    /// How long a lease lasts; it is renewed every third of it while a round runs.
    pub fn lease(&self) -> Duration {
        (self.request_timeout * 3).max(Duration::from_secs(1))
    }

    /// The base retry interval of a transaction, ms (docs/dtm-protocol.md, Timing).
    pub fn base_interval(&self, o: &Options) -> i64 {
        let server = ms(self.retry_interval);
        if o.retry_interval > 0 {
            secs(o.retry_interval)
        } else if o.timeout_to_fail > 0 && secs(o.timeout_to_fail) < server {
            secs(o.timeout_to_fail)
        } else {
            server
        }
    }

    /// How long a transaction may stay unfinished, ms: its own `timeout_to_fail`, else the
    /// server's — except a saga, which has no timeout unless it asks (docs/dtm-protocol.md, Timing).
    pub fn timeout_ms(&self, t: TransType, o: &Options) -> i64 {
        match (o.timeout_to_fail, t) {
            (tf, _) if tf > 0 => secs(tf),
            (_, TransType::Saga) => i64::MAX / 4,
            _ => ms(self.timeout_to_fail),
        }
    }
}

/// A duration in ms.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Seconds (an option's unit) in ms, saturating: stored options are range-checked at submit, but
/// no value may overflow the time arithmetic.
pub(crate) fn secs(s: i64) -> i64 {
    s.saturating_mul(1000)
}
