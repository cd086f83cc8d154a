//! The branch side in one call: a service's database ([`BranchDb`]) runs its business write the
//! way the call's DTM context says, and answers the msg check-back.
//!
//! ```text
//! run(info, input, write):
//!   XA commit / rollback         -> phase two of the prepared transaction (input not read:
//!                                   the call has no body, the prepared transaction holds it)
//!   input refused, call undoes   -> NullCompensation (the forward call was refused the same way)
//!   input refused                -> the refusal (FAILURE from an action, a retry from the rest)
//!   XA action                    -> write in a local transaction, registered and prepared
//!   saga, TCC, msg               -> write behind the barrier, in one local transaction
//! ```
//!
//! Go's SDK splits this between `BranchBarrier.Call` and `XaLocalTransaction`; a service here
//! calls [`BranchDb::run`] for every branch and keeps one write method. [`crate::xa`] does the
//! XA statements, [`crate::barrier`] the barrier rows.

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};

use crate::barrier::{self, BarrierError, BarrierMetrics, BranchBarrier, Outcome};
use crate::dialect::{Dialect, OpenError};
use crate::xa::{self, XaError};
use crate::{BranchInfo, TransType};

/// A service's database — pool, dialect, barrier table — shared by its repositories.
#[derive(Debug, Clone)]
pub struct BranchDb {
    /// Connection pool (SQLite, PostgreSQL or MySQL behind `sqlx::Any`).
    pub pool: AnyPool,
    /// Which of the three.
    pub dialect: Dialect,
    metrics: Option<BarrierMetrics>,
}

/// Why the SDK could not run a branch's local transaction (the business's own errors are the
/// service's: they come back as they are).
#[derive(Debug, thiserror::Error)]
pub enum BranchDbError {
    /// The barrier failed, or a msg check-back found its local transaction rolled back.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// An XA branch could not prepare or finish (no XA in this database, a bad call, the
    /// coordinator refused the registration).
    #[error(transparent)]
    Xa(#[from] XaError),
}

/// The answer to a branch call the SDK could not run: the barrier's and XA's own rules.
impl From<BranchDbError> for kit::Error {
    fn from(e: BranchDbError) -> Self {
        match e {
            BranchDbError::Barrier(e) => e.into(),
            BranchDbError::Xa(e) => e.into(),
        }
    }
}

/// What a branch call does with its input, decided before any database work: [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<T> {
    /// Run the business write with this input.
    Write(T),
    /// XA phase two: commit or roll back the prepared local transaction.
    PhaseTwo,
    /// Nothing to do; answer this outcome.
    Skip(Outcome<()>),
}

/// The rule for a call's input, without a database (a repository in memory follows it too):
/// an XA phase two needs none; an undo whose input is refused has nothing to undo (its forward
/// call carried the same input and was refused the same way, and answering SUCCESS ends what a
/// refusal would have the coordinator retry for ever); any other refused input is the error.
pub fn plan<T, E>(info: &BranchInfo, input: Result<T, E>) -> Result<Plan<T>, E> {
    if xa::is_phase_two(info) {
        return Ok(Plan::PhaseTwo);
    }
    match input {
        Ok(v) => Ok(Plan::Write(v)),
        Err(_) if info.undoes() => {
            tracing::info!(gid = %info.gid, branch_id = %info.branch_id, op = %info.op, "undo of a call refused for its input: nothing to undo");
            Ok(Plan::Skip(Outcome::NullCompensation))
        }
        Err(e) => Err(e),
    }
}

impl BranchDb {
    /// Opens the database of `conf` and runs the migrations: the barrier table's, then the
    /// service's own (`migrations` picks them for the dialect; [`crate::migrations!`] is the
    /// usual choice).
    pub async fn open(
        conf: &kit::DatabaseConf,
        migrations: impl FnOnce(Dialect) -> sqlx::migrate::Migrator,
    ) -> Result<BranchDb, OpenError> {
        let (pool, dialect) = crate::dialect::open(conf, migrations).await?;
        Ok(BranchDb::from_pool(pool, dialect))
    }

    /// A database already open and migrated (the barrier table: [`barrier::migrate`]).
    pub fn from_pool(pool: AnyPool, dialect: Dialect) -> BranchDb {
        BranchDb {
            pool,
            dialect,
            metrics: None,
        }
    }

    /// Counts every branch call's outcome in `metrics` (`barrier_outcomes_total{op, outcome}`).
    pub fn observed(mut self, metrics: &kit::metrics::Metrics) -> BranchDb {
        self.metrics = Some(BarrierMetrics::register(metrics));
        self
    }

