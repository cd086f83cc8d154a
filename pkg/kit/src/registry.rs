//! Service registration, as kratos' `registry` package: an app describes itself as a
//! [`ServiceInstance`] and a [`Registrar`] (etcd in `pkg/registry`) publishes it while the app
//! serves. [`App`](crate::App) registers once both servers listen and deregisters first thing on
//! stop, before it drains, so callers stop picking an instance that is going away.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// One running instance of a service, in kratos' JSON shape (what `discovery:///name` finds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    /// Unique per process.
    pub id: String,
    /// The service name (`stock`).
    pub name: String,
    /// The build version.
    #[serde(default)]
    pub version: String,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `http://host:port`, `grpc://host:port`.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

impl ServiceInstance {
    /// The `host:port` of its first endpoint with this scheme (`grpc`, `http`).
    pub fn endpoint(&self, scheme: &str) -> Option<&str> {
        let prefix = format!("{scheme}://");
        self.endpoints.iter().find_map(|e| {
            let rest = e.strip_prefix(&prefix)?;
            // kratos appends `?isSecure=false`; the authority ends before it.
            Some(rest.split(['?', '/']).next().unwrap_or(rest))
        })
    }
}

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
#[error("registry: {0}")]
pub struct RegistryError(pub String);

/// Publishes instances in a registry (kratos' `registry.Registrar`).
pub trait Registrar: Send + Sync {
    /// Publishes `instance` and keeps it alive until [`deregister`](Registrar::deregister).
    fn register<'a>(
        &'a self,
        instance: &'a ServiceInstance,
    ) -> BoxFuture<'a, Result<(), RegistryError>>;

    /// Withdraws `instance`.
    fn deregister<'a>(
        &'a self,
        instance: &'a ServiceInstance,
    ) -> BoxFuture<'a, Result<(), RegistryError>>;
}

/// The address to publish for a listener: its own, unless it listens on every interface
/// (`0.0.0.0`), where `host` (config) or else this machine's outbound address stands in.
pub fn advertised(listen: SocketAddr, host: Option<&str>) -> String {
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    let ip = match host {
        Some(h) if !h.is_empty() => return format!("{h}:{}", listen.port()),
        _ => outbound_ip().unwrap_or(IpAddr::from([127, 0, 0, 1])),
    };
    SocketAddr::new(ip, listen.port()).to_string()
}

/// The local address the OS would route outwards from (a UDP "connect" sends nothing).
fn outbound_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:1").ok()?;
    Some(socket.local_addr().ok()?.ip())
}
