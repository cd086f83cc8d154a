//! The state machines (docs/dtm-protocol.md, Statuses and state machines): one *round* drives a transaction as far as it can go now —
//! calling branches, recording their results, changing its status — and says when to come back.
//!
//! | type | prepared | submitted | aborting |
//! |------|----------|-----------|----------|
//! | saga | timeout → aborting | actions in order (or concurrently, per `orders`) → succeed; an action's FAILURE, `retry_limit` or `timeout_to_fail` → aborting | compensations in reverse → failed |
//! | msg  | after the timeout, ask `query_prepared`: SUCCESS → submitted, FAILURE → failed | after `delay`, actions (in order or concurrently) → succeed | — |
//! | tcc  | timeout → aborting | confirms, last registered first → succeed | cancels, last registered first → failed |
//!
//! ONGOING keeps the base interval; an error doubles it, up to `RetryMaxInterval`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dtmcli::caller::{BranchRequest, CallError, Reply};
use dtmcli::wire::{MAX_REQUEST_TIMEOUT_SECS, parse_msg_custom_data, parse_saga_custom_data};
use dtmcli::{BranchInfo, DtmResult};
use futures_util::future::join_all;

use crate::biz::usecase::{Inner, TransError, ms, secs};
use crate::biz::{Branch, Global, Op, Status, TransType};

/// When to visit a transaction next, as a round ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// It is final.
    Done,
    /// A branch answered ONGOING: come back after the base interval.
    Ongoing(String),
    /// A branch failed to answer: come back later, backing off.
    Error(String),
    /// Nothing to do before this time (Unix ms): a timeout or a msg delay.
    At(i64),
}

/// What one step of a round did.
enum Step {
    /// The status changed (or someone else changed it): look again.
    Again,
    /// The round ends.
    Stop(Next),
}

