//! What the coordinator's tests share: branches scripted in-process, and a policy.

#![allow(dead_code)]

pub mod crash;
pub mod memory;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coordinator::biz::{
    Branch, BranchCaller, Global, Op, Options, Policy, Status, TransStore, TransType, TransUsecase,
};
use coordinator::conf::{Bootstrap, Store};
use dtmcli::DtmResult;
use dtmcli::caller::{CallError, CallRequest, Reply};
use futures_util::future::BoxFuture;
use kit::time::UnixMs;

/// Branches that answer by name (the URL's last segment): a fixed result, recorded in order. A
/// dead process calls nothing.
#[derive(Clone, Default)]
pub struct Branches {
    answers: HashMap<String, DtmResult>,
    /// (gid, branch name, op) of every call, in the order they began.
    calls: Arc<Mutex<Vec<(String, String, String)>>>,
    /// Set when the "process" died: it calls nothing any more.
    pub dead: Arc<AtomicBool>,
    /// When set, every call of a branch named `slow…` waits for a permit here first.
    gate: Option<Arc<tokio::sync::Semaphore>>,
    /// A workflow's client: what a resume runs.
    resume: Option<Resume>,
    /// The coordinator a resumed workflow's client talks to.
    coordinator: Arc<Mutex<Option<TransUsecase>>>,
}

/// How often each (gid, branch name, op) was called.
pub type CallCounts = HashMap<(String, String, String), usize>;

/// A workflow's client, run by the coordinator's resume: the workflow `gid` again, on `uc`, its
/// steps called through `branches`; answers as the client's resume route would.
pub type Resume = fn(TransUsecase, String, Branches) -> BoxFuture<'static, DtmResult>;

impl Branches {
    /// Branches answering `answers` by name, SUCCESS for any other name.
    pub fn new(answers: &[(&str, DtmResult)]) -> Branches {
        Branches {
            answers: answers.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
            ..Branches::default()
        }
    }

    /// These branches, where each call of a branch named `slow…` waits for a permit of `gate`
    /// before it answers.
    pub fn gated(self, gate: Arc<tokio::sync::Semaphore>) -> Branches {
        Branches {
            gate: Some(gate),
            ..self
        }
    }

    /// These branches, with a workflow's client answering resumes (a call with an op name).
    pub fn resuming(self, resume: Resume) -> Branches {
        Branches {
            resume: Some(resume),
            ..self
        }
    }

    /// Resumed workflows talk to `uc` (the coordinator that calls these branches).
    pub fn attach(&self, uc: &TransUsecase) {
        *self.coordinator.lock().expect("coordinator") = Some(uc.clone());
    }

    /// The same branches and record, called by a new process (the dead flag cleared).
    pub fn revived(&self) -> Branches {
        Branches {
            dead: Arc::new(AtomicBool::new(false)),
            ..self.clone()
        }
    }

    /// (branch name, op) of every call so far, in the order they began.
    pub fn calls(&self) -> Vec<(String, String)> {
        let calls = self.calls.lock().expect("calls");
        calls
            .iter()
            .map(|(_, n, op)| (n.clone(), op.clone()))
            .collect()
    }

    /// How often each (gid, branch name, op) was called.
    pub fn times_called(&self) -> CallCounts {
        let mut counts = CallCounts::new();
        for call in self.calls.lock().expect("calls").iter() {
            *counts.entry(call.clone()).or_default() += 1;
        }
        counts
    }

    /// Records a call as it begins.
    fn record(&self, req: &CallRequest<'_>, name: &str) {
        let call = (req.info.gid.clone(), name.to_owned(), req.op().to_owned());
        self.calls.lock().expect("calls").push(call);
    }

    /// Whether `name` was called.
    pub fn called(&self, name: &str) -> bool {
        self.calls().iter().any(|(n, _)| n == name)
    }
}

#[async_trait::async_trait]
impl BranchCaller for Branches {
    async fn call(&self, req: &CallRequest<'_>) -> Result<Reply, CallError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(CallError::Transport {
                url: req.url.into(),
                message: "the process is dead".into(),
            });
        }
        let name = req.url.rsplit('/').next().unwrap_or_default().to_owned();
        if let (Some(resume), Some(_)) = (self.resume, req.op_name) {
            self.record(req, &name);
            let uc = self.coordinator.lock().expect("coordinator").clone();
            let Some(uc) = uc else {
                return Err(CallError::Transport {
                    url: req.url.into(),
                    message: "no coordinator attached".into(),
                });
            };
            let result = resume(uc, req.info.gid.clone(), self.clone()).await;
            return Ok(Reply { result, body: name });
        }
        self.record(req, &name);
        if let Some(gate) = self.gate.as_ref().filter(|_| name.starts_with("slow")) {
            drop(gate.acquire().await);
        }
        let result = self
            .answers
            .get(&name)
            .copied()
            .unwrap_or(DtmResult::Success);
        Ok(Reply { result, body: name })
    }
}

