//! XA end to end, over both transports: PlaceOrder's XA (stock.TransOutXa + order.TransInXa)
//! committed or rolled back, an XA left prepared until its timeout, the branch calls as DTM's
//! SDKs make them (phase two twice, a rollback before its action). XA needs MySQL/MariaDB or
//! PostgreSQL: these scenarios run in the matrix (`E2E_DB=postgres|mysql`) and say so on SQLite,
//! where `xa_is_refused_on_sqlite` checks the services' clear FAILURE instead.

use api::stock::v1 as stock_api;
use dtmcli::{ClientError, Dialect, Xa};
use dtmtest::BOTH;
use e2e::{Stack, Transport, gid, stock_payload, table};
use serde_json::json;

#[tokio::test]
async fn xa_prepares_both_branches_then_commits_them() {
    let Some(s) = xa_stack().await else { return };
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s.placed(t, "MODE_XA", "SKU-A", 4, "succeed").await;
        // Each branch registered itself (rows rollback then commit); the commits ran.
        assert_eq!(
            s.branches(gid).await,
            table(&[
                "01 rollback prepared",
                "01 commit succeed",
                "02 rollback prepared",
                "02 commit succeed"
            ])
        );
        assert_eq!(s.stock_of("SKU-A").await, (before.0 - 4, 0));
        assert_eq!(s.order_status(order_id).await.as_deref(), Some("CREATED"));
        assert_eq!(s.xa_prepared(gid).await, Vec::<String>::new());
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn xa_rolls_back_on_short_stock_and_on_the_order_rule() {
    let Some(s) = xa_stack().await else { return };
    for t in BOTH {
        // Stock refuses: its local transaction rolled back, nothing registered.
        let (gid, _) = &s.placed(t, "MODE_XA", "SKU-B", 6, "failed").await;
        assert_eq!(s.branches(gid).await, table(&[]));
        assert_eq!(s.stock_of("SKU-B").await, (5, 0));

        // The order refuses after stock prepared: stock's prepared transaction rolls back.
        let before = s.stock_of("SKU-A").await;
        let (gid, order_id) = &s
            .placed(t, "MODE_XA", "SKU-A", e2e::MAX_QUANTITY + 1, "failed")
            .await;
        assert_eq!(
            s.branches(gid).await,
            table(&["01 rollback succeed", "01 commit prepared"])
        );
        let reason = s.query(gid).await["transaction"]["rollback_reason"].to_string();
        assert!(reason.contains("above the limit"), "{reason}");
        assert_eq!(s.stock_of("SKU-A").await, before);
        assert_eq!(s.order_status(order_id).await, None);
        assert_eq!(s.xa_prepared(gid).await, Vec::<String>::new());
    }
    s.assert_invariant().await;
}

#[tokio::test]
async fn xa_left_prepared_rolls_back_at_its_timeout() {
    let Some(s) = xa_stack().await else { return };
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let g = gid("xa-timeout");
        // A client that dies after its branch prepared: the closure parks, its task is aborted.
        let (called, mut called_rx) = tokio::sync::mpsc::channel(1);
        let xa = Xa::new(&s.dtm(t), &g).timeout_to_fail(30);
        let (payload, url) = (
            stock_payload(t, "SKU-A", 2),
            s.stock_url(t, &stock_api::HTTP_TRANS_OUT_XA),
        );
        let client = tokio::spawn(xa.run(async move |xa| {
            xa.call_branch(&payload, &url).await?;
            let _ = called.send(()).await;
            std::future::pending::<Result<(), ClientError>>().await
        }));
        called_rx.recv().await.expect("the branch ran");
        client.abort();
        // Prepared: the goods are held by the database's lock, not yet gone.
        assert_eq!(s.xa_prepared(&g).await.len(), 1);
        assert_eq!(s.stock_of("SKU-A").await, before);
        s.clock.advance(std::time::Duration::from_secs(31));
        s.wait_status(&g, "failed").await;
        assert_eq!(
            s.query(&g).await["transaction"]["rollback_reason"],
            "Timeout after 30 seconds"
        );
        assert_eq!(
            s.branches(&g).await,
            table(&["01 rollback succeed", "01 commit prepared"])
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
        assert_eq!(s.xa_prepared(&g).await, Vec::<String>::new());
    }
    s.assert_invariant().await;
}

/// The branch as DTM's Go SDK calls it over HTTP: `dtm` and `phase2_url` in the query, phase
/// two as an empty POST — each op idempotent, and a rollback that overtakes its action stops it.
#[tokio::test]
async fn xa_branch_calls_are_idempotent_and_a_late_action_is_stopped() {
    let Some(s) = xa_stack().await else { return };
    let url = s.stock_url(Transport::Http, &stock_api::HTTP_TRANS_OUT_XA);
    let call = async |g: &str, op: &str| {
        let q = format!(
            "gid={g}&trans_type=xa&branch_id=01&op={op}&dtm={}&phase2_url={url}",
            s.dtm_http
        );
        let body = json!({"sku": "SKU-A", "quantity": 3});
        let body = if op == "action" { body } else { json!({}) };
        s.post(&format!("{url}?{q}"), body).await.0
    };
    let before = s.stock_of("SKU-A").await;

    // prepare → action → commit, commit again: one movement.
    let g = gid("xa-raw");
    let (code, v) = s
        .dtm_post("prepare", json!({"gid": g, "trans_type": "xa"}))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(call(&g, "action").await, 200);
    assert_eq!(s.xa_prepared(&g).await, vec![format!("{g}-01")]);
    assert_eq!(
        s.branches(&g).await,
        table(&["01 rollback prepared", "01 commit prepared"])
    );
    assert_eq!(call(&g, "commit").await, 200);
    assert_eq!(call(&g, "commit").await, 200);
    assert_eq!(s.stock_of("SKU-A").await, (before.0 - 3, 0));
    assert_eq!(s.xa_prepared(&g).await, Vec::<String>::new());
    // The coordinator's own phase two then finds nothing to do, and succeeds.
    let (code, v) = s
        .dtm_post(
            "submit",
            json!({"gid": g, "trans_type": "xa", "wait_result": true}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(s.status(&g).await, "succeed");

    // A rollback before its action (the client gave up on a slow branch): a null rollback,
    // then the late action is stopped by the barrier row — nothing prepared, nothing moved.
    let g = gid("xa-late");
    let (code, _) = s
        .dtm_post("prepare", json!({"gid": g, "trans_type": "xa"}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(call(&g, "rollback").await, 200);
    assert_eq!(call(&g, "rollback").await, 200);
    assert_eq!(call(&g, "action").await, 200);
    assert_eq!(s.xa_prepared(&g).await, Vec::<String>::new());
    assert_eq!(s.stock_of("SKU-A").await, (before.0 - 3, 0));
    assert_eq!(s.branches(&g).await, table(&[]));
    let (code, _) = s
        .dtm_post(
            "abort",
            json!({"gid": g, "trans_type": "xa", "wait_result": true}),
        )
        .await;
    assert_eq!(code, 200, "the abort reached its goal, failed");
    assert_eq!(s.status(&g).await, "failed");
}

/// SQLite has no XA: the stock branch answers FAILURE with a reason that says so, and
/// PlaceOrder's XA rolls back with nothing moved.
#[tokio::test]
async fn xa_is_refused_on_sqlite() {
    let s = Stack::start().await;
    if s.dialect() != Dialect::Sqlite {
        println!(
            "the SQLite refusal is checked in the plain run, not on {:?}",
            s.dialect()
        );
        return;
    }
    for t in BOTH {
        let before = s.stock_of("SKU-A").await;
        let (gid, _) = &s.placed(t, "MODE_XA", "SKU-A", 1, "failed").await;
        let reason = s.query(gid).await["transaction"]["rollback_reason"].to_string();
        assert!(
            reason.contains("XA needs MySQL/MariaDB or PostgreSQL"),
            "{t:?} {reason}"
        );
        assert_eq!(s.stock_of("SKU-A").await, before);
    }
    s.assert_invariant().await;
}

/// A stack whose services can run XA; `None`, saying so, on SQLite (the matrix runs these
/// scenarios on PostgreSQL and MariaDB, CI included).
async fn xa_stack() -> Option<Stack> {
    let s = Stack::start().await;
    if s.dialect() == Dialect::Sqlite {
        println!("XA needs PostgreSQL or MariaDB: this scenario runs with E2E_DB=postgres|mysql");
        return None;
    }
    Some(s)
}
