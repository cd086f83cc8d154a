//! [`TransStore`] over SQL (`sqlx::Any`): tables `trans_global` and `trans_branch_op` after DTM's
//! schema (docs/dtm-protocol.md, Storage), with times as Unix milliseconds (UTC, no zone to get wrong). The
//! statements are plain SQL with `?` placeholders, rewritten per dialect.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Connection, Row};

use crate::biz::{
    Branch, BranchStatus, Created, Global, Op, ScanPage, ScanQuery, Status, StatusChange,
    StoreError, TransStore, TransType,
};
use dtmcli::Dialect;

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite: the database file and its inode when opened, which the probe checks.
    file: Option<(PathBuf, u64)>,
}

const GLOBAL_COLUMNS: &str = "id, gid, trans_type, status, protocol, query_prepared, custom_data, \
     options, rollback_reason, create_time, update_time, finish_time, rollback_time, \
     next_cron_interval, next_cron_time, owner";

const BRANCH_COLUMNS: &str =
    "id, gid, url, bin_data, branch_id, op, status, create_time, update_time, finish_time";

/// The probe's row size: more than a page, so that it must allocate.
const PROBE_PAD: usize = 8 * 1024;

/// The statuses the poller drives.
const UNFINISHED: &str = "status IN ('prepared', 'submitted', 'aborting')";

impl SqlStore {
    /// A store over an open pool whose migrations have run.
    pub fn new(pool: AnyPool, dialect: Dialect) -> SqlStore {
        SqlStore {
            pool,
            dialect,
            file: None,
        }
    }

    /// Makes the probe also check that `path` is still the file this store writes to: SQLite
    /// keeps writing to a deleted (or replaced) file, and those writes vanish on restart.
    pub fn watching_file(mut self, path: &Path) -> std::io::Result<SqlStore> {
        let inode = std::fs::metadata(path)?.ino();
        self.file = Some((path.to_owned(), inode));
        Ok(self)
    }

