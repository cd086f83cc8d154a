//! Orders: what every DTM branch does to an order's status, as one table.

use std::future::Future;

use dtmcli::xa::XaError;
use dtmcli::{BranchInfo, Outcome};
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A msg check-back: the local transaction never committed (and now never will).
    #[error("the local transaction of this msg did not commit")]
    NotCommitted,
    /// An XA branch could not prepare or finish (no XA in this database, a bad call, the
    /// coordinator refused the registration).
    #[error(transparent)]
    Xa(#[from] XaError),
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

/// What the order domain needs from storage. Every branch write runs inside the DTM barrier of
/// `branch`, in one local transaction with the barrier rows.
pub trait OrderRepo: Send + Sync + 'static {
    /// Applies `change` behind the barrier of `branch`.
    fn apply(
        &self,
        branch: &BranchInfo,
        change: &Change,
    ) -> impl Future<Output = Result<Outcome<()>, OrderError>> + Send;
    /// Applies `change` in the XA local transaction of `branch`, left prepared for phase two.
    fn apply_xa(
        &self,
        branch: &BranchInfo,
        change: &Change,
    ) -> impl Future<Output = Result<Outcome<()>, OrderError>> + Send;
    /// XA phase two of `branch` (op `commit` or `rollback`).
    fn finish_xa(
        &self,
        branch: &BranchInfo,
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
    /// The msg check-back: `Ok` if the msg's local transaction committed.
    fn query_prepared(
        &self,
        branch: &BranchInfo,
    ) -> impl Future<Output = Result<(), OrderError>> + Send;
}

/// How PlaceOrder runs its global transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// stock.TransOut + order.TransIn, compensated on failure.
    Saga,
    /// stock.TransOutTry + order.TransInTry, then confirm or cancel.
    Tcc,
    /// stock.TransOutXa + order.TransInXa, prepared, then committed or rolled back.
    Xa,
}

/// Which transport the coordinator and the branches are reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/JSON.
    Http,
    /// gRPC/protobuf.
    Grpc,
}

/// A global transaction as the coordinator left it when it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalOutcome {
    /// Its gid.
    pub gid: String,
    /// `succeed`, `failed`, or — when the coordinator is still at it — `submitted`.
    pub status: String,
}

/// The global transactions of the order domain, run through DTM (implemented in `data`).
pub trait Transactions: Send + Sync + 'static {
    /// PlaceOrder: takes the goods out of stock and records the order, all or nothing.
    fn place(
        &self,
        mode: Mode,
        transport: Transport,
        order: &NewOrder,
    ) -> impl Future<Output = Result<GlobalOutcome, OrderError>> + Send;

    /// CancelOrder, a two-phase message: `local` cancels the order in a local transaction with
    /// the msg barrier of the branch it is given; the coordinator then returns the goods.
    fn cancel<F, Fut>(
        &self,
        transport: Transport,
        order: &Order,
        local: F,
    ) -> impl Future<Output = Result<GlobalOutcome, OrderError>> + Send
    where
        F: FnOnce(BranchInfo) -> Fut + Send,
        Fut: Future<Output = Result<Outcome<()>, OrderError>> + Send;
}

/// The order use cases.
pub struct OrderUsecase<R, T> {
    repo: R,
    tx: T,
    max_quantity: i64,
}

impl<R: OrderRepo, T: Transactions> OrderUsecase<R, T> {
    /// A use case over `repo` and the coordinator's `tx`, with the per-order quantity limit.
    pub fn new(repo: R, tx: T, max_quantity: i64) -> Self {
        OrderUsecase {
            repo,
            tx,
            max_quantity,
        }
    }

    /// TransIn / TransInTry / TransInXa: record the order, CREATED or PENDING.
    pub async fn record(
        &self,
        info: &BranchInfo,
        branch: Branch,
        o: NewOrder,
    ) -> Result<Outcome<()>, OrderError> {
        let xa = branch == Branch::TransInXa;
        if xa && dtmcli::xa::is_phase_two(info) {
            // XA phase two has no body: the prepared transaction holds the order.
            let outcome = self.repo.finish_xa(info).await?;
            tracing::info!(gid = %info.gid, ?branch, op = %info.op, outcome = outcome.as_str(), "order branch");
            return Ok(outcome);
        }
        validate_id(&o.id)?;
        validate_item(&o.sku, o.quantity)?;
        if o.quantity > self.max_quantity {
            return Err(OrderError::QuantityLimit {
                quantity: o.quantity,
                max: self.max_quantity,
            });
        }
        let status = if branch == Branch::TransInTry {
            OrderStatus::Pending
        } else {
            OrderStatus::Created
        };
        let now = UnixMs::now();
        let order = Order {
            id: o.id,
            user_id: o.user_id,
            sku: o.sku,
            quantity: o.quantity,
            status,
            create_time: now,
            update_time: now,
        };
        let change = Change::Insert(order);
        let outcome = if xa {
            self.repo.apply_xa(info, &change).await?
        } else {
            self.repo.apply(info, &change).await?
        };
        tracing::info!(gid = %info.gid, ?branch, outcome = outcome.as_str(), "order branch");
        Ok(outcome)
    }

