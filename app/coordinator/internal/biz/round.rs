//! One *round* drives a transaction as far as it can go now — calling branches, recording their
//! results, changing its status — and says when to come back (docs/dtm-protocol.md, Statuses and
//! state machines). What each step does is its type's business (`trans_type`); this file holds
//! what every type's steps use: moving the status, calling branches a wave at a time, recording
//! answers, timeouts. The loop that runs the steps under the lease is in `drive`.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use dtmcli::caller::{CallError, CallRequest, Reply};
use dtmcli::{BranchInfo, DtmResult};
use futures_util::StreamExt;
use kit::time::UnixMs;

use crate::biz::driver::{Driver, log_change};
use crate::biz::policy::{MAX_REQUEST_TIMEOUT_SECS, NEVER};
use crate::biz::{
    Branch, BranchStatus, CustomData, Global, Op, Progress, Status, StatusChange, TransError,
};

/// When to visit a transaction next, as a round ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
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
pub(crate) enum Step {
    /// The status changed as this round wrote it: go on from the copy in memory.
    Again,
    /// Someone else changed the transaction, or it left `prepared` (when TCC branches may have
    /// been registered meanwhile): read it again from the store.
    Reload,
    /// The round ends.
    Stop(Next),
}

/// A round in progress: the driver, the transaction as the round holds it, its timeout (its
/// type's rule, `None` for none), and the saga action retries it has spent (`retry_limit`
/// counts per round, as in DTM).
pub(crate) struct Round<'a> {
    pub(crate) d: &'a Driver,
    pub(crate) t: Trans,
    timeout: Option<Duration>,
    pub(crate) retries: AtomicI64,
}

