//! A full store: submits answer errors and store nothing, health turns NOT_SERVING; once there is
//! room again the coordinator works and turns SERVING without a restart. Two ways to fill it:
//!
//! - SQLite's file capped with `PRAGMA max_page_count` and filled up (no root needed): writes fail
//!   as they allocate a page;
//! - a real full file system, a 16 MiB tmpfs (root only: CI runs as root; elsewhere the test says
//!   why it skips): writes fail at COMMIT, when SQLite has already rolled the transaction back —
//!   a pooled connection must not go on believing it is still in a transaction, acknowledging
//!   writes that were never stored.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coordinator::data::{DbError, SqlStore, SqliteConn, Stmt, WriteConn, Writer};
use dtmcli::Dialect;
use dtmtest::eventually_within;
use dtmtest::script::ScriptServer;
use serde_json::{Value, json};
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use support::Tmpfs;

mod support;

/// How the test fills the store's disk and frees it again.
enum Disk {
    /// `max_page_count` clamped while `full` holds, and a filler table.
    Capped {
        pool: sqlx::AnyPool,
        full: Arc<AtomicBool>,
    },
    /// A small tmpfs mounted at `dir`, and a filler file.
    Tmpfs { dir: PathBuf },
}

impl Disk {
    async fn fill(&self) {
        match self {
            Disk::Capped { pool, full } => {
                full.store(true, Ordering::SeqCst);
                let mut rows = 0;
                while sqlx::query("INSERT INTO filler (pad) VALUES (zeroblob(4096))")
                    .execute(pool)
                    .await
                    .is_ok()
                {
                    rows += 1;
                    assert!(rows < 100_000, "the cap does not hold");
                }
            }
            Disk::Tmpfs { dir } => {
                use std::io::Write;
                let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
                while f.write_all(&[0u8; 4096]).is_ok() {}
            }
        }
    }

    async fn free(&self) {
        match self {
            Disk::Capped { pool, full } => {
                full.store(false, Ordering::SeqCst);
                pool.execute("DELETE FROM filler").await.expect("free");
            }
            Disk::Tmpfs { dir } => std::fs::remove_file(dir.join("filler")).expect("free"),
        }
    }
}

#[tokio::test]
async fn a_store_whose_file_cannot_grow_refuses_writes_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dtm.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    // Every connection gets the cap of the moment: the pool's each time one leaves the pool,
    // the writer's at each BEGIN. The file may not grow while `full` holds (SQLite clamps the cap
    // to the current size).
    sqlx::any::install_default_drivers();
    let full = Arc::new(AtomicBool::new(false));
    let cap = full.clone();
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .before_acquire(move |conn, _| {
            let pragma = max_page_count(&cap);
            Box::pin(async move {
                conn.execute(pragma.as_str()).await?;
                Ok(true)
            })
        })
        .connect(&url)
        .await
        .expect("pool");
    pool.execute("PRAGMA journal_mode = WAL")
        .await
        .expect("wal");
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .expect("migrate");
    pool.execute("CREATE TABLE filler (pad BLOB)")
        .await
        .expect("filler");
    let writer = Capped {
        conn: SqliteConn::new(&path, false),
        full: full.clone(),
    };
    let writer = Writer::thread("capped-writer", writer, Default::default()).expect("writer");
    let store = Arc::new(SqlStore::with_writer(pool.clone(), Dialect::Sqlite, writer));
    let c = support::app(
        &support::bootstrap(&url),
        coordinator::Overrides {
            store: Some(store),
            ..Default::default()
        },
    )
    .await;
    full_store_scenario(c, Disk::Capped { pool, full }).await;
}

/// The store's own SQLite writer connection, capped as `full` says at every transaction.
struct Capped {
    conn: SqliteConn,
    full: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl WriteConn for Capped {
    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        self.conn.execute(stmt).await
    }