    /// Every branch that moves an existing order (compensations, TransOut, confirm, cancel).
    pub async fn transition(
        &self,
        info: &BranchInfo,
        branch: Branch,
        id: &str,
    ) -> Result<Outcome<()>, OrderError> {
        if let Some(nothing) = dtmcli::result::nothing_to_undo(info, validate_id(id))? {
            return Ok(nothing);
        }
        let (from, to) = branch
            .transition()
            .ok_or_else(|| OrderError::Invalid(format!("{branch:?} creates orders")))?;
        let change = Change::Transition {
            id: id.to_owned(),
            from,
            to,
        };
        let outcome = self.repo.apply(info, &change).await?;
        tracing::info!(gid = %info.gid, ?branch, order_id = id, outcome = outcome.as_str(), "order branch");
        Ok(outcome)
    }

    /// PlaceOrder: a new order id, then the global transaction, waited for. The per-order
    /// limit is deliberately not checked here: TransIn enforces it inside the transaction,
    /// which then rolls back (and shows how).
    pub async fn place(
        &self,
        user_id: i64,
        sku: &str,
        quantity: i64,
        mode: Mode,
        transport: Transport,
    ) -> Result<(String, GlobalOutcome), OrderError> {
        validate_item(sku, quantity)?;
        let order = NewOrder {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
            sku: sku.to_owned(),
            quantity,
        };
        let outcome = self.tx.place(mode, transport, &order).await?;
        tracing::info!(order_id = %order.id, gid = %outcome.gid, status = %outcome.status, ?mode, ?transport, "place order");
        Ok((order.id, outcome))
    }

    /// CancelOrder: only a CREATED order can be cancelled; the order is cancelled in the msg's
    /// local transaction, and the coordinator puts the goods back into stock.
    pub async fn cancel(
        &self,
        id: &str,
        transport: Transport,
    ) -> Result<GlobalOutcome, OrderError> {
        let order = self.get(id).await?;
        if order.status != OrderStatus::Created {
            return Err(OrderError::StatusConflict {
                id: order.id,
                status: order.status.as_str(),
                expected: OrderStatus::Created.as_str(),
            });
        }
        let change = Change::Transition {
            id: order.id.clone(),
            from: OrderStatus::Created,
            to: OrderStatus::Cancelled,
        };
        let repo = &self.repo;
        let outcome = self
            .tx
            .cancel(transport, &order, |info| async move {
                repo.apply(&info, &change).await
            })
            .await?;
        tracing::info!(order_id = id, gid = %outcome.gid, status = %outcome.status, "cancel order");
        Ok(outcome)
    }

    /// Reads one order.
    pub async fn get(&self, id: &str) -> Result<Order, OrderError> {
        validate_id(id)?;
        self.repo
            .get(id)
            .await?
            .ok_or_else(|| OrderError::NotFound(id.to_owned()))
    }

    /// A page of orders, newest first; `page_size` 0 means 20, at most 100.
    pub async fn list(
        &self,
        user_id: Option<i64>,
        page_size: u32,
        after: Option<(UnixMs, String)>,
    ) -> Result<Page, OrderError> {
        let limit = match page_size {
            0 => 20,
            n => n.min(100),
        };
        let orders = self.repo.list(user_id, limit, after).await?;
        let next = (orders.len() == limit as usize)
            .then(|| orders.last().map(|o| (o.create_time, o.id.clone())))
            .flatten();
        Ok(Page { orders, next })
    }

    /// The msg check-back.
    pub async fn query_prepared(&self, info: &BranchInfo) -> Result<(), OrderError> {
        self.repo.query_prepared(info).await
    }
}

fn validate_item(sku: &str, quantity: i64) -> Result<(), OrderError> {
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

fn validate_id(id: &str) -> Result<(), OrderError> {
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
