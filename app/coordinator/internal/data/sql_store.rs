//! [`TransStore`] over SQL (`sqlx::Any`): tables `trans_global` and `trans_branch_op` after DTM's
//! schema (docs/dtm-protocol.md, Storage), with times as Unix milliseconds (UTC, no zone to get
//! wrong). The statements are plain SQL with `?` placeholders, rewritten per dialect.

use std::time::Duration;

use sqlx::AnyPool;

use super::sql_rows::{backend, branch, global, status_change};
use super::write_conn::PoolConn;
use super::writer::{Arg, Stmt, Write, WriteOutcome, Writer};
use crate::biz::{
    Backlog, Branch, BranchStatus, Created, Global, Leased, Op, Progress, ScanPage, ScanQuery,
    Status, StatusChange, StoreError, Topic, TransStore,
};
use crate::metrics::StoreMetrics;
use dtmcli::Dialect;
use kit::time::{UnixMs, millis};

/// The SQL store. Reads go to the pool; every write goes to the store's one [`Writer`], which
/// commits the writes waiting for it together (group commit) and answers each after the commit.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    pub(super) writer: Writer,
}

/// The columns [`global`] reads, in its order.
pub(super) const GLOBAL_COLUMNS: &str = "id, gid, trans_type, status, protocol, query_prepared, \
     custom_data, options, rollback_reason, create_time, update_time, finish_time, rollback_time, \
     next_cron_interval, next_cron_time, owner, COALESCE(result, '')";

/// The columns [`branch`] reads, in its order.
const BRANCH_COLUMNS: &str =
    "id, gid, url, bin_data, branch_id, op, status, create_time, update_time, finish_time";

/// The probe's row size: more than a page, so that it must allocate.
const PROBE_PAD: usize = 8 * 1024;

/// The statuses the poller drives.
pub(super) const UNFINISHED: &str = "status IN ('prepared', 'submitted', 'aborting')";

impl SqlStore {
    /// A store over an open pool whose migrations have run; its writers take up to half the
    /// pool's connections (one for SQLite), the rest serve reads. Call it inside a Tokio
    /// runtime (the writers are tasks). The writers' batches are counted in `metrics`.
    pub fn new(pool: AnyPool, dialect: Dialect, metrics: StoreMetrics) -> SqlStore {
        let writers = match dialect {
            Dialect::Sqlite => 1,
            Dialect::Postgres | Dialect::MySql => (pool.options().get_max_connections() / 2).max(1),
        };
        let conns = (0..writers)
            .map(|_| PoolConn::new(pool.clone(), dialect))
            .collect();
        SqlStore::with_writer(pool.clone(), dialect, Writer::spawn_many(conns, metrics))
    }

    /// A store whose writes go to `writer` (reads still to `pool`).
    pub fn with_writer(pool: AnyPool, dialect: Dialect, writer: Writer) -> SqlStore {
        SqlStore {
            pool,
            dialect,
            writer,
        }
    }

