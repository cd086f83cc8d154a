//! The coordinator's use cases: what each API call does to a global transaction. The rounds
//! that drive one are in `process`, the poller that picks up unfinished ones in `poller`.
//!
//! A transaction is always written before any branch is called, every status change is a
//! compare-and-set, and whoever drives a transaction holds its lease (`owner`,
//! `next_cron_time`), renewed while the work goes on; so a crash at any point leaves a row the
//! poller of this or another instance picks up, and branches (idempotent behind their barrier)
//! may at worst be called again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dtmcli::wire::{parse_msg_custom_data, parse_saga_custom_data};
use tracing::Instrument;

use crate::biz::caller::check_target;
use crate::biz::policy::{NEVER, Policy};
use crate::biz::process::Trans;
use crate::biz::{
    Branch, BranchCaller, Clock, Created, Global, Op, Options, RoundObserver, ScanPage, ScanQuery,
    Status, StatusChange, StoreError, Subscriber, Topic, TransStore, TransType,
};

/// A msg action naming a topic: `topic://<name>`.
const TOPIC_PREFIX: &str = "topic://";

/// A transaction as a client submits or prepares it.
#[derive(Debug, Clone, Default)]
pub struct NewTrans {
    /// Global transaction id (validated by the service).
    pub gid: String,
    /// saga, msg or tcc.
    pub trans_type: Option<TransType>,
    /// `http` or `grpc`.
    pub protocol: String,
    /// Saga `{action, compensate}`, msg `{action}` per step.
    pub steps: Vec<BTreeMap<String, String>>,
    /// One body per step.
    pub payloads: Vec<Vec<u8>>,
    /// JSON text (saga orders / msg delay).
    pub custom_data: String,
    /// Msg check-back URL.
    pub query_prepared: String,
    /// Timeouts, retries, `wait_result`, branch headers (DTM's transaction options).
    pub options: Options,
    /// Abort: why.
    pub rollback_reason: String,
}

/// A branch registration of a tcc or xa: its two phase-two calls and the body they get.
#[derive(Debug, Clone)]
pub struct NewBranch {
    /// Global transaction id.
    pub gid: String,
    /// Chosen by the client (`01`, `0201`, …).
    pub branch_id: String,
    /// What the branch does in phase two: tcc `confirm` / `cancel` URLs, or an xa branch's one
    /// URL, called with op `commit` or `rollback`.
    pub phase2: Phase2,
    /// Request body of both calls (xa branches have none).
    pub data: Vec<u8>,
}

/// The phase-two URLs of a registered branch.
#[derive(Debug, Clone)]
pub enum Phase2 {
    /// TCC: confirm on submit, cancel on abort.
    Tcc {
        /// Called on submit.
        confirm: String,
        /// Called on abort.
        cancel: String,
    },
    /// XA: the branch's own URL (DTM's `phase2_url`), with op `commit` or `rollback`.
    Xa {
        /// Called with op `commit` on submit and op `rollback` on abort.
        url: String,
    },
}

impl Phase2 {
    fn trans_type(&self) -> TransType {
        match self {
            Phase2::Tcc { .. } => TransType::Tcc,
            Phase2::Xa { .. } => TransType::Xa,
        }
    }

    /// The rows DTM stores, backward op first: `cancel, confirm` or `rollback, commit`.
    fn rows(&self) -> [(Op, &str); 2] {
        match self {
            Phase2::Tcc { confirm, cancel } => [(Op::Cancel, cancel), (Op::Confirm, confirm)],
            Phase2::Xa { url } => [(Op::Rollback, url), (Op::Commit, url)],
        }
    }
}

