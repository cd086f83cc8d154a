//! Stock: what every DTM branch does to a SKU's counters, as one table.

use std::future::Future;

use dtmcli::{BranchDbError, BranchInfo, Outcome};

/// The counters of one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    /// The SKU.
    pub sku: String,
    /// Pieces that can be sold.
    pub available: i64,
    /// Pieces held by TCC tries, waiting for confirm or cancel.
    pub frozen: i64,
}

/// The stock branches (docs/protocol.md, Sagas, TCC, messages in this repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// Saga action: sell.
    TransOut,
    /// Saga compensation of TransOut.
    TransOutCompensate,
    /// Saga/msg action: goods come back (a return).
    TransIn,
    /// Saga compensation of TransIn.
    TransInCompensate,
    /// TCC try: hold.
    TransOutTry,
    /// TCC confirm: the held goods leave.
    TransOutConfirm,
    /// TCC cancel: the held goods go back.
    TransOutCancel,
    /// XA: sell, in a prepared local transaction (phase two commits or rolls it back).
    TransOutXa,
}

impl Branch {
    /// Per piece, what the branch adds to `(available, frozen)`. The whole stock domain.
    pub fn deltas(self) -> (i64, i64) {
        match self {
            Branch::TransOut => (-1, 0),
            Branch::TransOutCompensate => (1, 0),
            Branch::TransIn => (1, 0),
            Branch::TransInCompensate => (-1, 0),
            Branch::TransOutTry => (-1, 1),
            Branch::TransOutConfirm => (0, -1),
            Branch::TransOutCancel => (1, -1),
            Branch::TransOutXa => (-1, 0),
        }
    }
}

/// A change of one SKU's counters; applied only if neither counter goes below zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// The SKU.
    pub sku: String,
    /// Added to `available` (negative takes away).
    pub available: i64,
    /// Added to `frozen`.
    pub frozen: i64,
}

/// The most pieces one branch may move. Bounded so that `quantity × delta` and the counters can
/// never overflow, whatever a caller sends.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// The most a counter may hold; a movement that would pass it is refused. Far below `i64::MAX`,
/// and below 2^53, so that no database ever stores a counter as a float.
pub const MAX_COUNTER: i64 = 1_000_000_000_000_000;

/// Why a stock operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// Empty or longer than 64 characters.
    #[error("sku must be 1 to 64 characters")]
    InvalidSku,
    /// Quantity ≤ 0 or above [`MAX_QUANTITY`].
    #[error("quantity must be 1 to {MAX_QUANTITY}, got {0}")]
    InvalidQuantity(i64),
    /// No such SKU.
    #[error("sku {0} not found")]
    NotFound(String),
    /// A counter would go below zero.
    #[error("not enough stock of {sku}: the movement needs {needed} more")]
    Insufficient {
        /// The SKU.
        sku: String,
        /// How many pieces are missing.
        needed: i64,
    },
    /// A counter would pass [`MAX_COUNTER`].
    #[error("the stock of {0} would pass {MAX_COUNTER}")]
    Overflow(String),
    /// The SDK could not run the branch's local transaction (its barrier, an XA prepare or
    /// phase two); it says what to answer.
    #[error(transparent)]
    Dtm(#[from] BranchDbError),
    /// The database failed; the operation may be retried. The driver's error is kept as the
    /// source, so that the log shows the whole chain.
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the stock domain needs from storage: one write, for every kind of branch, and the reads.
pub trait StockRepo: Send + Sync + 'static {
    /// Applies `m` as the branch call `branch` — behind the barrier, or as an XA prepare or
    /// phase two, as `dtmcli::BranchDb::run` decides from `branch`. `m` is the input as the use
    /// case checked it: a refused one may still be an answer (nothing to undo), and an XA phase
    /// two reads none.
    fn apply(
        &self,
        branch: &BranchInfo,
        m: Result<Movement, StockError>,
    ) -> impl Future<Output = Result<Outcome<()>, StockError>> + Send;
    /// Reads one SKU.
    fn get(&self, sku: &str) -> impl Future<Output = Result<Option<Stock>, StockError>> + Send;
    /// Creates the SKUs that do not exist yet.
    fn seed(&self, stock: &[Stock]) -> impl Future<Output = Result<(), StockError>> + Send;
}

/// The stock use cases.
pub struct StockUsecase<R> {
    repo: R,
}

impl<R: StockRepo> StockUsecase<R> {
    /// A use case over `repo`.
    pub fn new(repo: R) -> Self {
        StockUsecase { repo }
    }

    /// Runs one branch: `quantity` pieces of `sku`, moved as the branch's deltas say.
    pub async fn branch(
        &self,
        info: &BranchInfo,
        branch: Branch,
        sku: &str,
        quantity: i64,
    ) -> Result<Outcome<()>, StockError> {
        let m = validate(sku, quantity).map(|()| {
            let (available, frozen) = branch.deltas();
            Movement {
                sku: sku.to_owned(),
                available: available * quantity,
                frozen: frozen * quantity,
            }
        });
        let outcome = self.repo.apply(info, m).await?;
        tracing::info!(gid = %info.gid, ?branch, op = %info.op, sku, quantity, outcome = outcome.as_str(), "stock branch");
        Ok(outcome)
    }

    /// Reads one SKU.
    pub async fn get(&self, sku: &str) -> Result<Stock, StockError> {
        if sku.is_empty() {
            return Err(StockError::InvalidSku);
        }
        self.repo
            .get(sku)
            .await?
            .ok_or_else(|| StockError::NotFound(sku.to_owned()))
    }

    /// Creates the configured SKUs that are missing.
    pub async fn seed(&self, stock: &[Stock]) -> Result<(), StockError> {
        for s in stock {
            validate(&s.sku, 1)?;
            for n in [s.available, s.frozen] {
                if !(0..=MAX_COUNTER).contains(&n) {
                    return Err(StockError::InvalidQuantity(n));
                }
            }
        }
        self.repo.seed(stock).await
    }
}

fn validate(sku: &str, quantity: i64) -> Result<(), StockError> {
    if sku.trim().is_empty() || sku.chars().count() > 64 {
        return Err(StockError::InvalidSku);
    }
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(StockError::InvalidQuantity(quantity));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every branch and its undo leave the total unchanged.
    #[test]
    fn each_branch_has_an_inverse() {
        let pairs = [
            (Branch::TransOut, Branch::TransOutCompensate),
            (Branch::TransIn, Branch::TransInCompensate),
            (Branch::TransOutTry, Branch::TransOutCancel),
        ];
        for (a, b) in pairs {
            let (x, y) = (a.deltas(), b.deltas());
            assert_eq!((x.0 + y.0, x.1 + y.1), (0, 0), "{a:?} / {b:?}");
        }
        // Try then confirm: the goods left; nothing stays frozen.
        let (t, c) = (
            Branch::TransOutTry.deltas(),
            Branch::TransOutConfirm.deltas(),
        );
        assert_eq!((t.0 + c.0, t.1 + c.1), Branch::TransOut.deltas());
    }

    #[test]
    fn validation() {
        assert!(matches!(validate("", 1), Err(StockError::InvalidSku)));
        assert!(matches!(
            validate("A", 0),
            Err(StockError::InvalidQuantity(0))
        ));
        assert!(validate("A", 1).is_ok());
        assert!(validate("A", MAX_QUANTITY).is_ok());
        assert!(matches!(
            validate("A", i64::MAX),
            Err(StockError::InvalidQuantity(i64::MAX))
        ));
    }
}
