//! The real binary with the shipped `configs/config.yaml`: it starts, answers `/healthz`, gRPC
//! health and reflection, lists orders, and stops cleanly on SIGTERM.

use dtmtest::Process;

#[tokio::test]
async fn binary_starts_with_the_shipped_config_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("order.db").display());
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    let mut p = Process::start(env!("CARGO_BIN_EXE_order"), conf, &db);

    p.assert_serving("api.order.v1.Order").await;
    let client = reqwest::Client::new();
    let list = client
        .get(format!("{}/api/order/v1/orders", p.http))
        .send()
        .await
        .expect("list orders");
    assert_eq!(list.status().as_u16(), 200);
    let body: serde_json::Value = list.json().await.expect("json");
    assert_eq!(body["orders"], serde_json::json!([]), "{body}");

    let status = p.terminate();
    assert!(status.success(), "exit status {status}");
}
