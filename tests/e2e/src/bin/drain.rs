//! `make bench-drain`: how fast 1, 2 and 4 coordinators' pollers drain a backlog on one store,
//! and what they cost each other. A backlog of 2-step sagas, submitted and due (as a
//! coordinator that died before their first round leaves them), is drained by n use cases in
//! this process, each with its own store connections, lease owner and poller; branch calls are
//! answered in-process at once, so the store and the leasing are all that is measured.
//!
//! Prints, per n: sagas drained per second; the poller's lease requests that lost a race
//! (`raced`: another coordinator took the row it chose) and found nothing (`empty`); rounds
//! per coordinator; and branch calls beyond the first (a transaction driven twice) — which must
//! be 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use coordinator::biz::{
    Branch, BranchCaller, Clock, Global, Op, Options, Policy, RoundObserver, Status, TransStore,
    TransType, TransUsecase,
};
use coordinator::conf::Store;
use dtmcli::DtmResult;
use dtmcli::caller::{CallError, CallRequest, Reply};
use kit::time::UnixMs;

/// Drain flags.
#[derive(Debug, Parser)]
#[command(
    name = "drain",
    about = "Pollers of several coordinators draining one backlog"
)]
struct Flags {
    /// sqlite, postgres, mysql, redis or redis-cluster (servers from deploy/ci/servers.sh).
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Sagas in the backlog.
    #[arg(long, default_value_t = 5000)]
    sagas: usize,
    /// Coordinator counts, one line each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    coordinators: Vec<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    println!(
        "{} sagas due on {}, {} cores",
        flags.sagas,
        flags.store,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for &n in &flags.coordinators {
        let (conf, _db) = fresh_store(&flags.store).await?;
        let line = drain(&conf, n, flags.sagas).await?;
        println!("{line}");
        if line.duplicates > 0 {
            bail!("{} branch calls made twice", line.duplicates);
        }
    }
    Ok(())
}

/// One line of figures.
struct Line {
    coordinators: usize,
    sagas: usize,
    elapsed: Duration,
    rounds: Vec<usize>,
    raced: usize,
    empty: usize,
    duplicates: usize,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "coordinators {}: {:>7.0} sagas/s ({:.2} s), leases raced {}, empty {}, \
             rounds per coordinator {:?}, duplicate calls {}",
            self.coordinators,
            self.sagas as f64 / self.elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.raced,
            self.empty,
            self.rounds,
            self.duplicates
        )
    }
}

