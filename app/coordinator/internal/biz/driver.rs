//! What drives transactions, shared by the API operations, the rounds and the poller: the store,
//! the branch caller, the timing rules, the clock and this instance's lease owner id, and the
//! writes every one of them makes — loading a transaction, moving its status, taking its lease.
//!
//! A transaction is always written before any branch is called, every status change is a
//! compare-and-set, and whoever drives a transaction holds its lease (`owner`,
//! `next_cron_time`), renewed while the work goes on; so a crash at any point leaves a row the
//! poller of this or another instance picks up, and branches (idempotent behind their barrier)
//! may at worst be called again.

use std::sync::Arc;

use crate::biz::caller::check_target;
use crate::biz::{
    BranchCaller, Clock, Global, Policy, RoundObserver, Status, StatusChange, TransError,
    TransStore,
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

impl Driver {
    /// A branch URL this coordinator can call, or a 400 naming the problem.
    pub(crate) fn check_target(&self, protocol: &str, url: &str) -> Result<(), TransError> {
        check_target(&*self.caller, protocol, url)
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
            result: None,
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
