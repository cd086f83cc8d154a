//! The config schema (kratos-layout's `Bootstrap`), read from `configs/config.yaml`.

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// HTTP and gRPC servers.
    pub server: kit::ServersConf,
    /// Where stock levels and barrier rows are kept.
    pub data: kit::DataConf,
    /// Domain settings.
    #[serde(default)]
    pub stock: Stock,
    /// Registration in etcd (kratos layout), when `registry.etcd` is set.
    #[serde(default)]
    pub registry: registry::Conf,
}

/// `stock`: domain settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stock {
    /// SKUs created at start when absent.
    #[serde(default)]
    pub seed: Vec<Seed>,
}

/// One seeded SKU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The SKU.
    pub sku: String,
    /// Pieces available.
    pub available: i64,
}
