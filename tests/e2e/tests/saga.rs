//! Sagas end to end, over both transports: PlaceOrder's saga (stock.TransOut + order.TransIn)
//! and sagas with scripted branches for what real services cannot do on demand.

use api::order::v1 as order_api;
use api::stock::v1 as stock_api;
use dtmcli::{ClientError, Op, Saga};
use dtmtest::BOTH;
use dtmtest::script::Reply;
use e2e::{RETRY_INTERVAL, Stack, Transport, gid, order_payload, stock_payload, table};

#[tokio::test]
async fn saga_success_takes_stock_and_creates_the_order() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s.placed(t, "MODE_SAGA", "SKU-A", 3, "succeed").await;
        assert_eq!(s.status(gid).await, "succeed");
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 compensate prepared",
                "01 action succeed",
                "02 compensate prepared",
                "02 action succeed"
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, (before.0 - 3, 0));
        assert_eq!(s.order_status(order_id).await.as_deref(), Some("CREATED"));
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn saga_rolls_back_when_stock_is_short_and_stock_is_untouched() {
    let s = Stack::start().await;
    for t in BOTH {
        let (gid, order_id) = &s.placed(t, "MODE_SAGA", "SKU-B", 6, "failed").await;
        // The failed action is compensated too (it may have done something); step 2 never started.
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 compensate succeed",
                "01 action failed",
                "02 compensate prepared",
                "02 action prepared"
            ])
        );
        let reason = s.query(gid).await["transaction"]["rollback_reason"].to_string();
        assert!(reason.contains("not enough stock of SKU-B"), "{reason}");
        assert_eq!(s.stock_of("SKU-B").await, (5, 0));
        assert_eq!(s.order_status(order_id).await, None);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn saga_with_a_quantity_stock_refuses_fails_and_is_compensated_in_its_first_round() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        // Above stock's own cap on one movement: TransOut refuses the value (FAILURE, not a 400
        // the coordinator would retry for ever). `placed` waits for the first round's result.
        let quantity = stock::biz::MAX_QUANTITY + 1;
        let (gid, order_id) = &s.placed(t, "MODE_SAGA", "SKU-A", quantity, "failed").await;
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 compensate succeed",
                "01 action failed",
                "02 compensate prepared",
                "02 action prepared"
            ])
        );
        let reason = s.query(gid).await["transaction"]["rollback_reason"].to_string();
        assert!(reason.contains("quantity must be 1 to"), "{reason}");
        assert_eq!(s.stock_of("SKU-A").await, before);
        assert_eq!(s.order_status(order_id).await, None);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn saga_rolls_back_when_the_order_rule_fails_and_stock_is_restored() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        // Above the per-order limit: TransIn refuses, after TransOut took the goods.
        let (gid, order_id) = &s
            .placed(t, "MODE_SAGA", "SKU-A", e2e::MAX_QUANTITY + 1, "failed")
            .await;
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 compensate succeed",
                "01 action succeed",
                "02 compensate succeed",
                "02 action failed"
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
        assert_eq!(s.order_status(order_id).await, None);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn concurrent_saga_follows_its_orders() {
    let s = Stack::start().await;
    for t in BOTH {
        // Stock and a scripted branch concurrently; the order only after the stock step.
        let order_id = uuid::Uuid::new_v4().simple().to_string();
        let g = gid("con");
        Saga::new(&s.dtm(t), &g)
            .add(
                &s.stock_url(t, &stock_api::HTTP_TRANS_OUT),
                &s.stock_url(t, &stock_api::HTTP_TRANS_OUT_COMPENSATE),
                stock_payload(t, "SKU-A", 2),
            )
            .add(
                &s.script_url(t, "side"),
                &s.script_url(t, "side-undo"),
                b"{}".to_vec(),
            )
            .add(
                &s.order_url(t, &order_api::HTTP_TRANS_IN),
                &s.order_url(t, &order_api::HTTP_TRANS_IN_COMPENSATE),
                order_payload(t, &order_id, "SKU-A", 2),
            )
            .enable_concurrent()
            .add_branch_order(2, vec![0])
            .wait_result(true)
            .submit()
            .await
            .expect("concurrent saga");
        assert_eq!(
            s.branches(&g).await,
            table(&[
                "01 compensate prepared",
                "01 action succeed",
                "02 compensate prepared",
                "02 action succeed",
                "03 compensate prepared",
                "03 action succeed",
            ])
        );
        assert_eq!(s.order_status(&order_id).await.as_deref(), Some("CREATED"));

        // Stock short: step 0 fails, so step 2 (which waits for it) never starts.
        let order_id = uuid::Uuid::new_v4().simple().to_string();
        let g = gid("con-rollback");
        let r = Saga::new(&s.dtm(t), &g)
            .add(
                &s.stock_url(t, &stock_api::HTTP_TRANS_OUT),
                &s.stock_url(t, &stock_api::HTTP_TRANS_OUT_COMPENSATE),
                stock_payload(t, "SKU-B", 50),
            )
            .add(
                &s.order_url(t, &order_api::HTTP_TRANS_IN),
                &s.order_url(t, &order_api::HTTP_TRANS_IN_COMPENSATE),
                order_payload(t, &order_id, "SKU-B", 50),
            )
            .enable_concurrent()
            .add_branch_order(1, vec![0])
            .wait_result(true)
            .submit()
            .await;
        assert!(matches!(r, Err(ClientError::Failure(_))), "{r:?}");
        assert_eq!(
            s.branches(&g).await,
            table(&[
                "01 compensate succeed",
                "01 action failed",
                "02 compensate prepared",
                "02 action prepared"
            ])
        );
        assert_eq!(s.order_status(&order_id).await, None);
    }
    assert_eq!(s.script.successes("side"), 2);
    s.assert_invariant().await;
}

