//! The real binary with the shipped `configs/config.yaml`: it starts, answers `/healthz`, gRPC
//! health and reflection, lists orders, and stops cleanly on SIGTERM.

use dtmcli::testing::{Process, grpc_health, reflection_services};

#[tokio::test]
async fn binary_starts_with_the_shipped_config_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("order.db").display());
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    let mut p = Process::start(env!("CARGO_BIN_EXE_order"), conf, &db);

    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", p.http))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        grpc_health(&p.grpc, "api.order.v1.Order").await,
        1,
        "SERVING"
    );
    let services = reflection_services(&p.grpc).await;
    for s in [
        "api.order.v1.Order",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.iter().any(|x| x == s), "{s} not in {services:?}");
    }
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
