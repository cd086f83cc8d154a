//! The coordinator's use case: what each API operation does to a global transaction. The rounds
//! that drive one are in `drive` and `round` (with each type's steps in `trans_type`), the poller
//! that picks up unfinished ones in `poller`, the topic operations in `topics`.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::biz::drive::{drive, drive_loaded};
use crate::biz::driver::Driver;
use crate::biz::poller::Poller;
use crate::biz::round::Trans;
use crate::biz::topics;
use crate::biz::trans_type::{new_trans, registration_rows};
use crate::biz::{
    Branch, BranchCaller, Clock, Created, Global, NewTrans, Policy, Registration, RoundObserver,
    ScanPage, ScanQuery, Status, StoreError, TransError, TransStore, TransType,
};

/// The coordinator. Cheap to clone.
#[derive(Clone)]
pub struct TransUsecase {
    pub(crate) driver: Arc<Driver>,
}

impl TransUsecase {
    /// A use case over `store`, calling branches with `caller`, reporting its rounds to
    /// `observer` ([`Unobserved`](crate::biz::Unobserved) to count nothing).
    pub fn new(
        store: Arc<dyn TransStore>,
        caller: Arc<dyn BranchCaller>,
        policy: Policy,
        clock: Clock,
        observer: Arc<dyn RoundObserver>,
    ) -> TransUsecase {
        TransUsecase {
            driver: Arc::new(Driver {
                store,
                caller,
                policy,
                clock,
                owner: uuid::Uuid::new_v4().to_string(),
                observer,
            }),
        }
    }

    /// The poller of this use case: run it (as the app's worker), or step it in tests.
    pub fn poller(&self) -> Poller {
        Poller::new(self.driver.clone())
    }

    /// A clean stop's last step, once the servers and the poller have stopped.
    pub async fn close(&self) -> Result<(), TransError> {
        Ok(self.driver.store.close().await?)
    }

    /// Reads the store's backlog into the metrics (`dtm_unfinished_transactions`,
    /// `dtm_poller_lag_seconds`).
    pub async fn count_backlog(&self) -> Result<(), TransError> {
        let d = &self.driver;
        let backlog = d.store.backlog().await?;
        let lag = backlog
            .earliest_due
            .map_or(Duration::ZERO, |due| d.clock.now() - due);
        d.observer.backlog(&backlog.unfinished, lag);
        Ok(())
    }

    /// `prepare`: store a msg (with its branches), a tcc or an xa in `prepared`. Idempotent.
    pub async fn prepare(&self, t: NewTrans) -> Result<(), TransError> {
        let d = &self.driver;
        let topics = topics::subscribers(&*d.store, &t).await?;
        let Trans {
            global, branches, ..
        } = new_trans(d, &t, Status::Prepared, &topics)?;
        match d.store.create(&global, &branches).await? {
            Created::Inserted => Ok(()),
            Created::Exists(g)
                if g.status == Status::Prepared && g.trans_type == global.trans_type =>
            {
                Ok(())
            }
            Created::Exists(g) => Err(TransError::Failure(format!(
                "current status '{}', cannot prepare",
                g.status.as_str()
            ))),
        }
    }

    /// `submit`: a new saga or msg is stored `submitted` with its branches; a prepared msg, tcc
    /// or xa moves to `submitted`; a submitted one is accepted again. Then it is driven — in the
    /// request with `wait_result`, else in the background.
    pub async fn submit(&self, t: NewTrans) -> Result<(), TransError> {
        let uc = self.clone();
        detached(async move { uc.submit_now(t).await }).await
    }

    async fn submit_now(&self, t: NewTrans) -> Result<(), TransError> {
        let d = &self.driver;
        let topics = topics::subscribers(&*d.store, &t).await?;
        let trans = new_trans(d, &t, Status::Submitted, &topics)?;
        let global = &trans.global;
        let gid = global.gid.clone();
        let created = d.store.create(global, &trans.branches).await?;
        if let Created::Exists(g) = created {
            if g.trans_type != global.trans_type {
                return Err(TransError::Failure(format!(
                    "gid {} is a {} transaction, not {}",
                    g.gid,
                    g.trans_type.as_str(),
                    global.trans_type.as_str()
                )));
            }
            match g.status {
                Status::Prepared => d.take(&g, Status::Submitted, None).await?,
                Status::Submitted => {}
                s => {
                    return Err(TransError::Failure(format!(
                        "current status '{}', cannot submit",
                        s.as_str()
                    )));
                }
            }
            return self
                .finish(Start::Load(gid), t.options.wait_result, Status::Succeed)
                .await;
        }
        // Just written: the round starts from these rows, without reading them back.
        let start = Start::Loaded(Box::new(trans));
        self.finish(start, t.options.wait_result, Status::Succeed)
            .await
    }