    async fn raw(&mut self, sql: &str) -> Result<(), DbError> {
        if sql.starts_with("BEGIN") {
            self.conn.raw(&max_page_count(&self.full)).await?;
        }
        self.conn.raw(sql).await
    }

    fn begin(&self) -> &'static str {
        self.conn.begin()
    }

    fn reset(&mut self) {
        self.conn.reset();
    }
}

fn max_page_count(full: &AtomicBool) -> String {
    let pages = if full.load(Ordering::SeqCst) {
        1
    } else {
        1 << 30
    };
    format!("PRAGMA max_page_count = {pages}")
}

#[tokio::test]
async fn a_store_on_a_full_file_system_refuses_writes_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(_mount) = Tmpfs::mount(dir.path(), "the full file system test") else {
        return;
    };
    let url = format!("sqlite://{}/dtm.db", dir.path().display());
    let c = support::app(&support::bootstrap(&url), Default::default()).await;
    full_store_scenario(
        c,
        Disk::Tmpfs {
            dir: dir.path().to_owned(),
        },
    )
    .await;
}

/// Fills the disk under a running coordinator, checks that nothing is acknowledged and health
/// turns NOT_SERVING, frees it, and checks that the coordinator works again.
async fn full_store_scenario(c: kit::App, disk: Disk) {
    let (http, grpc) = (c.http_addr(), format!("http://{}", c.grpc_addr()));
    let dtm = format!("http://{http}/api/dtmsvr");
    tokio::spawn(c.run_until(std::future::pending()));
    let script = ScriptServer::start().await;
    let client = reqwest::Client::new();
    let submit = async |gid: &str, wait: bool| {
        let body = json!({
            "gid": gid, "trans_type": "saga", "wait_result": wait,
            "steps": [{"action": script.url("http", "a"), "compensate": script.url("http", "c")}],
            // Larger than the free pages a full file may keep.
            "payloads": [json!({"pad": "x".repeat(200 * 1024)}).to_string()],
        });
        let res = client
            .post(format!("{dtm}/submit"))
            .json(&body)
            .send()
            .await
            .expect("submit");
        let code = res.status().as_u16();
        if code != 200 {
            eprintln!("{gid}: {code} {}", res.text().await.unwrap_or_default());
        }
        code
    };
    let stored = async |gid: &str| -> Value {
        let v: Value = client
            .get(format!("{dtm}/query?gid={gid}"))
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        v["transaction"]["status"].clone()
    };
    let healthz = async || {
        let res = client
            .get(format!("http://{http}/healthz"))
            .send()
            .await
            .expect("healthz");
        res.status().as_u16()
    };
    assert_eq!(submit("before", true).await, 200);

    disk.fill().await;
    for i in 0..10 {
        let gid = format!("full-{i}");
        let code = submit(&gid, i % 2 == 0).await;
        assert!(code >= 500, "{gid}: answered {code} with a full store");
        assert_eq!(stored(&gid).await, Value::Null, "{gid} is stored");
    }
    eventually_within(
        "health turns NOT_SERVING",
        Duration::from_secs(10),
        async || healthz().await == 503,
    )
    .await;
    assert_eq!(dtmtest::grpc_health(&grpc, "").await, 2, "gRPC NOT_SERVING");
    assert_eq!(
        script.calls("a").len(),
        1,
        "a branch of a refused submit was called"
    );

    // Room again: the operator frees space. No restart.
    disk.free().await;
    eventually_within(
        "health turns SERVING",
        Duration::from_secs(10),
        async || healthz().await == 200,
    )
    .await;
    for (i, wait) in [true, false, true, false].into_iter().enumerate() {
        let gid = format!("after-{i}");
        assert_eq!(submit(&gid, wait).await, 200);
        eventually_within("the saga finishes", Duration::from_secs(10), async || {
            stored(&gid).await == "succeed"
        })
        .await;
    }
    for i in 0..10 {
        assert_eq!(stored(&format!("full-{i}")).await, Value::Null);
    }
}
