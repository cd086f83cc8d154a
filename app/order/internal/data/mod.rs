//! Storage: the database and the repository of [`crate::biz`], and the global transactions
//! through the coordinator.

mod dtm;
mod order;
mod steps;

use dtmcli::BranchDb;
use dtmcli::dialect::OpenError;

pub use dtm::{DtmError, DtmTransactions};
pub use order::SqlOrderRepo;

use crate::biz::OrderError;

/// Opens the database and runs the migrations (the barrier table, then `migrations/`).
pub async fn open(conf: &kit::DatabaseConf) -> Result<BranchDb, OpenError> {
    BranchDb::open(conf, dtmcli::migrations!()).await
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        OrderError::Storage(Box::new(e))
    }
}
