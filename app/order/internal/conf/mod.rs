//! The config schema (kratos-layout's `Bootstrap`), read from `configs/config.yaml`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// HTTP and gRPC servers.
    pub server: kit::ServersConf,
    /// Where orders and barrier rows are kept.
    pub data: kit::DataConf,
    /// Domain settings.
    pub order: Order,
    /// The coordinator and the branch endpoints it calls.
    pub dtm: Dtm,
    /// Registration in etcd (kratos layout), when `registry.etcd` is set.
    #[serde(default)]
    pub registry: registry::Conf,
}

/// `order`: domain settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Largest quantity one order may hold.
    pub max_quantity: i64,
}

/// `dtm`: the coordinator, and where it reaches the branches of PlaceOrder and CancelOrder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dtm {
    /// The coordinator's HTTP API, e.g. `http://127.0.0.1:36789/api/dtmsvr`.
    pub http: String,
    /// The coordinator's gRPC API, e.g. `127.0.0.1:36790`.
    pub grpc: String,
    /// How long a global transaction may take before PlaceOrder answers (it waits for the result).
    #[serde(deserialize_with = "kit::config::duration")]
    pub timeout: std::time::Duration,
    /// The services whose branches the transactions call, by name (this one included), as the
    /// coordinator reaches them: a new step of PlaceOrder adds its service here.
    pub services: BTreeMap<String, Endpoints>,
}

/// A service's addresses as seen from the coordinator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// HTTP base URL, e.g. `http://127.0.0.1:8001`.
    pub http: String,
    /// gRPC `host:port`, e.g. `127.0.0.1:9001`.
    pub grpc: String,
}