impl Inner {
    /// Drives `gid` for one round while holding its lease, then schedules the next visit.
    /// Returns the transaction as the round left it.
    pub(crate) async fn drive(self: Arc<Self>, gid: &str) -> Result<Global, TransError> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let renewal = tokio::spawn(self.clone().renew_lease(gid.to_owned(), stopped));
        let next = self.round(gid).await;
        drop(stop);
        // Wait for the renewal to end so that its last write cannot overtake the schedule below.
        let _ = renewal.await;
        let g = self.must_find(gid).await?;
        let now = self.clock.now();
        let base = self.base_interval(&g.options);
        let cap = ms(self.policy.retry_max_interval).max(base);
        let current = g.next_cron_interval.clamp(base, cap);
        let (at, interval) = match next {
            Ok(Next::Done) => return Ok(g),
            Ok(Next::At(at)) => (at, current),
            Ok(Next::Ongoing(why)) => {
                tracing::info!(gid, %why, "ongoing");
                (now.saturating_add(base), base)
            }
            Ok(Next::Error(why)) => {
                tracing::warn!(gid, %why, retry_in_ms = current, "branch error");
                (
                    now.saturating_add(current),
                    current.saturating_mul(2).min(cap),
                )
            }
            Err(e) => {
                tracing::warn!(gid, error = %e, retry_in_ms = current, "round failed");
                (
                    now.saturating_add(current),
                    current.saturating_mul(2).min(cap),
                )
            }
        };
        if !g.status.is_final() {
            self.store
                .schedule(gid, &self.owner, at, Some(interval), now)
                .await?;
        }
        Ok(g)
    }

    /// Extends the lease every third of its length until `stopped` fires.
    async fn renew_lease(
        self: Arc<Self>,
        gid: String,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
    ) {
        let lease = self.policy.lease();
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(lease / 3) => {}
            }
            let now = self.clock.now();
            match self
                .store
                .schedule(&gid, &self.owner, now + ms(lease), None, now)
                .await
            {
                Ok(true) => {}
                // Finished, or another instance took it over: nothing to renew.
                Ok(false) => return,
                Err(e) => tracing::warn!(%gid, error = %e, "renewing the lease"),
            }
        }
    }

    async fn round(&self, gid: &str) -> Result<Next, TransError> {
        let retries = AtomicI64::new(0);
        loop {
            let g = self.must_find(gid).await?;
            let step = match (g.trans_type, g.status) {
                (_, Status::Succeed | Status::Failed) => return Ok(Next::Done),
                (TransType::Msg, Status::Prepared) => self.msg_check_back(&g).await?,
                (TransType::Saga | TransType::Tcc, Status::Prepared) => self.expire(&g).await?,
                (TransType::Saga, Status::Submitted) => self.saga_forward(&g, &retries).await?,
                (TransType::Saga, Status::Aborting) => self.saga_backward(&g).await?,
                (TransType::Msg, Status::Submitted) => self.msg_forward(&g).await?,
                // A msg never rolls back: nothing to undo.
                (TransType::Msg, Status::Aborting) => {
                    self.change(&g, Status::Aborting, Status::Failed, None)
                        .await?;
                    Step::Again
                }
                (TransType::Tcc, Status::Submitted) => {
                    self.phase_two(&g, Op::Confirm, Status::Succeed).await?
                }
                (TransType::Tcc, Status::Aborting) => {
                    self.phase_two(&g, Op::Cancel, Status::Failed).await?
                }
            };
            match step {
                Step::Again => continue,
                Step::Stop(next) => return Ok(next),
            }
        }
    }

    /// A prepared saga or tcc past its timeout rolls back.
    async fn expire(&self, g: &Global) -> Result<Step, TransError> {
        let deadline = self.deadline(g);
        if self.clock.now() < deadline {
            return Ok(Step::Stop(Next::At(deadline)));
        }
        let reason = self.timeout_reason(g);
        self.change(g, Status::Prepared, Status::Aborting, Some(&reason))
            .await?;
        Ok(Step::Again)
    }

    /// A prepared msg past its timeout: ask the application whether its local transaction
    /// committed (GET `query_prepared`, branch `00`, op `msg`).
    async fn msg_check_back(&self, g: &Global) -> Result<Step, TransError> {
        let deadline = self.deadline(g);
        if self.clock.now() < deadline {
            return Ok(Step::Stop(Next::At(deadline)));
        }
        let reply = self.call(g, &g.query_prepared, &[], "00", "msg").await;
        match reply {
            Ok(r) if r.result == DtmResult::Success => {
                self.change(g, Status::Prepared, Status::Submitted, None)
                    .await?;
                Ok(Step::Again)
            }
            Ok(r) if r.result == DtmResult::Failure => {
                let reason = format!("query_prepared answered FAILURE: {}", r.body);
                self.change(g, Status::Prepared, Status::Failed, Some(&reason))
                    .await?;
                Ok(Step::Again)
            }
            other => Ok(Step::Stop(not_done(&g.query_prepared, other))),
        }
    }

    /// Saga forward: start every action whose predecessors succeeded, wave after wave.
    async fn saga_forward(&self, g: &Global, retries: &AtomicI64) -> Result<Step, TransError> {
        if g.options.timeout_to_fail > 0
            && self.clock.now()
                >= g.create_time
                    .saturating_add(secs(g.options.timeout_to_fail))
        {
            let reason = self.timeout_reason(g);
            self.change(g, Status::Submitted, Status::Aborting, Some(&reason))
                .await?;
            return Ok(Step::Again);
        }
        let branches = self.store.branches(&g.gid).await?;
        let saga = SagaPlan::new(g, &branches);
        // An action recorded `failed` by an earlier round that stopped before `aborting` was
        // written (a crash, a failed write): the saga rolls back now. Without this check no
        // action would be ready below, which must never read as "all done".
        if let Some(failed) = saga
            .steps
            .iter()
            .find(|s| s.action.status == Status::Failed)
        {
            let reason = format!("url:{} return failed", failed.action.url);
            self.change(g, Status::Submitted, Status::Aborting, Some(&reason))
                .await?;
            return Ok(Step::Again);
        }
        let mut done: Vec<Status> = saga.steps.iter().map(|s| s.action.status).collect();
        loop {
            let ready: Vec<usize> = (0..done.len())
                .filter(|&i| {
                    done[i] == Status::Prepared
                        && saga.deps[i].iter().all(|&d| done[d] == Status::Succeed)
                })
                .collect();
            if ready.is_empty() {
                break;
            }
            let calls = ready
                .iter()
                .map(|&i| self.call_action(g, saga.steps[i].action, retries));
            let results = join_all(calls).await;
            let mut failure = None;
            let mut pending = None;
            for (&i, result) in ready.iter().zip(results) {
                let action = saga.steps[i].action;
                match result {
                    Action::Answered(r) if r.result == DtmResult::Success => {
                        if !self.set_branch(g, action, Status::Succeed).await? {
                            return Ok(Step::Again);
                        }
                        done[i] = Status::Succeed;
                    }
                    Action::Answered(r) if r.result == DtmResult::Failure => {
                        if !self.set_branch(g, action, Status::Failed).await? {
                            return Ok(Step::Again);
                        }
                        failure
                            .get_or_insert(format!("url:{} return failed: {}", action.url, r.body));
                    }
                    Action::Exhausted => {
                        failure.get_or_insert(format!(
                            "RetryCount is greater than RetryLimit, RetryLimit: {}",
                            g.options.retry_limit
                        ));
                    }
                    Action::Answered(r) => {
                        pending.get_or_insert(not_done(&action.url, Ok(r)));
                    }
                    Action::Failed(e) => {
                        pending.get_or_insert(not_done(&action.url, Err(e)));
                    }
                }
            }
            if let Some(reason) = failure {
                self.change(g, Status::Submitted, Status::Aborting, Some(&reason))
                    .await?;
                return Ok(Step::Again);
            }
            if let Some(next) = pending {
                return Ok(Step::Stop(next));
            }
        }
        // Success only when every action is recorded `succeed`: "nothing ready" alone proves nothing.
        if done.iter().any(|s| *s != Status::Succeed) || saga.steps.len() * 2 != branches.len() {
            return Ok(Step::Stop(Next::Error(
                "the saga's branch rows do not form complete steps".into(),
            )));
        }
        self.change(g, Status::Submitted, Status::Succeed, None)
            .await?;
        Ok(Step::Again)
    }

    /// Saga backward: compensate every step whose action ran or may have started (including the
    /// one that answered FAILURE), a step only after the steps that depended on it.
    async fn saga_backward(&self, g: &Global) -> Result<Step, TransError> {
        let branches = self.store.branches(&g.gid).await?;
        let saga = SagaPlan::new(g, &branches);
        let n = saga.steps.len();
        let action = |i: usize| saga.steps[i].action.status;
        // An action may have started if it was ever eligible: its predecessors all succeeded.
        let needs: Vec<bool> = (0..n)
            .map(|i| {
                action(i) != Status::Prepared
                    || saga.deps[i].iter().all(|&d| action(d) == Status::Succeed)
            })
            .collect();
        let mut undone: Vec<bool> = (0..n)
            .map(|i| !needs[i] || saga.steps[i].compensate.status == Status::Succeed)
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
            let calls = ready.iter().map(|&i| {
                let c = saga.steps[i].compensate;
                self.call(g, &c.url, &c.bin_data, &c.branch_id, c.op.as_str())
            });
            let results = join_all(calls).await;
            let mut pending = None;
            for (&i, result) in ready.iter().zip(results) {
                let c = saga.steps[i].compensate;
                match result {
                    Ok(r) if r.result == DtmResult::Success => {
                        if !self.set_branch(g, c, Status::Succeed).await? {
                            return Ok(Step::Again);
                        }
                        undone[i] = true;
                    }
                    other => {
                        pending.get_or_insert(not_done(&c.url, other));
                    }
                }
            }
            if let Some(next) = pending {
                return Ok(Step::Stop(next));
            }
        }
        self.change(g, Status::Aborting, Status::Failed, None)
            .await?;
        Ok(Step::Again)
    }

    /// Msg forward: after the delay, every action until it succeeds (a msg never rolls back).
    async fn msg_forward(&self, g: &Global) -> Result<Step, TransError> {
        let delay = parse_msg_custom_data(&g.custom_data).map_or(0, |c| c.delay);
        let start = g.create_time.saturating_add(secs(delay));
        if self.clock.now() < start {
            return Ok(Step::Stop(Next::At(start)));
        }
        let branches = self.store.branches(&g.gid).await?;
        let todo: Vec<&Branch> = branches
            .iter()
            .filter(|b| b.op == Op::Action && b.status == Status::Prepared)
            .collect();
        let waves: Vec<Vec<&Branch>> = if g.options.concurrent {
            vec![todo]
        } else {
            todo.into_iter().map(|b| vec![b]).collect()
        };
        if let Some(step) = self.call_all(g, waves).await? {
            return Ok(step);
        }
        self.change(g, Status::Submitted, Status::Succeed, None)
            .await?;
        Ok(Step::Again)
    }

    /// TCC phase two: every `op` branch, last registered first, then `to`.
    async fn phase_two(&self, g: &Global, op: Op, to: Status) -> Result<Step, TransError> {
        let branches = self.store.branches(&g.gid).await?;
        let waves = branches
            .iter()
            .rev()
            .filter(|b| b.op == op && b.status == Status::Prepared)
            .map(|b| vec![b])
            .collect();
        if let Some(step) = self.call_all(g, waves).await? {
            return Ok(step);
        }
        self.change(g, g.status, to, None).await?;
        Ok(Step::Again)
    }

    /// Calls each wave's branches concurrently, waves in order, marking successes; the first
    /// wave with a branch that did not succeed ends the round. FAILURE counts as an error here:
    /// these branches must eventually succeed (docs/dtm-protocol.md, Results).
    async fn call_all(
        &self,
        g: &Global,
        waves: Vec<Vec<&Branch>>,
    ) -> Result<Option<Step>, TransError> {
        for wave in waves {
            let calls = wave
                .iter()
                .map(|b| self.call(g, &b.url, &b.bin_data, &b.branch_id, b.op.as_str()));
            let results = join_all(calls).await;
            let mut pending = None;
            for (b, result) in wave.iter().zip(results) {
                match result {
                    Ok(r) if r.result == DtmResult::Success => {
                        if !self.set_branch(g, b, Status::Succeed).await? {
                            return Ok(Some(Step::Again));
                        }
                    }
                    other => {
                        pending.get_or_insert(not_done(&b.url, other));
                    }
                }
            }
            if let Some(next) = pending {
                return Ok(Some(Step::Stop(next)));
            }
        }
        Ok(None)
    }

    /// DTM's timeout reason, naming the timeout in force (the server's when the transaction
    /// set none).
    fn timeout_reason(&self, g: &Global) -> String {
        let secs = self.timeout_ms(g.trans_type, &g.options) / 1000;
        format!("Timeout after {secs} seconds")
    }

    /// When a transaction times out (Unix ms).
    fn deadline(&self, g: &Global) -> i64 {
        g.create_time
            .saturating_add(self.timeout_ms(g.trans_type, &g.options))
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

    /// Records a branch's status while the transaction keeps its status; `false` if it changed.
    async fn set_branch(&self, g: &Global, b: &Branch, status: Status) -> Result<bool, TransError> {
        let now = self.clock.now();
        Ok(self
            .store
            .update_branch(&g.gid, g.status, &b.branch_id, b.op, status, now)
            .await?)
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
        // Clamped as well as checked at submit: a row stored by an older version may hold any value.
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
struct SagaPlan<'a> {
    steps: Vec<SagaStep<'a>>,
    /// Step index → the steps whose actions must succeed before its action starts.
    deps: Vec<Vec<usize>>,
}

struct SagaStep<'a> {
    action: &'a Branch,
    compensate: &'a Branch,
}

impl<'a> SagaPlan<'a> {
    /// Pairs the rows (`compensate`, `action` per step, in insertion order) and reads the
    /// order: sequential, or concurrent with `orders` (validated at submit).
    fn new(g: &Global, branches: &'a [Branch]) -> SagaPlan<'a> {
        let steps: Vec<SagaStep<'a>> = branches
            .chunks_exact(2)
            .filter_map(|pair| match (pair[0].op, pair[1].op) {
                (Op::Compensate, Op::Action) => Some(SagaStep {
                    compensate: &pair[0],
                    action: &pair[1],
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
