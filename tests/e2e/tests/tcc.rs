//! TCC end to end, over both transports: PlaceOrder's TCC (stock.TransOutTry + order.TransInTry)
//! confirmed or cancelled, and a TCC left unfinished until its timeout.

use api::stock::v1 as stock_api;
use dtmcli::testing::BOTH;
use dtmcli::{Options, Tcc};
use e2e::{Stack, gid, stock_payload, table};

#[tokio::test]
async fn tcc_confirm_moves_frozen_stock_out_and_creates_the_order() {
    let s = Stack::start().await;
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (code, reply) = s.place_order(t, "MODE_TCC", "SKU-A", 4).await;
        assert_eq!(
            (code, reply["status"].as_str()),
            (200, Some("succeed")),
            "{t:?} {reply}"
        );
        let gid = reply["gid"].as_str().expect("gid");
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
        let order_id = reply["orderId"].as_str().expect("order id");
        assert_eq!(s.order_status(order_id).await.as_deref(), Some("CREATED"));
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn tcc_cancels_when_a_try_fails() {
    let s = Stack::start().await;
    for t in BOTH {
        // The stock try refuses: only branch 01 was registered; its cancel runs.
        let (code, reply) = s.place_order(t, "MODE_TCC", "SKU-B", 6).await;
        assert_eq!(
            (code, reply["status"].as_str()),
            (200, Some("failed")),
            "{t:?} {reply}"
        );
        let gid = reply["gid"].as_str().expect("gid");
        assert_eq!(
            s.branches(gid).await,
            table(&["01 cancel succeed", "01 confirm prepared"])
        );
        assert_eq!(s.stock_of("SKU-B").await, (5, 0));

        // The order try refuses after the stock try froze goods: both cancels run.
        let before = s.stock_of("SKU-A").await;
        let (code, reply) = s
            .place_order(t, "MODE_TCC", "SKU-A", e2e::MAX_QUANTITY + 1)
            .await;
        assert_eq!(
            (code, reply["status"].as_str()),
            (200, Some("failed")),
            "{t:?} {reply}"
        );
        let gid = reply["gid"].as_str().expect("gid");
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
        let order_id = reply["orderId"].as_str().expect("order id");
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
        let options = Options {
            timeout_to_fail: 30,
            ..Options::default()
        };
        let tcc = Tcc::begin(&s.dtm(t), &g, options).await.expect("prepare");
        tcc.call_branch(
            &stock_payload(t, "SKU-A", 2),
            &s.stock_url(t, &stock_api::HTTP_TRANS_OUT_TRY),
            &s.stock_url(t, &stock_api::HTTP_TRANS_OUT_CONFIRM),
            &s.stock_url(t, &stock_api::HTTP_TRANS_OUT_CANCEL),
        )
        .await
        .expect("try");
        // The client goes away without submit or abort.
        drop(tcc);
        assert_eq!(s.stock_of("SKU-A").await, (before.0 - 2, 2));
        s.clock.advance(std::time::Duration::from_secs(31));
        s.wait_status(&g, "failed").await;
        assert_eq!(
            s.query(&g).await["transaction"]["rollback_reason"],
            "Timeout after 30 seconds"
        );
        assert_eq!(
            s.branches(&g).await,
            table(&["01 cancel succeed", "01 confirm prepared"])
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
    }
    s.assert_invariant().await;
}
