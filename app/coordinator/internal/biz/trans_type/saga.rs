//! Saga: steps of action + compensation (docs/dtm-protocol.md, Saga).
//!
//! prepared — timeout → aborting; submitted — actions in order (or concurrently, per `orders`)
//! → succeed, an action's FAILURE, `retry_limit` or `timeout_to_fail` → aborting; aborting —
//! compensations in reverse → failed. A saga has no timeout unless it sets one.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use dtmcli::DtmResult;
use dtmcli::caller::{CallError, Reply};
use kit::time::UnixMs;
use serde::Deserialize;

use crate::biz::driver::Driver;
use crate::biz::policy::secs;
use crate::biz::round::{Next, Round, Step, Trans, not_done};
use crate::biz::{Branch, BranchStatus, CustomData, NewTrans, Op, SagaData, Status, TransError};

/// Whether a saga that sets no `timeout_to_fail` times out: no (DTM's rule).
pub(super) const TIMES_OUT_BY_DEFAULT: bool = false;

/// A saga that set no `custom_data`: its steps one after another.
static SEQUENTIAL: SagaData = SagaData {
    concurrent: false,
    orders: BTreeMap::new(),
};

impl SagaData {
    /// Parses the `custom_data` of a saga of `steps` steps. Orders must name existing steps and
    /// must not wait in a circle (such a saga could never finish).
    pub fn parse(text: &str, steps: usize) -> Result<SagaData, String> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Raw {
            #[serde(deserialize_with = "kit::gojson::null_default")]
            concurrent: bool,
            #[serde(deserialize_with = "kit::gojson::null_default")]
            orders: BTreeMap<String, Vec<usize>>,
        }
        if text.trim().is_empty() {
            return Ok(SagaData::default());
        }
        let raw: Raw = kit::gojson::from_slice(text.as_bytes()).map_err(|e| e.to_string())?;
        let mut orders = BTreeMap::new();
        for (k, deps) in raw.orders {
            let i: usize = k
                .parse()
                .map_err(|_| format!("orders key {k:?} is not a step index"))?;
            if i >= steps || deps.iter().any(|d| *d >= steps || *d == i) {
                return Err(format!(
                    "orders {i}: {deps:?} names a step out of 0..{steps}"
                ));
            }
            orders.insert(i, deps);
        }
        // Kahn's algorithm: a step whose dependencies never finish would block the saga forever.
        let mut done = vec![false; steps];
        for _ in 0..steps {
            let next = (0..steps).find(|&i| {
                !done[i]
                    && orders
                        .get(&i)
                        .is_none_or(|deps| deps.iter().all(|d| done[*d]))
            });
            match next {
                Some(i) => done[i] = true,
                None => return Err("orders wait on each other in a circle".into()),
            }
        }
        Ok(SagaData {
            concurrent: raw.concurrent,
            orders,
        })
    }
}

/// A new saga's rows: `compensate` then `action` for each step, branch ids `01`, `02`, ….
pub(super) fn branches(d: &Driver, t: &NewTrans, now: UnixMs) -> Result<Vec<Branch>, TransError> {
    let mut rows = Vec::with_capacity(t.steps.len() * 2);
    for (i, step) in t.steps.iter().enumerate() {
        let payload = t.payloads.get(i).map_or(&[][..], Vec::as_slice);
        for op in [Op::Compensate, Op::Action] {
            let url = step.get(op.as_str()).map_or("", String::as_str);
            d.check_target(&t.protocol, url)?;
            rows.push(Branch::new(
                &t.gid,
                format!("{:02}", i + 1),
                op,
                url,
                payload,
                now,
            ));
        }
    }
    Ok(rows)
}

/// One step of a saga's round.
pub(super) async fn step(r: &mut Round<'_>) -> Result<Step, TransError> {
    match r.t.global.status {
        Status::Prepared => r.expire().await,
        Status::Submitted => forward(r).await,
        Status::Aborting => backward(r).await,
        Status::Succeed | Status::Failed => Ok(Step::Stop(Next::Done)),
    }
}

