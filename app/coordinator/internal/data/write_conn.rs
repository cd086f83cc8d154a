//! The connections a [`Writer`](super::Writer) commits on: a pooled sqlx connection
//! (PostgreSQL, MySQL) or a rusqlite connection of its own (SQLite), and the database errors
//! they report, sorted the way the writer needs (unique key or not).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dtmcli::Dialect;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};

use super::writer::{Arg, Stmt};
use crate::biz::StoreError;

/// A database error, as the writer sorts it. Cloneable (a failed COMMIT fails every write of
/// its batch), so the driver's own error is shared rather than owned.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    /// The database's message.
    pub message: String,
    /// A unique key refused the row.
    pub unique: bool,
    /// The driver's error, when there is one.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> StoreError {
        if e.unique {
            StoreError::Duplicate
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}

/// A connection the writer runs batches on. Implementations drop a broken connection on
/// [`WriteConn::reset`] and open a new one when next used.
#[async_trait::async_trait]
pub trait WriteConn: Send + 'static {
    /// Runs one statement; the rows it changed.
    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError>;
    /// Runs a statement without arguments (`BEGIN`, `COMMIT`, `SAVEPOINT w`, …).
    async fn raw(&mut self, sql: &str) -> Result<(), DbError>;
    /// The statement that starts a write transaction.
    fn begin(&self) -> &'static str {
        "BEGIN"
    }
    /// Forgets the connection after a failed transaction.
    fn reset(&mut self);
    /// Checked before each BEGIN and after each COMMIT, before anyone is answered: whether what
    /// is committed will still be there after a restart. An error fails the whole batch.
    fn durable(&mut self) -> Result<(), DbError> {
        Ok(())
    }
}

/// The writer's connection from an `sqlx` pool: PostgreSQL and MySQL (and SQLite on a pool a
/// test configured). Statements are prepared once per connection (sqlx caches them).
pub struct PoolConn {
    pool: AnyPool,
    conn: Option<PoolConnection<Any>>,
    dialect: Dialect,
}

impl PoolConn {
    /// The writer's connection will come from `pool`.
    pub fn new(pool: AnyPool, dialect: Dialect) -> PoolConn {
        PoolConn {
            pool,
            conn: None,
            dialect,
        }
    }

    async fn conn(&mut self) -> Result<&mut PoolConnection<Any>, DbError> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.acquire().await.map_err(sqlx_error)?);
        }
        self.conn.as_mut().ok_or_else(|| db_error("no connection"))
    }
}

#[async_trait::async_trait]
impl WriteConn for PoolConn {
    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        let mut q = sqlx::query(&stmt.sql);
        for arg in &stmt.args {
            q = match arg {
                Arg::Int(i) => q.bind(*i),
                Arg::OptInt(i) => q.bind(*i),
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::OptText(s) => q.bind(s.as_deref()),
                Arg::Blob(b) => q.bind(b.clone()),
            };
        }
        let conn = self.conn().await?;
        let done = q.execute(&mut **conn).await.map_err(sqlx_error)?;
        Ok(done.rows_affected())
    }

    async fn raw(&mut self, sql: &str) -> Result<(), DbError> {
        let conn = self.conn().await?;
        conn.execute(sql).await.map(drop).map_err(sqlx_error)
    }

    fn begin(&self) -> &'static str {
        match self.dialect {
            // Take the write lock at once: no upgrade from a read lock that could fail as busy.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres | Dialect::MySql => "BEGIN",
        }
    }

    fn reset(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Closed, not returned to the pool: it may still hold the failed transaction open.
            conn.close_on_drop();
        }
    }
}

/// The writer's SQLite connection, owned by the writer's thread: statements run right there,
/// prepared once and cached.
pub struct SqliteConn {
    path: PathBuf,
    full_sync: bool,
    conn: Option<rusqlite::Connection>,
    /// The device and inode of the file the connection opened.
    file: Option<(u64, u64)>,
}

impl SqliteConn {
    /// A connection to the database file at `path` (created and migrated already), opened when
    /// first used. `full_sync`: `synchronous = FULL`, an fsync at every commit, so that a
    /// committed batch survives a power loss too; otherwise `NORMAL`, where it survives a crash
    /// of the process (WAL mode), and the fsync comes at each checkpoint.
    pub fn new(path: &Path, full_sync: bool) -> SqliteConn {
        SqliteConn {
            path: path.to_owned(),
            full_sync,
            conn: None,
            file: None,
        }
    }

    /// The device and inode at `path` now.
    fn file_at_path(&self) -> std::io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.path)?;
        Ok((m.dev(), m.ino()))
    }

    fn conn(&mut self) -> Result<&mut rusqlite::Connection, DbError> {
        if self.conn.is_none() {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn =
                rusqlite::Connection::open_with_flags(&self.path, flags).map_err(sqlite_error)?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(sqlite_error)?;
            let sync = if self.full_sync { "FULL" } else { "NORMAL" };
            conn.pragma_update(None, "synchronous", sync)
                .map_err(sqlite_error)?;
            conn.set_prepared_statement_cache_capacity(64);
            self.file = Some(self.file_at_path().map_err(db_error)?);
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or_else(|| db_error("no connection"))
    }
}

#[async_trait::async_trait]
impl WriteConn for SqliteConn {
    async fn execute(&mut self, stmt: &Stmt) -> Result<u64, DbError> {
        let conn = self.conn()?;
        let mut prepared = conn.prepare_cached(&stmt.sql).map_err(sqlite_error)?;
        let changed = prepared
            .execute(rusqlite::params_from_iter(&stmt.args))
            .map_err(sqlite_error)?;
        Ok(changed as u64)
    }

    async fn raw(&mut self, sql: &str) -> Result<(), DbError> {
        self.conn()?.execute_batch(sql).map_err(sqlite_error)
    }

    fn begin(&self) -> &'static str {
        "BEGIN IMMEDIATE"
    }

    fn reset(&mut self) {
        // Closing rolls back whatever the connection had open.
        self.conn = None;
        self.file = None;
    }

    /// SQLite keeps writing into a file that was deleted (its directory removed) or replaced:
    /// the commit succeeds, and vanishes at the next start. So a commit counts only while the
    /// path still names the file the connection writes to.
    fn durable(&mut self) -> Result<(), DbError> {
        self.conn()?;
        match self.file_at_path() {
            Ok(now) if Some(now) == self.file => Ok(()),
            Ok(_) => Err(db_error(format!(
                "{} was replaced: a commit into the old file would be lost",
                self.path.display()
            ))),
            Err(e) => Err(db_error(format!(
                "{}: {e}: a commit into the deleted file would be lost",
                self.path.display()
            ))),
        }
    }
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Int(i) | Arg::OptInt(Some(i)) => ValueRef::Integer(*i),
            Arg::OptInt(None) | Arg::OptText(None) => ValueRef::Null,
            Arg::Text(s) | Arg::OptText(Some(s)) => ValueRef::Text(s.as_bytes()),
            Arg::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_error(e: rusqlite::Error) -> DbError {
    let unique = matches!(
        e.sqlite_error().map(|f| f.extended_code),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    );
    DbError {
        message: e.to_string(),
        unique,
        source: Some(Arc::new(e)),
    }
}

fn sqlx_error(e: sqlx::Error) -> DbError {
    DbError {
        unique: e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation()),
        message: e.to_string(),
        source: Some(Arc::new(e)),
    }
}

fn db_error(e: impl std::fmt::Display) -> DbError {
    DbError {
        message: e.to_string(),
        unique: false,
        source: None,
    }
}
