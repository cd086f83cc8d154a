//! Crash points: every scenario of every transaction type is run once per store write, with that
//! write failing (the process lives on) or with the process "dying" there (that write and
//! everything after it is lost, in-memory state is dropped, as a SIGKILL would). A fresh
//! coordinator on the same store then finishes the transaction, and the outcome is checked against
//! what the branches answered: never `succeed` with a failed action, every action that ran
//! compensated on rollback, confirms only when the client submitted, no action called after a
//! compensation.
//!
//! The branches are scripted in-process (a `BranchCaller`) so that hundreds of runs take a
//! second; the store is the real SQLite store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use coordinator::biz::{
    Backlog, Branch, Clock, Created, Global, NewTrans, Op, Options, Phase2, Progress, Registration,
    ScanPage, ScanQuery, Status, StatusChange, StoreError, Topic, TransStore, TransType,
    TransUsecase, Unobserved,
};
use dtmcli::DtmResult;
use kit::time::UnixMs;
use support::{Branches, policy};

mod support;

/// How the Nth write goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// It fails; the coordinator keeps running.
    Fail,
    /// The process dies there: that write is lost and nothing else happens.
    Crash,
}

/// A store whose `at`-th write fails (or kills the "process"); reads and writes after a crash
/// fail too, so a dead coordinator changes nothing.
struct FaultStore {
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
    ) -> Result<Option<Global>, StoreError> {
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

/// One scenario: the client's side of a transaction, given a coordinator.
type Client = fn(TransUsecase, String) -> futures_util::future::BoxFuture<'static, ClientEnd>;

/// How the client's side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientEnd {
    /// Its last call (submit) was acknowledged.
    Submitted,
    /// It aborted (acknowledged) after a try answered FAILURE or a call failed.
    Aborted,
    /// A call failed and it gave up (the coordinator must finish on its own).
    Gave,
}

