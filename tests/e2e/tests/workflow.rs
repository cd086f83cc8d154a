//! PlaceOrder as a workflow (`MODE_WORKFLOW`), over both transports: the order service runs it
//! — stock's TransOut as a step compensated by TransOutCompensate, its own insert as a local
//! step behind the barrier — and the coordinator records each step.

use dtmtest::BOTH;
use e2e::{Stack, table};

#[tokio::test]
async fn a_workflow_takes_stock_and_creates_the_order() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s.placed(t, "MODE_WORKFLOW", "SKU-A", 3, "succeed").await;
        assert_eq!(s.status(gid).await, "succeed");
        assert_eq!(
            s.query(gid).await["transaction"]["trans_type"],
            "workflow",
            "{t:?}"
        );
        // Each step recorded once, in order: stock's action, then the order's own.
        assert_eq!(
            s.branches(gid).await,
            table(&["01 action succeed", "02 action succeed"]),
            "{t:?}"
        );
        assert_eq!(s.stock_of("SKU-A").await, (before.0 - 3, 0));
        assert_eq!(s.order_status(order_id).await.as_deref(), Some("CREATED"));
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn short_stock_fails_the_workflow_with_nothing_to_undo() {
    let s = Stack::start().await;
    for t in BOTH {
        let (gid, order_id) = &s.placed(t, "MODE_WORKFLOW", "SKU-B", 6, "failed").await;
        // Stock refused its own step: there is nothing before it to undo, and its own
        // rollback is skipped.
        assert_eq!(s.branches(gid).await, table(&["01 action failed"]), "{t:?}");
        let reason = s.query(gid).await["transaction"]["rollback_reason"].to_string();
        assert!(reason.contains("not enough stock of SKU-B"), "{reason}");
        assert_eq!(s.stock_of("SKU-B").await, (5, 0));
        assert_eq!(s.order_status(order_id).await, None);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn the_order_rule_rolls_the_workflow_back_and_stock_is_restored() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s
            .placed(t, "MODE_WORKFLOW", "SKU-A", e2e::MAX_QUANTITY + 1, "failed")
            .await;
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 action succeed",
                "02 action failed",
                "01 rollback succeed"
            ]),
            "{t:?}"
        );
        let reason = s.query(gid).await["transaction"]["rollback_reason"].to_string();
        assert!(reason.contains("above the limit"), "{reason}");
        assert_eq!(s.stock_of("SKU-A").await, before);
        assert_eq!(s.order_status(order_id).await, None);
    }
    s.assert_invariant().await;
}