    /// `abort`: a prepared msg fails at once; a prepared (or aborting) tcc or xa rolls back.
    pub async fn abort(&self, t: NewTrans) -> Result<(), TransError> {
        let uc = self.clone();
        detached(async move { uc.abort_now(t).await }).await
    }

    async fn abort_now(&self, t: NewTrans) -> Result<(), TransError> {
        let d = &self.driver;
        let mut g = d.must_find(&t.gid).await?;
        let reason = Some(t.rollback_reason.as_str()).filter(|r| !r.is_empty());
        match (g.trans_type, g.status) {
            (TransType::Msg, Status::Prepared) => {
                if d.change(&mut g, Status::Failed, reason).await? {
                    Ok(())
                } else {
                    // Submitted (or settled by the check-back) meanwhile.
                    Err(TransError::Failure(format!(
                        "gid {} left status 'prepared' meanwhile, cannot abort",
                        g.gid
                    )))
                }
            }
            (TransType::Tcc | TransType::Xa, Status::Prepared) => {
                d.take(&g, Status::Aborting, reason).await?;
                self.finish(Start::Load(g.gid), t.options.wait_result, Status::Failed)
                    .await
            }
            (TransType::Tcc | TransType::Xa, Status::Aborting) => {
                self.finish(Start::Load(g.gid), t.options.wait_result, Status::Failed)
                    .await
            }
            (tt, s) => Err(TransError::Failure(format!(
                "current status '{}' of this {}, cannot abort",
                s.as_str(),
                tt.as_str()
            ))),
        }
    }

