//! `make chaos`: coordinator, stock and order as separate processes (SQLite, loopback ports),
//! PlaceOrder calls — saga, TCC and workflow, branches over HTTP and gRPC, some meant to fail —
//! while the coordinator is SIGKILLed every few seconds and stock and order now and then. Then it
//! restarts whatever is down, waits until no transaction is unfinished (a workflow cut short is
//! resumed by the coordinator), and checks:
//!
//! - every transaction is final (`succeed` or `failed`);
//! - each transaction agrees with its order row: `succeed` ⇔ the order is CREATED, `failed` ⇔ it
//!   is absent or CANCELLED; no order is left PENDING;
//! - per SKU, no effect applied twice or lost: nothing frozen, and seeded − available = Σ quantity
//!   of the succeeded orders (which is also Σ quantity of the CREATED rows).
//!
//! Beside them, a population of sagas whose branch hangs for the whole run (`hanging.rs`) holds
//! hundreds of poller rounds: the others must finish all the same, and the hanging ones, released
//! at the end, must roll back.
//!
//! One summary line; exit 1 on any violation. Everything lives under `target/chaos`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use prost::Message;
use serde_json::{Value, json};
use sqlx::Row;

use cluster::{Cluster, apps};
use hanging::Hanging;

mod cluster;
mod hanging;

/// Flags of the chaos run.
#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "PlaceOrder under SIGKILLs, then check every invariant"
)]
struct Flags {
    /// How many PlaceOrder calls to make.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Stop issuing calls after this long, even if fewer were made (e.g. `60s`).
    #[arg(long, value_parser = parse_secs, default_value = "600")]
    duration: Duration,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Where the coordinator, stock and order binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The working directory; emptied first.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/chaos"))]
    dir: PathBuf,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let n = s.trim_end_matches('s');
    n.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("{s:?}: {e}"))
}

/// The stock the run starts with: enough apples and pears that most orders can succeed.
const SEED: [(&str, i64); 3] = [
    ("SKU-APPLE", 100_000),
    ("SKU-PEAR", 100_000),
    ("SKU-PLUM", 5),
];
/// order's per-order limit in this run (TransIn answers FAILURE above it).
const MAX_QUANTITY: i64 = 10;

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    let bin_dir = match &flags.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .to_path_buf(),
    };
    if flags.dir.exists() {
        std::fs::remove_dir_all(&flags.dir)?;
    }
    std::fs::create_dir_all(flags.dir.join("data"))?;
    let dir = flags.dir.canonicalize()?;
    let mut cluster = Cluster::new(&bin_dir, &dir)?;
    let outcome = run(&flags, &mut cluster, &dir).await;
    cluster.stop_all().await;
    match outcome {
        Ok(0) => Ok(()),
        Ok(n) => bail!("{n} violations (logs in {})", dir.display()),
        Err(e) => Err(e.context(format!("chaos failed (logs in {})", dir.display()))),
    }
}

