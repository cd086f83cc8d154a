//! Msg, the two-phase message (docs/dtm-protocol.md, Msg).
//!
//! prepared — after the timeout, ask `query_prepared`: SUCCESS → submitted, FAILURE → failed;
//! submitted — after `delay`, actions (in order, or concurrently with `concurrent`) → succeed. A
//! msg never rolls back: its actions must eventually succeed.

use std::collections::BTreeMap;

use dtmcli::DtmResult;
use kit::time::UnixMs;
use serde::Deserialize;

use crate::biz::driver::Driver;
use crate::biz::policy::{MAX_TIMEOUT_SECS, secs};
use crate::biz::round::{Next, Round, Step, not_done};
use crate::biz::topics::TOPIC_PREFIX;
use crate::biz::{Branch, CustomData, MsgData, NewTrans, Op, Status, TransError};

/// Whether a msg that sets no `timeout_to_fail` times out: yes — a prepared msg is checked back
/// after the server's `TimeoutToFail`.
pub(super) const TIMES_OUT_BY_DEFAULT: bool = true;

impl MsgData {
    /// Parses a msg's `custom_data` (empty text: no delay).
    pub fn parse(text: &str) -> Result<MsgData, String> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Raw {
            #[serde(deserialize_with = "kit::gojson::null_default")]
            delay: i64,
        }
        if text.trim().is_empty() {
            return Ok(MsgData::default());
        }
        let raw: Raw = kit::gojson::from_slice(text.as_bytes()).map_err(|e| e.to_string())?;
        if !(0..=MAX_TIMEOUT_SECS).contains(&raw.delay) {
            return Err(format!(
                "delay must be 0 to {MAX_TIMEOUT_SECS}, got {}",
                raw.delay
            ));
        }
        Ok(MsgData { delay: raw.delay })
    }
}

/// A new msg's rows: one `action` per step, branch ids `01`, `02`, …; an action
/// `topic://<name>` is one row per subscriber (`topics`, read when the msg arrived): `01-01`,
/// `01-02`… (DTM's ids), each with the step's payload.
pub(super) fn branches(
    d: &Driver,
    t: &NewTrans,
    topics: &BTreeMap<String, Vec<String>>,
    now: UnixMs,
) -> Result<Vec<Branch>, TransError> {
    let mut rows = Vec::with_capacity(t.steps.len());
    for (i, step) in t.steps.iter().enumerate() {
        let payload = t.payloads.get(i).map_or(&[][..], Vec::as_slice);
        let branch_id = format!("{:02}", i + 1);
        let url = step.get(Op::Action.as_str()).map_or("", String::as_str);
        let Some(name) = url.strip_prefix(TOPIC_PREFIX) else {
            d.check_target(&t.protocol, url)?;
            rows.push(Branch::new(
                &t.gid,
                branch_id,
                Op::Action,
                url,
                payload,
                now,
            ));
            continue;
        };
        let urls = topics
            .get(name)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| TransError::BadRequest(format!("topic not found: {name}")))?;
        for (j, url) in urls.iter().enumerate() {
            let id = if urls.len() == 1 {
                branch_id.clone()
            } else {
                format!("{branch_id}-{:02}", j + 1)
            };
            rows.push(Branch::new(&t.gid, id, Op::Action, url, payload, now));
        }
    }
    Ok(rows)
}

/// One step of a msg's round.
pub(super) async fn step(r: &mut Round<'_>) -> Result<Step, TransError> {
    match r.t.global.status {
        Status::Prepared => check_back(r).await,
        Status::Submitted => forward(r).await,
        // Only forceStop moves a msg on from here; nothing to undo.
        Status::Aborting => r.advance(Status::Failed, None).await,
        Status::Succeed | Status::Failed => Ok(Step::Stop(Next::Done)),
    }
}

/// Prepared past its timeout: ask the application whether its local transaction committed
/// (`query_prepared`, branch `00`, op `msg`).
async fn check_back(r: &mut Round<'_>) -> Result<Step, TransError> {
    if let Some(wait) = r.before_deadline() {
        return Ok(wait);
    }
    let url = r.t.global.query_prepared.clone();
    match r.call_url(&url, &[], "00", Op::Msg).await {
        Ok(reply) if reply.result == DtmResult::Success => r.advance(Status::Submitted, None).await,
        Ok(reply) if reply.result == DtmResult::Failure => {
            let reason = format!("query_prepared answered FAILURE: {}", reply.body);
            r.advance(Status::Failed, Some(&reason)).await
        }
        other => Ok(Step::Stop(not_done(&url, other))),
    }
}

/// Submitted: after the delay, every action until it succeeds.
async fn forward(r: &mut Round<'_>) -> Result<Step, TransError> {
    let delay = match r.t.custom {
        CustomData::Msg(data) => data.delay,
        _ => 0,
    };
    let start = r.t.global.create_time + secs(delay);
    if r.d.clock.now() < start {
        return Ok(Step::Stop(Next::At(start)));
    }
    let todo = r.t.pending(|b| b.op == Op::Action);
    let waves: Vec<Vec<usize>> = if r.t.global.options.concurrent {
        vec![todo]
    } else {
        todo.into_iter().map(|i| vec![i]).collect()
    };
    r.call_all(waves, Some(Status::Succeed)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_is_seconds_within_a_year() {
        assert_eq!(MsgData::parse(r#"{"Delay":5}"#), Ok(MsgData { delay: 5 }));
        assert_eq!(MsgData::parse(r#"{"delay":null}"#), Ok(MsgData::default()));
        assert!(MsgData::parse(r#"{"delay":-1}"#).is_err());
        assert!(MsgData::parse(r#"{"delay":"5"}"#).is_err());
        assert!(MsgData::parse("[5]").is_err());
    }
}
