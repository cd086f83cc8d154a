//! More connections than `MaxConnections`, held idle, PINGing or slow on both of the
//! coordinator's listeners, do not lock a fresh client out: each flood in turn, a fresh
//! `/api/ping` and a fresh gRPC health check answered within 1 s. Loopback only.

use dtmtest::flood;

mod support;

#[tokio::test(flavor = "multi_thread")]
async fn floods_of_connections_do_not_lock_fresh_clients_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/dtm.db", dir.path().display());
    let c = support::app(&support::bootstrap(&url), Default::default()).await;
    let (http, grpc) = (c.http_addr(), c.grpc_addr());
    tokio::spawn(c.run_until(std::future::pending()));
    let path = "/api/ping";
    flood::every_flood_leaves_fresh_clients_served(http, path, grpc).await;
}