/// The run; returns how many violations it found.
async fn run(flags: &Flags, cluster: &mut Cluster, dir: &Path) -> Result<usize> {
    for app in apps() {
        cluster.start(app)?;
    }
    for app in apps() {
        cluster.wait_healthy(app).await?;
    }
    let place = format!(
        "http://127.0.0.1:{}/api/order/v1/orders",
        cluster.port("order", 0)
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let hanging = Hanging::start().await?;
    let dtm_api = format!(
        "http://127.0.0.1:{}/api/dtmsvr",
        cluster.port("coordinator", 0)
    );
    hanging.submit(&client, &dtm_api).await?;
    let counts = Arc::new(Counts::default());
    let issued = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + flags.duration;
    let mut workers = Vec::new();
    for w in 0..flags.concurrency {
        let (client, place, counts, issued) = (
            client.clone(),
            place.clone(),
            counts.clone(),
            issued.clone(),
        );
        let total = flags.orders;
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            while issued.fetch_add(1, Ordering::SeqCst) < total && Instant::now() < deadline {
                let body = rng.order();
                let answer = client.post(&place).json(&body).send().await;
                let status = match answer {
                    Ok(res) => match res.json::<Value>().await {
                        Ok(v) => v["status"].as_str().unwrap_or("error").to_owned(),
                        Err(_) => "error".to_owned(),
                    },
                    Err(_) => "error".to_owned(),
                };
                counts.add(&status);
                if status == "error" {
                    // The order service may be down: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    // The killer: the coordinator every 1.5–3 s, stock or order every fourth time.
    let mut rng = Rng::new(99);
    let (mut kills, mut service_kills) = (0, 0);
    while !workers.iter().all(|w| w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(rng.between(1500, 3000))).await;
        if workers.iter().all(|w| w.is_finished()) {
            break;
        }
        cluster.kill("coordinator").await;
        kills += 1;
        let also = (kills % 4 == 0).then_some(if kills % 8 == 0 { "order" } else { "stock" });
        if let Some(app) = also {
            cluster.kill(app).await;
            service_kills += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(100, 300))).await;
        cluster.start("coordinator")?;
        if let Some(app) = also {
            cluster.start(app)?;
        }
    }
    for w in workers {
        w.await?;
    }
    for app in apps() {
        cluster.wait_healthy(app).await?;
    }
    // Everything else is in; the hanging actions answer FAILURE from now on.
    hanging.release();
    // Quiescence: no unfinished transaction left (prepared TCCs time out after 3 s).
    let db = |name: &str| format!("sqlite://{}/data/{name}.db?mode=ro", dir.display());
    let open = async |name: &str| sqlx::SqlitePool::connect(&db(name)).await.context(db(name));
    let dtm = open("dtm").await?;
    let started = Instant::now();
    let unfinished = loop {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM trans_global WHERE status NOT IN ('succeed', 'failed')",
        )
        .fetch_one(&dtm)
        .await?
        .get(0);
        if n == 0 || started.elapsed() > Duration::from_secs(180) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut report = check(&dtm, &open("stock").await?, &open("order").await?).await?;
    let (hanging_failed, wrong) = hanging::outcomes(&dtm).await?;
    report.violations.extend(wrong);
    for v in report.violations.iter().take(20) {
        println!("violation: {v}");
    }
    let violations = report.violations.len() + usize::try_from(unfinished)?;
    println!(
        "chaos: {} PlaceOrder calls (succeed {}, failed {}, no answer {}), {} transactions \
         ({} workflows; succeed {}, failed {}), {} hanging sagas ({} rolled back once released), \
         {} coordinator SIGKILLs, {} stock/order SIGKILLs, {} unfinished, {} violations",
        counts.total(),
        counts.get("succeed"),
        counts.get("failed"),
        counts.total() - counts.get("succeed") - counts.get("failed"),
        report.transactions,
        report.workflows,
        report.succeed,
        report.failed,
        hanging::HANGING,
        hanging_failed,
        kills,
        service_kills,
        unfinished,
        violations,
    );
    Ok(violations)
}

/// What the stores say once everything is final.
struct Report {
    transactions: usize,
    workflows: usize,
    succeed: usize,
    failed: usize,
    violations: Vec<String>,
}

/// Every transaction against its order row, and every SKU against the seed.
async fn check(
    dtm: &sqlx::SqlitePool,
    stock: &sqlx::SqlitePool,
    order: &sqlx::SqlitePool,
) -> Result<Report> {
    let mut violations = Vec::new();
    let orders: HashMap<String, (String, i64, String)> =
        sqlx::query("SELECT id, sku, quantity, status FROM orders")
            .fetch_all(order)
            .await?
            .iter()
            .map(|r| (r.get::<String, _>(0), (r.get(1), r.get(2), r.get(3))))
            .collect();
    // The order branch of each transaction carries the order (JSON over HTTP, protobuf over gRPC).
    let rows = sqlx::query(
        "SELECT g.gid, g.status, g.protocol, b.bin_data FROM trans_global g \
         JOIN trans_branch_op b ON b.gid = g.gid \
         WHERE b.op IN ('action', 'confirm') AND (b.url LIKE '%trans-in%' OR b.url LIKE '%TransIn%')",
    )
    .fetch_all(dtm)
    .await?;
    // A workflow's order is its input (`custom_data`): its steps' data are what they answered.
    let workflows = sqlx::query(
        "SELECT gid, status, custom_data FROM trans_global WHERE trans_type = 'workflow'",
    )
    .fetch_all(dtm)
    .await?;
    let placed = rows
        .iter()
        .map(|r| {
            let (gid, status, protocol): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            let order = order_of(&protocol, &r.get::<Vec<u8>, _>(3));
            (gid, status, order)
        })
        .chain(workflows.iter().map(|r| {
            let (gid, status, custom): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            (gid, status, workflow_order(&custom))
        }));
    let (mut succeed, mut failed) = (0, 0);
    let mut sold: HashMap<String, i64> = HashMap::new();
    for (gid, status, order) in placed {
        let Some((id, sku, quantity)) = order else {
            violations.push(format!("{gid}: unreadable order payload"));
            continue;
        };
        let row = orders.get(&id).map(|(_, _, s)| s.as_str());
        match (status.as_str(), row) {
            ("succeed", Some("CREATED")) => {
                succeed += 1;
                *sold.entry(sku).or_default() += quantity;
            }
            ("failed", None | Some("CANCELLED")) => failed += 1,
            (s, row) => violations.push(format!("{gid} is {s} but order {id} is {row:?}")),
        }
    }
    for (id, (_, _, status)) in &orders {
        if status == "PENDING" {
            violations.push(format!("order {id} is still PENDING"));
        }
    }
    for (sku, seeded) in SEED {
        let r = sqlx::query("SELECT available, frozen FROM stock WHERE sku = ?")
            .bind(sku)
            .fetch_one(stock)
            .await?;
        let (available, frozen): (i64, i64) = (r.get(0), r.get(1));
        let sold = sold.get(sku).copied().unwrap_or(0);
        let created: i64 = orders
            .values()
            .filter(|(s, _, st)| s == sku && st == "CREATED")
            .map(|(_, q, _)| q)
            .sum();
        if frozen != 0 || seeded - available != sold || sold != created {
            violations.push(format!(
                "{sku}: seeded {seeded}, available {available}, frozen {frozen}, \
                 sold by succeeded transactions {sold}, in CREATED orders {created}"
            ));
        }
    }
    Ok(Report {
        transactions: rows.len() + workflows.len(),
        workflows: workflows.len(),
        succeed,
        failed,
        violations,
    })
}

/// (order id, sku, quantity) from a PlaceOrder workflow's `custom_data`: `{"name", "data"}`,
/// the data an `OrderRequest`, base64.
fn workflow_order(custom_data: &str) -> Option<(String, String, i64)> {
    use base64::Engine;
    let v: Value = serde_json::from_str(custom_data).ok()?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(v["data"].as_str()?)
        .ok()?;
    order_of("grpc", &data)
}

/// (order id, sku, quantity) from an order branch's body.
fn order_of(protocol: &str, body: &[u8]) -> Option<(String, String, i64)> {
    if protocol == "grpc" {
        let o = api::order::v1::OrderRequest::decode(body).ok()?;
        return Some((o.order_id, o.sku, o.quantity));
    }
    // Proto3 JSON: order sends `orderId`; parsers accept the proto name `order_id` too.
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v.get("orderId").or_else(|| v.get("order_id"))?;
    Some((
        id.as_str()?.to_owned(),
        v["sku"].as_str()?.to_owned(),
        v["quantity"].as_i64()?,
    ))
}

/// PlaceOrder answers by status.
#[derive(Default)]
struct Counts(std::sync::Mutex<HashMap<String, usize>>);

impl Counts {
    fn add(&self, status: &str) {
        *self.lock().entry(status.to_owned()).or_default() += 1;
    }
    fn get(&self, status: &str) -> usize {
        self.lock().get(status).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.lock().values().sum()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A small deterministic generator (xorshift): runs are repeatable without a crate for it.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// A PlaceOrder body: mostly orders that can succeed, some over order's limit (TransIn
    /// fails after TransOut ran) and some short of stock (TransOut fails).
    fn order(&mut self) -> Value {
        let mode = ["MODE_SAGA", "MODE_TCC", "MODE_WORKFLOW"][(self.next() % 3) as usize];
        let transport = ["TRANSPORT_HTTP", "TRANSPORT_GRPC"][(self.next() % 2) as usize];
        let (sku, quantity) = match self.next() % 10 {
            0 | 1 => ("SKU-APPLE", MAX_QUANTITY + 1 + (self.next() % 3) as i64),
            2 => ("SKU-PLUM", 6),
            n if n % 2 == 0 => ("SKU-APPLE", 1 + (self.next() % 3) as i64),
            _ => ("SKU-PEAR", 1 + (self.next() % 3) as i64),
        };
        json!({"user_id": 1, "sku": sku, "quantity": quantity, "mode": mode, "transport": transport})
    }
}
