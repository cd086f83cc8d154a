//! The bundled DTM-compatible coordinator, kratos layout: `server` → `service` → `biz` ← `data`.
//!
//! - [`biz`]: global transactions, the state machine of each [`biz::TransType`], retries and
//!   leases, and the traits [`biz::TransStore`] and [`biz::BranchCaller`];
//! - [`data`]: the SQL store and the HTTP + gRPC branch caller;
//! - [`service`]: DTM's API, once for both transports (DTO ↔ domain, errors → DTM results);
//! - [`server`]: the `/api/dtmsvr` routes and the `dtmgimp.Dtm` gRPC server;
//! - [`conf`]: the config schema, with DTM's key names;
//! - [`metrics`]: DTM's Prometheus families and ours.

#![warn(missing_docs)]

pub mod biz;
pub mod conf;
pub mod data;
pub mod metrics;
pub mod server;
pub mod service;

use std::sync::Arc;

use biz::{Clock, TransStore, TransUsecase};
use kit::App;
use metrics::DtmMetrics;

/// A wired coordinator: its app (servers) and its use case (for the poller, and for tests).
pub struct Coordinator {
    /// The servers, bound.
    pub app: App,
    /// The use case (the app runs its poller as a worker).
    pub usecase: TransUsecase,
}

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store.
    #[error("store: {0}")]
    Store(#[from] data::StoreOpenError),
    /// The servers.
    #[error(transparent)]
    App(#[from] kit::AppError),
    /// A config value this build cannot honour.
    #[error("config: {0}")]
    Config(String),
}

/// Wiring in kratos order: data → usecase → service → servers → app. `clock` is the system
/// clock in production; tests move theirs forward.
pub async fn wire(conf: &conf::Bootstrap, clock: Clock) -> Result<Coordinator, StartError> {
    let metrics = kit::metrics::Metrics::new();
    let dtm_metrics = DtmMetrics::register(&metrics);
    let store = data::open_store_counted(&conf.store, dtm_metrics.store.clone()).await?;
    wire_counted(conf, store, clock, metrics, dtm_metrics).await
}

/// [`wire`] over a store opened already (tests that shape the store's faults).
pub async fn wire_store(
    conf: &conf::Bootstrap,
    store: Arc<dyn TransStore>,
    clock: Clock,
) -> Result<Coordinator, StartError> {
    let metrics = kit::metrics::Metrics::new();
    let dtm_metrics = DtmMetrics::register(&metrics);
    wire_counted(conf, store, clock, metrics, dtm_metrics).await
}

async fn wire_counted(
    conf: &conf::Bootstrap,
    store: Arc<dyn TransStore>,
    clock: Clock,
    metrics: kit::metrics::Metrics,
    dtm_metrics: DtmMetrics,
) -> Result<Coordinator, StartError> {
    let (registrar, resolver) =
        data::micro_service(&conf.micro_service).map_err(StartError::Config)?;
    let branch_policy = conf.hardening.branch_policy().map_err(StartError::Config)?;
    let caller = Arc::new(data::BranchCallerImpl::new(resolver, branch_policy));
    let observer = Arc::new(dtm_metrics);
    let usecase = TransUsecase::new(store.clone(), caller, policy(conf), clock, observer);
    // The backlog is read, not counted: fresh at each scrape.
    let uc = usecase.clone();
    metrics.on_scrape(Arc::new(move || {
        let uc = uc.clone();
        Box::pin(async move {
            if let Err(e) = uc.count_backlog().await {
                tracing::warn!(error = %e, "metrics: reading the backlog failed");
            }
        })
    }));
    let svc = Arc::new(
        service::DtmService::new(usecase.clone())
            .redacting_headers(conf.hardening.redact_branch_headers),
    );
    let servers = conf.servers();
    let token = Some(conf.hardening.api_token.clone()).filter(|t| !t.is_empty());
    let app = App::builder("coordinator")
        // Picks up whatever is unfinished, including what a previous run left.
        .worker("poller", usecase.poller())
        .http(server::new_http_server(svc.clone(), token))
        // DTM's path, beside kit's /metrics.
        .http(axum::Router::new().route("/api/metrics", kit::metrics::handler(metrics.clone())))
        .metrics(metrics)
        .grpc(server::new_grpc_server(&servers, svc))
        .reflection(dtmcli::proto::FILE_DESCRIPTOR_SET)
        .registrar(registrar, None)
        // A coordinator whose store cannot write must not look healthy: every submit would fail.
        .health_check(
            STORE_PROBE_INTERVAL,
            Arc::new(move || {
                let store = store.clone();
                Box::pin(async move { store.probe().await.map_err(|e| e.to_string()) })
            }),
        )
        .build(&servers)
        .await?;
    Ok(Coordinator { app, usecase })
}

/// The use case's timing rules, from the config's values (`conf` knows no domain type).
fn policy(conf: &conf::Bootstrap) -> biz::Policy {
    biz::Policy {
        retry_interval: conf.retry_interval,
        retry_max_interval: conf.retry_max_interval,
        timeout_to_fail: conf.timeout_to_fail,
        request_timeout: conf.request_timeout,
        branch_concurrency: conf.branch_concurrency,
        trans_cron_interval: conf.trans_cron_interval,
    }
}

/// How often the store's health probe writes.
pub const STORE_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
