//! One module per [`TransType`], as DTM's `trans_type_*.go`: each owns the rows a new
//! transaction of its type is stored with, its `custom_data` (parsed once, typed), whether it
//! times out by default, and its step — what a round does in each status (a workflow's module
//! also holds the three operations only a workflow has). The functions below only pick the
//! module.

pub(crate) mod msg;
pub(crate) mod saga;
pub(crate) mod tcc;
pub(crate) mod workflow;
pub(crate) mod xa;

use std::collections::BTreeMap;

use kit::time::UnixMs;

use std::time::Duration;

use crate::biz::driver::Driver;
use crate::biz::policy::{NEVER, secs};
use crate::biz::round::{Round, Step, Trans};
use crate::biz::{
    Branch, CustomData, Global, MsgData, NewTrans, Op, Options, Phase2, Policy, SagaData, Status,
    TransError, TransType, WorkflowData,
};

impl CustomData {
    /// Parses the `custom_data` of a new transaction of type `t` with `steps` steps.
    pub fn parse(t: TransType, text: &str, steps: usize) -> Result<CustomData, String> {
        Ok(match t {
            TransType::Saga => CustomData::Saga(SagaData::parse(text, steps)?),
            TransType::Msg => CustomData::Msg(MsgData::parse(text)?),
            TransType::Workflow => CustomData::Workflow(WorkflowData::parse(text)?),
            TransType::Tcc | TransType::Xa => CustomData::None,
        })
    }

    /// Parses a stored transaction's `custom_data`; a saga's steps are its pairs of rows.
    pub(crate) fn stored(g: &Global, branches: &[Branch]) -> Result<CustomData, String> {
        let steps = branches.iter().filter(|b| b.op == Op::Action).count();
        CustomData::parse(g.trans_type, &g.custom_data, steps)
    }
}

/// How long a transaction of type `t` may stay unfinished: its own `timeout_to_fail`, else the
/// server's if its type times out by default (a saga does not; docs/dtm-protocol.md, Timing).
/// `None`: no timeout. A workflow never times out: its client decides.
pub(crate) fn timeout(policy: &Policy, t: TransType, o: &Options) -> Option<Duration> {
    if t == TransType::Workflow {
        None
    } else if o.timeout_to_fail > 0 {
        Some(secs(o.timeout_to_fail))
    } else {
        times_out_by_default(t).then_some(policy.timeout_to_fail)
    }
}

/// The two rows a registered branch is stored as, backward op first (as DTM stores them).
pub(crate) fn registration_rows(p: &Phase2) -> [(Op, &str); 2] {
    match p {
        Phase2::Tcc { confirm, cancel } => tcc::rows(confirm, cancel),
        Phase2::Xa { url } => xa::rows(url),
    }
}

/// Whether a transaction of type `t` that sets no `timeout_to_fail` times out (after the
/// server's `TimeoutToFail`).
fn times_out_by_default(t: TransType) -> bool {
    match t {
        TransType::Saga => saga::TIMES_OUT_BY_DEFAULT,
        TransType::Msg => msg::TIMES_OUT_BY_DEFAULT,
        TransType::Tcc => tcc::TIMES_OUT_BY_DEFAULT,
        TransType::Xa => xa::TIMES_OUT_BY_DEFAULT,
        TransType::Workflow => workflow::TIMES_OUT_BY_DEFAULT,
    }
}

/// A new transaction as it is stored in `status`, after checking what the service could not:
/// its type, `custom_data` and branch URLs. `topics`: the subscribers of the topics a msg names.
pub(crate) fn new_trans(
    d: &Driver,
    t: &NewTrans,
    status: Status,
    topics: &BTreeMap<String, Vec<String>>,
) -> Result<Trans, TransError> {
    let trans_type = t
        .trans_type
        .ok_or_else(|| TransError::BadRequest("trans_type is required".into()))?;
    let custom = CustomData::parse(trans_type, &t.custom_data, t.steps.len())
        .map_err(|e| TransError::BadRequest(format!("custom_data: {e}")))?;
    d.check_target(&t.protocol, &t.query_prepared)?;
    let now = d.clock.now();
    let branches = branches(d, trans_type, t, topics, now)?;
    let mut options = t.options.clone();
    // The request's trace (the client's, when it sent one): rounds continue it.
    options.traceparent = kit::trace::traceparent();
    let mut global = Global {
        id: 0,
        gid: t.gid.clone(),
        trans_type,
        status,
        protocol: t.protocol.clone(),
        query_prepared: t.query_prepared.clone(),
        custom_data: t.custom_data.clone(),
        next_cron_interval: d.policy.base_interval(&options),
        options,
        rollback_reason: String::new(),
        result: String::new(),
        create_time: now,
        update_time: now,
        finish_time: None,
        rollback_time: None,
        next_cron_time: NEVER,
        owner: String::new(),
    };
    match (status, trans_type) {
        // Whoever creates it drives it: the lease keeps the poller away meanwhile.
        (Status::Submitted, _) => {
            global.owner = d.owner.clone();
            global.next_cron_time = now + d.policy.lease();
        }
        // Its client runs it now; the poller resumes it if it is not submitted by then.
        (_, TransType::Workflow) => global.next_cron_time = workflow::first_resume(d, &global),
        // Nothing to do until it is submitted, aborted, or times out.
        _ => {
            if let Some(timeout) = timeout(&d.policy, trans_type, &global.options) {
                global.next_cron_time = now + timeout;
            }
        }
    }
    Ok(Trans::new(global, branches, custom))
}

/// The rows a new transaction of type `t` is stored with. A tcc's or xa's come later, one
/// `registerBranch` each.
fn branches(
    d: &Driver,
    t: TransType,
    new: &NewTrans,
    topics: &BTreeMap<String, Vec<String>>,
    now: UnixMs,
) -> Result<Vec<Branch>, TransError> {
    match t {
        TransType::Saga => saga::branches(d, new, now),
        TransType::Msg => msg::branches(d, new, topics, now),
        // A tcc's or xa's come with registerBranch, a workflow's as its client records its steps.
        TransType::Tcc | TransType::Xa | TransType::Workflow => Ok(Vec::new()),
    }
}

/// One step of a round of an unfinished transaction, by its type.
pub(crate) async fn step(r: &mut Round<'_>) -> Result<Step, TransError> {
    match r.t.global.trans_type {
        TransType::Saga => saga::step(r).await,
        TransType::Msg => msg::step(r).await,
        TransType::Tcc => tcc::step(r).await,
        TransType::Xa => xa::step(r).await,
        TransType::Workflow => workflow::step(r).await,
    }
}
