//! The order process SIGKILLed mid-workflow, over HTTP and gRPC, on the coordinator's store of
//! `E2E_STORE`: stock and order run as real processes; stock is stopped (SIGSTOP) so that
//! PlaceOrder's workflow hangs in its first step, the order process is killed there, stock goes
//! on (SIGCONT) — having applied the step or not — and a new order process on the same address
//! is resumed by the coordinator. Stock moves exactly once, one order row exists, and the
//! workflow ends `succeed`.

use std::time::Duration;

use api::order::v1 as order_api;
use base64::Engine;
use coordinator::biz::Clock;
use dtmtest::{Process, Transport};
use prost::Message;
use serde_json::{Value, json};
use sqlx::Row;

const STOCK_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../app/stock/configs");
const ORDER_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../app/order/configs");

#[tokio::test]
async fn an_order_process_killed_mid_workflow_is_resumed_and_moves_stock_once() {
    dtmtest::init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Clock::default();
    let conf = e2e::coordinator_conf(e2e::store_conf(&dir).await);
    let c = e2e::coordinator_app(&conf, clock.clone()).await;
    let dtm = format!("http://{}", c.http_addr());
    let dtm_grpc = c.grpc_addr().to_string();
    tokio::spawn(c.run_until(std::future::pending()));

    let stock_db = format!("sqlite://{}/stock.db", dir.path().display());
    let stock = Process::start_with(
        env!("CARGO_BIN_EXE_e2e-stock"),
        STOCK_CONF,
        &[("DB_SOURCE", stock_db.as_str())],
    );
    let order_db = format!("sqlite://{}/order.db", dir.path().display());
    // The order process's own addresses, fixed: its workflows are resumed there, by whichever
    // process serves them.
    let (http, grpc) = (free_addr().await, free_addr().await);
    let env = [
        ("DB_SOURCE", order_db.clone()),
        ("HTTP_ADDR", http.clone()),
        ("GRPC_ADDR", grpc.clone()),
        ("DTM_HTTP", format!("{dtm}/api/dtmsvr")),
        ("DTM_GRPC", dtm_grpc),
        ("STOCK_HTTP", stock.http.clone()),
        (
            "STOCK_GRPC",
            stock.grpc.trim_start_matches("http://").to_owned(),
        ),
        ("ORDER_HTTP", format!("http://{http}")),
        ("ORDER_GRPC", grpc.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let apples = || available(&stock_db, "SKU-APPLE");

    for (i, t) in [Transport::Http, Transport::Grpc].into_iter().enumerate() {
        let mut order = Process::start_with(env!("CARGO_BIN_EXE_e2e-order"), ORDER_CONF, &env);
        let before = apples().await;
        // Stock stops answering: the workflow's first step hangs.
        signal(&stock, "-STOP");
        let transport = match t {
            Transport::Http => "TRANSPORT_HTTP",
            Transport::Grpc => "TRANSPORT_GRPC",
        };
        let place = json!({"user_id": 7, "sku": "SKU-APPLE", "quantity": 3,
            "mode": "MODE_WORKFLOW", "transport": transport});
        let placing = tokio::spawn(
            reqwest::Client::new()
                .post(format!("{}/api/order/v1/orders", order.http))
                .json(&place)
                .send(),
        );
        // The workflow is prepared at the coordinator: the order process is in its steps.
        let mut workflows = Vec::new();
        dtmtest::eventually("the workflow is prepared", async || {
            workflows = prepared_workflows(&dtm).await;
            workflows.len() == 1
        })
        .await;
        let gid = workflows[0]["gid"].as_str().expect("gid").to_owned();
        let order_id = order_of(&workflows[0]);
        order.child.kill().expect("SIGKILL");
        order.child.wait().expect("reap");
        assert!(
            placing.await.expect("joined").is_err(),
            "the client lost its answer"
        );
        signal(&stock, "-CONT");
        assert_eq!(status(&dtm, &gid).await, "prepared", "{t:?}");

        // A new process on the same address; the coordinator resumes the workflow there.
        let _order = Process::start_with(env!("CARGO_BIN_EXE_e2e-order"), ORDER_CONF, &env);
        dtmtest::eventually(&format!("{gid} succeeds"), async || {
            clock.advance(Duration::from_secs(30));
            status(&dtm, &gid).await == "succeed"
        })
        .await;
        assert_eq!(
            apples().await,
            before - 3,
            "{t:?}: stock moved exactly once"
        );
        let rows = orders(&order_db).await;
        assert_eq!(
            rows.len(),
            i + 1,
            "{t:?}: one order row per PlaceOrder: {rows:?}"
        );
        assert!(
            rows.contains(&(order_id, "CREATED".to_owned())),
            "{t:?}: {rows:?}"
        );
    }
}

/// A free `127.0.0.1:<port>`.
async fn free_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Sends `sig` (`-STOP`, `-CONT`) to a process.
fn signal(p: &Process, sig: &str) {
    let pid = p.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill {sig} {pid}");
}

/// The unfinished workflows at the coordinator.
async fn prepared_workflows(dtm: &str) -> Vec<Value> {
    let url = format!("{dtm}/api/dtmsvr/all?status=prepared&transType=workflow");
    let v: Value = reqwest::get(url)
        .await
        .expect("all")
        .json()
        .await
        .expect("json");
    v["transactions"].as_array().cloned().unwrap_or_default()
}

/// The order id in a PlaceOrder workflow's input (its `custom_data`).
fn order_of(g: &Value) -> String {
    let custom: Value =
        serde_json::from_str(g["custom_data"].as_str().expect("custom_data")).expect("JSON");
    let input = base64::engine::general_purpose::STANDARD
        .decode(custom["data"].as_str().expect("data"))
        .expect("base64");
    order_api::OrderRequest::decode(input.as_slice())
        .expect("an OrderRequest")
        .order_id
}

async fn status(dtm: &str, gid: &str) -> String {
    e2e::statuses(dtm, &[gid.to_owned()]).await.remove(0)
}

/// A SKU's `available` in the stock process's database.
async fn available(db: &str, sku: &str) -> i64 {
    let pool = dtmcli::dialect::connect(db, 1).await.expect("stock db");
    let row = sqlx::query("SELECT available FROM stock WHERE sku = ?")
        .bind(sku)
        .fetch_one(&pool)
        .await
        .expect("stock row");
    row.get(0)
}

/// Every order row: (id, status).
async fn orders(db: &str) -> Vec<(String, String)> {
    let pool = dtmcli::dialect::connect(db, 1).await.expect("order db");
    let rows = sqlx::query("SELECT id, status FROM orders")
        .fetch_all(&pool)
        .await
        .expect("orders");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}
