//! The `query` / `all` JSON of a transaction and its branches (docs/dtm-protocol.md, The query
//! JSON): DTM's field names, times as RFC 3339 strings — omitted when unset, never `null` (the C#
//! SDK reads them as non-nullable), bodies as base64.

use base64::Engine;
use kit::time::UnixMs;
use serde_json::{Map, Value, json};

use crate::biz::{Branch, Global};

/// A global transaction as DTM shows it; with `redact`, `branch_headers` values are `***`.
pub fn global_json(g: &Global, redact: bool) -> Value {
    let mut options = g.options.clone();
    if redact {
        options
            .branch_headers
            .values_mut()
            .for_each(|v| *v = "***".into());
    }
    let mut v = json!({
        "id": g.id,
        "gid": g.gid,
        "trans_type": g.trans_type.as_str(),
        "status": g.status.as_str(),
        "protocol": g.protocol,
        "query_prepared": g.query_prepared,
        "custom_data": g.custom_data,
        "options": serde_json::to_string(&options).unwrap_or_default(),
        "result": g.result,
        "rollback_reason": g.rollback_reason,
        "ext_data": "",
        "owner": g.owner,
        "next_cron_interval": g.next_cron_interval.as_secs(),
        "create_time": g.create_time.rfc3339(),
        "update_time": g.update_time.rfc3339(),
        "next_cron_time": g.next_cron_time.rfc3339(),
        // The flattened options, as DTM's TransGlobalStore embeds them.
        "wait_result": g.options.wait_result,
        "timeout_to_fail": g.options.timeout_to_fail,
        "request_timeout": g.options.request_timeout,
        "retry_interval": g.options.retry_interval,
        "retry_limit": g.options.retry_limit,
        "branch_headers": options.branch_headers,
        "concurrent": g.options.concurrent,
    });
    if let Value::Object(m) = &mut v {
        put_time(m, "finish_time", g.finish_time);
        put_time(m, "rollback_time", g.rollback_time);
    }
    v
}

/// A branch as DTM shows it.
pub fn branch_json(b: &Branch) -> Value {
    let mut v = json!({
        "id": b.id,
        "gid": b.gid,
        "url": b.url,
        "bin_data": base64::engine::general_purpose::STANDARD.encode(&b.bin_data),
        "branch_id": b.branch_id,
        "op": b.op.as_str(),
        "status": b.status.as_str(),
        "create_time": b.create_time.rfc3339(),
        "update_time": b.update_time.rfc3339(),
    });
    if let Value::Object(m) = &mut v {
        put_time(m, "finish_time", b.finish_time);
    }
    v
}

fn put_time(m: &mut Map<String, Value>, key: &str, t: Option<UnixMs>) {
    if let Some(t) = t {
        m.insert(key.into(), Value::String(t.rfc3339()));
    }
}
