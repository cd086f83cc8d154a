//! The Redis store's records: a global transaction as hash fields, a branch as its fixed JSON
//! record plus its state field, and back.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kit::time::{UnixMs, millis};
use serde::{Deserialize, Serialize};

use crate::biz::{Branch, BranchStatus, Global, Op, Status, StoreError, TransType};

/// A branch's fixed part, as kept in `<p>_b_<gid>`.
#[derive(Serialize, Deserialize)]
struct BranchRecord {
    url: String,
    /// Base64: payloads may be binary (gRPC).
    bin_data: String,
    branch_id: String,
    op: String,
    create_time: i64,
}

/// The hash fields of a new transaction (all but `id`, which the store assigns).
pub(super) fn global_fields(g: &Global) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut fields = vec![
        ("gid", g.gid.clone()),
        ("trans_type", g.trans_type.as_str().into()),
        ("status", g.status.as_str().into()),
        ("protocol", g.protocol.clone()),
        ("query_prepared", g.query_prepared.clone()),
        ("custom_data", g.custom_data.clone()),
        (
            "options",
            serde_json::to_string(&g.options).map_err(backend)?,
        ),
        ("rollback_reason", g.rollback_reason.clone()),
        ("result", g.result.clone()),
        ("create_time", g.create_time.0.to_string()),
        ("update_time", g.update_time.0.to_string()),
        (
            "next_cron_interval",
            millis(g.next_cron_interval).to_string(),
        ),
        ("next_cron_time", g.next_cron_time.0.to_string()),
        ("owner", g.owner.clone()),
    ];
    for (name, time) in [
        ("finish_time", g.finish_time),
        ("rollback_time", g.rollback_time),
    ] {
        if let Some(t) = time {
            fields.push((name, t.0.to_string()));
        }
    }
    Ok(fields)
}

pub(super) fn parse_global(map: &HashMap<String, String>) -> Result<Global, StoreError> {
    let text = |name: &str| map.get(name).cloned().unwrap_or_default();
    let int = |name: &str| -> Result<i64, StoreError> {
        let v = text(name);
        v.parse().map_err(|_| {
            StoreError::Backend(format!("field {name} = {v:?} is not a number").into())
        })
    };
    let opt = |name: &str| map.contains_key(name).then(|| int(name)).transpose();
    let trans_type = text("trans_type");
    let status = text("status");
    Ok(Global {
        id: int("id")?,
        gid: text("gid"),
        trans_type: TransType::parse(&trans_type).ok_or_else(|| {
            StoreError::Backend(format!("unknown trans_type {trans_type:?}").into())
        })?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}").into()))?,
        protocol: text("protocol"),
        query_prepared: text("query_prepared"),
        custom_data: text("custom_data"),
        options: super::stored_options(&text("gid"), &text("options"))?,
        rollback_reason: text("rollback_reason"),
        result: text("result"),
        create_time: UnixMs(int("create_time")?),
        update_time: UnixMs(int("update_time")?),
        finish_time: opt("finish_time")?.map(UnixMs),
        rollback_time: opt("rollback_time")?.map(UnixMs),
        next_cron_interval: Duration::from_millis(
            u64::try_from(int("next_cron_interval")?).unwrap_or(0),
        ),
        next_cron_time: UnixMs(int("next_cron_time")?),
        owner: text("owner"),
    })
}

/// The `<p>_bs_<gid>` field of a branch.
pub(super) fn state_field(branch_id: &str, op: Op) -> String {
    format!("{branch_id}/{}", op.as_str())
}

/// `<status> <update_time> [finish_time]`.
pub(super) fn branch_state(
    status: BranchStatus,
    update_time: UnixMs,
    finish_time: Option<UnixMs>,
) -> String {
    match finish_time {
        Some(f) => format!("{} {} {}", status.as_str(), update_time.0, f.0),
        None => format!("{} {}", status.as_str(), update_time.0),
    }
}

pub(super) fn branch_record(b: &Branch) -> Result<String, StoreError> {
    serde_json::to_string(&BranchRecord {
        url: b.url.clone(),
        bin_data: BASE64.encode(&b.bin_data),
        branch_id: b.branch_id.clone(),
        op: b.op.as_str().into(),
        create_time: b.create_time.0,
    })
    .map_err(backend)
}

pub(super) fn parse_branch(
    gid: &str,
    index: usize,
    record: &str,
    states: &HashMap<String, String>,
) -> Result<Branch, StoreError> {
    let r: BranchRecord = serde_json::from_str(record).map_err(backend)?;
    let op = Op::parse(&r.op)
        .ok_or_else(|| StoreError::Backend(format!("unknown op {:?}", r.op).into()))?;
    let field = state_field(&r.branch_id, op);
    let state = states.get(&field).ok_or_else(|| {
        StoreError::Backend(format!("branch {field} of {gid} has no state").into())
    })?;
    let mut parts = state.split(' ');
    let bad =
        || StoreError::Backend(format!("branch {field} of {gid}: bad state {state:?}").into());
    let status = parts.next().and_then(BranchStatus::parse).ok_or_else(bad)?;
    let update_time = UnixMs(parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?);
    let finish_time = parts
        .next()
        .map(|t| t.parse().map(UnixMs).map_err(|_| bad()))
        .transpose()?;
    Ok(Branch {
        id: index as i64 + 1,
        gid: gid.into(),
        url: r.url,
        bin_data: BASE64.decode(&r.bin_data).map_err(backend)?,
        branch_id: r.branch_id,
        op,
        status,
        create_time: UnixMs(r.create_time),
        update_time,
        finish_time,
    })
}

pub(super) fn flag(on: bool) -> &'static str {
    if on { "1" } else { "" }
}

pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}
