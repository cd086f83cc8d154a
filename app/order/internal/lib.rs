//! The order service, kratos layout: `server` → `service` → `biz` ← `data`.
//!
//! - [`biz`]: what an order is, what every DTM branch does to its status, the repository trait;
//! - [`data`]: the repository over SQLite/PostgreSQL/MySQL (each branch run by `dtmcli::BranchDb`)
//!   and the global transactions through the coordinator;
//! - [`service`]: the proto's `Order` service (both transports), DTO ↔ domain, errors → results;
//! - [`server`]: the HTTP router and the gRPC server for the app;
//! - [`conf`]: the config schema.

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
    /// The coordinator's address, or a service's, is unusable.
    #[error("dtm: {0}")]
    Dtm(#[from] data::DtmError),
    /// The registry configuration is unusable.
    #[error("registry: {0}")]
    Registry(#[from] registry::Error),
    /// PlaceOrder's workflow could not be registered.
    #[error("workflow: {0}")]
    Workflow(#[from] biz::OrderError),
}

/// The app in kratos order — data → repo → usecase → service → servers — ready to build and
/// run: `cmd/order` runs it, every test starts it (a test may add listeners or a registrar).
pub async fn wire(conf: &conf::Bootstrap) -> Result<kit::AppBuilder, WireError> {
    let metrics = kit::metrics::Metrics::new();
    let db = data::open(&conf.data.database).await?.observed(&metrics);
    let repo = data::SqlOrderRepo::new(db.clone());
    let tx = data::DtmTransactions::new(&conf.dtm, conf.registry.resolver()?, db)?;
    let workflows = tx.workflows_to_mount();
    let uc = biz::OrderUsecase::new(repo, tx, conf.order.max_quantity);
    uc.register_workflows()?;
    let svc = Arc::new(service::OrderService::new(uc));
    let app = kit::App::builder("order")
        .metrics(metrics)
        .http(server::new_http_server(svc.clone()))
        // The API described: /q/openapi.yaml and the page /q/docs.
        .http(kit::docs::router("Order API", api::order::v1::OPENAPI_YAML))
        .grpc(server::new_grpc_server(&conf.server, svc))
        .reflection(api::FILE_DESCRIPTOR_SET)
        .registrar(conf.registry.registrar()?, conf.registry.host());
    // Where the coordinator resumes PlaceOrder's workflows, over each transport.
    Ok(workflows
        .iter()
        .fold(app, |app, w| w.mount(app, data::RESUME_PATH)))
}
