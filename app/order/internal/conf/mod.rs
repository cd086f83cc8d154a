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
    pub database: kit::DatabaseConf,
}

/// `order`: domain settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Largest quantity one order may hold.
    pub max_quantity: i64,
}
