//! The branch side of XA (docs/dtm-protocol.md, XA): a branch does its work in a local
//! transaction that it *prepares* instead of committing, registers itself with the
//! coordinator, and later commits or rolls back when the coordinator calls it again.
//!
//! ```text
//! op action:   XA START xid | BEGIN                    (a connection of its own)
//!              barrier row (xa, gid, branch, action, 01, reason action)
//!              business
//!              registerBranch {url: phase2_url}         (at the `dtm` the client sent)
//!              XA END xid; XA PREPARE xid | PREPARE TRANSACTION xid
//! op commit:   XA COMMIT xid | COMMIT PREPARED xid      unknown xid: done already
//! op rollback: XA ROLLBACK xid | ROLLBACK PREPARED xid  unknown xid: never prepared or done
//!              then the barrier row with reason rollback, so a late action finds it and stops
//! ```
//!
//! The xid is DTM's: `<gid>-<branch_id>`. Any error before the prepare rolls the local
//! transaction back and the branch answers it (a FAILURE rolls the global transaction back).
//! SQLite has no XA: every call answers [`XaError::Unsupported`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use crate::barrier::{BarrierError, dialect_of, insert, reason_of};
use crate::client::{ClientError, Dtm};
use crate::{BranchInfo, Dialect, Op, Outcome, TransType};

/// The barrier row an XA action writes (its reason: `action` when it ran, `rollback` when the
/// rollback came first).
const ACTION: &str = Op::Action.as_str();
/// The reason of a barrier row the rollback wrote.
const ROLLBACK: &str = Op::Rollback.as_str();

/// Why an XA branch call did not do its part.
#[derive(Debug, thiserror::Error)]
pub enum XaError {
    /// The database has no XA (SQLite).
    #[error("XA needs MySQL/MariaDB or PostgreSQL; this branch's database is {0}")]
    Unsupported(&'static str),
    /// The call's DTM context cannot be an XA call (op, missing `dtm`/`phase2_url`, xid).
    #[error("bad XA call: {0}")]
    Context(String),
    /// The database failed; the local transaction was rolled back (before the prepare).
    #[error("XA database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The coordinator did not take the registration; the local transaction was rolled back.
    #[error("registering the XA branch: {0}")]
    Register(#[from] ClientError),
}

impl From<BarrierError> for XaError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::Db(e) => XaError::Db(e),
            other => XaError::Context(other.to_string()),
        }
    }
}

/// The answer of an XA branch call that failed. No XA, or a refused registration, is FAILURE:
/// the global transaction rolls back with that reason (a phase two never gets here with them:
/// a branch that did not register is never called again, and a FAILURE there is retried).
impl From<XaError> for kit::Error {
    fn from(e: XaError) -> Self {
        let failure = |cause: &str| {
            crate::BranchError::Failure {
                message: e.to_string(),
                cause: cause.into(),
            }
            .into()
        };
        match &e {
            XaError::Unsupported(_) => failure("XA_UNSUPPORTED"),
            XaError::Register(ClientError::Failure(_)) => failure("NOT_REGISTERED"),
            XaError::Context(_) => kit::Error::bad_request("DTM_CONTEXT", e.to_string()),
            XaError::Db(_) | XaError::Register(_) => kit::Error::internal(&e),
        }
    }
}

/// The most bytes of an xid MySQL takes (its `gtrid` part); PostgreSQL takes 200.
const MAX_XID: usize = 64;

/// Whether this call is an XA branch's phase two (op `commit` or `rollback`): it carries no
/// body, its prepared transaction holds the work.
pub(crate) fn is_phase_two(info: &BranchInfo) -> bool {
    info.trans_type == TransType::Xa && matches!(info.op, Op::Commit | Op::Rollback)
}

