//! A system without any CA certificate (a bare container image): the coordinator starts and
//! calls plain `http://` branches; only `https://` ones would fail, each with its own error —
//! nothing panics where the HTTP client loads the system's certificates.

use dtmcli::{Dtm, Saga};
use dtmtest::Process;
use dtmtest::script::ScriptServer;

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../app/coordinator/configs");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_without_ca_certificates_starts_and_calls_http_branches() {
    let dir = tempfile::tempdir().expect("temp dir");
    // rustls finds the system's certificates through these: an empty file and an empty directory.
    let (no_file, no_dir) = (dir.path().join("none.pem"), dir.path().join("certs"));
    std::fs::write(&no_file, "").expect("empty file");
    std::fs::create_dir(&no_dir).expect("empty dir");
    let store = format!("sqlite://{}/dtm.db", dir.path().display());
    let mut coordinator = Process::start_with(
        env!("CARGO_BIN_EXE_e2e-coordinator"),
        CONF,
        &[
            ("STORE_SOURCE", &store),
            ("HTTP_PORT", "0"),
            ("GRPC_PORT", "0"),
            ("LISTEN_IP", "127.0.0.1"),
            ("SSL_CERT_FILE", &no_file.display().to_string()),
            ("SSL_CERT_DIR", &no_dir.display().to_string()),
        ],
    );
    let branches = ScriptServer::start().await;
    Saga::new(
        &Dtm::http(&format!("{}/api/dtmsvr", coordinator.http)),
        "no-ca-saga",
    )
    .add(
        &branches.url("http", "a"),
        &branches.url("http", "a-undo"),
        "{}",
    )
    .wait_result(true)
    .submit()
    .await
    .expect("the saga succeeds over plain http");
    assert!(coordinator.terminate().success());
}
