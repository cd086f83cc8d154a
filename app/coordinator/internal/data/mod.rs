//! Storage and branch calling: the [`TransStore`] over SQL or Redis, and the HTTP + gRPC caller
//! with its [`reach`].

pub mod reach;
mod redis_conn;
mod redis_keys;
mod redis_lease;
mod redis_rows;
mod redis_shards;
mod redis_store;
mod redis_topics;
mod sql_lease;
mod sql_rows;
mod sql_scan;
mod sql_store;
mod sql_topics;
mod write_conn;
mod writer;

use std::sync::Arc;

use dtmcli::Dialect;
use dtmcli::caller::{CallError, CallRequest, Caller, Reply};

pub use redis_conn::WaitReplicas;
pub use redis_store::{RedisOptions, RedisStore};
pub use sql_store::SqlStore;
pub use write_conn::{DbError, PoolConn, SqliteConn, WriteConn};
pub use writer::{Arg, Stmt, Write, WriteOutcome, Writer};

use crate::biz::{BranchCaller, TransStore};
use crate::conf::{MicroService, Store, Synchronous};
use crate::metrics::StoreMetrics;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// A driver this build does not provide (yet).
    #[error("Store.Driver {0:?} is not supported (sqlite, postgres, mysql, redis)")]
    Driver(String),
    /// `Store.Source` does not match `Store.Driver`.
    #[error("Store.Source {url:?} is not a {driver} URL")]
    Source {
        /// The driver.
        driver: String,
        /// The URL.
        url: String,
    },
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] sqlx::Error),
    /// Connecting to Redis failed.
    #[error("connect: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The migration failed.
    #[error("migrate: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens the store `Store.Driver` names (waiting up to `Store.ConnectTimeout` for a server that
/// is not reachable yet) and runs its migration; the SQL writers count their batches in
/// `metrics` (`StoreMetrics::default()` counts into a registry nobody reads).
pub async fn open_store(
    conf: &Store,
    metrics: StoreMetrics,
) -> Result<Arc<dyn TransStore>, StoreOpenError> {
    if conf.driver == "redis" {
        if !conf.source.starts_with("redis://") {
            return Err(StoreOpenError::Source {
                driver: conf.driver.clone(),
                url: conf.source.clone(),
            });
        }
        let options = RedisOptions {
            source: conf.source.clone(),
            cluster: conf.redis_cluster,
            prefix: conf.redis_prefix.clone(),
            shards: conf.redis_shards,
            finished_expire_secs: conf.finished_data_expire.as_secs(),
            wait: (conf.redis_wait_replicas > 0).then_some(WaitReplicas {
                replicas: conf.redis_wait_replicas,
                timeout: conf.redis_wait_timeout,
            }),
        };
        let store =
            kit::startup::wait_for("store", conf.connect_timeout, redis_unreachable, || {
                RedisStore::connect(&options)
            })
            .await?;
        return Ok(Arc::new(store));
    }
    let dialect = Dialect::from_driver(&conf.driver)
        .ok_or_else(|| StoreOpenError::Driver(conf.driver.clone()))?;
    if Dialect::from_url(&conf.source) != Some(dialect) {
        return Err(StoreOpenError::Source {
            driver: conf.driver.clone(),
            url: conf.source.clone(),
        });
    }
    let pool =
        dtmcli::dialect::connect_waiting(&conf.source, conf.max_open_conns, conf.connect_timeout)
            .await?;
    match dialect {
        Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        Dialect::MySql => sqlx::migrate!("./migrations/mysql").run(&pool).await?,
    }
    let Some(path) = dtmcli::dialect::sqlite_path(&conf.source).map(std::path::Path::new) else {
        // A server (or an in-memory SQLite database): the writer takes a pooled connection.
        return Ok(Arc::new(SqlStore::new(pool, dialect, metrics)));
    };
    // A SQLite file: the writer owns a connection on a thread of its own.
    let full = conf.synchronous == Synchronous::Full;
    let io = |e: std::io::Error| StoreOpenError::Connect(sqlx::Error::Io(e));
    let writer =
        Writer::thread("sqlite-writer", SqliteConn::new(path, full), metrics).map_err(io)?;
    Ok(Arc::new(SqlStore::with_writer(pool, dialect, writer)))
}