    /// Runs one branch call, whatever its transaction type and op (see the module's table).
    /// `input` is the call's input as the service checked it; `write` the business write.
    pub async fn run<T, E, F>(
        &self,
        info: &BranchInfo,
        input: Result<T, E>,
        write: F,
    ) -> Result<Outcome<()>, E>
    where
        T: Send + 'static,
        E: From<BranchDbError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection, T) -> BoxFuture<'c, Result<(), E>>
            + Send
            + 'static,
    {
        let outcome = match plan(info, input)? {
            Plan::Skip(outcome) => outcome,
            Plan::PhaseTwo => xa::phase_two(&self.pool, info)
                .await
                .map_err(BranchDbError::from)?,
            Plan::Write(v) => {
                // The barrier and XA speak their own errors; the business's pass through them
                // wrapped.
                let busi = business(move |conn| {
                    Box::pin(async move { write(conn, v).await.map_err(Wrapped::Busi) })
                });
                let done = if info.trans_type == TransType::Xa {
                    xa::prepare(&self.pool, info, busi).await
                } else {
                    match self.pool.begin().await {
                        Ok(tx) => BranchBarrier::new(info.clone()).call(tx, busi).await,
                        Err(e) => Err(Wrapped::Sdk(BarrierError::from(e).into())),
                    }
                };
                done.map_err(Wrapped::unwrap)?
            }
        };
        if let Some(m) = &self.metrics {
            m.observe(info.op, &outcome);
        }
        Ok(outcome)
    }

    /// The msg check-back (op `msg` of a two-phase message): `Ok` if the msg's local transaction
    /// committed; a [`BarrierError::RolledBack`] if it did not, which it then never will.
    pub async fn query_prepared(&self, info: &BranchInfo) -> Result<(), BranchDbError> {
        Ok(barrier::query_prepared(&self.pool, info).await?)
    }
}

/// Names the closure's type as one for every connection lifetime (closures do not infer it).
fn business<R, F>(f: F) -> F
where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, R>,
{
    f
}

/// An error inside the barrier or XA: the business's own, or the SDK's.
enum Wrapped<E> {
    Busi(E),
    Sdk(BranchDbError),
}

impl<E: From<BranchDbError>> Wrapped<E> {
    /// The error the service sees.
    fn unwrap(self) -> E {
        match self {
            Wrapped::Busi(e) => e,
            Wrapped::Sdk(e) => e.into(),
        }
    }
}

impl<E> From<BarrierError> for Wrapped<E> {
    fn from(e: BarrierError) -> Self {
        Wrapped::Sdk(e.into())
    }
}

impl<E> From<XaError> for Wrapped<E> {
    fn from(e: XaError) -> Self {
        Wrapped::Sdk(e.into())
    }
}

/// The migrations of a service laid out as the template is — `migrations/sqlite`,
/// `migrations/postgres`, `migrations/mysql` beside its `Cargo.toml` — for [`BranchDb::open`].
#[macro_export]
macro_rules! migrations {
    () => {
        |d: $crate::Dialect| match d {
            $crate::Dialect::Sqlite => ::sqlx::migrate!("./migrations/sqlite"),
            $crate::Dialect::Postgres => ::sqlx::migrate!("./migrations/postgres"),
            $crate::Dialect::MySql => ::sqlx::migrate!("./migrations/mysql"),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;

    fn call(trans_type: TransType, op: Op) -> BranchInfo {
        BranchInfo {
            gid: "g".into(),
            trans_type,
            branch_id: "01".into(),
            op,
            dtm: String::new(),
            phase2_url: String::new(),
        }
    }

    #[test]
    fn the_plan_follows_the_call() {
        let bad: Result<u8, &str> = Err("bad");
        // XA phase two reads no input, valid or not.
        for op in [Op::Commit, Op::Rollback] {
            assert_eq!(plan(&call(TransType::Xa, op), bad), Ok(Plan::PhaseTwo));
        }
        // A refused input: nothing to undo backward, the refusal forward.
        for (t, op) in [
            (TransType::Saga, Op::Compensate),
            (TransType::Tcc, Op::Cancel),
        ] {
            assert_eq!(
                plan(&call(t, op), bad),
                Ok(Plan::Skip(Outcome::NullCompensation))
            );
        }
        for (t, op) in [
            (TransType::Saga, Op::Action),
            (TransType::Tcc, Op::Try),
            (TransType::Tcc, Op::Confirm),
            (TransType::Xa, Op::Action),
            (TransType::Msg, Op::Action),
        ] {
            assert_eq!(plan(&call(t, op), bad), Err("bad"), "{t} {op}");
            assert_eq!(plan(&call(t, op), Ok::<u8, &str>(7)), Ok(Plan::Write(7)));
        }
    }
}
