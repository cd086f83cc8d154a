//! Transaction options, and the setters every builder has for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Transaction options (docs/dtm-protocol.md, Transaction options), all optional. The
/// coordinator stores them as this JSON. The builders set them one by one
/// ([`Saga::wait_result`](crate::Saga::wait_result)…).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Submit/abort answer only once the transaction is processed.
    pub wait_result: bool,
    /// Seconds after which an unfinished transaction rolls back (0: coordinator default).
    pub timeout_to_fail: i64,
    /// Seconds one branch call may take (0: coordinator default).
    pub request_timeout: i64,
    /// Base retry interval in seconds (0: coordinator default).
    pub retry_interval: i64,
    /// Saga: give up after this many retries of an action (0: no limit).
    pub retry_limit: i64,
    /// Extra headers / metadata for every branch call.
    pub branch_headers: BTreeMap<String, String>,
    /// Msg: call the branches concurrently.
    pub concurrent: bool,
    /// The W3C `traceparent` of the request that created the transaction: the coordinator
    /// keeps it so that its later rounds, and their branch calls, stay in that trace. Not
    /// sent by clients (their trace goes in the request's own header).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
}

/// The option setters every builder has (`$t` holds its `Trans` in `t`), as Go's
/// `TransOptions` fields are on every transaction type.
macro_rules! option_setters {
    ($t:ty) => {
        impl $t {
            /// Submit (and abort) answer only once the transaction is processed: `Ok` then
            /// means it succeeded and [`ClientError::Failure`](crate::ClientError::Failure) that it
            /// rolled back.
            pub fn wait_result(mut self, on: bool) -> Self {
                self.t.options.wait_result = on;
                self
            }

            /// Seconds after which an unfinished transaction rolls back.
            pub fn timeout_to_fail(mut self, seconds: i64) -> Self {
                self.t.options.timeout_to_fail = seconds;
                self
            }

            /// Seconds one branch call may take.
            pub fn request_timeout(mut self, seconds: i64) -> Self {
                self.t.options.request_timeout = seconds;
                self
            }

            /// Base retry interval in seconds (doubled after each branch error).
            pub fn retry_interval(mut self, seconds: i64) -> Self {
                self.t.options.retry_interval = seconds;
                self
            }

            /// Saga: roll back after an action was retried this many times.
            pub fn retry_limit(mut self, retries: i64) -> Self {
                self.t.options.retry_limit = retries;
                self
            }

            /// A header (HTTP) or metadata entry (gRPC) sent with every branch call.
            pub fn branch_header(mut self, name: &str, value: &str) -> Self {
                self.t
                    .options
                    .branch_headers
                    .insert(name.to_owned(), value.to_owned());
                self
            }

            /// Replaces all options at once.
            pub fn options(mut self, options: $crate::client::Options) -> Self {
                self.t.options = options;
                self
            }
        }
    };
}
pub(crate) use option_setters;