/// Why a request was refused or did not complete. The service maps each variant to DTM's
/// envelope (FAILURE 409, ONGOING 425) or a kratos error.
#[derive(Debug, thiserror::Error)]
pub enum TransError {
    /// Input that can never be right.
    #[error("{0}")]
    BadRequest(String),
    /// No such transaction.
    #[error("{0}")]
    NotFound(String),
    /// DTM FAILURE: refused in this status, or (`wait_result`) rolled back.
    #[error("{0}")]
    Failure(String),
    /// DTM ONGOING: (`wait_result`) not final yet; the coordinator carries on.
    #[error("{0}")]
    Ongoing(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The coordinator. Cheap to clone.
#[derive(Clone)]
pub struct TransUsecase {
    pub(crate) inner: Arc<Driver>,
}

/// What drives transactions, shared by the API operations, the rounds and the poller: the
/// store, the branch caller, the timing rules, the clock, and this instance's lease owner id.
pub(crate) struct Driver {
    pub(crate) store: Arc<dyn TransStore>,
    pub(crate) caller: Arc<dyn BranchCaller>,
    pub(crate) policy: Policy,
    pub(crate) clock: Clock,
    /// This instance's lease owner id.
    pub(crate) owner: String,
    /// Told of every round and branch call (the coordinator's metrics).
    pub(crate) metrics: Arc<dyn RoundObserver>,
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
            inner: Arc::new(Driver {
                store,
                caller,
                policy,
                clock,
                owner: uuid::Uuid::new_v4().to_string(),
                metrics: observer,
            }),
        }
    }

    /// `subscribe`: `url` receives every msg sent to `topic` (DTM: the topic is created by its
    /// first subscriber; the same URL twice is refused).
    pub async fn subscribe(&self, topic: &str, url: &str, remark: &str) -> Result<(), TransError> {
        let me = &self.inner;
        if topic.is_empty() || url.is_empty() {
            return Err(TransError::BadRequest("topic and url are required".into()));
        }
        // A subscriber is called with the protocol of each msg: its URL must be callable.
        check_target(&*me.caller, "grpc", url)?;
        me.change_topic(topic, |subscribers| {
            if subscribers.iter().any(|s| s.url == url) {
                return Err(TransError::BadRequest(format!(
                    "{url} already subscribes to {topic}"
                )));
            }
            subscribers.push(Subscriber {
                url: url.to_owned(),
                remark: remark.to_owned(),
            });
            Ok(())
        })
        .await
    }

    /// `unsubscribe`: `url` no longer receives `topic`.
    pub async fn unsubscribe(&self, topic: &str, url: &str) -> Result<(), TransError> {
        if topic.is_empty() || url.is_empty() {
            return Err(TransError::BadRequest("topic and url are required".into()));
        }
        self.inner
            .change_topic(topic, |subscribers| {
                let before = subscribers.len();
                subscribers.retain(|s| s.url != url);
                if subscribers.len() == before {
                    return Err(TransError::NotFound(format!(
                        "{url} does not subscribe to {topic}"
                    )));
                }
                Ok(())
            })
            .await
    }