impl<'a> Round<'a> {
    /// A round of `t`, which times out after `timeout`.
    pub(crate) fn new(d: &'a Driver, t: Trans, timeout: Option<Duration>) -> Round<'a> {
        Round {
            d,
            t,
            timeout,
            retries: AtomicI64::new(0),
        }
    }

    /// The transaction as the round left it.
    pub(crate) fn into_global(self) -> Global {
        self.t.global
    }

    /// Moves the transaction to `to` (compare-and-set from its status in memory).
    pub(crate) async fn advance(
        &mut self,
        to: Status,
        reason: Option<&str>,
    ) -> Result<Step, TransError> {
        let from = self.t.global.status;
        let changed = self.d.change(&mut self.t.global, to, reason).await?;
        // Leaving `prepared`: a TCC branch may have been registered since the copy was read.
        Ok(if changed && from != Status::Prepared {
            Step::Again
        } else {
            Step::Reload
        })
    }

    /// A prepared transaction past its timeout rolls back; before it, the round waits.
    pub(crate) async fn expire(&mut self) -> Result<Step, TransError> {
        if let Some(wait) = self.before_deadline() {
            return Ok(wait);
        }
        let reason = self.timeout_reason();
        self.advance(Status::Aborting, Some(&reason)).await
    }

    /// `Stop` until the transaction's timeout, or `None` once it is past.
    pub(crate) fn before_deadline(&self) -> Option<Step> {
        let deadline = match self.timeout {
            Some(timeout) => self.t.global.create_time + timeout,
            None => NEVER,
        };
        (self.d.clock.now() < deadline).then_some(Step::Stop(Next::At(deadline)))
    }

    /// DTM's timeout reason, naming the timeout in force (the server's when the transaction
    /// set none).
    pub(crate) fn timeout_reason(&self) -> String {
        let secs = self.timeout.map_or(0, |d| d.as_secs());
        format!("Timeout after {secs} seconds")
    }

    /// Calls each wave's branches (indexes into the branches) concurrently, waves in order,
    /// recording each wave's successes; the first wave with a branch that did not succeed ends
    /// the round. When all succeed, the transaction moves to `then` — written with the last
    /// wave's results. FAILURE counts as an error here: these branches must eventually succeed
    /// (docs/dtm-protocol.md, Results).
    pub(crate) async fn call_all(
        &mut self,
        waves: Vec<Vec<usize>>,
        then: Option<Status>,
    ) -> Result<Step, TransError> {
        let count = waves.len();
        for (k, wave) in waves.into_iter().enumerate() {
            let calls = wave
                .iter()
                .map(|&i| self.call(&self.t.branches[i]))
                .collect();
            let results = self.bounded(calls).await;
            let mut answered = Vec::new();
            let mut pending = None;
            for (&i, result) in wave.iter().zip(results) {
                match result {
                    Ok(r) if r.result == DtmResult::Success => {
                        answered.push((i, BranchStatus::Succeed))
                    }
                    other => {
                        pending.get_or_insert(not_done(&self.t.branches[i].url, other));
                    }
                }
            }
            let last = k + 1 == count && pending.is_none();
            let to = then.filter(|_| last).map(|to| (to, None));
            if !self.record(&answered, to).await? {
                return Ok(Step::Reload);
            }
            if let Some(next) = pending {
                return Ok(Step::Stop(next));
            }
        }
        match then {
            Some(to) if count == 0 => self.advance(to, None).await,
            _ => Ok(Step::Again),
        }
    }

    /// Runs `calls` (branch calls of this transaction) at most `BranchConcurrency` at a time;
    /// their results in order: unbounded, a 2,000-step concurrent saga would open 2,000
    /// connections to one host at once and never get through.
    pub(crate) async fn bounded<F: Future>(&self, calls: Vec<F>) -> Vec<F::Output> {
        futures_util::stream::iter(calls)
            .buffered(self.d.policy.branch_concurrency.max(1))
            .collect()
            .await
    }

    /// Writes answers (`(index into the branches, status)`) and, with `then`, the status change
    /// that follows, as one; applies them to the copy once written. `false` if the transaction
    /// left its status meanwhile (nothing was written).
    pub(crate) async fn record(
        &mut self,
        results: &[(usize, BranchStatus)],
        then: Option<(Status, Option<&str>)>,
    ) -> Result<bool, TransError> {
        if results.is_empty() && then.is_none() {
            return Ok(true);
        }
        let t = &mut self.t;
        let now = self.d.clock.now();
        let change = then.map(|(to, rollback_reason)| StatusChange {
            from: t.global.status,
            to,
            rollback_reason,
            result: None,
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
        if !self.d.store.record(&progress).await? {
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

    /// Calls a branch row.
    pub(crate) async fn call(&self, b: &Branch) -> Result<Reply, CallError> {
        self.call_url(&b.url, &b.bin_data, &b.branch_id, b.op).await
    }

    /// One branch call with the transaction's context, headers and timeout.
    pub(crate) async fn call_url(
        &self,
        url: &str,
        body: &[u8],
        branch_id: &str,
        op: Op,
    ) -> Result<Reply, CallError> {
        self.call_with(url, body, branch_id, op, None).await
    }

    /// [`Round::call_url`], with `op_name` sent as the op when given (a workflow's resume sends
    /// the workflow's name).
    pub(crate) async fn call_with(
        &self,
        url: &str,
        body: &[u8],
        branch_id: &str,
        op: Op,
        op_name: Option<&str>,
    ) -> Result<Reply, CallError> {
        let g = &self.t.global;
        let info = BranchInfo {
            gid: g.gid.clone(),
            trans_type: g.trans_type,
            branch_id: branch_id.to_owned(),
            op,
            dtm: String::new(),
            phase2_url: String::new(),
        };
        // Clamped as well as checked at submit: a stored row is read back as data, not trusted.
        let timeout = match g.options.request_timeout {
            s if s > 0 => Duration::from_secs(s.min(MAX_REQUEST_TIMEOUT_SECS).unsigned_abs()),
            _ => self.d.policy.request_timeout,
        };
        let result = self
            .d
            .caller
            .call(&CallRequest {
                url,
                protocol: &g.protocol,
                body,
                info: &info,
                headers: &g.options.branch_headers,
                timeout,
                op_name,
            })
            .await;
        // A resume's op is a name the client chose: the metrics label it `resume`.
        let op = if op_name.is_some() {
            "resume"
        } else {
            op.as_str()
        };
        match &result {
            Ok(r) => {
                tracing::debug!(gid = %g.gid, branch_id, op, url, result = r.result.as_str(), "branch")
            }
            Err(e) => tracing::debug!(gid = %g.gid, branch_id, op, error = %e, "branch"),
        }
        let ok = matches!(&result, Ok(r) if r.result == DtmResult::Success);
        self.d
            .observer
            .branch_processed(g.trans_type.as_str(), branch_id, op, ok);
        result
    }
}

/// A transaction as a round holds it: the global row, its branches in insertion order, and its
/// `custom_data` parsed.
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
    /// Its `custom_data`, typed.
    pub(crate) custom: CustomData,
}

impl Trans {
    /// A transaction as read or just created, `custom` its parsed `custom_data`.
    pub(crate) fn new(global: Global, branches: Vec<Branch>, custom: CustomData) -> Trans {
        Trans {
            global,
            branches,
            custom,
        }
    }

    /// Indexes of the `prepared` branches that `which` selects, in insertion order.
    pub(crate) fn pending(&self, which: impl Fn(&Branch) -> bool) -> Vec<usize> {
        (0..self.branches.len())
            .filter(|&i| {
                self.branches[i].status == BranchStatus::Prepared && which(&self.branches[i])
            })
            .collect()
    }
}

/// A call that did not succeed, as the reason to come back.
pub(crate) fn not_done(url: &str, result: Result<Reply, CallError>) -> Next {
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
