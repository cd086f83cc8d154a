//! The real binary with the shipped `configs/config.yaml`: it starts, answers `/healthz`, gRPC
//! health and reflection, serves the seeded SKUs, and stops cleanly on SIGTERM.

use dtmtest::Process;

#[tokio::test]
async fn binary_starts_with_the_shipped_config_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("stock.db").display());
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    let mut p = Process::start(env!("CARGO_BIN_EXE_stock"), conf, &db);

    p.assert_serving("api.stock.v1.Stock").await;
    let client = reqwest::Client::new();
    let apple: serde_json::Value = client
        .get(format!("{}/api/stock/v1/stocks/SKU-APPLE", p.http))
        .send()
        .await
        .expect("get stock")
        .json()
        .await
        .expect("json");
    assert_eq!(
        apple["available"], 100,
        "seeded from configs/config.yaml: {apple}"
    );

    let status = p.terminate();
    assert!(status.success(), "exit status {status}");
}
