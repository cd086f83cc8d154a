//! The state machines (docs/dtm-protocol.md, Statuses and state machines): one *round* drives a
//! transaction as far as it can go now — calling branches, recording their results, changing its
//! status — and says when to come back.
//!
//! - **saga**: prepared — timeout → aborting; submitted — actions in order (or concurrently, per
//!   `orders`) → succeed, an action's FAILURE, `retry_limit` or `timeout_to_fail` → aborting;
//!   aborting — compensations in reverse → failed.
//! - **msg**: prepared — after the timeout, ask `query_prepared`: SUCCESS → submitted, FAILURE →
//!   failed; submitted — after `delay`, actions (in order or concurrently) → succeed.
//! - **tcc**: prepared — timeout → aborting; submitted — confirms, last registered first →
//!   succeed; aborting — cancels, last registered first → failed.
//! - **xa**: prepared — timeout → aborting; submitted — commits, in registration order → succeed;
//!   aborting — rollbacks, in registration order → failed.
//!
//! ONGOING keeps the base interval; an error doubles it, up to `RetryMaxInterval`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dtmcli::caller::{BranchRequest, CallError, Reply};
use dtmcli::wire::{MAX_REQUEST_TIMEOUT_SECS, parse_msg_custom_data, parse_saga_custom_data};
use dtmcli::{BranchInfo, DtmResult};
use futures_util::StreamExt;
use kit::time::UnixMs;
use tracing::Instrument;

use crate::biz::policy::{NEVER, secs};
use crate::biz::usecase::{Driver, TransError, log_change};
use crate::biz::{Branch, Global, Op, Progress, Status, StatusChange, TransType};

/// A transaction as a round holds it: the global row and its branches in insertion order.
///
/// Every write is a compare-and-set and, once it succeeds, is applied to this copy too; so a round
/// reads the store only when it starts from the store (the poller, a client's retry) or when a
/// write finds that someone else changed the transaction — never to learn what it just wrote.
#[derive(Debug, Clone)]
pub(crate) struct Trans {
    /// The global row.
    pub(crate) global: Global,
    /// Its branches.
    pub(crate) branches: Vec<Branch>,
}

/// When to visit a transaction next, as a round ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// It is final.
    Done,
    /// A branch answered ONGOING: come back after the base interval.
    Ongoing(String),
    /// A branch failed to answer: come back later, backing off.
    Error(String),
    /// Nothing to do before this time: a timeout or a msg delay.
    At(UnixMs),
}

/// What one step of a round did.
enum Step {
    /// The status changed as this round wrote it: go on from the copy in memory.
    Again,
    /// Someone else changed the transaction, or it left `prepared` (when TCC branches may have
    /// been registered meanwhile): read it again from the store.
    Reload,
    /// The round ends.
    Stop(Next),
}

impl Driver {
    /// Reads `gid` from the store and drives it for one round (see [`Driver::drive_loaded`]).
    pub(crate) async fn drive(&self, gid: &str) -> Result<Global, TransError> {
        let t = self.load(gid).await?;
        self.drive_loaded(t).await
    }

