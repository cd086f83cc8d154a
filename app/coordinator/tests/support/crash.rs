//! The crash-point harness (tests/crash_points*.rs): a store whose Nth write fails or kills the
//! "process", and the loop that runs a scenario once per write position and fault, finishes it
//! with a fresh coordinator on the same store and checks the outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use coordinator::biz::{
    Backlog, Branch, Clock, Created, Global, Leased, Progress, ScanPage, ScanQuery, Status,
    StatusChange, StoreError, Topic, TransStore, TransUsecase, Unobserved,
};
use dtmcli::DtmResult;
use kit::time::UnixMs;

use super::{Branches, policy};

/// How the Nth write goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It fails; the coordinator keeps running.
    Fail,
    /// The process dies there: that write is lost and nothing else happens.
    Crash,
}

/// A store whose `at`-th write fails (or kills the "process"); reads and writes after a crash
/// fail too, so a dead coordinator changes nothing.
pub struct FaultStore {
    inner: Arc<dyn TransStore>,
    at: usize,
    fault: Fault,
    writes: AtomicUsize,
    dead: Arc<AtomicBool>,
}

impl FaultStore {
    fn write(&self) -> Result<(), StoreError> {
        self.alive()?;
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.at {
            if self.fault == Fault::Crash {
                self.dead.store(true, Ordering::SeqCst);
            }
            return Err(StoreError::Backend(
                format!("injected fault at write {n}").into(),
            ));
        }
        Ok(())
    }

    fn alive(&self) -> Result<(), StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the process is dead".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TransStore for FaultStore {
    async fn create(&self, global: &Global, branches: &[Branch]) -> Result<Created, StoreError> {
        self.write()?;
        self.inner.create(global, branches).await
    }
    async fn find(&self, gid: &str) -> Result<Option<Global>, StoreError> {
        self.alive()?;
        self.inner.find(gid).await
    }
    async fn branches(&self, gid: &str) -> Result<Vec<Branch>, StoreError> {
        self.alive()?;
        self.inner.branches(gid).await
    }
    async fn change_status(&self, gid: &str, c: &StatusChange<'_>) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.change_status(gid, c).await
    }
    async fn add_branches(&self, gid: &str, s: Status, b: &[Branch]) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.add_branches(gid, s, b).await
    }
    /// One write, as the SQL stores make it: a fault here loses all of it.
    async fn record(&self, p: &Progress<'_>) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.record(p).await
    }
    async fn lease_due(
        &self,
        now: UnixMs,
        until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        self.write()?;
        self.inner.lease_due(now, until, owner).await
    }
    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next: UnixMs,
        interval: Option<Duration>,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.schedule(gid, owner, next, interval, now).await
    }
    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.take_lease(gid, owner, until, now).await
    }
    async fn scan(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        self.alive()?;
        self.inner.scan(q).await
    }
    async fn reset_cron_time(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        self.write()?;
        self.inner.reset_cron_time(after, now, limit).await
    }
    async fn reset_next_cron_time(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.reset_next_cron_time(gid, now).await
    }
    async fn topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        self.alive()?;
        self.inner.topic(name).await
    }
    async fn put_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.put_topic(topic).await
    }
    async fn delete_topic(&self, name: &str) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.delete_topic(name).await
    }
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.alive()?;
        self.inner.backlog().await
    }
    async fn probe(&self) -> Result<(), StoreError> {
        self.alive()?;
        self.inner.probe().await
    }
}

/// One scenario: the client's side of a transaction, given a coordinator (and the branches, for
/// a client that calls them itself).
pub type Client =
    fn(TransUsecase, String, Branches) -> futures_util::future::BoxFuture<'static, ClientEnd>;

/// How the client's side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEnd {
    /// Its last call (submit) was acknowledged.
    Submitted,
    /// It aborted (acknowledged) after a try answered FAILURE or a call failed.
    Aborted,
    /// A call failed and it gave up (the coordinator must finish on its own).
    Gave,
}

