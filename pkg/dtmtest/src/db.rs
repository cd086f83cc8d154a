//! A fresh, empty database per test on every backend the environment offers.

use sqlx::{AnyPool, Executor};

use dtmcli::Dialect;
use dtmcli::dialect::connect;

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

impl TestDb {
    /// The database as an app's `data.database` config.
    pub fn conf(&self) -> kit::DatabaseConf {
        kit::DatabaseConf {
            max_connections: 4,
            ..kit::DatabaseConf::new(self.dialect.driver(), self.url.clone())
        }
    }
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

/// A fresh database on `dialect`'s backend; `None` (with a printed reason) when its server is not
/// configured outside CI.
pub async fn database(dialect: Dialect) -> Option<TestDb> {
    match SERVERS.iter().find(|(d, _)| *d == dialect) {
        None => Some(sqlite().await),
        Some((_, var)) => match server_url(var) {
            Some(server) => Some(fresh(dialect, &server).await),
            None => None,
        },
    }
}

/// A Redis server for one test: its URL and a key prefix no other test uses.
pub struct TestRedis {
    /// `redis://…` from `TEST_REDIS_URL` (a cluster: seed nodes separated by commas).
    pub url: String,
    /// `{t<uuid>}`: a hash tag, like DTM's default `{a}`, so the keys share one slot (on a
    /// cluster `t<uuid>`, from which each shard makes its own tag).
    pub prefix: String,
}

/// Redis from `TEST_REDIS_URL`; `None` (with a printed reason) when unset outside CI.
pub fn redis() -> Option<TestRedis> {
    server_url("TEST_REDIS_URL").map(|url| TestRedis {
        url,
        prefix: format!("{{t{}}}", uuid::Uuid::new_v4().simple()),
    })
}

/// The Redis Cluster from `TEST_REDIS_CLUSTER_URL` (seed nodes separated by commas), with a
/// prefix `t<uuid>` that the store turns into one hash tag per shard; `None` (with a printed
/// reason) when unset outside CI.
pub fn redis_cluster() -> Option<TestRedis> {
    server_url("TEST_REDIS_CLUSTER_URL").map(|url| TestRedis {
        url,
        prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
    })
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
        _ => missing(format_args!(
            "the {var} backend: {var} is not set (deploy/ci/servers.sh starts one)"
        )),
    }
}

/// A part a test needs is not here: with `CI=true` a failure (CI must run every test, never skip
/// one silently), elsewhere a printed [`skip`] of `what`; `None` for the caller to return.
///
/// # Panics
/// When `CI=true`.
pub fn missing<T>(what: impl std::fmt::Display) -> Option<T> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true, but it would skip {what}");
    }
    skip(what);
    None
}

/// Says that a test skips `what`: on stderr, and as a line of the file `TEST_SKIP_LOG` names
/// (`make test` sets it and prints the count and the reasons at the end: a skipped test still
/// shows `ok`, and the summary must not overstate what ran).
pub fn skip(what: impl std::fmt::Display) {
    use std::io::Write;
    let line = format!("skipping {what}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("TEST_SKIP_LOG") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        // One write per line: concurrent tests append whole lines.
        if let Err(e) = file.and_then(|mut f| f.write_all(format!("{line}\n").as_bytes())) {
            eprintln!("TEST_SKIP_LOG: {e}");
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

/// The xids of the XA transactions prepared in `pool`'s database server that start with
/// `prefix` (an XA branch's xid is `<gid>-<branch_id>`): the ones still waiting for phase two.
/// Both servers list prepared transactions server-wide, so tests filter by their own gids.
pub async fn prepared_xids(pool: &AnyPool, dialect: Dialect, prefix: &str) -> Vec<String> {
    let rows = match dialect {
        Dialect::Sqlite => return Vec::new(),
        // A text query: MySQL refuses XA statements as prepared statements.
        Dialect::MySql => pool.fetch_all("XA RECOVER").await,
        Dialect::Postgres => {
            pool.fetch_all("SELECT gid AS data FROM pg_prepared_xacts")
                .await
        }
    };
    use sqlx::Row;
    rows.expect("list prepared XA transactions")
        .iter()
        .map(|r| {
            r.try_get::<String, _>("data").unwrap_or_else(|_| {
                String::from_utf8_lossy(&r.get::<Vec<u8>, _>("data")).into_owned()
            })
        })
        .filter(|xid| xid.starts_with(prefix))
        .collect()
}