    /// Drives a transaction for one round while holding its lease, then schedules the next
    /// visit. Returns the transaction as the round left it.
    pub(crate) async fn drive_loaded(&self, mut t: Trans) -> Result<Global, TransError> {
        let gid = t.global.gid.clone();
        // A round continues the trace of the request that created the transaction.
        let span = kit::trace::span_from(
            tracing::info_span!(
                "round",
                gid = %gid,
                trans_type = t.global.trans_type.as_str(),
                trace_id = tracing::field::Empty,
            ),
            &t.global.options.traceparent,
        );
        let next = {
            // The lease is renewed beside the round, in this task (no task per round). A renewal
            // cut short when the round ends has either not reached the store or was queued
            // before anything the round writes next, so it cannot overtake the schedule below.
            let round = self.round(&mut t).instrument(span);
            let renewal = self.renew_lease(&gid);
            tokio::pin!(round, renewal);
            tokio::select! {
                biased;
                next = &mut round => next,
                () = &mut renewal => round.await,
            }
        };
        let age = self.clock.now() - t.global.create_time;
        let settled = matches!(next, Ok(Next::Done | Next::At(_)));
        self.metrics
            .transaction_processed(t.global.trans_type.as_str(), settled, age);
        if let Ok(Next::Done) = next {
            return Ok(t.global);
        }
        // Not final: the slow path, where a fresh read costs nothing that matters and shows
        // what others (forceStop, another instance) did meanwhile.
        let g = self.must_find(&gid).await?;
        let now = self.clock.now();
        let base = self.policy.base_interval(&g.options);
        let cap = self.policy.retry_max_interval.max(base);
        let current = g.next_cron_interval.clamp(base, cap);
        let (at, interval) = match next {
            Ok(Next::Done) => return Ok(g),
            Ok(Next::At(at)) => (at, current),
            Ok(Next::Ongoing(why)) => {
                tracing::info!(%gid, %why, "ongoing");
                (now + base, base)
            }
            Ok(Next::Error(why)) => {
                tracing::warn!(%gid, %why, retry_in = ?current, "branch error");
                (now + current, current.saturating_mul(2).min(cap))
            }
            Err(e) => {
                tracing::warn!(%gid, error = %e, retry_in = ?current, "round failed");
                (now + current, current.saturating_mul(2).min(cap))
            }
        };
        if !g.status.is_final() {
            self.store
                .schedule(&gid, &self.owner, at, Some(interval), now)
                .await?;
        }
        Ok(g)
    }

    /// A transaction and its branches, from the store.
    pub(crate) async fn load(&self, gid: &str) -> Result<Trans, TransError> {
        let global = self.must_find(gid).await?;
        let branches = self.store.branches(gid).await?;
        Ok(Trans { global, branches })
    }