/// Fills a backlog on `conf`'s store, then runs `n` pollers until it is drained.
async fn drain(conf: &Store, n: usize, sagas: usize) -> anyhow::Result<Line> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(coordinator::data::open_store(conf, Default::default()).await?);
    }
    let now = Clock::default().now().0;
    for i in 0..sagas {
        let gid = format!("drain-{i}");
        stores[0]
            .create(&due_saga(&gid, now), &saga_steps(&gid, now))
            .await?;
    }
    let caller = Arc::new(Answers::default());
    let counts: Vec<Arc<Counts>> = (0..n).map(|_| Arc::default()).collect();
    let started = Instant::now();
    let pollers: Vec<_> = stores
        .iter()
        .zip(&counts)
        .map(|(store, c)| {
            let uc = TransUsecase::new(
                store.clone(),
                caller.clone(),
                policy(),
                Clock::default(),
                c.clone(),
            );
            tokio::spawn(uc.poller().run())
        })
        .collect();
    let deadline = started + Duration::from_secs(600);
    while unfinished(&*stores[0]).await? > 0 {
        if Instant::now() > deadline {
            bail!("not drained within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    pollers.iter().for_each(|p| p.abort());
    for s in &stores {
        s.close().await?;
    }
    let calls = caller.calls.lock().map_err(|_| anyhow::anyhow!("calls"))?;
    Ok(Line {
        coordinators: n,
        sagas,
        elapsed,
        rounds: counts
            .iter()
            .map(|c| c.rounds.load(Ordering::Relaxed))
            .collect(),
        raced: counts.iter().map(|c| c.raced.load(Ordering::Relaxed)).sum(),
        empty: counts.iter().map(|c| c.empty.load(Ordering::Relaxed)).sum(),
        duplicates: calls.values().map(|n| n - 1).sum(),
    })
}

/// The unfinished transactions of the store.
async fn unfinished(store: &dyn TransStore) -> anyhow::Result<u64> {
    Ok(store
        .backlog()
        .await?
        .unfinished
        .iter()
        .map(|(_, n)| n)
        .sum())
}

/// A store of the kind named, on a fresh database (kept alive by the second value).
async fn fresh_store(kind: &str) -> anyhow::Result<(Store, Option<dtmtest::TestDb>)> {
    let missing = || format!("{kind}: start it with deploy/ci/servers.sh and export its URL");
    Ok(match kind {
        "sqlite" | "postgres" | "mysql" => {
            let dialect = match kind {
                "sqlite" => dtmcli::Dialect::Sqlite,
                "postgres" => dtmcli::Dialect::Postgres,
                _ => dtmcli::Dialect::MySql,
            };
            let db = dtmtest::database(dialect).await.with_context(missing)?;
            (Store::new(dialect.driver(), &db.url), Some(db))
        }
        "redis" | "redis-cluster" => {
            let cluster = kind == "redis-cluster";
            let redis = if cluster {
                dtmtest::redis_cluster()
            } else {
                dtmtest::redis()
            };
            let redis = redis.with_context(missing)?;
            let conf = Store {
                redis_prefix: redis.prefix,
                redis_cluster: cluster,
                ..Store::new("redis", &redis.url)
            };
            (conf, None)
        }
        other => bail!("unknown store {other}: sqlite, postgres, mysql, redis or redis-cluster"),
    })
}

/// The coordinator's defaults (configs/config.yaml), with a short cron interval so that an
/// idle poller looks again soon (the drain's end is not a poller's sleep).
fn policy() -> Policy {
    Policy {
        retry_interval: Duration::from_secs(10),
        retry_max_interval: Duration::from_secs(300),
        timeout_to_fail: Duration::from_secs(35),
        request_timeout: Duration::from_secs(3),
        branch_concurrency: 64,
        trans_cron_interval: Duration::from_millis(10),
    }
}

/// A saga submitted at `now` whose first round never ran: due now.
fn due_saga(gid: &str, now: i64) -> Global {
    Global {
        id: 0,
        gid: gid.into(),
        trans_type: TransType::Saga,
        status: Status::Submitted,
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
        next_cron_time: UnixMs(now - 1),
        owner: String::new(),
    }
}

/// Two steps, each its compensation and its action.
fn saga_steps(gid: &str, now: i64) -> Vec<Branch> {
    ["01", "02"]
        .into_iter()
        .flat_map(|id| {
            [Op::Compensate, Op::Action].map(|op| {
                let url = format!("http://127.0.0.1:1/{}", op.as_str());
                Branch::new(gid, id.into(), op, &url, b"{}", UnixMs(now))
            })
        })
        .collect()
}

/// Branches answering SUCCESS at once, counting each (gid, branch, op).
#[derive(Default)]
struct Answers {
    calls: Mutex<HashMap<(String, String, String), usize>>,
}

#[async_trait::async_trait]
impl BranchCaller for Answers {
    async fn call(&self, req: &CallRequest<'_>) -> Result<Reply, CallError> {
        let key = (
            req.info.gid.clone(),
            req.info.branch_id.clone(),
            req.op().to_owned(),
        );
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(key).or_default() += 1;
        }
        Ok(Reply {
            result: DtmResult::Success,
            body: String::new(),
        })
    }
}

/// What one coordinator's poller did.
#[derive(Default)]
struct Counts {
    rounds: AtomicUsize,
    raced: AtomicUsize,
    empty: AtomicUsize,
}

impl RoundObserver for Counts {
    fn transaction_processed(&self, _: &'static str, _: bool, _: Duration) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
    }
    fn branch_processed(&self, _: &'static str, _: &str, _: &str, _: bool) {}
    fn poller_leased(&self, outcome: &'static str) {
        match outcome {
            "raced" => self.raced.fetch_add(1, Ordering::Relaxed),
            "empty" => self.empty.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
    fn backlog(&self, _: &[(Status, u64)], _: Duration) {}
}
