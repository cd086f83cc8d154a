//! The SQLite file itself goes wrong: a file that is not a database, or one on a read-only file
//! system, fails start-up at once with SQLite's error (not "pool timed out" half a minute
//! later), and a store whose directory is deleted under it turns health NOT_SERVING
//! (SQLite would go on writing to the unlinked file, and every write would vanish on restart).

use std::time::Duration;

use coordinator::conf::Store;
use dtmtest::eventually;
use support::Tmpfs;

mod support;

/// Opens the store at `url`, which must fail well before the pool's 30 s timeout; the error.
async fn refused_at_once(url: &str) -> String {
    let opened = tokio::time::timeout(
        Duration::from_secs(10),
        coordinator::data::open_store(&Store::new("sqlite", url), Default::default()),
    )
    .await
    .expect("an answer well before the pool's 30 s timeout");
    opened.err().expect("refused").to_string()
}

#[tokio::test]
async fn a_file_that_is_not_a_database_fails_start_up_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dtm.db");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).expect("garbage");
    let url = format!("sqlite://{}", path.display());
    let e = refused_at_once(&url).await;
    assert!(e.contains("not a database"), "{e}");
}

#[tokio::test]
async fn a_store_on_a_read_only_file_system_fails_start_up_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mount) = Tmpfs::mount(dir.path(), "the read-only store test") else {
        return;
    };
    let url = format!("sqlite://{}/dtm.db", dir.path().display());
    // A database that worked, then its file system turned read-only.
    let pool = dtmcli::dialect::connect(&url, 1).await.expect("create");
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&pool)
        .await
        .expect("write");
    pool.close().await;
    mount.read_only();
    let e = refused_at_once(&url).await;
    assert!(!e.contains("timed out"), "{e}");
}

#[tokio::test]
async fn a_deleted_store_directory_turns_health_not_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let url = format!("sqlite://{}/dtm.db", data.display());
    let conf = support::bootstrap(&url);
    let c = support::app(&conf, Default::default()).await;
    let healthz = format!("http://{}/healthz", c.http_addr());
    tokio::spawn(c.run_until(std::future::pending()));
    let status = async || match reqwest::get(&healthz).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    };
    eventually("serving", async || status().await.0 == 200).await;
    std::fs::remove_dir_all(&data).expect("delete the store");
    eventually("NOT_SERVING once the file is gone", async || {
        let (code, body) = status().await;
        code == 503 && body.contains("dtm.db")
    })
    .await;
}
