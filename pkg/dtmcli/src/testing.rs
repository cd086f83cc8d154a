//! Test databases (feature `testing`): a fresh, empty database per test on every backend the
//! environment offers. SQLite always; PostgreSQL when `TEST_PG_URL` is set and MySQL/MariaDB when
//! `TEST_MYSQL_URL` is set (URLs of a server and any existing database, used to create new ones).
//! Outside CI a missing variable skips that backend with a printed reason; with `CI=true` it fails.

use sqlx::{AnyPool, Executor};

use crate::Dialect;
use crate::dialect::connect;

/// One fresh database.
pub struct TestDb {
    /// Which backend.
    pub dialect: Dialect,
    /// Its URL.
    pub url: String,
    /// A pool on it.
    pub pool: AnyPool,
    _dir: Option<tempfile::TempDir>,
}

/// The server backends and the variables that name them.
const SERVERS: &[(Dialect, &str)] = &[
    (Dialect::Postgres, "TEST_PG_URL"),
    (Dialect::MySql, "TEST_MYSQL_URL"),
];

/// A fresh database on every available backend, SQLite first.
pub async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    for (dialect, var) in SERVERS {
        if let Some(server) = server_url(var) {
            dbs.push(fresh(*dialect, &server).await);
        }
    }
    dbs
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let pool = connect(&url, 8).await.expect("open SQLite");
    TestDb {
        dialect: Dialect::Sqlite,
        url,
        pool,
        _dir: Some(dir),
    }
}

/// The server URL in `var`; `None` (with a printed reason) when unset outside CI.
///
/// # Panics
/// When `var` is unset and `CI=true`: CI must run every backend, never skip one silently.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set but CI=true: start the servers with deploy/ci/servers.sh")
        }
        _ => {
            eprintln!(
                "skipping the {var} backend: {var} is not set (deploy/ci/servers.sh starts one)"
            );
            None
        }
    }
}

/// Creates database `t_<uuid>` on the server at `server` and connects to it.
async fn fresh(dialect: Dialect, server: &str) -> TestDb {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = connect(server, 1)
        .await
        .unwrap_or_else(|e| panic!("connect {server}: {e}"));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("create database on {server}: {e}"));
    admin.close().await;
    let (base, query) = server.split_once('?').map_or((server, ""), |(b, q)| (b, q));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    let url = if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    };
    let pool = connect(&url, 8)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    TestDb {
        dialect,
        url,
        pool,
        _dir: None,
    }
}