/// Phase two of an XA branch: op `commit` or `rollback` of its prepared local transaction.
/// Idempotent: an unknown xid (done already, or never prepared) is a success.
pub async fn phase_two(pool: &AnyPool, info: &BranchInfo) -> Result<Outcome<()>, XaError> {
    let mut conn = pool.acquire().await?;
    let dialect = xa_dialect(&conn)?;
    let xid = xid(info)?;
    let commit = match info.op {
        Op::Commit => true,
        Op::Rollback => false,
        op => return Err(XaError::Context(format!("op {op} is no XA phase two"))),
    };
    let sql = match (dialect, commit) {
        (Dialect::MySql, true) => format!("XA COMMIT '{xid}'"),
        (Dialect::MySql, false) => format!("XA ROLLBACK '{xid}'"),
        (_, true) => format!("COMMIT PREPARED '{xid}'"),
        (_, false) => format!("ROLLBACK PREPARED '{xid}'"),
    };
    // A plain string runs as a text query: MySQL refuses XA statements as prepared statements.
    let ended = match conn.execute(sql.as_str()).await {
        Ok(_) => true,
        Err(e) if is_unknown_xid(&e) => false,
        Err(e) => return Err(e.into()),
    };
    if commit {
        return Ok(if ended {
            Outcome::Applied(())
        } else {
            Outcome::Duplicate
        });
    }
    // The rollback's barrier row: an action still on its way finds it and does nothing.
    let mut tx = conn.begin().await?;
    if dialect == Dialect::Postgres {
        // An action still running holds this row's key until it prepares and is rolled back:
        // give up soon (the coordinator retries) rather than wait for ever.
        (&mut *tx).execute("SET LOCAL lock_timeout = '5s'").await?;
    }
    let inserted = insert(&mut tx, dialect, info, ACTION, "01", ROLLBACK).await?;
    tx.commit().await?;
    Ok(match (ended, inserted) {
        (true, _) => Outcome::Applied(()),
        (false, true) => Outcome::NullCompensation,
        (false, false) => Outcome::Duplicate,
    })
}

/// Op `action` (the only op with a business; [`crate::BranchDb::run`] sends phase two to
/// [`phase_two`]): the local transaction, prepared, and the branch registered. `Applied` when it
/// prepared; `Duplicate` when it had been done already; `Hanging` for an action arriving after
/// its rollback (its business does not run). An `Err` from `busi` rolls everything back and is
/// returned.
pub(crate) async fn prepare<E, F>(
    pool: &AnyPool,
    info: &BranchInfo,
    busi: F,
) -> Result<Outcome<()>, E>
where
    E: From<XaError>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(), E>>,
{
    if info.op != Op::Action {
        let op = info.op;
        return Err(XaError::Context(format!("op {op} (action, commit or rollback)")).into());
    }
    if info.dtm.is_empty() || info.phase2_url.is_empty() {
        return Err(XaError::Context(
            "an XA action needs `dtm` and `phase2_url` (sent by an XA client)".into(),
        )
        .into());
    }
    prepare_with(pool, info, register(info), busi).await
}

/// [`prepare`] with the registration of its caller's choosing, made after the business and
/// before the prepare: an XA branch registers its phase-two URL, a workflow's XA step records
/// that it reached the prepare (op `business`).
pub(crate) async fn prepare_with<E, F>(
    pool: &AnyPool,
    info: &BranchInfo,
    register: impl Future<Output = Result<(), ClientError>>,
    busi: F,
) -> Result<Outcome<()>, E>
where
    E: From<XaError>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(), E>>,
{
    let xid = xid(info)?;
    // A connection of its own, closed at the end: a call dropped half-way (the client went
    // away) closes it, and the database rolls back what was not prepared — a pooled
    // connection would go back to the pool inside an XA transaction.
    let options = pool.connect_options();
    let mut conn = AnyConnection::connect_with(&options)
        .await
        .map_err(XaError::from)?;
    let dialect = xa_dialect(&conn)?;
    let begin = match dialect {
        Dialect::MySql => format!("XA START '{xid}'"),
        _ => "BEGIN".to_owned(),
    };
    if let Err(e) = conn.execute(begin.as_str()).await {
        // MySQL: the xid is prepared already — this action was done.
        return if is_duplicate_xid(&e) {
            Ok(Outcome::Duplicate)
        } else {
            Err(XaError::from(e).into())
        };
    }
    let result = run(&mut conn, dialect, info, &xid, register, busi).await;
    if !matches!(result, Ok(Outcome::Applied(()))) {
        if dialect == Dialect::MySql {
            // Fails harmlessly when the prepare's own XA END ran already.
            let _ = conn.execute(format!("XA END '{xid}'").as_str()).await;
        }
        let rollback = match dialect {
            Dialect::MySql => format!("XA ROLLBACK '{xid}'"),
            _ => "ROLLBACK".to_owned(),
        };
        if let Err(e) = conn.execute(rollback.as_str()).await {
            // Closing the connection rolls back what was not prepared.
            tracing::warn!(xid, error = %e, "rolling back an XA branch");
        }
    }
    // Prepared (or rolled back): the transaction no longer needs this session.
    let _ = conn.close().await;
    result
}

