//! A store server that comes up after the coordinator (compose and Kubernetes start everything at
//! once): start-up waits for it up to `Store.ConnectTimeout` instead of exiting, which Docker
//! would count as unhealthy; past that, or for an error that does not pass by itself, it fails.

use std::time::Duration;

use coordinator::conf::Store;
use dtmtest::LateServer;

mod support;

/// The coordinator's config on `store`, waiting `patience` for it.
fn conf(store: Store, patience: Duration) -> coordinator::conf::Bootstrap {
    let mut conf = support::bootstrap("sqlite::memory:");
    conf.store = Store {
        connect_timeout: patience,
        ..store
    };
    conf
}

/// Waits until `late` has closed `n` connections unserved: the coordinator is trying.
async fn tried(late: &LateServer, n: u32) {
    dtmtest::eventually_within(
        "start-up tries the store",
        Duration::from_secs(30),
        async || late.refused() >= n,
    )
    .await;
}

#[tokio::test]
async fn a_redis_cluster_that_comes_up_late_is_waited_for() {
    // The cluster client tries its seed nodes once (the single-node client retries for a few
    // seconds by itself): without the wait, start-up would fail at the first refusal.
    let Some(redis) = dtmtest::redis_cluster() else {
        return;
    };
    // In front of the first seed node; the cluster tells the client where the others are.
    let first = redis.url.split(',').next().expect("a node");
    let late = LateServer::start(first).await;
    let store = Store {
        redis_cluster: true,
        redis_prefix: redis.prefix.clone(),
        ..Store::new("redis", late.url())
    };
    let conf = conf(store, Duration::from_secs(60));
    let wiring = tokio::spawn(async move {
        let app = coordinator::wire(&conf, Default::default()).await?;
        anyhow::Ok((app, conf))
    });
    tried(&late, 2).await;
    assert!(
        !wiring.is_finished(),
        "start-up gave up while the store was down"
    );

    late.open();
    let (app, conf) = wiring
        .await
        .expect("joined")
        .expect("wired once Redis is up");
    let c = app.build(&conf.servers()).await.expect("build");
    let api = format!("http://{}/api/dtmsvr", c.http_addr());
    tokio::spawn(c.run_until(std::future::pending()));
    // It works: a transaction is written and read back through the store it waited for.
    let http = reqwest::Client::new();
    let gid = format!("late-{}", uuid::Uuid::new_v4().simple());
    let saga = serde_json::json!({"gid": gid, "trans_type": "saga", "steps": [], "payloads": []});
    let submitted = http.post(format!("{api}/submit")).json(&saga).send().await;
    assert_eq!(submitted.expect("submit").status(), 200);
    let query = http.get(format!("{api}/query?gid={gid}")).send().await;
    let body: serde_json::Value = query.expect("query").json().await.expect("json");
    assert_eq!(body["transaction"]["gid"], gid.as_str());
}

#[tokio::test]
async fn a_store_that_never_comes_up_fails_start_up_after_its_patience() {
    // Nothing listens behind it, and it is never opened.
    let late = LateServer::start("postgres://dtm:dtm@127.0.0.1:9/dtm").await;
    let pg = Store::new("postgres", late.url());
    // Long enough for a second try on a busy machine (the first pause is 100 ms).
    let conf = conf(pg, Duration::from_secs(2));
    let Err(err) = coordinator::wire(&conf, Default::default()).await else {
        panic!("start-up succeeded with no store");
    };
    assert!(err.to_string().starts_with("store: connect:"), "{err}");
    // It tried more than once before giving up.
    assert!(late.refused() >= 2, "{} tries", late.refused());
}

#[tokio::test]
async fn an_error_that_does_not_pass_by_itself_fails_start_up_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-database");
    std::fs::write(&file, b"this is not SQLite").expect("write");
    let sqlite = Store::new("sqlite", &format!("sqlite://{}", file.display()));
    // A patience no test waits for: only an error answered at once ends this within the bound.
    let conf = conf(sqlite, Duration::from_secs(3600));
    let wiring = coordinator::wire(&conf, Default::default());
    let answered = tokio::time::timeout(Duration::from_secs(60), wiring).await;
    let Err(err) = answered.expect("answered without waiting for the patience") else {
        panic!("start-up succeeded on a file that is not a database");
    };
    assert!(err.to_string().contains("not a database"), "{err}");
}
