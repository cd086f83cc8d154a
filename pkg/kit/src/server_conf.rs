//! The `server` section of an app's Bootstrap config: each listener's address and limits, and
//! how long a graceful stop may take.

use std::time::Duration;

use serde::Deserialize;

/// `server.http` or `server.grpc` of the Bootstrap config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConf {
    /// Listen address, `host:port` (port 0 picks a free one).
    pub addr: String,
    /// Per-request timeout.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    /// Largest request body (HTTP) or message (gRPC) accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A connection without a request in flight for this long is closed, whatever else it
    /// sends (PING answers, header bytes trickling in); HTTP/1.1 headers must arrive within it.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub idle_timeout: Duration,
    /// Connections served at once. A new one at the cap closes the connection idle the
    /// longest; it is refused only when every one has a request in flight. Keep it below the
    /// process's file descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl ServerConf {
    /// A server on `addr` with the default limits.
    pub fn new(addr: impl Into<String>, timeout: Duration, max_body_bytes: usize) -> ServerConf {
        ServerConf {
            addr: addr.into(),
            timeout,
            max_body_bytes,
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

/// The `server` section of the Bootstrap config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersConf {
    /// HTTP/JSON server.
    pub http: ServerConf,
    /// gRPC server.
    pub grpc: ServerConf,
    /// How long a graceful stop may wait for requests in flight.
    #[serde(
        default = "default_shutdown",
        deserialize_with = "crate::config::duration"
    )]
    pub shutdown_timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown() -> Duration {
    Duration::from_secs(10)
}
fn default_max_body_bytes() -> usize {
    1 << 20
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    512
}
