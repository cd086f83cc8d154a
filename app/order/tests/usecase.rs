//! The order use case alone, over a repository in memory and a coordinator stand-in: what each
//! branch records, the per-order limit, the input rule (refused forward, nothing to undo
//! backward), what PlaceOrder and CancelOrder hand to their global transaction — no database,
//! no coordinator, milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dtmcli::{BranchInfo, Op, Outcome};
use dtmtest::{MemoryBranches, branch, with_op};
use kit::time::UnixMs;
use order::biz::{
    Branch, Change, GlobalOutcome, LocalStep, Mode, NewOrder, Order, OrderError, OrderRepo,
    OrderStatus, OrderUsecase, Transactions, Transport,
};

/// Orders in a map and the branch calls run, in order; clones share them. A transition
/// applies only from the status it names, as the SQL repository's guarded UPDATE does.
#[derive(Clone, Default)]
struct MemoryRepo(Arc<Memory>);

#[derive(Default)]
struct Memory {
    orders: Mutex<HashMap<String, Order>>,
    branches: MemoryBranches,
}

impl MemoryRepo {
    fn calls(&self) -> Vec<&'static str> {
        self.0.branches.calls()
    }

    fn status(&self, id: &str) -> Option<OrderStatus> {
        self.0
            .orders
            .lock()
            .expect("orders")
            .get(id)
            .map(|o| o.status)
    }

    fn apply_now(&self, change: &Change) -> Result<(), OrderError> {
        let mut orders = self.0.orders.lock().expect("orders");
        match change {
            Change::Insert(o) if orders.contains_key(&o.id) => {
                Err(OrderError::Exists(o.id.clone()))
            }
            Change::Insert(o) => {
                orders.insert(o.id.clone(), o.clone());
                Ok(())
            }
            Change::Transition { id, from, to } => match orders.get_mut(id) {
                Some(o) if o.status == *from => {
                    o.status = *to;
                    Ok(())
                }
                Some(o) => Err(OrderError::StatusConflict {
                    id: id.clone(),
                    status: o.status.as_str(),
                    expected: from.as_str(),
                }),
                None => Err(OrderError::NotFound(id.clone())),
            },
        }
    }
}

impl OrderRepo for MemoryRepo {
    async fn apply(
        &self,
        info: &BranchInfo,
        change: Result<Change, OrderError>,
    ) -> Result<Outcome<()>, OrderError> {
        self.0.branches.run(info, change, |c| self.apply_now(&c))
    }

    async fn get(&self, id: &str) -> Result<Option<Order>, OrderError> {
        Ok(self.0.orders.lock().expect("orders").get(id).cloned())
    }

    async fn list(
        &self,
        _: Option<i64>,
        limit: u32,
        _: Option<(UnixMs, String)>,
    ) -> Result<Vec<Order>, OrderError> {
        let orders = self.0.orders.lock().expect("orders");
        Ok(orders.values().take(limit as usize).cloned().collect())
    }
}

/// The coordinator's part: records what it was handed; a cancel runs its local transaction
/// with a msg branch context, as the SDK's `do_and_submit` does; the workflow's local step is
/// kept, for the tests to run as the workflow would.
#[derive(Clone, Default)]
struct Coordinator(Arc<Mutex<Vec<String>>>, Arc<Mutex<Option<LocalStep>>>);

impl Coordinator {
    fn handed(&self) -> Vec<String> {
        self.0.lock().expect("handed").clone()
    }

    fn local(&self) -> LocalStep {
        self.1.lock().expect("local").clone().expect("registered")
    }
}

impl Transactions for Coordinator {
    async fn place(
        &self,
        mode: Mode,
        _: Transport,
        order: &NewOrder,
    ) -> Result<GlobalOutcome, OrderError> {
        let what = format!("place {mode:?} {} x{}", order.sku, order.quantity);
        self.0.lock().expect("handed").push(what);
        Ok(GlobalOutcome {
            gid: format!("g-{}", order.id),
            status: "succeed".into(),
        })
    }