/// Inside the local transaction: the barrier row, the business, the registration, the
/// prepare. Anything but `Applied` leaves the transaction for the caller to roll back.
async fn run<E, F>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    info: &BranchInfo,
    xid: &str,
    register: impl Future<Output = Result<(), ClientError>>,
    busi: F,
) -> Result<Outcome<()>, E>
where
    E: From<XaError>,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(), E>>,
{
    let inserted = insert(conn, dialect, info, ACTION, "01", ACTION)
        .await
        .map_err(XaError::from)?;
    if !inserted {
        // A committed row: this action was done and committed, or its rollback came first.
        let reason = reason_of(conn, dialect, info, ACTION, "01")
            .await
            .map_err(XaError::from)?;
        let outcome = if reason == ACTION {
            Outcome::Duplicate
        } else {
            Outcome::Hanging
        };
        tracing::info!(
            xid,
            outcome = outcome.as_str(),
            "XA barrier skips the business"
        );
        return Ok(outcome);
    }
    busi(conn).await?;
    register.await.map_err(XaError::from)?;
    let prepare = match dialect {
        Dialect::MySql => vec![format!("XA END '{xid}'"), format!("XA PREPARE '{xid}'")],
        _ => vec![format!("PREPARE TRANSACTION '{xid}'")],
    };
    for sql in prepare {
        conn.execute(sql.as_str()).await.map_err(XaError::from)?;
    }
    Ok(Outcome::Applied(()))
}

/// `registerBranch` of this branch at the coordinator the client named, over the API its
/// address names (`http(s)://…` HTTP, else gRPC), as DTM's SDKs do — trusting the caller's
/// address as they do, so an XA branch should be reachable by its clients only.
async fn register(info: &BranchInfo) -> Result<(), ClientError> {
    let dtm = coordinator(&info.dtm)?;
    dtm.register_branch(info, &[("url", &info.phase2_url)], &[])
        .await
}

/// One client per coordinator address, kept: building one (TLS roots, a channel) per branch
/// call would cost more than the call. Bounded, since the address comes from the request.
fn coordinator(addr: &str) -> Result<Dtm, ClientError> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Dtm>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(dtm) = clients.get(addr) {
        return Ok(dtm.clone());
    }
    if clients.len() >= 16 {
        clients.clear();
    }
    let dtm = Dtm::at(addr)?;
    clients.insert(addr.to_owned(), dtm.clone());
    Ok(dtm)
}

/// DTM's xid, `<gid>-<branch_id>`, checked to be safe inside a quoted SQL literal (XA
/// statements take no parameters) and short enough for MySQL.
fn xid(info: &BranchInfo) -> Result<String, XaError> {
    let xid = format!("{}-{}", info.gid, info.branch_id);
    let safe = xid
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'\\');
    if !safe || info.gid.is_empty() || info.branch_id.is_empty() || xid.len() > MAX_XID {
        return Err(XaError::Context(format!(
            "xid {xid:?} must be 1 to {MAX_XID} printable ASCII characters without quotes or backslashes"
        )));
    }
    Ok(xid)
}

fn xa_dialect(conn: &AnyConnection) -> Result<Dialect, XaError> {
    match dialect_of(conn)? {
        Dialect::Sqlite => Err(XaError::Unsupported("SQLite")),
        d => Ok(d),
    }
}

/// MySQL `XAER_NOTA` (SQLSTATE XAE04), PostgreSQL `undefined_object` (42704): no prepared
/// transaction has this xid.
fn is_unknown_xid(e: &sqlx::Error) -> bool {
    db_code(e).is_some_and(|c| c == "XAE04" || c == "42704")
}

/// MySQL `XAER_DUPID` (SQLSTATE XAE08): the xid exists already.
fn is_duplicate_xid(e: &sqlx::Error) -> bool {
    db_code(e).is_some_and(|c| c == "XAE08")
}

fn db_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(gid: &str, branch_id: &str) -> BranchInfo {
        BranchInfo {
            gid: gid.into(),
            branch_id: branch_id.into(),
            trans_type: TransType::Xa,
            op: Op::Action,
            dtm: String::new(),
            phase2_url: String::new(),
        }
    }

    #[test]
    fn xids_are_dtms_and_safe_to_quote() {
        assert_eq!(xid(&info("g1", "01")).unwrap(), "g1-01");
        assert!(xid(&info("g'; DROP TABLE t; --", "01")).is_err());
        assert!(xid(&info("g\\", "01")).is_err());
        assert!(xid(&info("g g", "01")).is_err());
        assert!(xid(&info(&"g".repeat(62), "01")).is_err());
        assert!(xid(&info(&"g".repeat(61), "01")).is_ok());
        assert!(xid(&info("", "01")).is_err());
    }
}