    fn q<'q>(&self, sql: &'q str) -> std::borrow::Cow<'q, str> {
        self.dialect.sql(sql)
    }

    /// The rows of a new transaction in one transaction on `conn`.
    async fn create_on(
        &self,
        conn: &mut AnyConnection,
        g: &Global,
        branches: &[Branch],
    ) -> Result<Created, StoreError> {
        let options = serde_json::to_string(&g.options).map_err(backend)?;
        let mut tx = conn.begin().await.map_err(backend)?;
        let inserted = sqlx::query(&self.q(
            "INSERT INTO trans_global (gid, trans_type, status, protocol, query_prepared, custom_data, \
             options, rollback_reason, create_time, update_time, next_cron_interval, next_cron_time, owner) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&g.gid)
        .bind(g.trans_type.as_str())
        .bind(g.status.as_str())
        .bind(&g.protocol)
        .bind(&g.query_prepared)
        .bind(&g.custom_data)
        .bind(options)
        .bind(&g.rollback_reason)
        .bind(g.create_time)
        .bind(g.update_time)
        .bind(g.next_cron_interval)
        .bind(g.next_cron_time)
        .bind(&g.owner)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                return match self.find(&g.gid).await? {
                    Some(existing) => Ok(Created::Exists(Box::new(existing))),
                    None => Err(StoreError::Backend(format!("gid {} vanished", g.gid))),
                };
            }
            Err(e) => return Err(backend(e)),
        }
        self.insert_branches(&mut tx, branches)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Created::Inserted)
    }

    /// Branches added in one transaction on `conn`, while the global row is in `expected`.
    async fn add_branches_on(
        &self,
        conn: &mut AnyConnection,
        gid: &str,
        expected: Status,
        branches: &[Branch],
    ) -> Result<bool, StoreError> {
        let mut tx = conn.begin().await.map_err(backend)?;
        // Touching the global row first takes its write lock (SQL stores), so a concurrent
        // submit or abort cannot slip between the status check and the inserts.
        let locked =
            sqlx::query(&self.q(
                "UPDATE trans_global SET update_time = update_time WHERE gid = ? AND status = ?",
            ))
            .bind(gid)
            .bind(expected.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if locked.rows_affected() != 1 {
            return Ok(false);
        }
        match self.insert_branches(&mut tx, branches).await {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate),
            Err(e) => return Err(backend(e)),
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    /// A row of [`PROBE_PAD`] bytes inserted and deleted in one committed transaction: it needs
    /// a free page and a commit, so a full disk or a read-only file fails it.
    async fn probe_on(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let mut tx = conn.begin().await.map_err(backend)?;
        sqlx::query(&self.q("INSERT INTO store_probe (owner, pad) VALUES (?, ?)"))
            .bind(&owner)
            .bind(vec![0u8; PROBE_PAD])
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(&self.q("DELETE FROM store_probe WHERE owner = ?"))
            .bind(&owner)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_branches(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        branches: &[Branch],
    ) -> Result<(), sqlx::Error> {
        let sql = self.q("INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, status, create_time, update_time) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        for b in branches {
            sqlx::query(&sql)
                .bind(&b.gid)
                .bind(&b.url)
                .bind(b.bin_data.clone())
                .bind(&b.branch_id)
                .bind(b.op.as_str())
                .bind(b.status.as_str())
                .bind(b.create_time)
                .bind(b.update_time)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TransStore for SqlStore {
    async fn create(&self, g: &Global, branches: &[Branch]) -> Result<Created, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let created = self.create_on(&mut conn, g, branches).await;
        if created.is_err() {
            conn.close_on_drop();
        }
        created
    }

    async fn find(&self, gid: &str) -> Result<Option<Global>, StoreError> {
        let sql = format!("SELECT {GLOBAL_COLUMNS} FROM trans_global WHERE gid = ?");
        let row = sqlx::query(&self.q(&sql))
            .bind(gid)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| global(&r)).transpose()
    }

    async fn branches(&self, gid: &str) -> Result<Vec<Branch>, StoreError> {
        let sql = format!("SELECT {BRANCH_COLUMNS} FROM trans_branch_op WHERE gid = ? ORDER BY id");
        let rows = sqlx::query(&self.q(&sql))
            .bind(gid)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(branch).collect()
    }

    async fn change_status(&self, gid: &str, c: &StatusChange<'_>) -> Result<bool, StoreError> {
        let finish = c.to.is_final().then_some(c.now);
        let rollback = matches!(c.to, Status::Aborting | Status::Failed).then_some(c.now);
        let done = sqlx::query(
            &self.q("UPDATE trans_global SET status = ?, update_time = ?, \
             rollback_reason = COALESCE(?, rollback_reason), \
             finish_time = COALESCE(?, finish_time), rollback_time = COALESCE(rollback_time, ?) \
             WHERE gid = ? AND status = ?"),
        )
        .bind(c.to.as_str())
        .bind(c.now)
        .bind(c.rollback_reason)
        .bind(finish)
        .bind(rollback)
        .bind(gid)
        .bind(c.from.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_branches(
        &self,
        gid: &str,
        expected: Status,
        branches: &[Branch],
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let added = self
            .add_branches_on(&mut conn, gid, expected, branches)
            .await;
        if matches!(added, Err(StoreError::Backend(_))) {
            conn.close_on_drop();
        }
        added
    }

    async fn update_branch(
        &self,
        gid: &str,
        global_status: Status,
        branch_id: &str,
        op: Op,
        status: BranchStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.q(
            "UPDATE trans_branch_op SET status = ?, update_time = ?, finish_time = ? \
             WHERE gid = ? AND branch_id = ? AND op = ? \
             AND EXISTS (SELECT 1 FROM trans_global WHERE gid = ? AND status = ?)",
        ))
        .bind(status.as_str())
        .bind(now)
        .bind(now)
        .bind(gid)
        .bind(branch_id)
        .bind(op.as_str())
        .bind(gid)
        .bind(global_status.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn lease_due(
        &self,
        now: i64,
        lease_until: i64,
        owner: &str,
    ) -> Result<Option<Global>, StoreError> {
        // Pick a candidate, then take it with a guarded UPDATE: of several instances racing
        // for it, exactly one sees one affected row.
        let sql = format!(
            "SELECT id FROM trans_global WHERE {UNFINISHED} AND next_cron_time <= ? \
             ORDER BY next_cron_time LIMIT 1"
        );
        let Some(row) = sqlx::query(&self.q(&sql))
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get(0).map_err(backend)?;
        let sql = format!(
            "UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ? \
             WHERE id = ? AND {UNFINISHED} AND next_cron_time <= ?"
        );
        let taken = sqlx::query(&self.q(&sql))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        let sql = format!("SELECT {GLOBAL_COLUMNS} FROM trans_global WHERE id = ?");
        let row = sqlx::query(&self.q(&sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| global(&r)).transpose()
    }

    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next_cron_time: i64,
        next_cron_interval: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE trans_global SET next_cron_time = ?, \
             next_cron_interval = COALESCE(?, next_cron_interval), update_time = ? \
             WHERE gid = ? AND owner = ? AND {UNFINISHED}"
        );
        let done = sqlx::query(&self.q(&sql))
            .bind(next_cron_time)
            .bind(next_cron_interval)
            .bind(now)
            .bind(gid)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ? \
             WHERE gid = ? AND {UNFINISHED}"
        );
        let done = sqlx::query(&self.q(&sql))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(gid)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn scan(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        enum Arg<'a> {
            Int(i64),
            Text(&'a str),
        }
        let mut sql = format!("SELECT {GLOBAL_COLUMNS} FROM trans_global WHERE 1 = 1");
        let mut args = Vec::new();
        if let Some(p) = q.position.as_deref().filter(|p| !p.is_empty()) {
            let id: i64 = p
                .parse()
                .map_err(|_| StoreError::Backend(format!("bad position {p:?}")))?;
            sql.push_str(" AND id < ?");
            args.push(Arg::Int(id));
        }
        for (column, value) in [
            ("gid", &q.gid),
            ("status", &q.status),
            ("trans_type", &q.trans_type),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(Arg::Text(v));
            }
        }
        if let Some(t) = q.create_time_start {
            sql.push_str(" AND create_time >= ?");
            args.push(Arg::Int(t));
        }
        if let Some(t) = q.create_time_end {
            sql.push_str(" AND create_time <= ?");
            args.push(Arg::Int(t));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Arg::Int(i64::from(q.limit)));
        let sql = self.q(&sql);
        let mut query = sqlx::query(&sql);
        for a in args {
            query = match a {
                Arg::Int(i) => query.bind(i),
                Arg::Text(s) => query.bind(s),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(backend)?;
        let transactions = rows.iter().map(global).collect::<Result<Vec<_>, _>>()?;
        Ok(ScanPage::new(transactions, q.limit))
    }

    async fn reset_cron_time(
        &self,
        after: i64,
        now: i64,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        let pick = format!(
            "SELECT id FROM trans_global WHERE {UNFINISHED} AND next_cron_time > ? \
             ORDER BY id LIMIT ?"
        );
        let ids: Vec<i64> = sqlx::query(&self.q(&pick))
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let has_remaining = ids.len() > limit as usize;
        let mut count = 0;
        let sql = format!(
            "UPDATE trans_global SET next_cron_time = ?, update_time = ? \
             WHERE id = ? AND {UNFINISHED} AND next_cron_time > ?"
        );
        for id in ids.iter().take(limit as usize) {
            let done = sqlx::query(&self.q(&sql))
                .bind(now)
                .bind(now)
                .bind(id)
                .bind(after)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            count += done.rows_affected();
        }
        Ok((count, has_remaining))
    }

    async fn probe(&self) -> Result<(), StoreError> {
        if let Some((path, inode)) = &self.file {
            match std::fs::metadata(path) {
                Ok(m) if m.ino() == *inode => {}
                Ok(_) => return Err(backend(format!("{} was replaced", path.display()))),
                Err(e) => return Err(backend(format!("{}: {e}", path.display()))),
            }
        }
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let probed = self.probe_on(&mut conn).await;
        if probed.is_err() {
            conn.close_on_drop();
        }
        probed
    }

    async fn reset_next_cron_time(&self, gid: &str, now: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE trans_global SET next_cron_time = ?, update_time = ? WHERE gid = ? AND {UNFINISHED}"
        );
        let done = sqlx::query(&self.q(&sql))
            .bind(now)
            .bind(now)
            .bind(gid)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

fn global(r: &AnyRow) -> Result<Global, StoreError> {
    let text = |i: usize| text(r, i);
    let int = |i: usize| r.try_get::<i64, _>(i).map_err(backend);
    let opt = |i: usize| r.try_get::<Option<i64>, _>(i).map_err(backend);
    let trans_type = text(2)?;
    let status = text(3)?;
    let options = text(7)?;
    Ok(Global {
        id: int(0)?,
        gid: text(1)?,
        trans_type: TransType::parse(&trans_type)
            .ok_or_else(|| StoreError::Backend(format!("unknown trans_type {trans_type:?}")))?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}")))?,
        protocol: text(4)?,
        query_prepared: text(5)?,
        custom_data: text(6)?,
        options: serde_json::from_str(&options).unwrap_or_default(),
        rollback_reason: text(8)?,
        create_time: int(9)?,
        update_time: int(10)?,
        finish_time: opt(11)?,
        rollback_time: opt(12)?,
        next_cron_interval: int(13)?,
        next_cron_time: int(14)?,
        owner: text(15)?,
    })
}

fn branch(r: &AnyRow) -> Result<Branch, StoreError> {
    let text = |i: usize| text(r, i);
    let int = |i: usize| r.try_get::<i64, _>(i).map_err(backend);
    let op = text(5)?;
    let status = text(6)?;
    Ok(Branch {
        id: int(0)?,
        gid: text(1)?,
        url: text(2)?,
        bin_data: r
            .try_get::<Option<Vec<u8>>, _>(3)
            .map_err(backend)?
            .unwrap_or_default(),
        branch_id: text(4)?,
        op: Op::parse(&op).ok_or_else(|| StoreError::Backend(format!("unknown op {op:?}")))?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}")))?,
        create_time: int(7)?,
        update_time: int(8)?,
        finish_time: r.try_get::<Option<i64>, _>(9).map_err(backend)?,
    })
}

/// A text column. MySQL reports `TEXT` columns as BLOBs, which `sqlx::Any` will not decode as a
/// `String`; their bytes are UTF-8 text all the same.
fn text(r: &AnyRow, i: usize) -> Result<String, StoreError> {
    match r.try_get::<String, _>(i) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes = r.try_get::<Vec<u8>, _>(i).map_err(backend)?;
            String::from_utf8(bytes).map_err(backend)
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}
