//! Two-phase messages end to end, over both transports: CancelOrder (do_and_submit), plain
//! submit, and a prepared message settled by the coordinator's check-back either way.

use api::order::v1 as order_api;
use api::stock::v1 as stock_api;
use dtmcli::{Msg, Op};
use dtmtest::BOTH;
use e2e::{Stack, TIMEOUT_TO_FAIL, Transport, gid, stock_payload, table};
use order::biz::{Change, OrderRepo, OrderStatus};

#[tokio::test]
async fn cancel_order_is_a_msg_that_returns_the_goods() {
    let s = Stack::start().await;
    let (_, placed) = s
        .place_order(Transport::Http, "MODE_SAGA", "SKU-A", 5)
        .await;
    let order_id = placed["orderId"].as_str().expect("order id");
    assert_eq!(s.stock_of("SKU-A").await, (95, 0));
    let (code, reply) = s.cancel_order(order_id).await;
    assert_eq!(
        (code, reply["status"].as_str()),
        (200, Some("succeed")),
        "{reply}"
    );
    let gid = reply["gid"].as_str().expect("gid");
    assert_eq!(s.branches(gid).await, table(&["01 action succeed"]));
    assert_eq!(s.order_status(order_id).await.as_deref(), Some("CANCELLED"));
    assert_eq!(s.stock_of("SKU-A").await, (100, 0));
    // A cancelled order cannot be cancelled again.
    let (code, reply) = s.cancel_order(order_id).await;
    assert_eq!(
        (code, reply["reason"].as_str()),
        (409, Some("ORDER_STATUS_CONFLICT"))
    );
    s.assert_invariant().await;
}

#[tokio::test]
async fn msg_submit_calls_every_action_once() {
    let s = Stack::start().await;
    for t in BOTH {
        let (a, b) = (format!("m1-{t:?}"), format!("m2-{t:?}"));
        let g = gid("msg");
        Msg::new(&s.dtm(t), &g)
            .add(&s.script_url(t, &a), b"{\"n\":1}".to_vec())
            .add(&s.script_url(t, &b), b"{\"n\":2}".to_vec())
            .wait_result(true)
            .submit()
            .await
            .expect("submit");
        assert_eq!(
            s.branches(&g).await,
            table(&["01 action succeed", "02 action succeed"])
        );
        let call = &s.script.calls(&b)[0];
        let info = call.info.as_ref().expect("DTM's context");
        assert_eq!((info.op, info.branch_id.as_str()), (Op::Action, "02"));
        assert_eq!(call.body, b"{\"n\":2}");
        assert_eq!((s.script.calls(&a).len(), s.script.calls(&b).len()), (1, 1));
    }
    s.assert_invariant().await;
}

/// A prepared msg whose application committed its local transaction (the order cancelled,
/// with the msg barrier) and then died before submit.
async fn prepared_cancel(s: &Stack, t: Transport, commit_locally: bool) -> (String, String) {
    let (_, placed) = s.place_order(t, "MODE_SAGA", "SKU-A", 2).await;
    let order_id = placed["orderId"].as_str().expect("order id").to_owned();
    let g = gid("check-back");
    let mut msg = Msg::new(&s.dtm(t), &g).add(
        &s.stock_url(t, &stock_api::HTTP_TRANS_IN),
        stock_payload(t, "SKU-A", 2),
    );
    msg.prepare(&s.order_url(t, &order_api::HTTP_QUERY_PREPARED))
        .await
        .expect("prepare");
    if commit_locally {
        let repo = order::data::SqlOrderRepo::new(s.order_data.clone());
        let change = Change::Transition {
            id: order_id.clone(),
            from: OrderStatus::Created,
            to: OrderStatus::Cancelled,
        };
        repo.apply(&msg.local_branch(), Ok(change))
            .await
            .expect("local transaction");
    }
    (g, order_id)
}

#[tokio::test]
async fn a_prepared_msg_is_submitted_when_the_check_back_says_committed() {
    let s = Stack::start().await;
    for t in BOTH {
        let (g, order_id) = prepared_cancel(&s, t, true).await;
        assert_eq!(s.status(&g).await, "prepared");
        s.clock.advance(TIMEOUT_TO_FAIL);
        s.wait_status(&g, "succeed").await;
        assert_eq!(s.branches(&g).await, table(&["01 action succeed"]));
        assert_eq!(
            s.order_status(&order_id).await.as_deref(),
            Some("CANCELLED")
        );
    }
    assert_eq!(s.stock_of("SKU-A").await, (100, 0));
    s.assert_invariant().await;
}

#[tokio::test]
async fn a_prepared_msg_fails_when_the_check_back_says_never_committed() {
    let s = Stack::start().await;
    for t in BOTH {
        let (g, order_id) = prepared_cancel(&s, t, false).await;
        s.clock.advance(TIMEOUT_TO_FAIL);
        s.wait_status(&g, "failed").await;
        assert_eq!(s.branches(&g).await, table(&["01 action prepared"]));
        assert_eq!(s.order_status(&order_id).await.as_deref(), Some("CREATED"));
    }
    assert_eq!(s.stock_of("SKU-A").await, (96, 0));
    s.assert_invariant().await;
}

#[tokio::test]
async fn do_and_submit_whose_local_transaction_fails_sends_nothing() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("never-{t:?}");
        let g = gid("local-fails");
        let r: Result<(), _> = Msg::new(&s.dtm(t), &g)
            .add(&s.script_url(t, &name), b"{}".to_vec())
            .do_and_submit(
                &s.order_url(t, &order_api::HTTP_QUERY_PREPARED),
                |_| async { Err::<(), _>("the local transaction rolled back") },
            )
            .await;
        assert!(
            matches!(r, Err(dtmcli::client::DoAndSubmitError::Busi(_))),
            "{r:?}"
        );
        // The check-back answered FAILURE, so the msg was aborted at once.
        assert_eq!(s.status(&g).await, "failed");
        assert_eq!(s.branches(&g).await, table(&["01 action prepared"]));
        assert!(s.script.calls(&name).is_empty());
    }
    s.assert_invariant().await;
}
