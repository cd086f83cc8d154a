//! Every stock branch over both transports, with the barrier's guarantees.

use api::stock::v1::{
    HTTP_TRANS_IN, HTTP_TRANS_OUT, HTTP_TRANS_OUT_CANCEL, HTTP_TRANS_OUT_COMPENSATE,
    HTTP_TRANS_OUT_CONFIRM, HTTP_TRANS_OUT_TRY, StockRequest,
};
use dtmcli::BranchInfo;

use crate::helpers::{BOTH, INITIAL, SKU, branch, spawn_app, with_op};

#[tokio::test]
async fn trans_out_takes_goods_out() {
    for t in BOTH {
        let app = spawn_app().await;
        let a = app
            .call(t, &HTTP_TRANS_OUT, &branch("saga", "action"), SKU, 3)
            .await;
        assert!(a.is_success(), "{t:?}: {a:?}");
        assert_eq!(app.stock(SKU).await, (INITIAL - 3, 0), "{t:?}");
    }
}

#[tokio::test]
async fn trans_out_with_too_little_stock_is_failure_and_changes_nothing() {
    for t in BOTH {
        let app = spawn_app().await;
        let a = app
            .call(
                t,
                &HTTP_TRANS_OUT,
                &branch("saga", "action"),
                SKU,
                INITIAL + 1,
            )
            .await;
        assert!(a.is_failure(), "{t:?}: {a:?}");
        assert_eq!(a.cause(), "INSUFFICIENT_STOCK", "{t:?}");
        assert_eq!(app.stock(SKU).await, (INITIAL, 0), "{t:?}");
    }
}

#[tokio::test]
async fn the_same_branch_delivered_twice_is_applied_once() {
    for t in BOTH {
        let app = spawn_app().await;
        let info = branch("saga", "action");
        for _ in 0..2 {
            let a = app.call(t, &HTTP_TRANS_OUT, &info, SKU, 4).await;
            assert!(a.is_success(), "{t:?}: {a:?}");
        }
        assert_eq!(app.stock(SKU).await, (INITIAL - 4, 0), "{t:?}");
    }
}

#[tokio::test]
async fn compensation_before_its_action_is_a_no_op_and_the_late_action_too() {
    for t in BOTH {
        let app = spawn_app().await;
        let action = branch("saga", "action");
        let comp = with_op(&action, "compensate");
        let a = app.call(t, &HTTP_TRANS_OUT_COMPENSATE, &comp, SKU, 4).await;
        assert!(a.is_success(), "{t:?}: {a:?}");
        assert_eq!(
            app.stock(SKU).await,
            (INITIAL, 0),
            "{t:?}: null compensation added stock"
        );
        let a = app.call(t, &HTTP_TRANS_OUT, &action, SKU, 4).await;
        assert!(a.is_success(), "{t:?}: {a:?}");
        assert_eq!(
            app.stock(SKU).await,
            (INITIAL, 0),
            "{t:?}: hanging action took stock"
        );
    }
}

#[tokio::test]
async fn trans_out_then_compensation_restores_the_stock() {
    for t in BOTH {
        let app = spawn_app().await;
        let action = branch("saga", "action");
        assert!(
            app.call(t, &HTTP_TRANS_OUT, &action, SKU, 4)
                .await
                .is_success()
        );
        assert_eq!(app.stock(SKU).await, (INITIAL - 4, 0));
        let comp = with_op(&action, "compensate");
        assert!(
            app.call(t, &HTTP_TRANS_OUT_COMPENSATE, &comp, SKU, 4)
                .await
                .is_success()
        );
        assert_eq!(app.stock(SKU).await, (INITIAL, 0), "{t:?}");
    }
}

#[tokio::test]
async fn tcc_try_confirm_and_try_cancel_move_available_and_frozen() {
    for t in BOTH {
        let app = spawn_app().await;
        let try1 = branch("tcc", "try");
        assert!(
            app.call(t, &HTTP_TRANS_OUT_TRY, &try1, SKU, 2)
                .await
                .is_success()
        );
        assert_eq!(app.stock(SKU).await, (INITIAL - 2, 2), "{t:?} after try");
        assert!(
            app.call(
                t,
                &HTTP_TRANS_OUT_CONFIRM,
                &with_op(&try1, "confirm"),
                SKU,
                2
            )
            .await
            .is_success()
        );
        assert_eq!(
            app.stock(SKU).await,
            (INITIAL - 2, 0),
            "{t:?} after confirm"
        );

        let try2 = branch("tcc", "try");
        assert!(
            app.call(t, &HTTP_TRANS_OUT_TRY, &try2, SKU, 3)
                .await
                .is_success()
        );
        assert_eq!(
            app.stock(SKU).await,
            (INITIAL - 5, 3),
            "{t:?} after second try"
        );
        assert!(
            app.call(t, &HTTP_TRANS_OUT_CANCEL, &with_op(&try2, "cancel"), SKU, 3)
                .await
                .is_success()
        );
        assert_eq!(app.stock(SKU).await, (INITIAL - 2, 0), "{t:?} after cancel");

        // A try asking for more than is available is FAILURE and freezes nothing.
        let a = app
            .call(t, &HTTP_TRANS_OUT_TRY, &branch("tcc", "try"), SKU, 100)
            .await;
        assert!(a.is_failure(), "{t:?}: {a:?}");
        assert_eq!(app.stock(SKU).await, (INITIAL - 2, 0));
    }
}

