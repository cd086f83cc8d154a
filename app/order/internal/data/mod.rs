//! Storage: the database pool and migrations, and the repository of [`crate::biz`].

mod dtm;
mod order;

use dtmcli::dialect::OpenError;
use dtmcli::{BarrierError, Dialect};
use sqlx::AnyPool;

pub use dtm::DtmTransactions;
pub use order::SqlOrderRepo;

use crate::biz::OrderError;

/// The database, shared by the repositories.
#[derive(Debug, Clone)]
pub struct Data {
    /// Connection pool (SQLite, PostgreSQL or MySQL behind `sqlx::Any`).
    pub pool: AnyPool,
    /// Which of the three.
    pub dialect: Dialect,
}

impl Data {
    /// Connects and runs the migrations (the barrier table, then this app's tables).
    pub async fn new(conf: &kit::DatabaseConf) -> Result<Data, OpenError> {
        let (pool, dialect) = dtmcli::dialect::open(conf, |d| match d {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
            Dialect::MySql => sqlx::migrate!("./migrations/mysql"),
        })
        .await?;
        Ok(Data { pool, dialect })
    }
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        OrderError::Storage(Box::new(e))
    }
}

impl From<BarrierError> for OrderError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::RolledBack => OrderError::NotCommitted,
            other => OrderError::Storage(Box::new(other)),
        }
    }
}
