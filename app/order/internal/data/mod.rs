//! Storage: the database and the repository of [`crate::biz`], and the global transactions
//! through the coordinator (PlaceOrder's workflow among them).

mod dtm;
mod order;
mod steps;
mod workflow;

use dtmcli::BranchDb;
use dtmcli::dialect::OpenError;

pub use dtm::{DtmError, DtmTransactions};
pub use order::SqlOrderRepo;
pub use workflow::{PLACE_ORDER, RESUME_PATH};

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
