//! Storage: the database pool and migrations, and the repository of [`crate::biz`].

mod stock;

use dtmcli::{BarrierError, Dialect};
use sqlx::AnyPool;

pub use stock::StockRepoImpl;

use crate::biz::StockError;
use crate::conf;

/// The database, shared by the repositories.
#[derive(Debug, Clone)]
pub struct Data {
    /// Connection pool (SQLite, PostgreSQL or MySQL behind `sqlx::Any`).
    pub pool: AnyPool,
    /// Which of the three.
    pub dialect: Dialect,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `driver` and the URL scheme of `source` disagree, or name no supported database.
    #[error(
        "data.database: driver {driver:?} does not match source {url:?} (sqlite, postgres or mysql)"
    )]
    Driver {
        /// The configured driver.
        driver: String,
        /// The configured URL.
        url: String,
    },
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migrate: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Data {
    /// Connects and runs the migrations (the barrier table, then this app's tables).
    pub async fn new(conf: &conf::Database) -> Result<Data, DataError> {
        let dialect = Dialect::from_url(&conf.source)
            .filter(|d| Dialect::from_url(&format!("{}:", conf.driver)) == Some(*d))
            .ok_or_else(|| DataError::Driver {
                driver: conf.driver.clone(),
                url: conf.source.clone(),
            })?;
        let pool = dtmcli::dialect::connect(&conf.source, conf.max_connections).await?;
        dtmcli::barrier::migrate(&pool).await?;
        let mut migrator = match dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
            Dialect::MySql => sqlx::migrate!("./migrations/mysql"),
        };
        // The barrier's migration shares the `_sqlx_migrations` table.
        migrator.set_ignore_missing(true).run(&pool).await?;
        Ok(Data { pool, dialect })
    }
}

impl From<sqlx::Error> for StockError {
    fn from(e: sqlx::Error) -> Self {
        StockError::Storage(e.to_string())
    }
}

impl From<BarrierError> for StockError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::RolledBack => StockError::NotCommitted,
            other => StockError::Storage(other.to_string()),
        }
    }
}