    async fn cancel<F, Fut>(
        &self,
        _: Transport,
        order: &Order,
        local: F,
    ) -> Result<GlobalOutcome, OrderError>
    where
        F: FnOnce(BranchInfo) -> Fut + Send,
        Fut: Future<Output = Result<Outcome<()>, OrderError>> + Send,
    {
        self.0
            .lock()
            .expect("handed")
            .push(format!("cancel {}", order.id));
        local(branch("msg", "msg")).await?;
        Ok(GlobalOutcome {
            gid: format!("g-cancel-{}", order.id),
            status: "succeed".into(),
        })
    }

    fn register_workflows(&self, local: LocalStep) -> Result<(), OrderError> {
        *self.1.lock().expect("local") = Some(local);
        Ok(())
    }

    async fn query_prepared(&self, _: &BranchInfo) -> Result<(), OrderError> {
        Ok(())
    }
}

const MAX_QUANTITY: i64 = 5;

fn orders() -> (
    OrderUsecase<MemoryRepo, Coordinator>,
    MemoryRepo,
    Coordinator,
) {
    let (repo, coordinator) = (MemoryRepo::default(), Coordinator::default());
    let uc = OrderUsecase::new(repo.clone(), coordinator.clone(), MAX_QUANTITY);
    (uc, repo, coordinator)
}

fn new_order(id: &str, quantity: i64) -> NewOrder {
    NewOrder {
        id: id.into(),
        user_id: 1,
        sku: "A".into(),
        quantity,
    }
}

#[tokio::test]
async fn a_saga_records_created_a_try_pending_and_the_limit_refuses_the_rest() {
    let (uc, repo, _) = orders();
    let saga = branch("saga", "action");
    uc.record(&saga, Branch::TransIn, new_order("o1", 2))
        .await
        .expect("recorded");
    assert_eq!(repo.status("o1"), Some(OrderStatus::Created));
    let tcc = branch("tcc", "try");
    uc.record(&tcc, Branch::TransInTry, new_order("o2", 2))
        .await
        .expect("recorded");
    assert_eq!(repo.status("o2"), Some(OrderStatus::Pending));
    let over = uc
        .record(&saga, Branch::TransIn, new_order("o3", MAX_QUANTITY + 1))
        .await;
    assert!(
        matches!(
            over,
            Err(OrderError::QuantityLimit {
                quantity: 6,
                max: 5
            })
        ),
        "{over:?}"
    );
    assert_eq!(repo.status("o3"), None);
    // The confirm moves the tried order on; its compensation in a saga cancels.
    uc.transition(&with_op(&tcc, "confirm"), Branch::TransInConfirm, "o2")
        .await
        .expect("confirmed");
    assert_eq!(repo.status("o2"), Some(OrderStatus::Created));
    uc.transition(
        &with_op(&saga, "compensate"),
        Branch::TransInCompensate,
        "o1",
    )
    .await
    .expect("compensated");
    assert_eq!(repo.status("o1"), Some(OrderStatus::Cancelled));
}

#[tokio::test]
async fn a_bad_id_is_refused_forward_and_there_is_nothing_to_undo_backward() {
    let (uc, repo, _) = orders();
    let saga = branch("saga", "action");
    let refused = uc.record(&saga, Branch::TransIn, new_order("", 1)).await;
    assert!(
        matches!(refused, Err(OrderError::Invalid(_))),
        "{refused:?}"
    );
    let undo = with_op(&saga, "compensate");
    let undone = uc.transition(&undo, Branch::TransInCompensate, "").await;
    assert!(
        matches!(undone, Ok(Outcome::NullCompensation)),
        "{undone:?}"
    );
    let tcc = branch("tcc", "confirm");
    let confirm = uc.transition(&tcc, Branch::TransInConfirm, "").await;
    assert!(
        matches!(confirm, Err(OrderError::Invalid(_))),
        "{confirm:?}"
    );
    assert!(repo.calls().is_empty(), "{:?}", repo.calls());
}

