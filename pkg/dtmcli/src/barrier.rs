//! The sub-transaction barrier (docs/dtm-protocol.md, The barrier): one table, one unique key, and
//! a few inserts that run in the *same local transaction* as the branch's business write, so that
//! the three network anomalies of distributed transactions become harmless:
//!
//! - **duplicate request** — the branch's row is already there: skip the business;
//! - **null compensation** — a compensation (cancel) arrives for an action (try) that never ran:
//!   it inserts the action's row first, finds it absent, and does nothing;
//! - **hanging** — the action arrives after its compensation: the compensation inserted the
//!   action's row, so the action finds its row present and does nothing.
//!
//! ```text
//! call(tx, busi):
//!   origin op  = try for cancel, action for compensate/rollback
//!   origin     = insert-ignore (gid, branch_id, origin op, barrier_id)   -- compensations only
//!   current    = insert-ignore (gid, branch_id, op,        barrier_id)
//!   op == msg and current == 0          -> DUPLICATED (the check-back already decided)
//!   compensation and origin == 1        -> skip (null compensation), commit
//!   current == 0                        -> skip (duplicate or hanging), commit
//!   otherwise                           -> busi(tx); commit if Ok, roll back if Err
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};

use crate::dialect::Dialect;
use crate::{BranchInfo, Op};

/// The barrier of one branch call. A handler that makes several barrier calls in one branch
/// gets `barrier_id` `01`, `02`, … in call order, as DTM's SDKs do.
#[derive(Debug)]
pub struct BranchBarrier {
    info: BranchInfo,
    calls: AtomicU32,
}

/// What [`BranchBarrier::call`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The business ran and committed with the barrier rows.
    Applied(T),
    /// A compensation whose action never ran: nothing to undo.
    NullCompensation,
    /// This call already ran (a retry, a duplicate delivery): nothing to do.
    Duplicate,
    /// An action (or try) arriving after its compensation ran: it must not run now.
    Hanging,
}

impl<T> Outcome<T> {
    /// `applied`, `null_compensation`, `duplicate` or `hanging`: for log lines and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Applied(_) => "applied",
            Outcome::NullCompensation => "null_compensation",
            Outcome::Duplicate => "duplicate",
            Outcome::Hanging => "hanging",
        }
    }
}

/// What can go wrong inside the barrier itself.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The database failed; the local transaction was rolled back.
    #[error("barrier database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A msg local transaction whose check-back already ran (and so decided "rollback").
    #[error("DUPLICATED: the msg check-back already ran for this global transaction")]
    Duplicated,
    /// QueryPrepared: the msg's local transaction never committed, and now never will.
    #[error("the local transaction of this msg did not commit; it is rolled back")]
    RolledBack,
    /// The connection is not SQLite, PostgreSQL or MySQL.
    #[error("unsupported database {0}")]
    Unsupported(String),
}

impl From<BarrierError> for kit::Error {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::RolledBack => crate::BranchError::Failure {
                message: e.to_string(),
                cause: "ROLLED_BACK".into(),
            }
            .into(),
            BarrierError::Duplicated => kit::Error::new(409, "DUPLICATED", e.to_string()),
            BarrierError::Db(_) | BarrierError::Unsupported(_) => kit::Error::internal(&e),
        }
    }
}

/// Barrier outcomes counted by op and kind: `barrier_outcomes_total{op, outcome}` (how often
/// null compensations and hanging actions really happen is worth watching).
#[derive(Debug, Clone, Default)]
pub struct BarrierMetrics(Family<OutcomeLabels, Counter>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    op: String,
    outcome: &'static str,
}

impl BarrierMetrics {
    /// The family, registered in an app's metrics.
    pub fn register(metrics: &kit::metrics::Metrics) -> BarrierMetrics {
        let m = BarrierMetrics::default();
        metrics.register(
            "barrier_outcomes",
            "Branch calls through the barrier, by op and outcome",
            m.0.clone(),
        );
        m
    }

