//! Every order branch over both transports, with the barrier's guarantees.

use api::order::v1::{
    HTTP_QUERY_PREPARED, HTTP_TRANS_IN, HTTP_TRANS_IN_CANCEL, HTTP_TRANS_IN_COMPENSATE,
    HTTP_TRANS_IN_CONFIRM, HTTP_TRANS_IN_TRY, HTTP_TRANS_OUT, HTTP_TRANS_OUT_COMPENSATE,
};
use dtmcli::BranchInfo;
use dtmtest::assert_query_prepared;

use crate::helpers::{BOTH, MAX_QUANTITY, branch, new_order, spawn_app, with_op};

const CREATED: Option<&str> = Some("ORDER_STATUS_CREATED");
const CANCELLED: Option<&str> = Some("ORDER_STATUS_CANCELLED");
const PENDING: Option<&str> = Some("ORDER_STATUS_PENDING");

#[tokio::test]
async fn trans_in_records_a_created_order_once() {
    for t in BOTH {
        let app = spawn_app().await;
        let info = branch("saga", "action");
        for _ in 0..2 {
            let a = app
                .call_in(t, &HTTP_TRANS_IN, &info, &new_order("o1", 2))
                .await;
            assert!(a.is_success(), "{t:?}: {a:?}");
        }
        assert_eq!(app.status("o1").await.as_deref(), CREATED, "{t:?}");
    }
}

#[tokio::test]
async fn trans_in_above_the_limit_is_failure_and_records_nothing() {
    for t in BOTH {
        let app = spawn_app().await;
        let a = app
            .call_in(
                t,
                &HTTP_TRANS_IN,
                &branch("saga", "action"),
                &new_order("o1", MAX_QUANTITY + 1),
            )
            .await;
        assert!(a.is_failure(), "{t:?}: {a:?}");
        assert_eq!(a.cause(), "QUANTITY_LIMIT_EXCEEDED");
        assert_eq!(app.status("o1").await, None, "{t:?}");
    }
}

#[tokio::test]
async fn an_order_id_taken_by_another_transaction_is_failure() {
    for t in BOTH {
        let app = spawn_app().await;
        assert!(
            app.call_in(
                t,
                &HTTP_TRANS_IN,
                &branch("saga", "action"),
                &new_order("o1", 1)
            )
            .await
            .is_success()
        );
        let a = app
            .call_in(
                t,
                &HTTP_TRANS_IN,
                &branch("saga", "action"),
                &new_order("o1", 1),
            )
            .await;
        assert!(a.is_failure(), "{t:?}: {a:?}");
        assert_eq!(a.cause(), "ORDER_EXISTS");
    }
}

#[tokio::test]
async fn trans_in_then_compensation_cancels_the_order() {
    for t in BOTH {
        let app = spawn_app().await;
        let action = branch("saga", "action");
        assert!(
            app.call_in(t, &HTTP_TRANS_IN, &action, &new_order("o1", 1))
                .await
                .is_success()
        );
        let comp = with_op(&action, "compensate");
        assert!(
            app.call_in(t, &HTTP_TRANS_IN_COMPENSATE, &comp, &new_order("o1", 1))
                .await
                .is_success()
        );
        assert_eq!(app.status("o1").await.as_deref(), CANCELLED, "{t:?}");
    }
}

#[tokio::test]
async fn compensation_before_trans_in_is_a_no_op_and_the_late_trans_in_too() {
    for t in BOTH {
        let app = spawn_app().await;
        let action = branch("saga", "action");
        let comp = with_op(&action, "compensate");
        let a = app
            .call_in(t, &HTTP_TRANS_IN_COMPENSATE, &comp, &new_order("o1", 1))
            .await;
        assert!(a.is_success(), "{t:?}: {a:?}");
        let a = app
            .call_in(t, &HTTP_TRANS_IN, &action, &new_order("o1", 1))
            .await;
        assert!(a.is_success(), "{t:?}: {a:?}");
        assert_eq!(
            app.status("o1").await,
            None,
            "{t:?}: the hanging TransIn recorded an order"
        );
    }
}

