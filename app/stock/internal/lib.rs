//! The stock service, kratos layout: `server` → `service` → `biz` ← `data`.
//!
//! - [`biz`]: what a SKU is, what every DTM branch does to its counters, the repository trait;
//! - [`data`]: the repository over SQLite/PostgreSQL/MySQL (each branch run by `dtmcli::BranchDb`);
//! - [`service`]: the proto's `Stock` service (both transports), DTO ↔ domain, errors → results;
//! - [`server`]: the HTTP router and the gRPC server for the app;
//! - [`conf`]: the config schema.
//!
//! Copy this crate to start a new service (docs/template.md).

#![warn(missing_docs)]

pub mod biz;
pub mod conf;
pub mod data;
pub mod server;
pub mod service;

use std::sync::Arc;

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Data(#[from] dtmcli::dialect::OpenError),
    /// The configured seed could not be written.
    #[error("seed: {0}")]
    Seed(#[from] biz::StockError),
    /// The registry configuration is unusable.
    #[error("registry: {0}")]
    Registry(#[from] registry::Error),
}

/// The app in kratos order — data → repo → usecase → service → servers — ready to build and
/// run: `cmd/stock` runs it, every test starts it (a test may add listeners or a registrar).
pub async fn wire(conf: &conf::Bootstrap) -> Result<kit::AppBuilder, WireError> {
    let metrics = kit::metrics::Metrics::new();
    let db = data::open(&conf.data.database).await?.observed(&metrics);
    let repo = data::SqlStockRepo::new(db);
    let uc = biz::StockUsecase::new(repo);
    let seed: Vec<biz::Stock> = conf
        .stock
        .seed
        .iter()
        .map(|s| biz::Stock {
            sku: s.sku.clone(),
            available: s.available,
            frozen: 0,
        })
        .collect();
    uc.seed(&seed).await?;
    let svc = Arc::new(service::StockService::new(uc));
    Ok(kit::App::builder("stock")
        .metrics(metrics)
        .http(server::new_http_server(svc.clone()))
        // The API described: /q/openapi.yaml and the page /q/docs.
        .http(kit::docs::router("Stock API", api::stock::v1::OPENAPI_YAML))
        .grpc(server::new_grpc_server(&conf.server, svc))
        .reflection(api::FILE_DESCRIPTOR_SET)
        .registrar(conf.registry.registrar()?, conf.registry.host()))
}