    /// `sql` with this dialect's placeholders.
    pub(super) fn q<'q>(&self, sql: &'q str) -> std::borrow::Cow<'q, str> {
        self.dialect.sql(sql)
    }

    /// A statement in this store's dialect.
    pub(super) fn stmt(&self, sql: &str, args: Vec<Arg>) -> Stmt {
        Stmt {
            sql: self.q(sql).into_owned(),
            args,
            guard: false,
        }
    }

    /// A guarded statement: the write stops (unmatched) if it changes no row.
    fn guard(&self, sql: &str, args: Vec<Arg>) -> Stmt {
        Stmt {
            guard: true,
            ..self.stmt(sql, args)
        }
    }

    /// One guarded statement as a write: `true` if it changed its row.
    pub(super) async fn cas(&self, sql: &str, args: Vec<Arg>) -> Result<bool, StoreError> {
        self.guarded(vec![self.guard(sql, args)]).await
    }

    /// A write whose first statement is its guard: `true` if the guard matched (and the rest
    /// ran), `false` if it matched nothing (and nothing ran).
    async fn guarded(&self, stmts: Vec<Stmt>) -> Result<bool, StoreError> {
        let write = Write {
            stmts,
            isolated: false,
        };
        Ok(self.writer.write(write).await? != WriteOutcome::Unmatched)
    }

    /// Multi-row inserts of `branches` (a few hundred rows per statement, well within every
    /// database's limit on placeholders).
    fn insert_branches(&self, branches: &[Branch]) -> Vec<Stmt> {
        const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
        branches
            .chunks(256)
            .map(|chunk| {
                let rows = vec![ROW; chunk.len()].join(", ");
                let sql = format!(
                    "INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, status, \
                     create_time, update_time, finish_time) VALUES {rows}"
                );
                let args = chunk
                    .iter()
                    .flat_map(|b| {
                        [
                            Arg::Text(b.gid.clone()),
                            Arg::Text(b.url.clone()),
                            Arg::Blob(b.bin_data.clone()),
                            Arg::Text(b.branch_id.clone()),
                            Arg::Text(b.op.as_str().to_owned()),
                            Arg::Text(b.status.as_str().to_owned()),
                            Arg::Int(b.create_time.0),
                            Arg::Int(b.update_time.0),
                            Arg::OptInt(b.finish_time.map(|t| t.0)),
                        ]
                    })
                    .collect();
                self.stmt(&sql, args)
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl TransStore for SqlStore {
    async fn create(&self, g: &Global, branches: &[Branch]) -> Result<Created, StoreError> {
        let options = serde_json::to_string(&g.options).map_err(backend)?;
        // PostgreSQL and SQLite skip a gid that exists (the insert is the write's guard);
        // MySQL has no such clause that keeps other errors errors (INSERT IGNORE does not), so
        // there the write runs in a savepoint and a duplicate gid fails it alone.
        let skip_existing = self.dialect != Dialect::MySql;
        let mut sql = String::from(
            "INSERT INTO trans_global (gid, trans_type, status, protocol, query_prepared, custom_data, \
             options, rollback_reason, create_time, update_time, next_cron_interval, next_cron_time, owner) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        if skip_existing {
            sql.push_str(" ON CONFLICT (gid) DO NOTHING");
        }
        let global = Stmt {
            guard: skip_existing,
            ..self.stmt(
                &sql,
                vec![
                    Arg::Text(g.gid.clone()),
                    Arg::Text(g.trans_type.as_str().to_owned()),
                    Arg::Text(g.status.as_str().to_owned()),
                    Arg::Text(g.protocol.clone()),
                    Arg::Text(g.query_prepared.clone()),
                    Arg::Text(g.custom_data.clone()),
                    Arg::Text(options),
                    Arg::Text(g.rollback_reason.clone()),
                    Arg::Int(g.create_time.0),
                    Arg::Int(g.update_time.0),
                    Arg::Int(millis(g.next_cron_interval)),
                    Arg::Int(g.next_cron_time.0),
                    Arg::Text(g.owner.clone()),
                ],
            )
        };
        let mut stmts = vec![global];
        stmts.extend(self.insert_branches(branches));
        let write = Write {
            stmts,
            isolated: !skip_existing,
        };
        match self.writer.write(write).await {
            Ok(WriteOutcome::Applied(_)) => Ok(Created::Inserted),
            Ok(WriteOutcome::Unmatched) | Err(StoreError::Duplicate) => {
                match self.find(&g.gid).await? {
                    Some(existing) => Ok(Created::Exists(Box::new(existing))),
                    None => Err(StoreError::Backend(
                        format!("gid {} vanished", g.gid).into(),
                    )),
                }
            }
            Err(e) => Err(e),
        }
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
        let (sql, args) = status_change(gid, c);
        self.cas(sql, args).await
    }

    async fn record(&self, p: &Progress<'_>) -> Result<bool, StoreError> {
        // The guard first: the status change itself, or a touch of the global row; the branch
        // rows after it, in the same transaction, so all of it is written or none.
        let (guard, mut args) = match &p.then {
            Some(change) => status_change(p.gid, change),
            None => (
                "UPDATE trans_global SET update_time = ? WHERE gid = ? AND status = ?",
                vec![
                    Arg::Int(p.now.0),
                    Arg::Text(p.gid.to_owned()),
                    Arg::Text(p.global_status.as_str().to_owned()),
                ],
            ),
        };
        // One row per branch, by its unique key; the gid is the guarded one.
        let update = |gid: &str| {
            format!(
                "UPDATE trans_branch_op SET status = ?, update_time = ?, finish_time = ? \
                 WHERE branch_id = ? AND op = ? AND gid = {gid}"
            )
        };
        let branch_args = |&(branch_id, op, status): &(&str, Op, BranchStatus)| {
            [
                Arg::Text(status.as_str().to_owned()),
                Arg::Int(p.now.0),
                Arg::Int(p.now.0),
                Arg::Text(branch_id.to_owned()),
                Arg::Text(op.as_str().to_owned()),
            ]
        };
        if self.dialect == Dialect::Postgres && !p.branches.is_empty() {
            // One statement, one round trip: each branch update reads the gid the guard
            // returned, so none runs when the guard changed nothing; single-row updates by
            // the unique key keep the plan an index lookup however small the table was when
            // the statement was prepared. The statement's result is the guard's row count.
            let mut sql = format!("WITH g AS ({guard} RETURNING gid)");
            for (i, b) in p.branches.iter().enumerate() {
                sql.push_str(&format!(", b{i} AS ({})", update("(SELECT gid FROM g)")));
                args.extend(branch_args(b));
            }
            sql.push_str(" SELECT 1 FROM g");
            return self.cas(&sql, args).await;
        }
        let mut stmts = vec![self.guard(guard, args)];
        for b in &p.branches {
            let mut args = branch_args(b).to_vec();
            args.push(Arg::Text(p.gid.to_owned()));
            stmts.push(self.stmt(&update("?"), args));
        }
        self.guarded(stmts).await
    }

    async fn add_branches(
        &self,
        gid: &str,
        expected: Status,
        branches: &[Branch],
    ) -> Result<bool, StoreError> {
        // The guard touches the global row first, which takes its write lock (SQL stores): a
        // concurrent submit or abort cannot slip between the status check and the inserts.
        let touch = self.guard(
            "UPDATE trans_global SET update_time = update_time WHERE gid = ? AND status = ?",
            vec![
                Arg::Text(gid.to_owned()),
                Arg::Text(expected.as_str().to_owned()),
            ],
        );
        let mut stmts = vec![touch];
        stmts.extend(self.insert_branches(branches));
        // Isolated: a branch registered already fails this write alone.
        let outcome = self
            .writer
            .write(Write {
                stmts,
                isolated: true,
            })
            .await?;
        Ok(outcome != WriteOutcome::Unmatched)
    }

    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        self.lease(now, lease_until, owner).await
    }

    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next_cron_time: UnixMs,
        next_cron_interval: Option<Duration>,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        self.schedule_next(gid, owner, next_cron_time, next_cron_interval, now)
            .await
    }

    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        self.take_over(gid, owner, lease_until, now).await
    }

    async fn scan(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        self.scan_page(q).await
    }

    async fn reset_cron_time(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        self.reset_due(after, now, limit).await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        // Through the writer: the probe proves that the connection every write takes can commit
        // — and, on SQLite, that the file it commits to is still the one at the path (the
        // writer checks that around every batch).
        let owner = uuid::Uuid::new_v4().to_string();
        let stmts = vec![
            self.stmt(
                "INSERT INTO store_probe (owner, pad) VALUES (?, ?)",
                vec![Arg::Text(owner.clone()), Arg::Blob(vec![0u8; PROBE_PAD])],
            ),
            self.stmt(
                "DELETE FROM store_probe WHERE owner = ?",
                vec![Arg::Text(owner)],
            ),
        ];
        self.writer
            .write(Write {
                stmts,
                isolated: false,
            })
            .await
            .map(drop)
    }

    async fn close(&self) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            // TRUNCATE: every page into the database file, and the log emptied.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        }
        // The writers hold pooled connections (PostgreSQL, MySQL) until they stop; the pool
        // closes once they are back.
        self.writer.stop();
        self.pool.close().await;
        Ok(())
    }

    async fn topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        self.read_topic(name).await
    }

    async fn put_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        self.write_topic(topic).await
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_topic(name).await
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.count_backlog().await
    }

    async fn reset_next_cron_time(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        self.reset_one_due(gid, now).await
    }
}