/// Runs `client` once per write position and fault, finishes each from the store with a fresh
/// coordinator, and checks each outcome with `check`. Returns how many runs it made.
async fn every_crash_point(
    name: &str,
    answers: &[(&str, DtmResult)],
    client: Client,
    check: impl Fn(&Run),
) -> usize {
    let (store, _dir) = support::sqlite_store().await;
    let clock = Clock::default();
    let mut runs = 0;
    for fault in [Fault::Fail, Fault::Crash] {
        for at in 1.. {
            let gid = format!("{name}-{fault:?}-{at}");
            let branches = Branches::new(answers);
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
            let end = client(uc.clone(), gid.clone()).await;
            // The first coordinator goes on (Fail) or is gone (Crash); a fresh one finishes.
            let survivor = match fault {
                Fault::Fail => uc,
                Fault::Crash => {
                    let fresh = branches.revived();
                    TransUsecase::new(
                        store.clone(),
                        Arc::new(fresh),
                        policy(),
                        clock.clone(),
                        Arc::new(Unobserved),
                    )
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
async fn finish(
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
struct Run {
    gid: String,
    end: ClientEnd,
    global: Option<Global>,
    /// Its branch rows as the store holds them at the end.
    rows: Vec<Branch>,
    branches: Branches,
}

impl Run {
    fn status(&self) -> Option<Status> {
        self.global.as_ref().map(|g| g.status)
    }

    /// No branch was called, or the transaction exists.
    fn assert_stored_if_called(&self) {
        if self.global.is_none() {
            assert!(
                self.branches.calls().is_empty(),
                "{}: calls without a row",
                self.gid
            );
        }
    }
}

fn saga(steps: &[(&str, &str)]) -> NewTrans {
    NewTrans {
        trans_type: Some(TransType::Saga),
        protocol: "http".into(),
        steps: steps
            .iter()
            .map(|(a, c)| {
                BTreeMap::from([
                    ("action".into(), format!("http://branch/{a}")),
                    ("compensate".into(), format!("http://branch/{c}")),
                ])
            })
            .collect(),
        payloads: vec![b"{}".to_vec(); steps.len()],
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    }
}

/// Submits the three-step saga (`custom_data` as given) and waits for its result.
async fn submit_saga(uc: TransUsecase, gid: String, custom_data: &str) -> ClientEnd {
    let t = NewTrans {
        gid,
        custom_data: custom_data.into(),
        ..saga(&[
            ("out", "out-undo"),
            ("in", "in-undo"),
            ("third", "third-undo"),
        ])
    };
    match uc.submit(t).await {
        Ok(()) => ClientEnd::Submitted,
        Err(_) => ClientEnd::Gave,
    }
}

fn saga_client(
    uc: TransUsecase,
    gid: String,
) -> futures_util::future::BoxFuture<'static, ClientEnd> {
    Box::pin(submit_saga(uc, gid, ""))
}

/// The three steps at once.
fn concurrent_saga_client(
    uc: TransUsecase,
    gid: String,
) -> futures_util::future::BoxFuture<'static, ClientEnd> {
    Box::pin(submit_saga(uc, gid, r#"{"concurrent":true}"#))
}

/// The saga's rules: final; `succeed` only if no action answered FAILURE and every one ran; on
/// `failed`, every action that was called is compensated; no action after a compensation.
fn check_saga(run: &Run, failing: Option<&str>) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let calls = run.branches.calls();
    let gid = &run.gid;
    match (status, failing) {
        (Status::Succeed, None) => {
            for a in ["out", "in", "third"] {
                assert!(run.branches.called(a), "{gid}: succeed without calling {a}");
            }
            assert!(
                calls.iter().all(|(_, op)| op == "action"),
                "{gid}: a compensation in a saga that succeeded: {calls:?}"
            );
        }
        (Status::Failed, Some(_)) => {
            for a in ["out", "in", "third"] {
                if run.branches.called(a) {
                    let undo = format!("{a}-undo");
                    assert!(
                        run.branches.called(&undo),
                        "{gid}: {a} ran but {undo} never did: {calls:?}"
                    );
                }
            }
            if let Some(first_undo) = calls.iter().position(|(_, op)| op == "compensate") {
                assert!(
                    calls[first_undo..].iter().all(|(_, op)| op == "compensate"),
                    "{gid}: an action after a compensation: {calls:?}"
                );
            }
        }
        other => panic!(
            "{gid}: ended {other:?}, branches {calls:?}, client {:?}",
            run.end
        ),
    }
}

#[tokio::test]
async fn a_sequential_saga_survives_every_crash_point_whichever_action_fails() {
    for failing in [None, Some("out"), Some("in"), Some("third")] {
        let answers: Vec<_> = failing.iter().map(|f| (*f, DtmResult::Failure)).collect();
        let name = format!("saga-{}", failing.unwrap_or("ok"));
        let runs =
            every_crash_point(&name, &answers, saga_client, |r| check_saga(r, failing)).await;
        println!("{name}: {runs} runs");
    }
}

#[tokio::test]
async fn a_concurrent_saga_survives_every_crash_point_whichever_action_fails() {
    for failing in [None, Some("out"), Some("third")] {
        let answers: Vec<_> = failing.iter().map(|f| (*f, DtmResult::Failure)).collect();
        let name = format!("conc-{}", failing.unwrap_or("ok"));
        let runs = every_crash_point(&name, &answers, concurrent_saga_client, |r| {
            check_saga(r, failing)
        })
        .await;
        println!("{name}: {runs} runs");
    }
}

fn msg(gid: String) -> NewTrans {
    NewTrans {
        gid,
        trans_type: Some(TransType::Msg),
        protocol: "http".into(),
        steps: ["m1", "m2"]
            .iter()
            .map(|a| BTreeMap::from([("action".into(), format!("http://branch/{a}"))]))
            .collect(),
        payloads: vec![b"{}".to_vec(); 2],
        query_prepared: "http://branch/check".into(),
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    }
}

/// A msg's rules: `succeed` means every action succeeded; `failed` only through a check-back
/// that answered FAILURE, and then no action ran.
fn check_msg(run: &Run, check_back: DtmResult) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let gid = &run.gid;
    let calls = run.branches.calls();
    match status {
        Status::Succeed => {
            assert!(
                run.branches.called("m1") && run.branches.called("m2"),
                "{gid}: {calls:?}"
            );
        }
        Status::Failed => {
            assert_eq!(check_back, DtmResult::Failure, "{gid}: failed, {calls:?}");
            assert!(
                !run.branches.called("m1"),
                "{gid}: an action of a failed msg: {calls:?}"
            );
        }
        s => panic!("{gid}: {s:?}"),
    }
}

#[tokio::test]
async fn a_submitted_msg_finishes_at_every_crash_point() {
    let runs = every_crash_point(
        "msg",
        &[],
        |uc, gid| {
            Box::pin(async move {
                match uc.submit(msg(gid)).await {
                    Ok(()) => ClientEnd::Submitted,
                    Err(_) => ClientEnd::Gave,
                }
            })
        },
        |r| check_msg(r, DtmResult::Success),
    )
    .await;
    println!("{runs} runs");
}

/// A prepared msg whose client never submits: the check-back decides.
fn prepared_msg(
    uc: TransUsecase,
    gid: String,
) -> futures_util::future::BoxFuture<'static, ClientEnd> {
    Box::pin(async move {
        match uc.prepare(msg(gid)).await {
            Ok(()) => ClientEnd::Submitted,
            Err(_) => ClientEnd::Gave,
        }
    })
}

#[tokio::test]
async fn a_prepared_msg_is_settled_by_its_check_back_at_every_crash_point() {
    let ok = every_crash_point("msg-check-ok", &[], prepared_msg, |r| {
        check_msg(r, DtmResult::Success)
    });
    let fail = every_crash_point(
        "msg-check-fail",
        &[("check", DtmResult::Failure)],
        prepared_msg,
        |r| check_msg(r, DtmResult::Failure),
    );
    let (ok, fail) = tokio::join!(ok, fail);
    println!("{ok} + {fail} runs");
}

/// A TCC or XA client as Go's `TccGlobalTransaction` / `XaGlobalTransaction`: prepare,
/// register two branches (a TCC try, an XA action: the client's own call; the second answers
/// `second`), submit — or abort as soon as anything fails.
async fn two_phase_client(
    uc: TransUsecase,
    gid: String,
    trans_type: TransType,
    second: DtmResult,
) -> ClientEnd {
    let t = NewTrans {
        gid: gid.clone(),
        trans_type: Some(trans_type),
        protocol: "http".into(),
        options: Options {
            wait_result: true,
            ..Options::default()
        },
        ..NewTrans::default()
    };
    let mut ok = uc.prepare(t.clone()).await.is_ok();
    for (i, name) in ["b1", "b2"].iter().enumerate() {
        if !ok {
            break;
        }
        let phase2 = match trans_type {
            TransType::Xa => Phase2::Xa {
                url: format!("http://branch/{name}"),
            },
            _ => Phase2::Tcc {
                confirm: format!("http://branch/{name}-confirm"),
                cancel: format!("http://branch/{name}-cancel"),
            },
        };
        let registered = uc
            .register_branch(Registration {
                gid: gid.clone(),
                branch_id: format!("0{}", i + 1),
                phase2,
                data: b"{}".to_vec(),
            })
            .await;
        ok = registered.is_ok() && (i == 0 || second == DtmResult::Success);
    }
    if ok && uc.submit(t.clone()).await.is_ok() {
        return ClientEnd::Submitted;
    }
    match uc.abort(t).await {
        Ok(()) => ClientEnd::Aborted,
        Err(_) => ClientEnd::Gave,
    }
}

/// TCC's and XA's rules: `succeed` means every registered branch got the forward phase two
/// (confirm, commit) and none the backward one (cancel, rollback), and only after a submit;
/// `failed`, every registered branch the backward one and none the forward one.
fn check_two_phase(run: &Run) {
    run.assert_stored_if_called();
    let Some(status) = run.status() else { return };
    let gid = &run.gid;
    let calls = run.branches.calls();
    let ops = |op: Op| calls.iter().filter(|(_, o)| o == op.as_str()).count();
    let xa = run.global.as_ref().map(|g| g.trans_type) == Some(TransType::Xa);
    let (forward, backward) = if xa {
        (Op::Commit, Op::Rollback)
    } else {
        (Op::Confirm, Op::Cancel)
    };
    let (done, undone) = match status {
        Status::Succeed => {
            assert_ne!(run.end, ClientEnd::Aborted, "{gid}: forward after an abort");
            (forward, backward)
        }
        Status::Failed => {
            assert_ne!(
                run.end,
                ClientEnd::Submitted,
                "{gid}: rolled back after a submit"
            );
            (backward, forward)
        }
        s => panic!("{gid}: {s:?}"),
    };
    assert_eq!(ops(undone), 0, "{gid}: {calls:?}");
    // Every registered branch gets the phase two of the outcome (at least once: a write that
    // failed after a call means the call is made again, and branches are idempotent).
    for row in run.rows.iter().filter(|r| r.op == done) {
        let name = row.url.rsplit('/').next().unwrap_or_default();
        assert!(
            calls.iter().any(|(n, o)| n == name && o == done.as_str()),
            "{gid}: {name} never called with {done:?}: {calls:?}"
        );
    }
}

#[tokio::test]
async fn a_tcc_confirms_or_cancels_every_branch_at_every_crash_point() {
    let confirm = every_crash_point(
        "tcc-ok",
        &[],
        |uc, gid| {
            Box::pin(two_phase_client(
                uc,
                gid,
                TransType::Tcc,
                DtmResult::Success,
            ))
        },
        check_two_phase,
    );
    let cancel = every_crash_point(
        "tcc-cancel",
        &[],
        |uc, gid| {
            Box::pin(two_phase_client(
                uc,
                gid,
                TransType::Tcc,
                DtmResult::Failure,
            ))
        },
        check_two_phase,
    );
    let (confirm, cancel) = tokio::join!(confirm, cancel);
    println!("{confirm} + {cancel} runs");
}

#[tokio::test]
async fn an_xa_commits_or_rolls_back_every_branch_at_every_crash_point() {
    let commit = every_crash_point(
        "xa-ok",
        &[],
        |uc, gid| Box::pin(two_phase_client(uc, gid, TransType::Xa, DtmResult::Success)),
        check_two_phase,
    );
    let rollback = every_crash_point(
        "xa-rollback",
        &[],
        |uc, gid| Box::pin(two_phase_client(uc, gid, TransType::Xa, DtmResult::Failure)),
        check_two_phase,
    );
    let (commit, rollback) = tokio::join!(commit, rollback);
    println!("{commit} + {rollback} runs");
}