/// A 3-step saga: stock, a scripted step, the order.
fn three_steps(s: &Stack, t: Transport, g: &str, script: &str, order_id: &str) -> Saga {
    Saga::new(&s.dtm(t), g)
        .add(
            &s.stock_url(t, &stock_api::HTTP_TRANS_OUT),
            &s.stock_url(t, &stock_api::HTTP_TRANS_OUT_COMPENSATE),
            stock_payload(t, "SKU-A", 1),
        )
        .add(
            &s.script_url(t, script),
            &s.script_url(t, &format!("{script}-undo")),
            b"{}".to_vec(),
        )
        .add(
            &s.order_url(t, &order_api::HTTP_TRANS_IN),
            &s.order_url(t, &order_api::HTTP_TRANS_IN_COMPENSATE),
            order_payload(t, order_id, "SKU-A", 1),
        )
}

#[tokio::test]
async fn ongoing_then_success() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("slow-{t:?}");
        s.script.plan(&name, &[Reply::Ongoing]);
        let (g, order_id) = (gid("ongoing"), uuid::Uuid::new_v4().simple().to_string());
        let r = three_steps(&s, t, &g, &name, &order_id)
            .wait_result(true)
            .submit()
            .await;
        // Not final yet: ONGOING, not FAILURE.
        assert!(matches!(r, Err(ClientError::Ongoing(_))), "{r:?}");
        assert_eq!(s.status(&g).await, "submitted");
        assert_eq!(
            s.branches(&g).await[..4],
            table(&[
                "01 compensate prepared",
                "01 action succeed",
                "02 compensate prepared",
                "02 action prepared"
            ])[..]
        );
        s.clock.advance(RETRY_INTERVAL);
        s.wait_status(&g, "succeed").await;
        assert_eq!(s.script.calls(&name).len(), 2);
        assert_eq!(s.order_status(&order_id).await.as_deref(), Some("CREATED"));
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn an_erroring_branch_is_retried_with_backoff_until_it_succeeds() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("flaky-{t:?}");
        s.script.plan(&name, &[Reply::Error, Reply::Error]);
        let (g, order_id) = (gid("flaky"), uuid::Uuid::new_v4().simple().to_string());
        three_steps(&s, t, &g, &name, &order_id)
            .submit()
            .await
            .expect("submit");
        s.wait_until("first call", || s.script.calls(&name).len() == 1)
            .await;
        // The interval doubles per error: retried after 10 s, then 20 s. Waiting for the stored
        // interval also means the retry is scheduled before the clock moves.
        s.wait_interval(&g, 20).await;
        s.clock.advance(RETRY_INTERVAL);
        s.wait_interval(&g, 40).await;
        assert_eq!(s.script.calls(&name).len(), 2);
        assert_eq!(s.status(&g).await, "submitted");
        s.clock.advance(RETRY_INTERVAL * 2);
        s.wait_status(&g, "succeed").await;
        assert_eq!(s.script.calls(&name).len(), 3);
        assert_eq!(s.script.successes(&name), 1);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn retry_limit_exceeded_fails_the_saga() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("down-{t:?}");
        s.script.plan(&name, &[Reply::Error; 5]);
        let (g, order_id) = (gid("limit"), uuid::Uuid::new_v4().simple().to_string());
        let before = s.stock_of("SKU-A").await;
        let r = three_steps(&s, t, &g, &name, &order_id)
            .wait_result(true)
            .retry_limit(1)
            .submit()
            .await;
        let Err(ClientError::Failure(reason)) = r else {
            panic!("{r:?}")
        };
        assert!(
            reason.contains("RetryCount is greater than RetryLimit, RetryLimit: 1"),
            "{reason}"
        );
        assert_eq!(s.script.calls(&name).len(), 2);
        assert_eq!(
            s.branches(&g).await,
            table(&[
                "01 compensate succeed",
                "01 action succeed",
                "02 compensate succeed",
                "02 action prepared",
                "03 compensate prepared",
                "03 action prepared",
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn timeout_to_fail_rolls_the_saga_back() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("stuck-{t:?}");
        s.script.plan(&name, &[Reply::Ongoing; 100]);
        let (g, order_id) = (gid("timeout"), uuid::Uuid::new_v4().simple().to_string());
        let before = s.stock_of("SKU-A").await;
        let r = three_steps(&s, t, &g, &name, &order_id)
            .wait_result(true)
            .timeout_to_fail(60)
            .submit()
            .await;
        assert!(matches!(r, Err(ClientError::Ongoing(_))), "{r:?}");
        s.clock.advance(std::time::Duration::from_secs(61));
        s.wait_status(&g, "failed").await;
        let v = s.query(&g).await;
        assert_eq!(
            v["transaction"]["rollback_reason"],
            "Timeout after 60 seconds"
        );
        assert_eq!(
            s.branches(&g).await,
            table(&[
                "01 compensate succeed",
                "01 action succeed",
                "02 compensate succeed",
                "02 action prepared",
                "03 compensate prepared",
                "03 action prepared",
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn branch_headers_reach_every_branch_call_also_on_retry() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("headers-{t:?}");
        s.script.plan(&name, &[Reply::Ongoing]);
        let g = gid("headers");
        let r = Saga::new(&s.dtm(t), &g)
            .add(
                &s.script_url(t, &name),
                &s.script_url(t, "headers-undo"),
                b"{}".to_vec(),
            )
            .branch_header("x-tenant", "acme")
            .request_timeout(5)
            // The reply comes once the round is over and the retry is scheduled: only then may
            // the clock move (else the retry would be scheduled from the moved clock).
            .wait_result(true)
            .submit()
            .await;
        assert!(matches!(r, Err(ClientError::Ongoing(_))), "{r:?}");
        s.clock.advance(RETRY_INTERVAL);
        s.wait_status(&g, "succeed").await;
        let calls = s.script.calls(&name);
        assert_eq!(calls.len(), 2);
        for c in calls {
            assert_eq!(
                c.headers.get("x-tenant").map(String::as_str),
                Some("acme"),
                "{t:?}"
            );
            let info = c.info.as_ref().expect("DTM's context");
            assert_eq!((info.gid.as_str(), info.op), (g.as_str(), Op::Action));
        }
    }
}