    /// Counts one barrier call of `op` that ended in `outcome`.
    pub fn observe<T>(&self, op: Op, outcome: &Outcome<T>) {
        self.0
            .get_or_create(&OutcomeLabels {
                op: op.as_str().to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }
}

/// The column list of every barrier insert.
const COLUMNS: &str = "trans_type, gid, branch_id, op, barrier_id, reason";

impl BranchBarrier {
    /// The barrier for the branch call described by `info`.
    pub fn new(info: BranchInfo) -> Self {
        BranchBarrier {
            info,
            calls: AtomicU32::new(0),
        }
    }

    /// The branch this barrier guards.
    pub fn info(&self) -> &BranchInfo {
        &self.info
    }

    /// Runs `busi` behind the barrier, in `tx`, and ends `tx` (commit or roll back).
    ///
    /// `busi` gets the transaction's connection; an `Err` from it rolls everything back (the
    /// barrier rows too, so a later retry or compensation sees a clean slate).
    pub async fn call<T, E, F>(
        &self,
        mut tx: Transaction<'_, Any>,
        busi: F,
    ) -> Result<Outcome<T>, E>
    where
        E: From<BarrierError>,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>>,
    {
        let barrier_id = format!("{:02}", self.calls.fetch_add(1, Ordering::Relaxed) + 1);
        let op = self.info.op.as_str();
        let dialect = dialect_of(&tx)?;

        // A compensation inserts its forward op's row first (docs/dtm-protocol.md, The barrier).
        let origin = self.info.op.undone();
        let origin_inserted = match origin {
            Some(o) => insert(&mut tx, dialect, &self.info, o.as_str(), &barrier_id, op).await?,
            None => false,
        };
        let current_inserted = insert(&mut tx, dialect, &self.info, op, &barrier_id, op).await?;

        if self.info.op == Op::Msg && !current_inserted {
            tx.rollback().await.map_err(BarrierError::from)?;
            return Err(BarrierError::Duplicated.into());
        }
        let skip = if origin.is_some() && origin_inserted {
            Some(Outcome::NullCompensation)
        } else if !current_inserted {
            // The row is there: this call's own (a duplicate), or put there by the
            // compensation that came first (its reason says which), and then this is a hanging
            // action.
            let reason = reason_of(&mut tx, dialect, &self.info, op, &barrier_id).await?;
            Some(if reason == op {
                Outcome::Duplicate
            } else {
                Outcome::Hanging
            })
        } else {
            None
        };
        if let Some(outcome) = skip {
            tracing::info!(gid = %self.info.gid, branch_id = %self.info.branch_id, op, outcome = outcome.as_str(), "barrier skips the business");
            tx.commit().await.map_err(BarrierError::from)?;
            return Ok(outcome);
        }

        match busi(&mut tx).await {
            Ok(v) => {
                tx.commit().await.map_err(BarrierError::from)?;
                Ok(Outcome::Applied(v))
            }
            Err(e) => {
                tx.rollback().await.map_err(BarrierError::from)?;
                Err(e)
            }
        }
    }
}

/// The `reason` of a barrier row: the op of the call that inserted it.
pub(crate) async fn reason_of(
    conn: &mut AnyConnection,
    dialect: Dialect,
    info: &BranchInfo,
    op: &str,
    barrier_id: &str,
) -> Result<String, BarrierError> {
    let sql = format!(
        "SELECT reason FROM {} WHERE gid = ? AND branch_id = ? AND op = ? AND barrier_id = ?",
        dialect.barrier_table()
    );
    Ok(sqlx::query_scalar(&dialect.sql(&sql))
        .bind(&info.gid)
        .bind(&info.branch_id)
        .bind(op)
        .bind(barrier_id)
        .fetch_one(conn)
        .await?)
}

/// The msg check-back (docs/dtm-protocol.md, The barrier): `Ok` if the msg's local transaction
/// committed, `RolledBack` if it did not — and, by inserting the `rollback` row first, makes sure
/// it never will.
pub async fn query_prepared(pool: &AnyPool, info: &BranchInfo) -> Result<(), BarrierError> {
    let mut conn = pool.acquire().await?;
    let dialect = dialect_of(&conn)?;
    let msg = BranchInfo {
        branch_id: "00".into(),
        ..info.clone()
    };
    let (op, rollback) = (Op::Msg.as_str(), Op::Rollback.as_str());
    insert(&mut conn, dialect, &msg, op, "01", rollback).await?;
    if reason_of(&mut conn, dialect, &msg, op, "01").await? == rollback {
        return Err(BarrierError::RolledBack);
    }
    Ok(())
}

/// Creates the barrier table (a migration of its own, run beside the app's migrations).
pub async fn migrate(pool: &AnyPool) -> Result<(), sqlx::migrate::MigrateError> {
    let conn = pool.acquire().await?;
    let dialect = Dialect::from_backend(conn.backend_name());
    drop(conn);
    let mut migrator = match dialect {
        Some(Dialect::Sqlite) => sqlx::migrate!("./migrations/sqlite"),
        Some(Dialect::Postgres) => sqlx::migrate!("./migrations/postgres"),
        Some(Dialect::MySql) => sqlx::migrate!("./migrations/mysql"),
        None => {
            return Err(sqlx::migrate::MigrateError::Source(
                "unsupported database".into(),
            ));
        }
    };
    // The app's own migrations share the `_sqlx_migrations` table.
    migrator.set_ignore_missing(true).run(pool).await
}

pub(crate) fn dialect_of(conn: &AnyConnection) -> Result<Dialect, BarrierError> {
    Dialect::from_backend(conn.backend_name())
        .ok_or_else(|| BarrierError::Unsupported(conn.backend_name().to_owned()))
}

/// Insert-ignore one barrier row; `true` if it was inserted (it was not there yet).
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    dialect: Dialect,
    info: &BranchInfo,
    op: &str,
    barrier_id: &str,
    reason: &str,
) -> Result<bool, BarrierError> {
    let sql = dialect.insert_ignore(dialect.barrier_table(), COLUMNS, "uniq_barrier");
    let done = sqlx::query(&sql)
        .bind(info.trans_type.as_str())
        .bind(&info.gid)
        .bind(&info.branch_id)
        .bind(op)
        .bind(barrier_id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
