//! Storage: the database and the repository of [`crate::biz`].

mod stock;

use dtmcli::BranchDb;
use dtmcli::dialect::OpenError;

pub use stock::SqlStockRepo;

use crate::biz::StockError;

/// Opens the database and runs the migrations (the barrier table, then `migrations/`).
pub async fn open(conf: &kit::DatabaseConf) -> Result<BranchDb, OpenError> {
    BranchDb::open(conf, dtmcli::migrations!()).await
}

impl From<sqlx::Error> for StockError {
    fn from(e: sqlx::Error) -> Self {
        StockError::Storage(Box::new(e))
    }
}
