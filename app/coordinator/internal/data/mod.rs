//! Storage and branch calling: the [`TransStore`] over SQL or Redis, and the HTTP + gRPC caller.

mod redis_store;
mod sql_store;

use std::sync::Arc;

use dtmcli::Dialect;
use dtmcli::caller::{BranchRequest, CallError, Caller, Reply};

pub use redis_store::RedisStore;
pub use sql_store::SqlStore;

use crate::biz::{BranchCaller, TransStore};
use crate::conf::Store;

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

/// Opens the store `Store.Driver` names and runs its migration.
pub async fn open_store(conf: &Store) -> Result<Arc<dyn TransStore>, StoreOpenError> {
    if conf.driver == "redis" {
        if !conf.source.starts_with("redis://") {
            return Err(StoreOpenError::Source {
                driver: conf.driver.clone(),
                url: conf.source.clone(),
            });
        }
        let expire = conf.finished_data_expire.as_secs();
        let store = RedisStore::connect(&conf.source, &conf.redis_prefix, expire).await?;
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
    let pool = dtmcli::dialect::connect(&conf.source, conf.max_open_conns).await?;
    match dialect {
        Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        Dialect::MySql => sqlx::migrate!("./migrations/mysql").run(&pool).await?,
    }
    Ok(Arc::new(SqlStore::new(pool, dialect)))
}

/// The branch caller of `dtmcli` (pooled HTTP client, one gRPC channel per target).
#[derive(Clone, Default)]
pub struct BranchCallerImpl(Caller);

impl BranchCallerImpl {
    /// A caller.
    pub fn new() -> BranchCallerImpl {
        BranchCallerImpl(Caller::new())
    }
}

#[async_trait::async_trait]
impl BranchCaller for BranchCallerImpl {
    async fn call(&self, req: &BranchRequest<'_>) -> Result<Reply, CallError> {
        self.0.call(req).await
    }
}
