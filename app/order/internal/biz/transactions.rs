//! The global transactions of the order domain: what PlaceOrder and CancelOrder need from DTM.

use std::future::Future;
use std::sync::Arc;

use dtmcli::{BranchInfo, Outcome};
use futures_util::future::BoxFuture;

use super::{NewOrder, Order, OrderError};

/// How PlaceOrder runs its global transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// stock.TransOut + order.TransIn, compensated on failure.
    Saga,
    /// stock.TransOutTry + order.TransInTry, then confirm or cancel.
    Tcc,
    /// stock.TransOutXa + order.TransInXa, prepared, then committed or rolled back.
    Xa,
    /// A workflow this service runs: stock.TransOut (compensated by TransOutCompensate), then
    /// the order's own insert as a local step ([`LocalStep`]).
    Workflow,
}

/// The order's own step in PlaceOrder's workflow, with the workflow's branch context: records
/// the order (TransIn's rules, behind the barrier) or, called with op `rollback`, cancels it.
/// The workflow runs it on PlaceOrder and again on every resume.
pub type LocalStep = Arc<
    dyn Fn(BranchInfo, NewOrder) -> BoxFuture<'static, Result<Outcome<()>, OrderError>>
        + Send
        + Sync,
>;

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
    /// `succeed`, `failed`, or — when the coordinator is still at it — `submitted` (a workflow:
    /// `prepared`, resumed by the coordinator).
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

    /// Registers PlaceOrder's workflow (at start-up: a resume may come before any PlaceOrder),
    /// whose own step is `local`.
    fn register_workflows(&self, local: LocalStep) -> Result<(), OrderError>;

    /// The check-back of CancelOrder's msg: `Ok` if its local transaction committed.
    fn query_prepared(
        &self,
        branch: &BranchInfo,
    ) -> impl Future<Output = Result<(), OrderError>> + Send;
}