/// Runs `client` once per write position and fault, finishes each from the store with a fresh
/// coordinator, and checks each outcome with `check`. Returns how many runs it made.
pub async fn every_crash_point(
    name: &str,
    answers: &[(&str, DtmResult)],
    client: Client,
    check: impl Fn(&Run),
) -> usize {
    every_crash_point_with(name, || Branches::new(answers), client, check).await
}

/// [`every_crash_point`] with the branches `branches` makes for each run (a workflow's client
/// among them).
pub async fn every_crash_point_with(
    name: &str,
    branches: impl Fn() -> Branches,
    client: Client,
    check: impl Fn(&Run),
) -> usize {
    // SQLite, and the Redis Cluster where one runs: its scripts must hold at every position too.
    let (sqlite, _dir) = super::sqlite_store().await;
    let mut stores = vec![sqlite];
    stores.extend(super::redis_cluster_store().await);
    let mut runs = 0;
    for store in stores {
        runs += crash_points_on(store, name, &branches, &client, &check).await;
    }
    runs
}

/// [`every_crash_point_with`] on one store.
async fn crash_points_on(
    store: Arc<dyn TransStore>,
    name: &str,
    branches: &impl Fn() -> Branches,
    client: &Client,
    check: &impl Fn(&Run),
) -> usize {
    let clock = Clock::default();
    let mut runs = 0;
    for fault in [Fault::Fail, Fault::Crash] {
        for at in 1.. {
            let gid = format!("{name}-{fault:?}-{at}");
            let branches = branches();
            let faulty = Arc::new(FaultStore {
                inner: store.clone(),
                at,
                fault,
                writes: AtomicUsize::new(0),
                dead: branches.dead.clone(),
            });
            let uc = TransUsecase::new(
                faulty.clone(),
                Arc::new(branches.clone()),
                policy(),
                clock.clone(),
                Arc::new(Unobserved),
            );
            branches.attach(&uc);
            let end = client(uc.clone(), gid.clone(), branches.clone()).await;
            // The first coordinator goes on (Fail) or is gone (Crash); a fresh one finishes.
            let survivor = match fault {
                Fault::Fail => uc,
                Fault::Crash => {
                    let fresh = branches.revived();
                    let survivor = TransUsecase::new(
                        store.clone(),
                        Arc::new(fresh.clone()),
                        policy(),
                        clock.clone(),
                        Arc::new(Unobserved),
                    );
                    fresh.attach(&survivor);
                    survivor
                }
            };
            let global = finish(&survivor, &store, &clock, &gid).await;
            let triggered = faulty.writes.load(Ordering::SeqCst) >= at;
            let rows = store.branches(&gid).await.expect("branches");
            let run = Run {
                gid: gid.clone(),
                end,
                global,
                rows,
                branches: branches.clone(),
            };
            check(&run);
            runs += 1;
            if !triggered {
                break;
            }
        }
    }
    assert!(runs > 4, "{name}: only {runs} runs");
    runs
}

/// Polls as the poller would, moving the clock past leases and back-off, until `gid` is final
/// (or was never stored).
pub async fn finish(
    uc: &TransUsecase,
    store: &Arc<dyn TransStore>,
    clock: &Clock,
    gid: &str,
) -> Option<Global> {
    for _ in 0..50 {
        match store.find(gid).await.expect("find") {
            None => return None,
            Some(g) if g.status.is_final() => return Some(g),
            Some(_) => {}
        }
        clock.advance(Duration::from_secs(600));
        while uc.poller().once().await.unwrap_or(true) {}
    }
    panic!(
        "{gid} is not final after 50 polls: {:?}",
        store.find(gid).await
    );
}

/// What one run left.
pub struct Run {
    pub gid: String,
    pub end: ClientEnd,
    pub global: Option<Global>,
    /// Its branch rows as the store holds them at the end.
    pub rows: Vec<Branch>,
    pub branches: Branches,
}

impl Run {
    pub fn status(&self) -> Option<Status> {
        self.global.as_ref().map(|g| g.status)
    }

    /// No branch was called, or the transaction exists.
    pub fn assert_stored_if_called(&self) {
        if self.global.is_none() {
            assert!(
                self.branches.calls().is_empty(),
                "{}: calls without a row",
                self.gid
            );
        }
    }
}
