//! TCC end to end, over both transports: PlaceOrder's TCC (stock.TransOutTry + order.TransInTry)
//! confirmed or cancelled, and a TCC left unfinished until its timeout.

use api::stock::v1 as stock_api;
use dtmcli::{ClientError, Tcc};
use dtmtest::BOTH;
use e2e::Transport;
use e2e::{Stack, gid, stock_payload, table};

#[tokio::test]
async fn tcc_confirm_moves_frozen_stock_out_and_creates_the_order() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s.placed(t, "MODE_TCC", "SKU-A", 4, "succeed").await;
        // Rows per registration: cancel then confirm; confirms ran last-registered first.
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 cancel prepared",
                "01 confirm succeed",
                "02 cancel prepared",
                "02 confirm succeed"
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, (before.0 - 4, 0));
        assert_eq!(s.order_status(order_id).await.as_deref(), Some("CREATED"));
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn tcc_cancels_when_a_try_fails() {
    let s = Stack::start().await;
    for t in BOTH {
        // The stock try refuses: only branch 01 was registered; its cancel runs.
        let (gid, _) = &s.placed(t, "MODE_TCC", "SKU-B", 6, "failed").await;
        assert_eq!(
            s.branches(gid).await,
            table(&["01 cancel succeed", "01 confirm prepared"])
        );
        assert_eq!(s.stock_of("SKU-B").await, (5, 0));

        // The order try refuses after the stock try froze goods: both cancels run.
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s
            .placed(t, "MODE_TCC", "SKU-A", e2e::MAX_QUANTITY + 1, "failed")
            .await;
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 cancel succeed",
                "01 confirm prepared",
                "02 cancel succeed",
                "02 confirm prepared"
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
        assert_eq!(s.order_status(order_id).await, None);
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn tcc_left_prepared_is_cancelled_at_its_timeout() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let g = gid("tcc-timeout");
        // A client that dies between its try and the end of `run`: the closure parks after the
        // try, and its task is aborted.
        let (tried, mut tried_rx) = tokio::sync::mpsc::channel(1);
        let tcc = Tcc::new(&s.dtm(t), &g).timeout_to_fail(30);
        let (payload, [try_, confirm, cancel]) = try_branch(&s, t);
        let client = tokio::spawn(tcc.run(async move |tcc| {
            tcc.call_branch(&payload, &try_, &confirm, &cancel).await?;
            let _ = tried.send(()).await;
            std::future::pending::<Result<(), ClientError>>().await
        }));
        tried_rx.recv().await.expect("the try ran");
        client.abort();
        assert_eq!(s.stock_of("SKU-A").await, (before.0 - 2, 2));
        s.clock.advance(std::time::Duration::from_secs(31));
        assert_cancelled(&s, &g, "Timeout after 30 seconds", before).await;
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn a_tcc_closure_that_panics_is_aborted_and_its_tries_cancelled() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let g = gid("tcc-panic");
        let (payload, [try_, confirm, cancel]) = try_branch(&s, t);
        let run = Tcc::new(&s.dtm(t), &g)
            .wait_result(true)
            .run(async move |tcc| {
                tcc.call_branch(&payload, &try_, &confirm, &cancel).await?;
                panic!("the business panicked after its try");
            });
        let outcome: Result<Result<(), ClientError>, _> = tokio::spawn(run).await;
        assert!(outcome.expect_err("the panic goes on").is_panic());
        assert_cancelled(&s, &g, "the TCC closure panicked", before).await;
    }
    s.assert_invariant().await;
}

/// The TCC `g` (one stock try) rolled back for `reason`: its cancel ran, SKU-A is as `before`.
async fn assert_cancelled(s: &Stack, g: &str, reason: &str, before: (i64, i64)) {
    s.wait_status(g, "failed").await;
    assert_eq!(s.query(g).await["transaction"]["rollback_reason"], reason);
    assert_eq!(
        s.branches(g).await,
        table(&["01 cancel succeed", "01 confirm prepared"])
    );
    assert_eq!(s.stock_of("SKU-A").await, before);
}

/// The payload and URLs of stock's TCC branch (2 of SKU-A).
fn try_branch(s: &Stack, t: Transport) -> (Vec<u8>, [String; 3]) {
    let urls = [
        &stock_api::HTTP_TRANS_OUT_TRY,
        &stock_api::HTTP_TRANS_OUT_CONFIRM,
        &stock_api::HTTP_TRANS_OUT_CANCEL,
    ];
    (
        stock_payload(t, "SKU-A", 2),
        urls.map(|rule| s.stock_url(t, rule)),
    )
}
