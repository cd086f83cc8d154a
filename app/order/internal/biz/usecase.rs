//! The order use cases: the branches, PlaceOrder (and its workflow's own step), CancelOrder and
//! the reads.

use std::sync::Arc;

use dtmcli::{BranchInfo, Outcome};
use kit::time::UnixMs;

use super::order::{validate_id, validate_item};
use super::{
    Branch, Change, GlobalOutcome, LocalStep, Mode, NewOrder, Order, OrderError, OrderRepo,
    OrderStatus, Page, Transactions, Transport,
};

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
        record(&self.repo, self.max_quantity, info, branch, o).await
    }

    /// Every branch that moves an existing order (compensations, TransOut, confirm, cancel).
    pub async fn transition(
        &self,
        info: &BranchInfo,
        branch: Branch,
        id: &str,
    ) -> Result<Outcome<()>, OrderError> {
        transition(&self.repo, info, branch, id).await
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
                repo.apply(&info, Ok(change)).await
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
        self.tx.query_prepared(info).await
    }
}

impl<R: OrderRepo + Clone, T: Transactions> OrderUsecase<R, T> {
    /// Registers PlaceOrder's workflow, whose own step is TransIn's write (undone as
    /// TransInCompensate's), behind the workflow's barrier. Called once at start-up.
    pub fn register_workflows(&self) -> Result<(), OrderError> {
        let (repo, max_quantity) = (self.repo.clone(), self.max_quantity);
        let local: LocalStep = Arc::new(move |info, o| {
            let repo = repo.clone();
            Box::pin(async move {
                if info.undoes() {
                    transition(&repo, &info, Branch::TransInCompensate, &o.id).await
                } else {
                    record(&repo, max_quantity, &info, Branch::TransIn, o).await
                }
            })
        });
        self.tx.register_workflows(local)
    }
}

/// Records a new order as `branch` (CREATED, or PENDING for a TCC try) after the rules.
async fn record<R: OrderRepo>(
    repo: &R,
    max_quantity: i64,
    info: &BranchInfo,
    branch: Branch,
    o: NewOrder,
) -> Result<Outcome<()>, OrderError> {
    let status = if branch == Branch::TransInTry {
        OrderStatus::Pending
    } else {
        OrderStatus::Created
    };
    let change = check(&o, max_quantity).map(|()| {
        let now = UnixMs::now();
        Change::Insert(Order {
            id: o.id,
            user_id: o.user_id,
            sku: o.sku,
            quantity: o.quantity,
            status,
            create_time: now,
            update_time: now,
        })
    });
    let outcome = repo.apply(info, change).await?;
    tracing::info!(gid = %info.gid, ?branch, op = %info.op, outcome = outcome.as_str(), "order branch");
    Ok(outcome)
}

/// Moves order `id` as `branch` does.
async fn transition<R: OrderRepo>(
    repo: &R,
    info: &BranchInfo,
    branch: Branch,
    id: &str,
) -> Result<Outcome<()>, OrderError> {
    let (from, to) = branch
        .transition()
        .ok_or_else(|| OrderError::Invalid(format!("{branch:?} creates orders")))?;
    let change = validate_id(id).map(|()| Change::Transition {
        id: id.to_owned(),
        from,
        to,
    });
    let outcome = repo.apply(info, change).await?;
    tracing::info!(gid = %info.gid, ?branch, order_id = id, outcome = outcome.as_str(), "order branch");
    Ok(outcome)
}

/// A new order's rules: its id and item, and the per-order limit.
fn check(o: &NewOrder, max_quantity: i64) -> Result<(), OrderError> {
    validate_id(&o.id)?;
    validate_item(&o.sku, o.quantity)?;
    if o.quantity > max_quantity {
        return Err(OrderError::QuantityLimit {
            quantity: o.quantity,
            max: max_quantity,
        });
    }
    Ok(())
}