#[tokio::test]
async fn trans_out_cancels_and_its_compensation_restores() {
    for t in BOTH {
        let app = spawn_app().await;
        assert!(
            app.call_in(
                t,
                &HTTP_TRANS_IN,
                &branch("saga", "action"),
                &new_order("o1", 1)
            )
            .await
            .is_success()
        );
        let out = branch("saga", "action");
        assert!(
            app.call_out(t, &HTTP_TRANS_OUT, &out, "o1")
                .await
                .is_success()
        );
        assert_eq!(app.status("o1").await.as_deref(), CANCELLED, "{t:?}");
        // Cancelling a cancelled order from another transaction is a business refusal.
        let again = app
            .call_out(t, &HTTP_TRANS_OUT, &branch("saga", "action"), "o1")
            .await;
        assert!(again.is_failure(), "{t:?}: {again:?}");
        assert_eq!(again.cause(), "ORDER_STATUS_CONFLICT");
        let comp = with_op(&out, "compensate");
        assert!(
            app.call_out(t, &HTTP_TRANS_OUT_COMPENSATE, &comp, "o1")
                .await
                .is_success()
        );
        assert_eq!(app.status("o1").await.as_deref(), CREATED, "{t:?}");
        // Unknown order: FAILURE for the action.
        let a = app
            .call_out(t, &HTTP_TRANS_OUT, &branch("saga", "action"), "nope")
            .await;
        assert!(
            a.is_failure() && a.cause() == "ORDER_NOT_FOUND",
            "{t:?}: {a:?}"
        );
    }
}

#[tokio::test]
async fn tcc_try_confirm_and_try_cancel() {
    for t in BOTH {
        let app = spawn_app().await;
        let try1 = branch("tcc", "try");
        assert!(
            app.call_in(t, &HTTP_TRANS_IN_TRY, &try1, &new_order("o1", 1))
                .await
                .is_success()
        );
        assert_eq!(app.status("o1").await.as_deref(), PENDING, "{t:?}");
        assert!(
            app.call_in(
                t,
                &HTTP_TRANS_IN_CONFIRM,
                &with_op(&try1, "confirm"),
                &new_order("o1", 1)
            )
            .await
            .is_success()
        );
        assert_eq!(app.status("o1").await.as_deref(), CREATED, "{t:?}");

        let try2 = branch("tcc", "try");
        assert!(
            app.call_in(t, &HTTP_TRANS_IN_TRY, &try2, &new_order("o2", 1))
                .await
                .is_success()
        );
        assert!(
            app.call_in(
                t,
                &HTTP_TRANS_IN_CANCEL,
                &with_op(&try2, "cancel"),
                &new_order("o2", 1)
            )
            .await
            .is_success()
        );
        assert_eq!(app.status("o2").await.as_deref(), CANCELLED, "{t:?}");

        // Cancel before try: nothing; the late try records nothing.
        let try3 = branch("tcc", "try");
        assert!(
            app.call_in(
                t,
                &HTTP_TRANS_IN_CANCEL,
                &with_op(&try3, "cancel"),
                &new_order("o3", 1)
            )
            .await
            .is_success()
        );
        assert!(
            app.call_in(t, &HTTP_TRANS_IN_TRY, &try3, &new_order("o3", 1))
                .await
                .is_success()
        );
        assert_eq!(app.status("o3").await, None, "{t:?}");
    }
}

#[tokio::test]
async fn query_prepared_is_failure_unless_the_local_transaction_committed() {
    let app = spawn_app().await;
    assert_query_prepared(app.target(), &HTTP_QUERY_PREPARED, &app.db.pool).await;
}

/// An order whose values the business refuses is a refusal of the action (FAILURE: the saga
/// rolls back at once), its compensation has nothing to undo, and a call without the DTM
/// context is a bad request.
#[tokio::test]
async fn invalid_orders_refuse_the_action_and_a_missing_context_is_a_bad_request() {
    for t in BOTH {
        let app = spawn_app().await;
        for o in [
            new_order("", 1),
            new_order("o1", 0),
            api::order::v1::OrderRequest {
                sku: String::new(),
                ..new_order("o1", 1)
            },
        ] {
            let action = branch("saga", "action");
            let a = app.call_in(t, &HTTP_TRANS_IN, &action, &o).await;
            assert!(a.is_failure(), "{t:?} {o:?}: {a:?}");
            assert_eq!(a.cause(), "INVALID_ORDER", "{t:?}");
            let undo = with_op(&action, "compensate");
            let a = app.call_in(t, &HTTP_TRANS_IN_COMPENSATE, &undo, &o).await;
            assert!(a.is_success(), "{t:?} {o:?}: {a:?}");
        }
        let a = app
            .call_in(
                t,
                &HTTP_TRANS_IN,
                &BranchInfo {
                    branch_id: String::new(),
                    ..branch("saga", "action")
                },
                &new_order("o1", 1),
            )
            .await;
        assert!(a.is_bad_request("DTM_CONTEXT"), "{t:?}: {a:?}");
        assert_eq!(app.status("o1").await, None);
    }
}