    /// `registerBranch` of a tcc (rows `cancel` then `confirm`) or an xa (rows `rollback` then
    /// `commit`), only while `prepared`. Registering the same branch again with the same URLs
    /// and body is accepted (a client's retry).
    pub async fn register_branch(&self, b: Registration) -> Result<(), TransError> {
        let d = &self.driver;
        let not_prepared = || {
            TransError::Failure(format!(
                "no trans with gid: {} status: prepared found",
                b.gid
            ))
        };
        let g = d.store.find(&b.gid).await?.ok_or_else(not_prepared)?;
        let trans_type = b.phase2.trans_type();
        if g.trans_type != trans_type {
            return Err(TransError::BadRequest(format!(
                "gid {} is a {} transaction, not {}",
                g.gid,
                g.trans_type.as_str(),
                trans_type.as_str()
            )));
        }
        if b.branch_id.is_empty() || b.branch_id.len() > 128 {
            return Err(TransError::BadRequest(
                "branch_id must be 1 to 128 characters".into(),
            ));
        }
        for (_, url) in registration_rows(&b.phase2) {
            d.check_target(&g.protocol, url)?;
        }
        let now = d.clock.now();
        let rows = registration_rows(&b.phase2)
            .map(|(op, url)| Branch::new(&b.gid, b.branch_id.clone(), op, url, &b.data, now));
        match d.store.add_branches(&b.gid, Status::Prepared, &rows).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_prepared()),
            Err(StoreError::Duplicate) => {
                let existing = d.store.branches(&b.gid).await?;
                let same = rows.iter().all(|r| {
                    existing.iter().any(|e| {
                        (&e.branch_id, e.op, &e.url, &e.bin_data)
                            == (&r.branch_id, r.op, &r.url, &r.bin_data)
                    })
                });
                if same {
                    Ok(())
                } else {
                    Err(TransError::Failure(format!(
                        "branch {} of {} is registered already, with other URLs or data",
                        b.branch_id, b.gid
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `forceStop`: any unfinished transaction → `failed`, without compensation.
    pub async fn force_stop(&self, gid: &str) -> Result<(), TransError> {
        let d = &self.driver;
        loop {
            let mut g = d.must_find(gid).await?;
            if g.status.is_final() {
                return Err(TransError::Failure(format!(
                    "current status '{}', cannot force stop",
                    g.status.as_str()
                )));
            }
            if d.change(&mut g, Status::Failed, Some("force stopped"))
                .await?
            {
                return Ok(());
            }
        }
    }

    /// `query`: a transaction and its branches.
    pub async fn query(&self, gid: &str) -> Result<Option<(Global, Vec<Branch>)>, TransError> {
        let d = &self.driver;
        match d.store.find(gid).await? {
            Some(g) => Ok(Some((g, d.store.branches(gid).await?))),
            None => Ok(None),
        }
    }

    /// `all`: a page of transactions, newest first.
    pub async fn all(&self, q: &ScanQuery) -> Result<ScanPage, TransError> {
        Ok(self.driver.store.scan(q).await?)
    }

    /// `resetCronTime`: transactions not due for more than `after` become due now (recovery
    /// after an outage, when back-off pushed them far out).
    pub async fn reset_cron_time(
        &self,
        after: Option<Duration>,
        limit: u32,
    ) -> Result<(u64, bool), TransError> {
        let d = &self.driver;
        let after = after.unwrap_or(d.policy.timeout_to_fail * 3);
        let now = d.clock.now();
        Ok(d.store.reset_cron_time(now + after, now, limit).await?)
    }

    /// `resetNextCronTime`: one unfinished transaction becomes due now.
    pub async fn reset_next_cron_time(&self, gid: &str) -> Result<(), TransError> {
        let d = &self.driver;
        if d.store.reset_next_cron_time(gid, d.clock.now()).await? {
            Ok(())
        } else {
            Err(TransError::NotFound(format!(
                "no unfinished transaction with gid {gid}"
            )))
        }
    }

    /// Drives a transaction and, with `wait`, reports whether it reached `goal` (`succeed` for
    /// a submit, `failed` for an abort, as DTM answers); without `wait` the round goes on in a
    /// task of its own. Callers run detached from the request (see [`detached`]).
    async fn finish(&self, start: Start, wait: bool, goal: Status) -> Result<(), TransError> {
        let d = self.driver.clone();
        let round = async move {
            let (gid, driven) = match start {
                Start::Load(gid) => {
                    let driven = drive(&d, &gid).await;
                    (gid, driven)
                }
                Start::Loaded(t) => (t.global.gid.clone(), drive_loaded(&d, *t).await),
            };
            if let Err(e) = &driven {
                tracing::warn!(%gid, error = %e, "round");
            }
            driven
        };
        if !wait {
            tokio::spawn(round);
            return Ok(());
        }
        let g = round.await?;
        match g.status {
            s if s == goal => Ok(()),
            Status::Succeed => Err(TransError::Failure(
                "the transaction succeeded before the abort".into(),
            )),
            Status::Failed => Err(TransError::Failure(if g.rollback_reason.is_empty() {
                "the transaction failed".into()
            } else {
                g.rollback_reason
            })),
            // DTM answers 409 here too; not final is ONGOING, so no client mistakes it for a
            // rollback.
            s => Err(TransError::Ongoing(format!(
                "wait result not return success: status is {}, the coordinator keeps going",
                s.as_str()
            ))),
        }
    }
}

/// Runs a request's work in a task of its own and waits for it. A client that hangs up drops
/// the request's future; the work must not stop with it — least of all between a commit and
/// the round that follows it, which would leave the transaction to wait for its lease to run out.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, TransError>> + Send + 'static,
) -> Result<T, TransError> {
    // In the request's span: what it stores and calls stays in the caller's trace.
    match tokio::spawn(work.instrument(tracing::Span::current())).await {
        Ok(done) => done,
        // A panic: the lease runs out and the poller carries on.
        Err(e) => Err(TransError::Ongoing(format!(
            "the request stopped ({e}); the coordinator keeps going"
        ))),
    }
}

/// Where a round starts: from the store, or from rows this request has just written.
enum Start {
    Load(String),
    Loaded(Box<Trans>),
}
