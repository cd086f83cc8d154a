//! The stock use case alone, over a repository in memory: what each branch does to the counters,
//! the input rule (refused forward, nothing to undo backward), and which repository call an XA
//! branch's two phases reach — no database, no transport, milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dtmcli::{BranchInfo, Op, Outcome};
use dtmtest::{MemoryBranches, branch, with_op};
use stock::biz::{Branch, Movement, Stock, StockError, StockRepo, StockUsecase};

/// SKUs in a map and the branch calls run, in order; clones share them, so a test keeps one
/// to look inside. Movements follow the SQL repository's rule: applied only if both
/// counters stay at zero or above.
#[derive(Clone, Default)]
struct MemoryRepo(Arc<Memory>);

#[derive(Default)]
struct Memory {
    stock: Mutex<HashMap<String, Stock>>,
    branches: MemoryBranches,
}

impl MemoryRepo {
    fn calls(&self) -> Vec<&'static str> {
        self.0.branches.calls()
    }

    fn is_empty(&self) -> bool {
        self.0.stock.lock().expect("stock").is_empty()
    }

    fn apply_now(&self, m: &Movement) -> Result<(), StockError> {
        let mut stock = self.0.stock.lock().expect("stock");
        let s = stock
            .get_mut(&m.sku)
            .ok_or_else(|| StockError::NotFound(m.sku.clone()))?;
        let (available, frozen) = (s.available + m.available, s.frozen + m.frozen);
        if available < 0 || frozen < 0 {
            return Err(StockError::Insufficient {
                sku: m.sku.clone(),
                needed: (-available).max(-frozen),
            });
        }
        (s.available, s.frozen) = (available, frozen);
        Ok(())
    }
}

impl StockRepo for MemoryRepo {
    async fn apply(
        &self,
        info: &BranchInfo,
        m: Result<Movement, StockError>,
    ) -> Result<Outcome<()>, StockError> {
        self.0.branches.run(info, m, |m| self.apply_now(&m))
    }

    async fn get(&self, sku: &str) -> Result<Option<Stock>, StockError> {
        Ok(self.0.stock.lock().expect("stock").get(sku).cloned())
    }

    async fn seed(&self, stock: &[Stock]) -> Result<(), StockError> {
        let mut map = self.0.stock.lock().expect("stock");
        for s in stock {
            map.entry(s.sku.clone()).or_insert_with(|| s.clone());
        }
        Ok(())
    }
}

/// A use case whose repository holds `available` pieces of SKU `A`, and that repository.
async fn stock_of(available: i64) -> (StockUsecase<MemoryRepo>, MemoryRepo) {
    let repo = MemoryRepo::default();
    let uc = StockUsecase::new(repo.clone());
    let seed = Stock {
        sku: "A".into(),
        available,
        frozen: 0,
    };
    uc.seed(&[seed]).await.expect("seed");
    (uc, repo)
}

async fn counters(uc: &StockUsecase<MemoryRepo>) -> (i64, i64) {
    let s = uc.get("A").await.expect("A");
    (s.available, s.frozen)
}

#[tokio::test]
async fn a_sale_moves_the_counters_and_a_short_one_changes_nothing() {
    let (uc, _) = stock_of(10).await;
    let action = branch("saga", "action");
    let sold = uc.branch(&action, Branch::TransOut, "A", 3).await;
    assert!(matches!(sold, Ok(Outcome::Applied(()))), "{sold:?}");
    assert_eq!(counters(&uc).await, (7, 0));
    let short = uc.branch(&action, Branch::TransOut, "A", 8).await;
    assert!(
        matches!(short, Err(StockError::Insufficient { needed: 1, .. })),
        "{short:?}"
    );
    assert_eq!(counters(&uc).await, (7, 0));
    let back = with_op(&action, "compensate");
    uc.branch(&back, Branch::TransOutCompensate, "A", 3)
        .await
        .expect("compensated");
    assert_eq!(counters(&uc).await, (10, 0));
}

#[tokio::test]
async fn a_try_holds_and_confirm_or_cancel_settles_it() {
    let (uc, _) = stock_of(10).await;
    let try_ = branch("tcc", "try");
    uc.branch(&try_, Branch::TransOutTry, "A", 4)
        .await
        .expect("try");
    assert_eq!(counters(&uc).await, (6, 4));
    uc.branch(&with_op(&try_, "confirm"), Branch::TransOutConfirm, "A", 4)
        .await
        .expect("confirm");
    assert_eq!(counters(&uc).await, (6, 0));
    let try_ = branch("tcc", "try");
    uc.branch(&try_, Branch::TransOutTry, "A", 2)
        .await
        .expect("try");
    uc.branch(&with_op(&try_, "cancel"), Branch::TransOutCancel, "A", 2)
        .await
        .expect("cancel");
    assert_eq!(counters(&uc).await, (6, 0));
}

#[tokio::test]
async fn invalid_input_is_refused_forward_and_there_is_nothing_to_undo_backward() {
    let (uc, repo) = stock_of(10).await;
    let action = branch("saga", "action");
    let refused = uc.branch(&action, Branch::TransOut, "A", 0).await;
    assert!(
        matches!(refused, Err(StockError::InvalidQuantity(0))),
        "{refused:?}"
    );
    let refused = uc.branch(&action, Branch::TransOut, "", 1).await;
    assert!(
        matches!(refused, Err(StockError::InvalidSku)),
        "{refused:?}"
    );
    // The compensation of that refused action carries the same input: SUCCESS, nothing moved.
    let undo = with_op(&action, "compensate");
    let undone = uc.branch(&undo, Branch::TransOutCompensate, "A", 0).await;
    assert!(
        matches!(undone, Ok(Outcome::NullCompensation)),
        "{undone:?}"
    );
    assert!(repo.calls().is_empty(), "{:?}", repo.calls());
    assert_eq!(counters(&uc).await, (10, 0));
    assert!(uc.get("").await.is_err());
    assert!(matches!(uc.get("B").await, Err(StockError::NotFound(_))));
}

#[tokio::test]
async fn an_xa_branch_prepares_its_movement_and_phase_two_needs_no_body() {
    let (uc, repo) = stock_of(10).await;
    let action = branch("xa", "action");
    uc.branch(&action, Branch::TransOutXa, "A", 2)
        .await
        .expect("prepared");
    assert_eq!(counters(&uc).await, (8, 0));
    // Phase two arrives without the body: it goes to the prepared transaction, unchecked.
    for op in [Op::Commit, Op::Rollback] {
        let phase_two = BranchInfo {
            op,
            ..action.clone()
        };
        let done = uc.branch(&phase_two, Branch::TransOutXa, "", 0).await;
        assert!(matches!(done, Ok(Outcome::Applied(()))), "{op}: {done:?}");
    }
    assert_eq!(repo.calls(), ["write", "phase_two", "phase_two"]);
}

#[tokio::test]
async fn seeding_refuses_counters_out_of_range() {
    let repo = MemoryRepo::default();
    let uc = StockUsecase::new(repo.clone());
    let bad = Stock {
        sku: "A".into(),
        available: -1,
        frozen: 0,
    };
    assert!(matches!(
        uc.seed(&[bad]).await,
        Err(StockError::InvalidQuantity(-1))
    ));
    assert!(repo.is_empty());
}
