//! The real binary, killed mid-transaction: SIGKILL while a branch answers ONGOING, restart on
//! the same SQLite file, and the saga finishes with each effect applied exactly once.

use dtmtest::script::{Reply, ScriptServer};
use dtmtest::{Process, eventually};
use serde_json::{Value, json};

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");

fn start(db: &str) -> Process {
    Process::start_with(
        env!("CARGO_BIN_EXE_coordinator"),
        CONF,
        &[
            ("STORE_SOURCE", db),
            ("HTTP_PORT", "0"),
            ("GRPC_PORT", "0"),
            ("LISTEN_IP", "127.0.0.1"),
            // Production timing, scaled down so that the test takes well under a second.
            ("TRANS_CRON_INTERVAL", "20ms"),
            ("RETRY_INTERVAL", "100ms"),
        ],
    )
}

async fn status(client: &reqwest::Client, dtm: &str, gid: &str) -> String {
    let v: Value = client
        .get(format!("{dtm}/api/dtmsvr/query?gid={gid}"))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    v["transaction"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_killed_coordinator_finishes_the_saga_after_restart() {
    let script = ScriptServer::start().await;
    script.plan("second", &[Reply::Ongoing; 1000]);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/dtm.db", dir.path().display());
    let client = reqwest::Client::new();

    let mut p = start(&db);
    let body = json!({
        "gid": "killed", "trans_type": "saga",
        "steps": [
            {"action": script.url("http", "first"), "compensate": script.url("http", "first-undo")},
            {"action": script.url("http", "second"), "compensate": script.url("http", "second-undo")},
        ],
        "payloads": ["{}", "{}"],
    });
    let res = client
        .post(format!("{}/api/dtmsvr/submit", p.http))
        .json(&body)
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status().as_u16(), 200);
    eventually("the second branch is retried", async || {
        script.calls("second").len() >= 2
    })
    .await;
    p.child.kill().expect("SIGKILL");
    p.child.wait().expect("wait");
    assert_eq!(script.successes("first"), 1);

    // The branch recovers while the coordinator is down; a new process takes over.
    script.plan("second", &[]);
    let p = start(&db);
    eventually("the saga finishes after the restart", async || {
        status(&client, &p.http, "killed").await == "succeed"
    })
    .await;
    assert_eq!(
        script.calls("first").len(),
        1,
        "a finished step is not called again"
    );
    assert_eq!(script.successes("second"), 1);
    assert!(script.calls("first-undo").is_empty() && script.calls("second-undo").is_empty());
}
