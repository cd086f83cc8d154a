//! The config schema (kratos-layout's `Bootstrap`), read from `configs/config.yaml`.

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// HTTP and gRPC servers.
    pub server: kit::ServersConf,
    /// Storage.
    pub data: Data,
    /// Domain settings.
    pub order: Order,
}

/// `data`: where the service keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// The database.
    pub database: Database,
}

/// `data.database`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `sqlite`, `postgres` or `mysql`; must agree with the scheme of `source`.
    pub driver: String,
    /// Connection URL (`sqlite://data/order.db`, `postgres://…`, `mysql://…`).
    pub source: String,
    /// Pool size.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    8
}

/// `order`: domain settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Largest quantity one order may hold.
    pub max_quantity: i64,
}
