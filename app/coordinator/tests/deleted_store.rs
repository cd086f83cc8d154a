//! A 2xx means committed where a restart finds it, also when the store's file goes away under
//! load: SQLite would go on committing into the deleted file, and those commits vanish at the
//! next start. And a clean stop leaves a `dtm.db` that is a whole copy on its own.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

mod support;

/// Prepares msgs (stored, no branch called) until `stop`; the gids answered 2xx, and how many
/// answers were errors.
async fn load(
    http: String,
    worker: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> usize {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let mut errors = 0;
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let gid = format!("w{worker}-{i}");
        let body = json!({
            "gid": gid, "trans_type": "msg", "steps": [{"action": "http://127.0.0.1:9/a"}],
            "payloads": ["{}"], "query_prepared": "http://127.0.0.1:9/q",
        });
        let sent = client
            .post(format!("{http}/api/dtmsvr/prepare"))
            .json(&body)
            .send();
        match sent.await {
            Ok(r) if r.status().is_success() => acked.lock().expect("acked").push(gid),
            _ => {
                errors += 1;
                // Refused: no need to hammer.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    errors
}

/// The `trans_global` rows of the SQLite file at `path` (opened read-only, alone).
async fn rows_in(path: &Path) -> i64 {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open copy");
    let n = sqlx::query("SELECT COUNT(*) FROM trans_global")
        .fetch_one(&pool)
        .await
        .expect("a self-contained copy")
        .get(0);
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn no_write_is_acknowledged_into_a_deleted_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store");
    std::fs::create_dir(&store).expect("store dir");
    let url = format!("sqlite://{}/dtm.db", store.display());
    let c = support::app(&support::bootstrap(&url), Default::default()).await;
    let http = format!("http://{}", c.http_addr());
    let stopped = Arc::new(tokio::sync::Notify::new());
    let done = stopped.clone();
    let app = tokio::spawn(c.run_until(async move { done.notified().await }));

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(load(http.clone(), w, stop.clone(), acked.clone())))
        .collect();
    let acked_count = || acked.lock().expect("acked").len();
    dtmtest::eventually("some writes are acknowledged", async || acked_count() > 200).await;

    // Under load: keep the files' inodes (hard links), then remove the directory.
    let keep = dir.path().join("keep");
    std::fs::create_dir(&keep).expect("keep dir");
    for name in ["dtm.db", "dtm.db-wal"] {
        std::fs::hard_link(store.join(name), keep.join(name)).expect("link");
    }
    std::fs::remove_dir_all(&store).expect("rm -rf");
    let at_deletion = acked_count();
    // The first refused write: from then on nothing more goes into the kept inodes, so a copy of
    // them is what a restart could ever have found. (Without the check, nothing is refused:
    // copy after 2 s, while acknowledgements go on.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let res = reqwest::Client::new()
            .post(format!("{http}/api/dtmsvr/prepare"))
            .json(&json!({"gid": "probe-after-rm", "trans_type": "tcc"}))
            .send()
            .await
            .expect("post");
        if res.status().is_server_error() {
            break;
        }
    }
    let snapshot = dir.path().join("snapshot");
    std::fs::create_dir(&snapshot).expect("snapshot dir");
    for name in ["dtm.db", "dtm.db-wal"] {
        std::fs::copy(keep.join(name), snapshot.join(name)).expect("copy");
    }
    // Load goes on against the deleted store until health, probed every second, sees it.
    dtmtest::eventually("health sees the deleted store", async || {
        reqwest::get(format!("{http}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut errors = 0;
    for w in workers {
        errors += w.await.expect("worker");
    }
    stopped.notify_one();
    app.await.expect("app").expect("stopped");

    // Restart on what the directory held when it was deleted.
    std::fs::rename(&snapshot, &store).expect("restore");
    let restarted =
        coordinator::data::open_store(&support::bootstrap(&url).store, Default::default())
            .await
            .expect("restart");
    let acked = acked.lock().expect("acked").clone();
    let mut missing = Vec::new();
    for gid in &acked {
        if restarted.find(gid).await.expect("find").is_none() {
            missing.push(gid.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged gids lost ({} acknowledged before the deletion, {errors} errors): {:?}",
        missing.len(),
        acked.len(),
        at_deletion,
        &missing[..missing.len().min(5)]
    );
    assert!(errors > 0, "writes after the deletion were refused");
}

#[tokio::test]
async fn a_clean_stop_leaves_a_self_contained_database_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dtm.db");
    let url = format!("sqlite://{}", path.display());
    let c = support::app(&support::bootstrap(&url), Default::default()).await;
    let http = format!("http://{}", c.http_addr());
    let app = tokio::spawn(c.run_until(async move {
        let client = reqwest::Client::new();
        for i in 0..20 {
            let res = client
                .post(format!("{http}/api/dtmsvr/prepare"))
                .json(&json!({"gid": format!("clean-{i}"), "trans_type": "tcc"}))
                .send()
                .await
                .expect("prepare");
            assert!(res.status().is_success());
        }
    }));
    // The app closes the store once it has stopped.
    app.await.expect("app").expect("stopped");
    // The database file alone, as a backup tool that ignores `-wal` would copy it.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).expect("copy");
    assert_eq!(rows_in(&copy).await, 20);
}
