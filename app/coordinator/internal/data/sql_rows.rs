//! The SQL store's rows: reading `trans_global` and `trans_branch_op` rows back, and the guarded
//! status change every write path shares.

use std::time::Duration;

use kit::time::UnixMs;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::writer::Arg;
use crate::biz::{Branch, BranchStatus, Global, Op, Status, StatusChange, StoreError, TransType};

/// A `trans_global` row, columns in `GLOBAL_COLUMNS` order.
pub(super) fn global(r: &AnyRow) -> Result<Global, StoreError> {
    let text = |i: usize| text(r, i);
    let int = |i: usize| r.try_get::<i64, _>(i).map_err(backend);
    let opt = |i: usize| r.try_get::<Option<i64>, _>(i).map_err(backend);
    let trans_type = text(2)?;
    let status = text(3)?;
    let gid = text(1)?;
    let options = super::stored_options(&gid, &text(7)?)?;
    Ok(Global {
        id: int(0)?,
        gid,
        trans_type: TransType::parse(&trans_type).ok_or_else(|| {
            StoreError::Backend(format!("unknown trans_type {trans_type:?}").into())
        })?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}").into()))?,
        protocol: text(4)?,
        query_prepared: text(5)?,
        custom_data: text(6)?,
        options,
        rollback_reason: text(8)?,
        create_time: UnixMs(int(9)?),
        update_time: UnixMs(int(10)?),
        finish_time: opt(11)?.map(UnixMs),
        rollback_time: opt(12)?.map(UnixMs),
        next_cron_interval: Duration::from_millis(u64::try_from(int(13)?).unwrap_or(0)),
        next_cron_time: UnixMs(int(14)?),
        owner: text(15)?,
        result: text(16)?,
    })
}

/// A `trans_branch_op` row, columns in `BRANCH_COLUMNS` order.
pub(super) fn branch(r: &AnyRow) -> Result<Branch, StoreError> {
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
        op: Op::parse(&op)
            .ok_or_else(|| StoreError::Backend(format!("unknown op {op:?}").into()))?,
        status: BranchStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}").into()))?,
        create_time: UnixMs(int(7)?),
        update_time: UnixMs(int(8)?),
        finish_time: r.try_get::<Option<i64>, _>(9).map_err(backend)?.map(UnixMs),
    })
}

/// A text column. MySQL reports `TEXT` columns as BLOBs, which `sqlx::Any` will not decode as a
/// `String`; their bytes are UTF-8 text all the same.
pub(super) fn text(r: &AnyRow, i: usize) -> Result<String, StoreError> {
    match r.try_get::<String, _>(i) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes = r.try_get::<Vec<u8>, _>(i).map_err(backend)?;
            String::from_utf8(bytes).map_err(backend)
        }
    }
}

/// A driver error as the store's.
pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The guarded status change of `gid`: its SQL and arguments.
pub(super) fn status_change(gid: &str, c: &StatusChange<'_>) -> (&'static str, Vec<Arg>) {
    let finish = c.to.is_final().then_some(c.now.0);
    let rollback = matches!(c.to, Status::Aborting | Status::Failed).then_some(c.now.0);
    (
        "UPDATE trans_global SET status = ?, update_time = ?, \
         rollback_reason = COALESCE(?, rollback_reason), result = COALESCE(?, result), \
         finish_time = COALESCE(?, finish_time), rollback_time = COALESCE(rollback_time, ?) \
         WHERE gid = ? AND status = ?",
        vec![
            Arg::Text(c.to.as_str().to_owned()),
            Arg::Int(c.now.0),
            Arg::OptText(c.rollback_reason.map(str::to_owned)),
            Arg::OptText(c.result.map(str::to_owned)),
            Arg::OptInt(finish),
            Arg::OptInt(rollback),
            Arg::Text(gid.to_owned()),
            Arg::Text(c.from.as_str().to_owned()),
        ],
    )
}