#[tokio::test]
async fn an_xa_branch_prepares_the_order_and_phase_two_needs_no_body() {
    let (uc, repo, _) = orders();
    let action = branch("xa", "action");
    uc.record(&action, Branch::TransInXa, new_order("x1", 1))
        .await
        .expect("prepared");
    for op in [Op::Commit, Op::Rollback] {
        let phase_two = BranchInfo {
            op,
            ..action.clone()
        };
        let done = uc
            .record(&phase_two, Branch::TransInXa, new_order("", 0))
            .await;
        assert!(matches!(done, Ok(Outcome::Applied(()))), "{op}: {done:?}");
    }
    assert_eq!(repo.calls(), ["write", "phase_two", "phase_two"]);
}

#[tokio::test]
async fn place_order_checks_its_input_before_any_transaction_and_names_a_new_order() {
    let (uc, _, coordinator) = orders();
    let refused = uc.place(1, "A", 0, Mode::Saga, Transport::Http).await;
    assert!(
        matches!(refused, Err(OrderError::Invalid(_))),
        "{refused:?}"
    );
    assert!(coordinator.handed().is_empty());
    // Above the per-order limit is the transaction's business: it is handed on.
    let (id, outcome) = uc
        .place(1, "A", MAX_QUANTITY + 1, Mode::Tcc, Transport::Grpc)
        .await
        .expect("placed");
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(outcome.gid, format!("g-{id}"));
    assert_eq!(coordinator.handed(), ["place Tcc A x6"]);
}

#[tokio::test]
async fn only_a_created_order_can_be_cancelled_in_the_msgs_local_transaction() {
    let (uc, repo, coordinator) = orders();
    let tcc = branch("tcc", "try");
    uc.record(&tcc, Branch::TransInTry, new_order("p1", 1))
        .await
        .expect("pending");
    let conflict = uc.cancel("p1", Transport::Http).await;
    assert!(
        matches!(conflict, Err(OrderError::StatusConflict { .. })),
        "{conflict:?}"
    );
    assert!(coordinator.handed().is_empty());
    let saga = branch("saga", "action");
    uc.record(&saga, Branch::TransIn, new_order("c1", 1))
        .await
        .expect("created");
    uc.cancel("c1", Transport::Http).await.expect("cancelled");
    assert_eq!(coordinator.handed(), ["cancel c1"]);
    assert_eq!(repo.status("c1"), Some(OrderStatus::Cancelled));
    assert!(matches!(
        uc.cancel("missing", Transport::Http).await,
        Err(OrderError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_full_page_says_where_the_next_starts() {
    let (uc, _, _) = orders();
    let saga = branch("saga", "action");
    for id in ["l1", "l2", "l3"] {
        uc.record(&saga, Branch::TransIn, new_order(id, 1))
            .await
            .expect("recorded");
    }
    let full = uc.list(None, 2, None).await.expect("page");
    assert_eq!(full.orders.len(), 2);
    assert!(full.next.is_some());
    let last = uc.list(None, 5, None).await.expect("page");
    assert_eq!((last.orders.len(), last.next), (3, None));
}

#[tokio::test]
async fn the_workflows_own_step_records_the_order_and_its_rollback_cancels_it() {
    let (uc, repo, coordinator) = orders();
    uc.register_workflows().expect("registered");
    let local = coordinator.local();
    // The action: TransIn's write and rules (the barrier is BranchDb's, tested with it).
    let action = branch("workflow", "action");
    local(action.clone(), new_order("w1", 2))
        .await
        .expect("recorded");
    assert_eq!(repo.status("w1"), Some(OrderStatus::Created));
    let over = local(
        branch("workflow", "action"),
        new_order("w2", MAX_QUANTITY + 1),
    )
    .await;
    assert!(
        matches!(over, Err(OrderError::QuantityLimit { .. })),
        "{over:?}"
    );
    assert_eq!(repo.status("w2"), None);
    // The rollback (op `rollback`, the same branch) cancels it.
    local(with_op(&action, "rollback"), new_order("w1", 2))
        .await
        .expect("rolled back");
    assert_eq!(repo.status("w1"), Some(OrderStatus::Cancelled));
}
