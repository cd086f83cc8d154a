//! What drives transactions, shared by the API operations, the rounds and the poller: the store,
//! the branch caller, the timing rules, the clock and this instance's lease owner id; and what it
//! does around a round — loading a transaction, holding its lease, scheduling the next visit.
//!
//! A transaction is always written before any branch is called, every status change is a
//! compare-and-set, and whoever drives a transaction holds its lease (`owner`,
//! `next_cron_time`), renewed while the work goes on; so a crash at any point leaves a row the
//! poller of this or another instance picks up, and branches (idempotent behind their barrier)
//! may at worst be called again.

use std::sync::Arc;

use tracing::Instrument;

use crate::biz::round::{Next, Round};
use crate::biz::trans_type::CustomData;
use crate::biz::{
    Branch, BranchCaller, Clock, Global, Policy, RoundObserver, Status, StatusChange, StoreError,
    TransError, TransStore,
};

/// The coordinator's moving parts; one per use case, shared by every round.
pub(crate) struct Driver {
    pub(crate) store: Arc<dyn TransStore>,
    pub(crate) caller: Arc<dyn BranchCaller>,
    pub(crate) policy: Policy,
    pub(crate) clock: Clock,
    /// This instance's lease owner id.
    pub(crate) owner: String,
    /// Told of every round and branch call (the coordinator's metrics).
    pub(crate) observer: Arc<dyn RoundObserver>,
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

impl Driver {
    /// Reads `gid` from the store and drives it for one round (see [`Driver::drive_loaded`]).
    pub(crate) async fn drive(&self, gid: &str) -> Result<Global, TransError> {
        let t = self.load(gid).await?;
        self.drive_loaded(t).await
    }

    /// Drives a transaction for one round while holding its lease, then schedules the next
    /// visit. Returns the transaction as the round left it.
    pub(crate) async fn drive_loaded(&self, t: Trans) -> Result<Global, TransError> {
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
        let mut round = Round::new(self, t);
        let next = {
            // The lease is renewed beside the round, in this task (no task per round). A renewal
            // cut short when the round ends has either not reached the store or was queued
            // before anything the round writes next, so it cannot overtake the schedule below.
            let run = round.run().instrument(span);
            let renewal = self.renew_lease(&gid);
            tokio::pin!(run, renewal);
            tokio::select! {
                biased;
                next = &mut run => next,
                () = &mut renewal => run.await,
            }
        };
        let global = round.into_global();
        let age = self.clock.now() - global.create_time;
        let settled = matches!(next, Ok(Next::Done | Next::At(_)));
        self.observer
            .transaction_processed(global.trans_type.as_str(), settled, age);
        if let Ok(Next::Done) = next {
            return Ok(global);
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

    /// A transaction and its branches, from the store. A `custom_data` that no longer parses is
    /// an error, as corrupt options are: running it with defaults would quietly change what it
    /// does (a concurrent saga turned sequential).
    pub(crate) async fn load(&self, gid: &str) -> Result<Trans, TransError> {
        let global = self.must_find(gid).await?;
        let branches = self.store.branches(gid).await?;
        let custom = CustomData::stored(&global, &branches).map_err(|e| {
            StoreError::Backend(format!("the stored custom_data of {gid} is corrupt: {e}").into())
        })?;
        Ok(Trans {
            global,
            branches,
            custom,
        })
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

    /// A branch URL this coordinator can call, or a 400 naming the problem (checked when a
    /// transaction or branch arrives, so that a URL that can never work is not retried forever).
    pub(crate) fn check_target(&self, protocol: &str, url: &str) -> Result<(), TransError> {
        self.caller
            .check(protocol, url)
            .map_err(|e| TransError::BadRequest(e.to_string()))
    }

    /// The transaction `gid`, or NotFound.
    pub(crate) async fn must_find(&self, gid: &str) -> Result<Global, TransError> {
        self.store
            .find(gid)
            .await?
            .ok_or_else(|| TransError::NotFound(format!("no transaction with gid {gid}")))
    }

    /// Compare-and-set of the status from `g.status` to `to`, applied to `g` as well when it
    /// succeeds; `false` if someone changed it first.
    pub(crate) async fn change(
        &self,
        g: &mut Global,
        to: Status,
        rollback_reason: Option<&str>,
    ) -> Result<bool, TransError> {
        let change = StatusChange {
            from: g.status,
            to,
            rollback_reason,
            now: self.clock.now(),
        };
        let changed = self.store.change_status(&g.gid, &change).await?;
        if changed {
            log_change(g, &change);
            change.apply(g);
        }
        Ok(changed)
    }

    /// Moves a `prepared` transaction on (submit / abort) and takes its lease to drive it.
    pub(crate) async fn take(
        &self,
        g: &Global,
        to: Status,
        reason: Option<&str>,
    ) -> Result<(), TransError> {
        if !self.change(&mut g.clone(), to, reason).await? {
            let now = self.must_find(&g.gid).await?;
            if now.status != to {
                return Err(TransError::Failure(format!(
                    "current status '{}', cannot move to {}",
                    now.status.as_str(),
                    to.as_str()
                )));
            }
        }
        let now = self.clock.now();
        self.store
            .take_lease(&g.gid, &self.owner, now + self.policy.lease(), now)
            .await?;
        Ok(())
    }
}

/// Logs a status change: at info when the transaction rolls back or fails (what an operator
/// looks for), at debug otherwise — a line per success would cost a coordinator at thousands
/// of transactions a second a tenth of its CPU.
pub(crate) fn log_change(g: &Global, c: &StatusChange<'_>) {
    let (gid, trans_type, from, to) = (
        &g.gid,
        g.trans_type.as_str(),
        c.from.as_str(),
        c.to.as_str(),
    );
    if matches!(c.to, Status::Aborting | Status::Failed) {
        tracing::info!(%gid, trans_type, from, to, reason = c.rollback_reason, "status");
    } else {
        tracing::debug!(%gid, trans_type, from, to, "status");
    }
}
