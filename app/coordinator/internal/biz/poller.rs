//! The poller: it leases due transactions — new ones whose round was cut short, retries,
//! timeouts — and drives them, a bounded number at a time, on this and every other instance
//! sharing the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::biz::drive::drive;
use crate::biz::driver::Driver;
use crate::biz::{Leased, TransError};

/// How many transactions the poller drives at once.
pub const POLLER_CONCURRENCY: usize = 64;

/// How many slow rounds (running longer than [`SLOW_ROUND`]) may go on outside the poller's
/// slots. A slow round is one waiting on a branch that answers late or never, for up to its
/// `request_timeout` (a day at most): it costs a task and one connection, not a slot. Only
/// more hanging transactions than this at once can slow the others down, and each holds a file
/// descriptor, so the bound stays well below the usual limit of the process (see
/// docs/operations.md).
pub const POLLER_OVERFLOW: usize = 2048;

/// A round running longer than this is slow: it gives its poller slot back. Rounds whose
/// branches answer take milliseconds; a short threshold lets hundreds of newly due hanging
/// transactions pass through the slots in a second or two.
pub const SLOW_ROUND: Duration = Duration::from_millis(250);

/// The poller of one use case (`TransUsecase::poller` makes it).
pub struct Poller {
    driver: Arc<Driver>,
}

impl Poller {
    /// The poller over `driver`.
    pub(crate) fn new(driver: Arc<Driver>) -> Poller {
        Poller { driver }
    }

    /// Runs the poller: it leases due transactions and drives up to [`POLLER_CONCURRENCY`] of
    /// them at once; when nothing is due it sleeps `TransCronInterval`. A round still running
    /// after [`SLOW_ROUND`] (a branch that answers late or never) moves out of its slot into a
    /// larger overflow budget, so that slow transactions cannot hold every slot and starve the
    /// rest. It runs until dropped: the coordinator's app runs it as a worker (kit's
    /// `AppBuilder::worker`), which stops the app should it ever end or panic.
    pub fn run(self) -> impl Future<Output = ()> + Send + 'static {
        let uc = self;
        let slots = Arc::new(tokio::sync::Semaphore::new(POLLER_CONCURRENCY));
        let overflow = Arc::new(tokio::sync::Semaphore::new(POLLER_OVERFLOW));
        async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                match uc.lease_one().await {
                    Ok(Leased::Taken(g)) => {
                        let gid = g.gid;
                        let d = uc.driver.clone();
                        let overflow = overflow.clone();
                        tokio::spawn(async move {
                            let round = drive(&d, &gid);
                            tokio::pin!(round);
                            let driven = tokio::select! {
                                driven = &mut round => driven,
                                () = tokio::time::sleep(SLOW_ROUND) => {
                                    // Slow: give the slot back if the overflow has room.
                                    let _spare = match overflow.try_acquire_owned() {
                                        Ok(spare) => {
                                            drop(slot);
                                            Some(spare)
                                        }
                                        Err(_) => None,
                                    };
                                    round.await
                                }
                            };
                            if let Err(e) = driven {
                                tracing::warn!(%gid, error = %e, "poller");
                            }
                        });
                    }
                    // Another instance took the one this poller chose: others may be due.
                    Ok(Leased::Raced) => {}
                    Ok(Leased::NothingDue) => {
                        tokio::time::sleep(uc.driver.policy.trans_cron_interval).await
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "poller");
                        tokio::time::sleep(uc.driver.policy.trans_cron_interval).await;
                    }
                }
            }
        }
    }

    /// [`Poller::run`] in a task of its own, for a use case run without an app (tests of the
    /// use case alone). Abort the handle to stop it.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// One poller step: leases one due transaction and drives it; `false` if none was due
    /// (`true` also when another instance took the one due first).
    pub async fn once(&self) -> Result<bool, TransError> {
        match self.lease_one().await? {
            Leased::Taken(g) => {
                drive(&self.driver, &g.gid).await?;
                Ok(true)
            }
            Leased::Raced => Ok(true),
            Leased::NothingDue => Ok(false),
        }
    }

    /// Leases one due transaction to this instance, and counts how that went.
    async fn lease_one(&self) -> Result<Leased, TransError> {
        let d = &self.driver;
        let now = d.clock.now();
        let leased = d
            .store
            .lease_due(now, now + d.policy.lease(), &d.owner)
            .await?;
        let outcome = match &leased {
            Leased::Taken(g) => {
                tracing::debug!(gid = %g.gid, status = g.status.as_str(), "poller took");
                "taken"
            }
            Leased::Raced => "raced",
            Leased::NothingDue => "empty",
        };
        d.observer.poller_leased(outcome);
        Ok(leased)
    }
}