    /// Extends the lease every third of its length; returns when it cannot (the transaction
    /// finished, or another instance took it over).
    async fn renew_lease(&self, gid: &str) {
        let lease = self.policy.lease();
        loop {
            tokio::time::sleep(lease / 3).await;
            let now = self.clock.now();
            match self
                .store
                .schedule(gid, &self.owner, now + lease, None, now)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(%gid, error = %e, "renewing the lease"),
            }
        }
    }

    async fn round(&self, t: &mut Trans) -> Result<Next, TransError> {
        let retries = AtomicI64::new(0);
        loop {
            let step = match (t.global.trans_type, t.global.status) {
                (_, Status::Succeed | Status::Failed) => return Ok(Next::Done),
                (TransType::Msg, Status::Prepared) => self.msg_check_back(t).await?,
                (TransType::Saga | TransType::Tcc | TransType::Xa, Status::Prepared) => {
                    self.expire(t).await?
                }
                (TransType::Saga, Status::Submitted) => self.saga_forward(t, &retries).await?,
                (TransType::Saga, Status::Aborting) => self.saga_backward(t).await?,
                (TransType::Msg, Status::Submitted) => self.msg_forward(t).await?,
                // A msg never rolls back: nothing to undo.
                (TransType::Msg, Status::Aborting) => self.advance(t, Status::Failed, None).await?,
                (TransType::Tcc, Status::Submitted) => {
                    self.phase_two(t, Op::Confirm, Status::Succeed).await?
                }
                (TransType::Tcc, Status::Aborting) => {
                    self.phase_two(t, Op::Cancel, Status::Failed).await?
                }
                (TransType::Xa, Status::Submitted) => {
                    self.phase_two(t, Op::Commit, Status::Succeed).await?
                }
                (TransType::Xa, Status::Aborting) => {
                    self.phase_two(t, Op::Rollback, Status::Failed).await?
                }
            };
            match step {
                Step::Again => {}
                Step::Reload => *t = self.load(&t.global.gid).await?,
                Step::Stop(next) => return Ok(next),
            }
        }
    }

    /// Moves the transaction to `to` (compare-and-set from its status in memory).
    async fn advance(
        &self,
        t: &mut Trans,
        to: Status,
        reason: Option<&str>,
    ) -> Result<Step, TransError> {
        let from = t.global.status;
        let changed = self.change(&mut t.global, to, reason).await?;
        // Leaving `prepared`: a TCC branch may have been registered since the copy was read.
        Ok(if changed && from != Status::Prepared {
            Step::Again
        } else {
            Step::Reload
        })
    }

    /// A prepared saga or tcc past its timeout rolls back.
    async fn expire(&self, t: &mut Trans) -> Result<Step, TransError> {
        let deadline = self.deadline(&t.global);
        if self.clock.now() < deadline {
            return Ok(Step::Stop(Next::At(deadline)));
        }
        let reason = self.timeout_reason(&t.global);
        self.advance(t, Status::Aborting, Some(&reason)).await
    }

    /// A prepared msg past its timeout: ask the application whether its local transaction
    /// committed (GET `query_prepared`, branch `00`, op `msg`).
    async fn msg_check_back(&self, t: &mut Trans) -> Result<Step, TransError> {
        let g = &t.global;
        let deadline = self.deadline(g);
        if self.clock.now() < deadline {
            return Ok(Step::Stop(Next::At(deadline)));
        }
        let reply = self.call(g, &g.query_prepared, &[], "00", "msg").await;
        match reply {
            Ok(r) if r.result == DtmResult::Success => {
                self.advance(t, Status::Submitted, None).await
            }
            Ok(r) if r.result == DtmResult::Failure => {
                let reason = format!("query_prepared answered FAILURE: {}", r.body);
                self.advance(t, Status::Failed, Some(&reason)).await
            }
            other => Ok(Step::Stop(not_done(&g.query_prepared, other))),
        }
    }

    /// Saga forward: start every action whose predecessors succeeded, wave after wave.
    async fn saga_forward(&self, t: &mut Trans, retries: &AtomicI64) -> Result<Step, TransError> {
        let g = &t.global;
        if g.options.timeout_to_fail > 0
            && self.clock.now() >= g.create_time + secs(g.options.timeout_to_fail)
        {
            let reason = self.timeout_reason(g);
            return self.advance(t, Status::Aborting, Some(&reason)).await;
        }
        let saga = SagaPlan::new(g, &t.branches);
        let action = |t: &Trans, i: usize| t.branches[saga.steps[i].action].status;
        // An action recorded `failed` by an earlier round that stopped before `aborting` was
        // written (a crash, a failed write): the saga rolls back now. Without this check no
        // action would be ready below, which must never read as "all done".
        if let Some(failed) = (0..saga.steps.len()).find(|&i| action(t, i) == Status::Failed) {
            let reason = format!(
                "url:{} return failed",
                t.branches[saga.steps[failed].action].url
            );
            return self.advance(t, Status::Aborting, Some(&reason)).await;
        }
        loop {
            let ready: Vec<usize> = (0..saga.steps.len())
                .filter(|&i| {
                    action(t, i) == Status::Prepared
                        && saga.deps[i]
                            .iter()
                            .all(|&d| action(t, d) == Status::Succeed)
                })
                .collect();
            if ready.is_empty() {
                break;
            }
            let calls = ready
                .iter()
                .map(|&i| self.call_action(&t.global, &t.branches[saga.steps[i].action], retries))
                .collect();
            let results = self.bounded(calls).await;
            let mut answered = Vec::new();
            let mut failure = None;
            let mut pending = None;
            for (&i, result) in ready.iter().zip(results) {
                let a = saga.steps[i].action;
                match result {
                    Action::Answered(r) if r.result == DtmResult::Success => {
                        answered.push((a, Status::Succeed));
                    }
                    Action::Answered(r) if r.result == DtmResult::Failure => {
                        answered.push((a, Status::Failed));
                        failure.get_or_insert(format!(
                            "url:{} return failed: {}",
                            t.branches[a].url, r.body
                        ));
                    }
                    Action::Exhausted => {
                        failure.get_or_insert(format!(
                            "RetryCount is greater than RetryLimit, RetryLimit: {}",
                            t.global.options.retry_limit
                        ));
                    }
                    Action::Answered(r) => {
                        pending.get_or_insert(not_done(&t.branches[a].url, Ok(r)));
                    }
                    Action::Failed(e) => {
                        pending.get_or_insert(not_done(&t.branches[a].url, Err(e)));
                    }
                }
            }
            // What the wave leads to, written with its results: a rollback, the end, or more.
            let then = match (&failure, &pending) {
                (Some(reason), _) => Some((Status::Aborting, Some(reason.as_str()))),
                (None, None) => {
                    let after = |i: usize| {
                        let a = saga.steps[i].action;
                        answered
                            .iter()
                            .find(|(b, _)| *b == a)
                            .map_or(t.branches[a].status, |(_, s)| *s)
                    };
                    let complete = (0..saga.steps.len()).all(|i| after(i) == Status::Succeed)
                        && saga.steps.len() * 2 == t.branches.len();
                    complete.then_some((Status::Succeed, None))
                }
                (None, Some(_)) => None,
            };
            let ends = then.is_some();
            if !self.record(t, &answered, then).await? {
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
        if (0..saga.steps.len()).any(|i| action(t, i) != Status::Succeed)
            || saga.steps.len() * 2 != t.branches.len()
        {
            return Ok(Step::Stop(Next::Error(
                "the saga's branch rows do not form complete steps".into(),
            )));
        }
        self.advance(t, Status::Succeed, None).await
    }

    /// Saga backward: compensate every step whose action ran or may have started (including the
    /// one that answered FAILURE), a step only after the steps that depended on it.
    async fn saga_backward(&self, t: &mut Trans) -> Result<Step, TransError> {
        let saga = SagaPlan::new(&t.global, &t.branches);
        let n = saga.steps.len();
        let action = |i: usize| t.branches[saga.steps[i].action].status;
        // An action may have started if it was ever eligible: its predecessors all succeeded.
        let needs: Vec<bool> = (0..n)
            .map(|i| {
                action(i) != Status::Prepared
                    || saga.deps[i].iter().all(|&d| action(d) == Status::Succeed)
            })
            .collect();
        let mut undone: Vec<bool> = (0..n)
            .map(|i| !needs[i] || t.branches[saga.steps[i].compensate].status == Status::Succeed)
            .collect();
        loop {
            let ready: Vec<usize> = (0..n)
                .filter(|&i| {
                    !undone[i]
                        && (0..n)
                            .filter(|&k| saga.deps[k].contains(&i))
                            .all(|k| undone[k])
                })
                .collect();
            if ready.is_empty() {
                break;
            }
            let last = (0..n).all(|i| undone[i] || ready.contains(&i));
            let wave = vec![ready.iter().map(|&i| saga.steps[i].compensate).collect()];
            let then = last.then_some(Status::Failed);
            match self.call_all(t, wave, then).await? {
                Step::Again if !last => ready.iter().for_each(|&i| undone[i] = true),
                step => return Ok(step),
            }
        }
        self.advance(t, Status::Failed, None).await
    }

    /// Msg forward: after the delay, every action until it succeeds (a msg never rolls back).
    async fn msg_forward(&self, t: &mut Trans) -> Result<Step, TransError> {
        let delay = parse_msg_custom_data(&t.global.custom_data).map_or(0, |c| c.delay);
        let start = t.global.create_time + secs(delay);
        if self.clock.now() < start {
            return Ok(Step::Stop(Next::At(start)));
        }
        let todo = t.pending(|b| b.op == Op::Action);
        let waves: Vec<Vec<usize>> = if t.global.options.concurrent {
            vec![todo]
        } else {
            todo.into_iter().map(|i| vec![i]).collect()
        };
        self.call_all(t, waves, Some(Status::Succeed)).await
    }

    /// Phase two of TCC or XA: every `op` branch, then `to`. TCC goes last registered first
    /// (undo in reverse, as a saga does); XA in registration order, as DTM does (each branch
    /// commits or rolls back its own prepared transaction, so order does not matter).
    async fn phase_two(&self, t: &mut Trans, op: Op, to: Status) -> Result<Step, TransError> {
        let mut order = t.pending(|b| b.op == op);
        if t.global.trans_type == TransType::Tcc {
            order.reverse();
        }
        let waves = order.into_iter().map(|i| vec![i]).collect();
        self.call_all(t, waves, Some(to)).await
    }

    /// Calls each wave's branches (indexes into `t.branches`) concurrently, waves in order,
    /// recording each wave's successes; the first wave with a branch that did not succeed ends
    /// the round. When all succeed, the transaction moves to `then` — written with the last
    /// wave's results. FAILURE counts as an error here: these branches must eventually succeed
    /// (docs/dtm-protocol.md, Results).
    async fn call_all(
        &self,
        t: &mut Trans,
        waves: Vec<Vec<usize>>,
        then: Option<Status>,
    ) -> Result<Step, TransError> {
        let count = waves.len();
        for (k, wave) in waves.into_iter().enumerate() {
            let calls = wave
                .iter()
                .map(|&i| {
                    let b = &t.branches[i];
                    self.call(&t.global, &b.url, &b.bin_data, &b.branch_id, b.op.as_str())
                })
                .collect();
            let results = self.bounded(calls).await;
            let mut answered = Vec::new();
            let mut pending = None;
            for (&i, result) in wave.iter().zip(results) {
                match result {
                    Ok(r) if r.result == DtmResult::Success => answered.push((i, Status::Succeed)),
                    other => {
                        pending.get_or_insert(not_done(&t.branches[i].url, other));
                    }
                }
            }
            let last = k + 1 == count && pending.is_none();
            let to = then.filter(|_| last).map(|to| (to, None));
            if !self.record(t, &answered, to).await? {
                return Ok(Step::Reload);
            }
            if let Some(next) = pending {
                return Ok(Step::Stop(next));
            }
        }
        match then {
            Some(to) if count == 0 => self.advance(t, to, None).await,
            _ => Ok(Step::Again),
        }
    }

    /// Runs `calls` (branch calls of one transaction) at most `BranchConcurrency` at a time;
    /// their results in order. Unbounded, a 2,000-step concurrent saga opened 2,000 connections
    /// to one host at once and never got through.
    async fn bounded<F: Future>(&self, calls: Vec<F>) -> Vec<F::Output> {
        futures_util::stream::iter(calls)
            .buffered(self.policy.branch_concurrency.max(1))
            .collect()
            .await
    }

    /// DTM's timeout reason, naming the timeout in force (the server's when the transaction
    /// set none).
    fn timeout_reason(&self, g: &Global) -> String {
        let timeout = self.policy.timeout(g.trans_type, &g.options);
        let secs = timeout.map_or(0, |d| d.as_secs());
        format!("Timeout after {secs} seconds")
    }

    /// When a transaction times out (never, for a saga that set no timeout).
    fn deadline(&self, g: &Global) -> UnixMs {
        match self.policy.timeout(g.trans_type, &g.options) {
            Some(timeout) => g.create_time + timeout,
            None => NEVER,
        }
    }

    /// A saga action, re-invoked at once while `retry_limit` allows.
    async fn call_action(&self, g: &Global, b: &Branch, retries: &AtomicI64) -> Action {
        loop {
            let result = self
                .call(g, &b.url, &b.bin_data, &b.branch_id, b.op.as_str())
                .await;
            let settled = matches!(&result, Ok(r) if r.result != DtmResult::Ongoing);
            if settled || g.options.retry_limit <= 0 {
                return match result {
                    Ok(r) => Action::Answered(r),
                    Err(e) => Action::Failed(e),
                };
            }
            if retries.fetch_add(1, Ordering::SeqCst) >= g.options.retry_limit {
                return Action::Exhausted;
            }
        }
    }

    /// Writes a wave's results (`(index into t.branches, status)`) and, with `then`, the
    /// status change that follows, as one; applies them to `t` once written. `false` if the
    /// transaction left its status meanwhile (nothing was written).
    async fn record(
        &self,
        t: &mut Trans,
        results: &[(usize, Status)],
        then: Option<(Status, Option<&str>)>,
    ) -> Result<bool, TransError> {
        if results.is_empty() && then.is_none() {
            return Ok(true);
        }
        let now = self.clock.now();
        let change = then.map(|(to, rollback_reason)| StatusChange {
            from: t.global.status,
            to,
            rollback_reason,
            now,
        });
        let progress = Progress {
            gid: &t.global.gid,
            global_status: t.global.status,
            branches: results
                .iter()
                .map(|&(i, s)| (t.branches[i].branch_id.as_str(), t.branches[i].op, s))
                .collect(),
            then: change.clone(),
            now,
        };
        if !self.store.record(&progress).await? {
            return Ok(false);
        }
        for &(i, status) in results {
            t.branches[i].answered(status, now);
        }
        if let Some(change) = change {
            log_change(&t.global, &change);
            change.apply(&mut t.global);
        }
        Ok(true)
    }

    /// One branch call with the transaction's context, headers and timeout.
    async fn call(
        &self,
        g: &Global,
        url: &str,
        body: &[u8],
        branch_id: &str,
        op: &str,
    ) -> Result<Reply, CallError> {
        let info = BranchInfo {
            gid: g.gid.clone(),
            trans_type: g.trans_type.as_str().to_owned(),
            branch_id: branch_id.to_owned(),
            op: op.to_owned(),
            dtm: String::new(),
            phase2_url: String::new(),
        };
        // Clamped as well as checked at submit: a stored row is read back as data, not trusted.
        let timeout = match g.options.request_timeout {
            s if s > 0 => Duration::from_secs(s.min(MAX_REQUEST_TIMEOUT_SECS).unsigned_abs()),
            _ => self.policy.request_timeout,
        };
        let result = self
            .caller
            .call(&BranchRequest {
                url,
                protocol: &g.protocol,
                body,
                info: &info,
                headers: &g.options.branch_headers,
                timeout,
            })
            .await;
        match &result {
            Ok(r) => {
                tracing::debug!(gid = %g.gid, branch_id, op, url, result = r.result.as_str(), "branch")
            }
            Err(e) => tracing::debug!(gid = %g.gid, branch_id, op, error = %e, "branch"),
        }
        let ok = matches!(&result, Ok(r) if r.result == DtmResult::Success);
        self.metrics
            .branch_processed(g.trans_type.as_str(), branch_id, op, ok);
        result
    }
}

/// How a saga action call ended.
enum Action {
    /// SUCCESS, FAILURE, or ONGOING (when no retry is left or allowed).
    Answered(Reply),
    /// No DTM answer.
    Failed(CallError),
    /// `retry_limit` used up.
    Exhausted,
}

/// A saga's steps and what each waits for.
struct SagaPlan {
    steps: Vec<SagaStep>,
    /// Step index → the steps whose actions must succeed before its action starts.
    deps: Vec<Vec<usize>>,
}

/// A step's two branch rows, as indexes into the transaction's branches.
struct SagaStep {
    action: usize,
    compensate: usize,
}

impl SagaPlan {
    /// Pairs the rows (`compensate`, `action` per step, in insertion order) and reads the
    /// order: sequential, or concurrent with `orders` (validated at submit).
    fn new(g: &Global, branches: &[Branch]) -> SagaPlan {
        let steps: Vec<SagaStep> = branches
            .chunks_exact(2)
            .enumerate()
            .filter_map(|(k, pair)| match (pair[0].op, pair[1].op) {
                (Op::Compensate, Op::Action) => Some(SagaStep {
                    compensate: 2 * k,
                    action: 2 * k + 1,
                }),
                _ => None,
            })
            .collect();
        let n = steps.len();
        let custom = parse_saga_custom_data(&g.custom_data, n).unwrap_or_default();
        let deps = (0..n)
            .map(|i| match (custom.concurrent, i) {
                (true, _) => custom.orders.get(&i).cloned().unwrap_or_default(),
                (false, 0) => Vec::new(),
                (false, i) => vec![i - 1],
            })
            .collect();
        SagaPlan { steps, deps }
    }
}

impl Trans {
    /// Indexes of the `prepared` branches that `which` selects, in insertion order.
    fn pending(&self, which: impl Fn(&Branch) -> bool) -> Vec<usize> {
        (0..self.branches.len())
            .filter(|&i| self.branches[i].status == Status::Prepared && which(&self.branches[i]))
            .collect()
    }
}

/// A call that did not succeed, as the reason to come back.
fn not_done(url: &str, result: Result<Reply, CallError>) -> Next {
    match result {
        Ok(r) if r.result == DtmResult::Ongoing => Next::Ongoing(format!("{url} answered ONGOING")),
        Ok(r) if r.result == DtmResult::Failure => Next::Error(format!(
            "{url} answered FAILURE, which only a saga action, a TCC try or a check-back may; retrying: {}",
            r.body
        )),
        Ok(_) => Next::Error(format!("{url}: unexpected success")),
        Err(e) => Next::Error(e.to_string()),
    }
}