/// Forward: start every action whose predecessors succeeded, wave after wave.
async fn forward(r: &mut Round<'_>) -> Result<Step, TransError> {
    let g = &r.t.global;
    if g.options.timeout_to_fail > 0
        && r.d.clock.now() >= g.create_time + secs(g.options.timeout_to_fail)
    {
        let reason = r.timeout_reason();
        return r.advance(Status::Aborting, Some(&reason)).await;
    }
    let plan = Plan::new(&r.t);
    let action = |t: &Trans, i: usize| t.branches[plan.steps[i].action].status;
    // An action recorded `failed` by an earlier round that stopped before `aborting` was
    // written (a crash, a failed write): the saga rolls back now. Without this check no action
    // would be ready below, which must never read as "all done".
    if let Some(failed) = (0..plan.steps.len()).find(|&i| action(&r.t, i) == BranchStatus::Failed) {
        let reason = format!(
            "url:{} return failed",
            r.t.branches[plan.steps[failed].action].url
        );
        return r.advance(Status::Aborting, Some(&reason)).await;
    }
    loop {
        let ready: Vec<usize> = (0..plan.steps.len())
            .filter(|&i| {
                action(&r.t, i) == BranchStatus::Prepared
                    && plan.deps[i]
                        .iter()
                        .all(|&d| action(&r.t, d) == BranchStatus::Succeed)
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        let calls = ready
            .iter()
            .map(|&i| call_action(r, &r.t.branches[plan.steps[i].action]))
            .collect();
        let results = r.bounded(calls).await;
        let mut answered = Vec::new();
        let mut failure = None;
        let mut pending = None;
        for (&i, result) in ready.iter().zip(results) {
            let a = plan.steps[i].action;
            let url = &r.t.branches[a].url;
            match result {
                Action::Answered(reply) if reply.result == DtmResult::Success => {
                    answered.push((a, BranchStatus::Succeed));
                }
                Action::Answered(reply) if reply.result == DtmResult::Failure => {
                    answered.push((a, BranchStatus::Failed));
                    failure.get_or_insert(format!("url:{url} return failed: {}", reply.body));
                }
                Action::Exhausted => {
                    failure.get_or_insert(format!(
                        "RetryCount is greater than RetryLimit, RetryLimit: {}",
                        r.t.global.options.retry_limit
                    ));
                }
                Action::Answered(reply) => {
                    pending.get_or_insert(not_done(url, Ok(reply)));
                }
                Action::Unanswered(e) => {
                    pending.get_or_insert(not_done(url, Err(e)));
                }
            }
        }
        // What the wave leads to, written with its results: a rollback, the end, or more.
        let then = match (&failure, &pending) {
            (Some(reason), _) => Some((Status::Aborting, Some(reason.as_str()))),
            (None, None) => {
                let after = |i: usize| {
                    let a = plan.steps[i].action;
                    answered
                        .iter()
                        .find(|(b, _)| *b == a)
                        .map_or(r.t.branches[a].status, |(_, s)| *s)
                };
                let complete = (0..plan.steps.len()).all(|i| after(i) == BranchStatus::Succeed)
                    && plan.steps.len() * 2 == r.t.branches.len();
                complete.then_some((Status::Succeed, None))
            }
            (None, Some(_)) => None,
        };
        let ends = then.is_some();
        if !r.record(&answered, then).await? {
            return Ok(Step::Reload);
        }
        if ends {
            return Ok(Step::Again);
        }
        if let Some(next) = pending {
            return Ok(Step::Stop(next));
        }
    }
    // Success only when every action is recorded `succeed`: "nothing ready" alone proves
    // nothing.
    if (0..plan.steps.len()).any(|i| action(&r.t, i) != BranchStatus::Succeed)
        || plan.steps.len() * 2 != r.t.branches.len()
    {
        return Ok(Step::Stop(Next::Error(
            "the saga's branch rows do not form complete steps".into(),
        )));
    }
    r.advance(Status::Succeed, None).await
}

/// Backward: compensate every step whose action ran or may have started (including the one that
/// answered FAILURE), a step only after the steps that depended on it.
async fn backward(r: &mut Round<'_>) -> Result<Step, TransError> {
    let plan = Plan::new(&r.t);
    let n = plan.steps.len();
    let t = &r.t;
    let action = |i: usize| t.branches[plan.steps[i].action].status;
    // An action may have started if it was ever eligible: its predecessors all succeeded.
    let needs: Vec<bool> = (0..n)
        .map(|i| {
            action(i) != BranchStatus::Prepared
                || plan.deps[i]
                    .iter()
                    .all(|&d| action(d) == BranchStatus::Succeed)
        })
        .collect();
    let mut undone: Vec<bool> = (0..n)
        .map(|i| !needs[i] || t.branches[plan.steps[i].compensate].status == BranchStatus::Succeed)
        .collect();
    loop {
        let ready: Vec<usize> = (0..n)
            .filter(|&i| {
                !undone[i]
                    && (0..n)
                        .filter(|&k| plan.deps[k].contains(&i))
                        .all(|k| undone[k])
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        let last = (0..n).all(|i| undone[i] || ready.contains(&i));
        let wave = vec![ready.iter().map(|&i| plan.steps[i].compensate).collect()];
        let then = last.then_some(Status::Failed);
        match r.call_all(wave, then).await? {
            Step::Again if !last => ready.iter().for_each(|&i| undone[i] = true),
            step => return Ok(step),
        }
    }
    r.advance(Status::Failed, None).await
}

/// How a saga action call ended.
enum Action {
    /// SUCCESS, FAILURE, or ONGOING (when no retry is left or allowed).
    Answered(Reply),
    /// No DTM answer.
    Unanswered(CallError),
    /// `retry_limit` used up.
    Exhausted,
}

/// A saga action, re-invoked at once while `retry_limit` allows.
async fn call_action(r: &Round<'_>, b: &Branch) -> Action {
    let limit = r.t.global.options.retry_limit;
    loop {
        let result = r.call(b).await;
        let settled = matches!(&result, Ok(reply) if reply.result != DtmResult::Ongoing);
        if settled || limit <= 0 {
            return match result {
                Ok(reply) => Action::Answered(reply),
                Err(e) => Action::Unanswered(e),
            };
        }
        if r.retries.fetch_add(1, Ordering::SeqCst) >= limit {
            return Action::Exhausted;
        }
    }
}

/// A saga's steps and what each waits for.
struct Plan {
    steps: Vec<PlanStep>,
    /// Step index → the steps whose actions must succeed before its action starts.
    deps: Vec<Vec<usize>>,
}

/// A step's two branch rows, as indexes into the transaction's branches.
struct PlanStep {
    action: usize,
    compensate: usize,
}

impl Plan {
    /// Pairs the rows (`compensate`, `action` per step, in insertion order) and reads the
    /// order from the saga's data: sequential, or concurrent with `orders`.
    fn new(t: &Trans) -> Plan {
        let steps: Vec<PlanStep> = t
            .branches
            .chunks_exact(2)
            .enumerate()
            .filter_map(|(k, pair)| match (pair[0].op, pair[1].op) {
                (Op::Compensate, Op::Action) => Some(PlanStep {
                    compensate: 2 * k,
                    action: 2 * k + 1,
                }),
                _ => None,
            })
            .collect();
        let data = match &t.custom {
            CustomData::Saga(data) => data,
            _ => &SEQUENTIAL,
        };
        let n = steps.len();
        let deps = (0..n)
            .map(|i| match (data.concurrent, i) {
                // Checked against the step count when parsed; a row that lost steps since
                // cannot make an order point outside them.
                (true, _) => data
                    .orders
                    .get(&i)
                    .map(|deps| deps.iter().copied().filter(|&d| d < n).collect())
                    .unwrap_or_default(),
                (false, 0) => Vec::new(),
                (false, i) => vec![i - 1],
            })
            .collect();
        Plan { steps, deps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_must_name_steps_and_not_wait_in_a_circle() {
        let go = SagaData::parse(r#"{"concurrent":true,"orders":{"0":[]}}"#, 1).unwrap();
        assert!(go.concurrent);
        assert_eq!(go.orders.get(&0), Some(&vec![]));
        assert_eq!(
            SagaData::parse(r#"{"orders":null}"#, 2),
            Ok(SagaData::default())
        );
        assert_eq!(SagaData::parse("", 2), Ok(SagaData::default()));
        assert!(SagaData::parse(r#"{"orders":{"0":[3]}}"#, 1).is_err());
        assert!(SagaData::parse(r#"{"orders":{"x":[0]}}"#, 1).is_err());
        let circle = SagaData::parse(r#"{"orders":{"0":[1],"1":[0]}}"#, 2).unwrap_err();
        assert!(circle.contains("circle"), "{circle}");
        assert!(SagaData::parse(r#"{"orders":{"1":[0],"2":[0,1]}}"#, 3).is_ok());
        assert!(SagaData::parse(r#"{"Concurrent":"yes"}"#, 1).is_err());
    }
}
