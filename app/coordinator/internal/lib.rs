//! The bundled DTM-compatible coordinator, kratos layout: `server` → `service` → `biz` ← `data`.
//!
//! - [`biz`]: global transactions, the state machine of each [`biz::TransType`], retries and
//!   leases, and the traits [`biz::TransStore`] and [`biz::BranchCaller`];
//! - [`data`]: the SQL store and the HTTP + gRPC branch caller;
//! - [`service`]: DTM's API, once for both transports (DTO ↔ domain, errors → DTM results),
//!   and the request bodies read as DTM reads them ([`service::body`]);
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

use biz::{Clock, TopicUsecase, TransStore, TransUsecase};
use kit::AppBuilder;
use metrics::DtmMetrics;

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The store.
    #[error("store: {0}")]
    Store(#[from] data::StoreOpenError),
    /// A config value this build cannot honour.
    #[error("config: {0}")]
    Config(String),
}

/// What tests may put in place of the configured parts (zero2prod's config overrides);
/// production passes the default.
#[derive(Default)]
pub struct Overrides {
    /// The clock (tests move theirs forward); the system clock by default.
    pub clock: Clock,
    /// A store opened already (tests that shape its faults); by default the one `Store` names.
    pub store: Option<Arc<dyn TransStore>>,
}

/// Wiring in kratos order: data → usecase → service → servers → app, as every app of this
/// workspace does; build the result with `conf.servers()` and run it. The app runs the poller
/// as a worker and closes the store once it has stopped.
pub async fn wire(conf: &conf::Bootstrap, overrides: Overrides) -> Result<AppBuilder, WireError> {
    let metrics = kit::metrics::Metrics::new();
    let dtm_metrics = DtmMetrics::register(&metrics);
    let store = match overrides.store {
        Some(store) => store,
        None => data::open_store(&conf.store, dtm_metrics.store.clone()).await?,
    };
    let (registrar, resolver) =
        data::micro_service(&conf.micro_service).map_err(WireError::Config)?;
    let reach = data::reach::reach(&conf.hardening).map_err(WireError::Config)?;
    let caller = Arc::new(data::SdkCaller::new(resolver, reach));
    let observer = Arc::new(dtm_metrics);
    let policy = policy(conf);
    let topics = TopicUsecase::new(store.clone(), caller.clone());
    let usecase = TransUsecase::new(store.clone(), caller, policy, overrides.clock, observer);
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
        service::DtmService::new(usecase.clone(), topics)
            .redacting_headers(conf.hardening.redact_branch_headers),
    );
    let token = Some(conf.hardening.api_token.clone()).filter(|t| !t.is_empty());
    let closing = usecase.clone();
    Ok(kit::App::builder("coordinator")
        // Picks up whatever is unfinished, including what a previous run left.
        .worker("poller", usecase.poller().run())
        .http(server::new_http_server(svc.clone(), token))
        // DTM's path, beside kit's /metrics.
        .http(axum::Router::new().route("/api/metrics", kit::metrics::handler(metrics.clone())))
        // The HTTP API described: /q/openapi.yaml and the page /q/docs.
        .http(kit::docs::router("DTM coordinator API", OPENAPI_YAML))
        .metrics(metrics)
        .grpc(server::new_grpc_server(&conf.servers(), svc))
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
        // SQLite: the data into the database file itself, so that the file alone is a backup.
        .on_stop("store", async move {
            if let Err(e) = closing.close().await {
                tracing::warn!(error = %e, "closing the store");
            }
        }))
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

/// The OpenAPI document of the HTTP API (`openapi.yaml`, kept by hand; `tests/openapi.rs` keeps
/// it true to the routers).
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// How often the store's health probe writes.
pub const STORE_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