    /// `deleteTopic`.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransError> {
        if self.inner.store.delete_topic(topic).await? {
            Ok(())
        } else {
            Err(TransError::NotFound(format!("no topic {topic}")))
        }
    }

    /// A clean stop's last step, once the servers and the poller have stopped.
    pub async fn close(&self) -> Result<(), TransError> {
        Ok(self.inner.store.close().await?)
    }

    /// Reads the store's backlog into the metrics (`dtm_unfinished_transactions`,
    /// `dtm_poller_lag_seconds`).
    pub async fn count_backlog(&self) -> Result<(), TransError> {
        let me = &self.inner;
        let backlog = me.store.backlog().await?;
        let lag = backlog
            .earliest_due
            .map_or(Duration::ZERO, |due| me.clock.now() - due);
        me.metrics.backlog(&backlog.unfinished, lag);
        Ok(())
    }

    /// `prepare`: store a msg (with its branches), a tcc or an xa in `prepared`. Idempotent.
    pub async fn prepare(&self, t: NewTrans) -> Result<(), TransError> {
        let me = &self.inner;
        let topics = me.topics_of(&t).await?;
        let (global, branches) = me.build(&t, Status::Prepared, &topics)?;
        match me.store.create(&global, &branches).await? {
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
        let me = &self.inner;
        let topics = me.topics_of(&t).await?;
        let (global, branches) = me.build(&t, Status::Submitted, &topics)?;
        let gid = global.gid.clone();
        let created = me.store.create(&global, &branches).await?;
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
                Status::Prepared => me.take(&g, Status::Submitted, None).await?,
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
        let trans = Box::new(Trans { global, branches });
        self.finish(Start::Loaded(trans), t.options.wait_result, Status::Succeed)
            .await
    }

    /// `abort`: a prepared msg fails at once; a prepared (or aborting) tcc or xa rolls back.
    pub async fn abort(&self, t: NewTrans) -> Result<(), TransError> {
        let uc = self.clone();
        detached(async move { uc.abort_now(t).await }).await
    }

    async fn abort_now(&self, t: NewTrans) -> Result<(), TransError> {
        let me = &self.inner;
        let mut g = me.must_find(&t.gid).await?;
        let reason = Some(t.rollback_reason.as_str()).filter(|r| !r.is_empty());
        match (g.trans_type, g.status) {
            (TransType::Msg, Status::Prepared) => {
                if me.change(&mut g, Status::Failed, reason).await? {
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
                me.take(&g, Status::Aborting, reason).await?;
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
    pub async fn register_branch(&self, b: NewBranch) -> Result<(), TransError> {
        let me = &self.inner;
        let not_prepared = || {
            TransError::Failure(format!(
                "no trans with gid: {} status: prepared found",
                b.gid
            ))
        };
        let g = me.store.find(&b.gid).await?.ok_or_else(not_prepared)?;
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
        for (_, url) in b.phase2.rows() {
            check_target(&*me.caller, &g.protocol, url)?;
        }
        let now = me.clock.now();
        let rows = b
            .phase2
            .rows()
            .map(|(op, url)| Branch::new(&b.gid, b.branch_id.clone(), op, url, &b.data, now));
        match me.store.add_branches(&b.gid, Status::Prepared, &rows).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_prepared()),
            Err(StoreError::Duplicate) => {
                let existing = me.store.branches(&b.gid).await?;
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
        let me = &self.inner;
        loop {
            let mut g = me.must_find(gid).await?;
            if g.status.is_final() {
                return Err(TransError::Failure(format!(
                    "current status '{}', cannot force stop",
                    g.status.as_str()
                )));
            }
            if me
                .change(&mut g, Status::Failed, Some("force stopped"))
                .await?
            {
                return Ok(());
            }
        }
    }

    /// `query`: a transaction and its branches.
    pub async fn query(&self, gid: &str) -> Result<Option<(Global, Vec<Branch>)>, TransError> {
        let me = &self.inner;
        match me.store.find(gid).await? {
            Some(g) => Ok(Some((g, me.store.branches(gid).await?))),
            None => Ok(None),
        }
    }

    /// `all`: a page of transactions, newest first.
    pub async fn all(&self, q: &ScanQuery) -> Result<ScanPage, TransError> {
        Ok(self.inner.store.scan(q).await?)
    }

    /// `resetCronTime`: transactions not due for more than `after` become due now (recovery
    /// after an outage, when back-off pushed them far out).
    pub async fn reset_cron_time(
        &self,
        after: Option<Duration>,
        limit: u32,
    ) -> Result<(u64, bool), TransError> {
        let me = &self.inner;
        let after = after.unwrap_or(me.policy.timeout_to_fail * 3);
        let now = me.clock.now();
        Ok(me.store.reset_cron_time(now + after, now, limit).await?)
    }

    /// `resetNextCronTime`: one unfinished transaction becomes due now.
    pub async fn reset_next_cron_time(&self, gid: &str) -> Result<(), TransError> {
        let me = &self.inner;
        if me.store.reset_next_cron_time(gid, me.clock.now()).await? {
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
        let me = self.inner.clone();
        let round = async move {
            let (gid, driven) = match start {
                Start::Load(gid) => {
                    let driven = me.drive(&gid).await;
                    (gid, driven)
                }
                Start::Loaded(t) => (t.global.gid.clone(), me.drive_loaded(*t).await),
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

impl Driver {
    /// The rows a new transaction is stored as, after checking what the service could not.
    /// Applies `change` to a topic's subscribers and writes them back, compare-and-set on the
    /// topic's version (another instance may be changing it too): read, change, write, again
    /// if it moved meanwhile.
    async fn change_topic(
        &self,
        name: &str,
        change: impl Fn(&mut Vec<Subscriber>) -> Result<(), TransError>,
    ) -> Result<(), TransError> {
        for _ in 0..16 {
            let mut topic = self.store.topic(name).await?.unwrap_or_else(|| Topic {
                name: name.to_owned(),
                ..Topic::default()
            });
            change(&mut topic.subscribers)?;
            if self.store.put_topic(&topic).await? {
                return Ok(());
            }
        }
        Err(TransError::Ongoing(format!(
            "topic {name} keeps changing; try again"
        )))
    }

    /// The subscribers of every `topic://<name>` a msg's actions name, read now.
    async fn topics_of(&self, t: &NewTrans) -> Result<BTreeMap<String, Vec<String>>, TransError> {
        let mut topics = BTreeMap::new();
        if t.trans_type != Some(TransType::Msg) {
            return Ok(topics);
        }
        for step in &t.steps {
            let action = step.get(Op::Action.as_str()).map_or("", String::as_str);
            if let Some(name) = action.strip_prefix(TOPIC_PREFIX) {
                let urls = match self.store.topic(name).await? {
                    Some(topic) => topic.subscribers.into_iter().map(|s| s.url).collect(),
                    None => Vec::new(),
                };
                topics.insert(name.to_owned(), urls);
            }
        }
        Ok(topics)
    }

    fn build(
        &self,
        t: &NewTrans,
        status: Status,
        topics: &BTreeMap<String, Vec<String>>,
    ) -> Result<(Global, Vec<Branch>), TransError> {
        let trans_type = t
            .trans_type
            .ok_or_else(|| TransError::BadRequest("trans_type is required".into()))?;
        let bad = |e: dtmcli::wire::WireError| TransError::BadRequest(e.to_string());
        match trans_type {
            TransType::Saga => {
                drop(parse_saga_custom_data(&t.custom_data, t.steps.len()).map_err(bad)?)
            }
            TransType::Msg => drop(parse_msg_custom_data(&t.custom_data).map_err(bad)?),
            TransType::Tcc | TransType::Xa => {}
        }
        check_target(&*self.caller, &t.protocol, &t.query_prepared)?;
        let now = self.clock.now();
        let mut branches = Vec::new();
        // A tcc's or xa's branches come later, one registerBranch each.
        if matches!(trans_type, TransType::Saga | TransType::Msg) {
            for (i, step) in t.steps.iter().enumerate() {
                let payload = t.payloads.get(i).map_or(&[][..], Vec::as_slice);
                let branch_id = format!("{:02}", i + 1);
                let ops: &[Op] = match trans_type {
                    TransType::Saga => &[Op::Compensate, Op::Action],
                    _ => &[Op::Action],
                };
                for op in ops {
                    let url = step.get(op.as_str()).map_or("", String::as_str);
                    // A msg action `topic://<name>` is one branch per subscriber, `01-01`,
                    // `01-02`… (DTM's ids), each with the step's payload.
                    if let Some(name) = url.strip_prefix(TOPIC_PREFIX) {
                        let urls = topics.get(name).filter(|u| !u.is_empty()).ok_or_else(|| {
                            TransError::BadRequest(format!("topic not found: {name}"))
                        })?;
                        for (j, url) in urls.iter().enumerate() {
                            let id = if urls.len() == 1 {
                                branch_id.clone()
                            } else {
                                format!("{branch_id}-{:02}", j + 1)
                            };
                            branches.push(Branch::new(&t.gid, id, *op, url, payload, now));
                        }
                        continue;
                    }
                    check_target(&*self.caller, &t.protocol, url)?;
                    branches.push(Branch::new(
                        &t.gid,
                        branch_id.clone(),
                        *op,
                        url,
                        payload,
                        now,
                    ));
                }
            }
        }
        let mut options = t.options.clone();
        // The request's trace (the client's, when it sent one): rounds continue it.
        options.traceparent = kit::trace::traceparent();
        let base = self.policy.base_interval(&options);
        let (owner, next_cron_time) = match status {
            // Whoever creates it drives it: the lease keeps the poller away meanwhile.
            Status::Submitted => (self.owner.clone(), now + self.policy.lease()),
            // Nothing to do until it is submitted, aborted, or times out.
            _ => {
                let timeout = self.policy.timeout(trans_type, &options);
                (String::new(), timeout.map_or(NEVER, |d| now + d))
            }
        };
        let global = Global {
            id: 0,
            gid: t.gid.clone(),
            trans_type,
            status,
            protocol: t.protocol.clone(),
            query_prepared: t.query_prepared.clone(),
            custom_data: t.custom_data.clone(),
            options,
            rollback_reason: String::new(),
            create_time: now,
            update_time: now,
            finish_time: None,
            rollback_time: None,
            next_cron_interval: base,
            next_cron_time,
            owner,
        };
        Ok((global, branches))
    }

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
    async fn take(&self, g: &Global, to: Status, reason: Option<&str>) -> Result<(), TransError> {
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