/// A store on a fresh database of every available backend, named by its driver (the database is
/// kept alive beside it).
pub async fn stores()
-> anyhow::Result<Vec<(&'static str, Arc<dyn TransStore>, Option<dtmtest::TestDb>)>> {
    // The in-memory store of the state-machine tests (tests/machines*.rs) must keep the
    // contract too.
    let memory: Arc<dyn TransStore> = Arc::new(memory::MemoryStore::default());
    let mut out = vec![("memory", memory, None)];
    for db in dtmtest::databases().await {
        let driver = db.dialect.driver();
        out.push((
            driver,
            coordinator::data::open_store(&Store::new(driver, &db.url), Default::default()).await?,
            Some(db),
        ));
    }
    if let Some(redis) = dtmtest::redis() {
        let conf = Store {
            redis_prefix: redis.prefix,
            ..Store::new("redis", &redis.url)
        };
        let store = coordinator::data::open_store(&conf, Default::default()).await?;
        out.push(("redis", store, None));
    }
    if let Some(store) = redis_cluster_store().await {
        out.push(("redis-cluster", store, None));
    }
    Ok(out)
}

/// A store on the Redis Cluster of `TEST_REDIS_CLUSTER_URL` under a prefix of its own; `None`
/// (with a printed reason) when unset outside CI.
pub async fn redis_cluster_store() -> Option<Arc<dyn TransStore>> {
    let cluster = dtmtest::redis_cluster()?;
    let conf = Store {
        redis_prefix: cluster.prefix,
        redis_cluster: true,
        ..Store::new("redis", &cluster.url)
    };
    let store = coordinator::data::open_store(&conf, Default::default()).await;
    Some(store.expect("a store on the Redis Cluster"))
}

/// Production-like timing; long branch timeouts so that no lease renewal (a timer) writes while
/// a round runs.
pub fn policy() -> Policy {
    Policy {
        retry_interval: Duration::from_secs(1),
        retry_max_interval: Duration::from_secs(8),
        timeout_to_fail: Duration::from_secs(30),
        request_timeout: Duration::from_secs(60),
        branch_concurrency: 64,
        trans_cron_interval: Duration::from_millis(10),
    }
}

/// A 16 MiB tmpfs mounted at a directory, unmounted on drop: a file system the test can fill or
/// make read-only. Mounting needs root (CI runs as root): elsewhere `mount` says why `what` is
/// skipped and returns `None`; with `CI=true` it fails instead.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it at `dir`.
    pub fn mount(dir: &Path, what: &str) -> Option<Tmpfs> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir)
            .status();
        match mounted {
            Ok(s) if s.success() => Some(Tmpfs(dir.to_owned())),
            other => dtmtest::missing(format_args!(
                "{what}: cannot mount a tmpfs (needs root): {other:?}"
            )),
        }
    }

    /// Makes it read-only: every write fails, root's too.
    pub fn read_only(&self) {
        let done = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status();
        assert!(
            done.as_ref().is_ok_and(|s| s.success()),
            "remount read-only: {done:?}"
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The shipped config on the SQLite store at `url`: both APIs on `127.0.0.1:0`, its timing
/// scaled down (the poller every 10 ms, retries after 1 s, back-off capped at 10 s, TCC and XA
/// failing after 30 s).
pub fn bootstrap(url: &str) -> Bootstrap {
    let mut conf: Bootstrap = dtmtest::shipped_config(env!("CARGO_MANIFEST_DIR"));
    conf.store = Store::new("sqlite", url);
    (conf.http_port, conf.grpc_port, conf.listen_ip) = (0, 0, "127.0.0.1".into());
    conf.trans_cron_interval = Duration::from_millis(10);
    conf.retry_interval = Duration::from_secs(1);
    conf.retry_max_interval = Duration::from_secs(10);
    conf.timeout_to_fail = Duration::from_secs(30);
    conf
}

/// A store on a fresh SQLite file (kept while the directory lives).
pub async fn sqlite_store() -> (Arc<dyn TransStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/dtm.db", dir.path().display());
    let store = coordinator::data::open_store(&Store::new("sqlite", &url), Default::default())
        .await
        .expect("store");
    (store, dir)
}

/// The coordinator `conf` describes (with `overrides`), its listeners bound.
pub async fn app(conf: &Bootstrap, overrides: coordinator::Overrides) -> kit::App {
    coordinator::wire(conf, overrides)
        .await
        .expect("wire")
        .build(&conf.servers())
        .await
        .expect("build")
}

/// A transaction as a store test writes it: created at `now`, due at `due`.
pub fn global(gid: &str, trans_type: TransType, status: Status, now: i64, due: i64) -> Global {
    Global {
        id: 0,
        gid: gid.into(),
        trans_type,
        status,
        protocol: "http".into(),
        query_prepared: String::new(),
        custom_data: String::new(),
        options: Options::default(),
        rollback_reason: String::new(),
        result: String::new(),
        create_time: UnixMs(now),
        update_time: UnixMs(now),
        finish_time: None,
        rollback_time: None,
        next_cron_interval: Duration::from_secs(10),
        next_cron_time: UnixMs(due),
        owner: String::new(),
    }
}

/// A saga's one step: its compensation and its action, both prepared.
pub fn saga_branches(gid: &str, now: i64) -> Vec<Branch> {
    vec![
        Branch::new(
            gid,
            "01".into(),
            Op::Compensate,
            "http://s/c",
            b"{}",
            UnixMs(now),
        ),
        Branch::new(
            gid,
            "01".into(),
            Op::Action,
            "http://s/a",
            &[0, 159, 255],
            UnixMs(now),
        ),
    ]
}
