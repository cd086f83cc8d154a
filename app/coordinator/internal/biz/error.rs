//! Why an operation was refused or did not complete.

use crate::biz::StoreError;

/// Why a request was refused or did not complete. The service maps each variant to DTM's
/// envelope (FAILURE 409, ONGOING 425) or a kratos error.
#[derive(Debug, thiserror::Error)]
pub enum TransError {
    /// Input that can never be right.
    #[error("{0}")]
    BadRequest(String),
    /// No such transaction.
    #[error("{0}")]
    NotFound(String),
    /// DTM FAILURE: refused in this status, or (`wait_result`) rolled back.
    #[error("{0}")]
    Failure(String),
    /// DTM ONGOING: (`wait_result`) not final yet; the coordinator carries on.
    #[error("{0}")]
    Ongoing(String),
    /// Storage failed, or a stored row does not read back.
    #[error(transparent)]
    Store(#[from] StoreError),
}