/// Whether a Redis error met while connecting says the server is not ready yet (down, loading
/// its data, a cluster answering CLUSTERDOWN or TRYAGAIN): worth waiting for.
fn redis_unreachable(e: &::redis::RedisError) -> bool {
    use ::redis::RetryMethod::{NoRetry, Reconnect};
    // `Reconnect` also covers a refused password, which does not pass by itself.
    e.is_io_error() || !matches!(e.retry_method(), NoRetry | Reconnect)
}

/// The registry `MicroService` names: with `default`, none (plain `host:port` targets only);
/// with `dtm-driver-gozero` or `dtm-driver-kratos`, `Target` = `etcd://hosts/key`: the
/// coordinator publishes `EndPoint` (default: its own gRPC address) under `<key>/<lease>`
/// (go-zero layout, what `etcd://…/dtmservice` clients resolve), and branch URLs
/// `discovery:///name/…` are looked up in that etcd.
pub fn micro_service(
    conf: &MicroService,
) -> Result<
    (
        Option<Arc<dyn kit::registry::Registrar>>,
        registry::Resolver,
    ),
    String,
> {
    match conf.driver.as_str() {
        "default" => Ok((
            None,
            registry::Resolver::restricted(&[]).map_err(|e| e.to_string())?,
        )),
        "dtm-driver-gozero" | "dtm-driver-kratos" => {
            let bad = |e: registry::Error| format!("MicroService.Target {:?}: {e}", conf.target);
            let endpoints = match registry::Server::parse(&conf.target).map_err(bad)? {
                registry::Server::GoZero { endpoints, .. } => endpoints,
                registry::Server::Kratos { .. } => {
                    return Err(format!(
                        "MicroService.Target {:?}: expected etcd://hosts/key",
                        conf.target
                    ));
                }
            };
            let end_point = Some(conf.end_point.clone()).filter(|e| !e.is_empty());
            let registrar =
                registry::EtcdRegistrar::gozero(&conf.target, end_point, registry::DEFAULT_TTL)
                    .map_err(bad)?;
            // Branch URLs come from clients: resolve through the configured cluster only.
            let resolver = registry::Resolver::restricted(&endpoints).map_err(bad)?;
            Ok((Some(Arc::new(registrar)), resolver))
        }
        other => Err(format!(
            "MicroService.Driver {other:?} is not supported (default, dtm-driver-gozero, dtm-driver-kratos)"
        )),
    }
}

/// The branch caller of `dtmcli` (pooled HTTP client, one gRPC channel per target; registry
/// URLs through `resolver`).
#[derive(Clone, Default)]
pub struct SdkCaller(Caller);

impl SdkCaller {
    /// A caller whose `discovery:///` URLs are looked up with `resolver`, calling only where
    /// `reach` allows.
    pub fn new(resolver: registry::Resolver, reach: dtmcli::caller::Reach) -> SdkCaller {
        SdkCaller(Caller::new().with_reach(reach).with_resolver(resolver))
    }
}

#[async_trait::async_trait]
impl BranchCaller for SdkCaller {
    async fn call(&self, req: &CallRequest<'_>) -> Result<Reply, CallError> {
        self.0.call(req).await
    }

    fn check(&self, protocol: &str, url: &str) -> Result<(), CallError> {
        self.0.check(protocol, url)
    }
}

/// A transaction's stored options (JSON, as DTM stores them): empty means the defaults; anything
/// else that does not parse is an error — silently running a corrupt row with default timeouts
/// and retries would hide it.
fn stored_options(gid: &str, text: &str) -> Result<crate::biz::Options, crate::biz::StoreError> {
    if text.is_empty() {
        return Ok(crate::biz::Options::default());
    }
    serde_json::from_str(text).map_err(|e| {
        crate::biz::StoreError::Backend(
            format!("the stored options of {gid} are corrupt: {e}").into(),
        )
    })
}
