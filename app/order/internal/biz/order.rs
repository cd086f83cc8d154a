//! Orders: what an order is, what every DTM branch does to its status, and the repository.

use std::future::Future;

use dtmcli::{BranchDbError, BranchInfo, Outcome};
use kit::time::UnixMs;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Held by a TCC try, waiting for confirm or cancel.
    Pending,
    /// Placed: the goods are out of stock and the order stands.
    Created,
    /// Cancelled (by a compensation, a TCC cancel, or the user).
    Cancelled,
}

impl OrderStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Created => "CREATED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Pending,
            OrderStatus::Created,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Chosen by the caller (PlaceOrder), so a retried branch names the same order.
    pub id: String,
    /// Who ordered.
    pub user_id: i64,
    /// The SKU ordered.
    pub sku: String,
    /// How many.
    pub quantity: i64,
    /// Where it is.
    pub status: OrderStatus,
    /// When it was stored.
    pub create_time: UnixMs,
    /// When its status last changed.
    pub update_time: UnixMs,
}

/// The payload of the TransIn branches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOrder {
    /// Order id.
    pub id: String,
    /// Who orders.
    pub user_id: i64,
    /// The SKU ordered.
    pub sku: String,
    /// How many pieces.
    pub quantity: i64,
}

/// The order branches (docs/protocol.md, Sagas, TCC, messages in this repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// Saga action: record a CREATED order.
    TransIn,
    /// Saga compensation of TransIn.
    TransInCompensate,
    /// Saga action: cancel a CREATED order.
    TransOut,
    /// Saga compensation of TransOut.
    TransOutCompensate,
    /// TCC try: record a PENDING order.
    TransInTry,
    /// TCC confirm.
    TransInConfirm,
    /// TCC cancel.
    TransInCancel,
    /// XA: record a CREATED order in a prepared local transaction.
    TransInXa,
}

/// What a branch does to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert a new order (fails if the id exists).
    Insert(Order),
    /// Move an order from one status to another (fails if it is not in `from`).
    Transition {
        /// The order.
        id: String,
        /// The status it must be in.
        from: OrderStatus,
        /// The status it gets.
        to: OrderStatus,
    },
}

impl Branch {
    /// The status change of every branch that moves an existing order: the order domain's table.
    /// `None` for the branches that create the order.
    pub fn transition(self) -> Option<(OrderStatus, OrderStatus)> {
        use OrderStatus::*;
        match self {
            Branch::TransIn | Branch::TransInTry | Branch::TransInXa => None,
            Branch::TransInCompensate => Some((Created, Cancelled)),
            Branch::TransOut => Some((Created, Cancelled)),
            Branch::TransOutCompensate => Some((Cancelled, Created)),
            Branch::TransInConfirm => Some((Pending, Created)),
            Branch::TransInCancel => Some((Pending, Cancelled)),
        }
    }
}

/// Why an order operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Input that can never be valid.
    #[error("invalid order: {0}")]
    Invalid(String),
    /// No such order. PlaceOrder names the order before its transaction runs, so a failed
    /// PlaceOrder's id is one of these: say so.
    #[error(
        "order {0} not found (an order is stored only when its PlaceOrder transaction succeeds)"
    )]
    NotFound(String),
    /// The business rule: too many pieces in one order.
    #[error("quantity {quantity} is above the limit of {max} per order")]
    QuantityLimit {
        /// The quantity asked for.
        quantity: i64,
        /// The most one order may hold (`order.max_quantity`).
        max: i64,
    },
    /// An order with this id exists already (from another transaction).
    #[error("order {0} already exists")]
    Exists(String),
    /// The order is not in the status the branch needs.
    #[error("order {id} is {status}, not {expected}")]
    StatusConflict {
        /// The order.
        id: String,
        /// Its status.
        status: &'static str,
        /// The status the branch needs.
        expected: &'static str,
    },
    /// The SDK could not run the branch's local transaction (its barrier, an XA prepare or
    /// phase two, the msg check-back); it says what to answer.
    #[error(transparent)]
    Dtm(#[from] BranchDbError),
    /// The coordinator could not be reached or did not take the transaction.
    #[error("dtm: {0}")]
    Coordinator(String),
    /// The database failed; the operation may be retried. The driver's error is kept as the
    /// source, so that the log shows the whole chain.
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A page of orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The orders.
    pub orders: Vec<Order>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<(UnixMs, String)>,
}

/// What the order domain needs from storage: one write, for every kind of branch, and the reads.
pub trait OrderRepo: Send + Sync + 'static {
    /// Applies `change` as the branch call `branch` — behind the barrier, or as an XA prepare or
    /// phase two, as `dtmcli::BranchDb::run` decides from `branch`. `change` is the input as the
    /// use case checked it: a refused one may still be an answer (nothing to undo), and an XA
    /// phase two reads none.
    fn apply(
        &self,
        branch: &BranchInfo,
        change: Result<Change, OrderError>,
    ) -> impl Future<Output = Result<Outcome<()>, OrderError>> + Send;
    /// Reads one order.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Order>, OrderError>> + Send;
    /// Orders newest first, of one user or all, starting after `after` (create_time, id).
    fn list(
        &self,
        user_id: Option<i64>,
        limit: u32,
        after: Option<(UnixMs, String)>,
    ) -> impl Future<Output = Result<Vec<Order>, OrderError>> + Send;
}

pub(super) fn validate_item(sku: &str, quantity: i64) -> Result<(), OrderError> {
    if sku.trim().is_empty() || sku.chars().count() > 64 {
        return Err(OrderError::Invalid("sku must be 1 to 64 characters".into()));
    }
    if quantity <= 0 {
        return Err(OrderError::Invalid(format!(
            "quantity must be greater than 0, got {quantity}"
        )));
    }
    Ok(())
}

pub(super) fn validate_id(id: &str) -> Result<(), OrderError> {
    if id.trim().is_empty() || id.chars().count() > 64 {
        return Err(OrderError::Invalid(
            "order_id must be 1 to 64 characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    /// Each compensation or cancel undoes its forward step; confirm ends where TransIn does.
    #[test]
    fn transitions_undo_each_other() {
        assert_eq!(
            Branch::TransInCompensate.transition(),
            Some((Created, Cancelled))
        );
        let (a, b) = (
            Branch::TransOut.transition().unwrap(),
            Branch::TransOutCompensate.transition().unwrap(),
        );
        assert_eq!((a.0, a.1), (b.1, b.0));
        assert_eq!(
            Branch::TransInConfirm.transition().map(|t| t.1),
            Some(Created)
        );
        assert_eq!(
            Branch::TransInCancel.transition().map(|t| t.1),
            Some(Cancelled)
        );
    }

    #[test]
    fn status_spelling_round_trips() {
        for s in [Pending, Created, Cancelled] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("pending"), None);
    }
}
