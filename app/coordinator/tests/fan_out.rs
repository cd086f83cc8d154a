//! One transaction's branch calls are bounded by `BranchConcurrency`: a 2,000-step concurrent
//! saga finishes, never holding more than that many calls to its branches at once (unbounded it
//! opened 2,000 connections to one host and never got through). Loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coordinator::conf::Bootstrap;
use serde_json::{Value, json};

mod support;

/// Branch calls in flight now, and the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
}

/// A branch answering SUCCESS after a little while, counting how many calls overlap.
async fn counting_branch(seen: Arc<InFlight>) -> String {
    let answer = move || {
        let seen = seen.clone();
        async move {
            let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
            seen.most.fetch_max(now, Ordering::SeqCst);
            seen.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            seen.now.fetch_sub(1, Ordering::SeqCst);
            axum::Json(json!({"dtm_result": "SUCCESS"}))
        }
    };
    let router = axum::Router::new().route("/{op}", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_thousand_step_concurrent_saga_finishes_within_the_bound() {
    const STEPS: usize = 2000;
    const BOUND: usize = 16;
    let seen = Arc::new(InFlight::default());
    let branch = counting_branch(seen.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = Bootstrap {
        branch_concurrency: BOUND,
        ..support::bootstrap(&format!("sqlite://{}/dtm.db", dir.path().display()))
    };
    let c = support::app(&conf, Default::default()).await;
    let http = format!("http://{}", c.http_addr());
    tokio::spawn(c.run_until(std::future::pending()));

    let steps: Vec<Value> = (0..STEPS)
        .map(|_| json!({"action": format!("{branch}/action"), "compensate": format!("{branch}/compensate")}))
        .collect();
    let body = json!({
        "gid": "fan-out", "trans_type": "saga", "wait_result": true,
        "steps": steps, "payloads": vec!["{}"; STEPS],
        "custom_data": r#"{"concurrent":true}"#,
    });
    let res = reqwest::Client::new()
        .post(format!("{http}/api/dtmsvr/submit"))
        .json(&body)
        .send()
        .await
        .expect("submit");
    let status = res.status();
    assert_eq!(status, 200, "{:?}", res.text().await);
    let q: Value = reqwest::get(format!("{http}/api/dtmsvr/query?gid=fan-out"))
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(q["transaction"]["status"], "succeed");
    assert_eq!(seen.calls.load(Ordering::SeqCst), STEPS, "each action once");
    let most = seen.most.load(Ordering::SeqCst);
    assert!(
        (2..=BOUND).contains(&most),
        "{most} calls at once (the bound is {BOUND}, and the actions ran concurrently)"
    );
}