#[tokio::test]
async fn tcc_cancel_before_try_is_a_no_op() {
    for t in BOTH {
        let app = spawn_app().await;
        let try_ = branch("tcc", "try");
        assert!(
            app.call(t, &HTTP_TRANS_OUT_CANCEL, &with_op(&try_, "cancel"), SKU, 2)
                .await
                .is_success()
        );
        assert!(
            app.call(t, &HTTP_TRANS_OUT_TRY, &try_, SKU, 2)
                .await
                .is_success()
        );
        assert_eq!(app.stock(SKU).await, (INITIAL, 0), "{t:?}");
    }
}

/// The Go DTM server calls branches with the content type `application/grpc+dtm_raw`.
#[tokio::test]
async fn grpc_content_type_dtm_raw_is_served() {
    let app = spawn_app().await;
    let channel = tower::ServiceBuilder::new()
        .map_request(|mut req: http::Request<tonic::body::Body>| {
            req.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc+dtm_raw"),
            );
            req
        })
        .service(app.grpc.clone());
    let mut req = tonic::Request::new(StockRequest {
        sku: SKU.into(),
        quantity: 1,
    });
    branch("saga", "action")
        .to_metadata(req.metadata_mut())
        .expect("metadata");
    api::stock::v1::stock_client::StockClient::new(channel)
        .trans_out(req)
        .await
        .expect("dtm_raw call served");
    assert_eq!(app.stock(SKU).await, (INITIAL - 1, 0));
}

/// A well-formed call whose values the business refuses is a refusal, not a bad request: the
/// action answers FAILURE (its saga rolls back in the same round, where a 400 was retried for
/// ever), and its compensation, which carries the same payload, has nothing to undo.
#[tokio::test]
async fn invalid_sku_and_quantity_refuse_the_action_and_its_compensation_succeeds() {
    for t in BOTH {
        let app = spawn_app().await;
        for (sku, quantity, cause) in [
            ("", 1, "INVALID_SKU"),
            (SKU, 0, "INVALID_QUANTITY"),
            (SKU, -5, "INVALID_QUANTITY"),
            (SKU, stock::biz::MAX_QUANTITY + 1, "INVALID_QUANTITY"),
        ] {
            let action = branch("saga", "action");
            let a = app.call(t, &HTTP_TRANS_OUT, &action, sku, quantity).await;
            assert!(a.is_failure(), "{t:?} {sku:?} {quantity}: {a:?}");
            assert_eq!(a.cause(), cause, "{t:?}");
            let undo = with_op(&action, "compensate");
            let a = app
                .call(t, &HTTP_TRANS_OUT_COMPENSATE, &undo, sku, quantity)
                .await;
            assert!(a.is_success(), "{t:?} {sku:?} {quantity}: {a:?}");
        }
        assert_eq!(app.stock(SKU).await, (INITIAL, 0));
    }
}

#[tokio::test]
async fn missing_dtm_context_is_a_bad_request() {
    for t in BOTH {
        let app = spawn_app().await;
        let info = BranchInfo {
            branch_id: String::new(),
            ..branch("saga", "action")
        };
        let a = app.call(t, &HTTP_TRANS_OUT, &info, SKU, 1).await;
        assert!(a.is_bad_request("DTM_CONTEXT"), "{t:?}: {a:?}");
        assert_eq!(app.stock(SKU).await, (INITIAL, 0));
    }
}

/// Quantities are bounded, so a counter can neither overflow nor turn into a float: an absurd
/// quantity and a movement past the counter cap are both FAILURE, and the SKU stays readable.
#[tokio::test]
async fn huge_quantities_are_refused_and_the_sku_stays_readable() {
    for t in BOTH {
        let app = spawn_app().await;
        let a = app
            .call(t, &HTTP_TRANS_IN, &branch("saga", "action"), SKU, i64::MAX)
            .await;
        assert!(a.is_failure(), "{t:?}: {a:?}");
        assert_eq!(a.cause(), "INVALID_QUANTITY", "{t:?}");
        // A counter just below the cap: one more piece would pass it.
        sqlx::query("UPDATE stock SET available = ? WHERE sku = ?")
            .bind(stock::biz::MAX_COUNTER - 1)
            .bind(SKU)
            .execute(&app.db.pool)
            .await
            .expect("update");
        let a = app
            .call(t, &HTTP_TRANS_IN, &branch("saga", "action"), SKU, 2)
            .await;
        assert!(a.is_failure(), "{t:?}: {a:?}");
        assert_eq!(
            app.stock(SKU).await,
            (stock::biz::MAX_COUNTER - 1, 0),
            "{t:?}"
        );
    }
}
