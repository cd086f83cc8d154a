//! `make demo`: the apps of deploy/apps.txt as separate processes with their shipped configs,
//! six global transactions through them, and what the coordinator recorded about each.
//!
//! Everything lives under a fresh directory (default `target/demo`): the processes run there, so
//! the shipped `sqlite://data/*.db` sources land in `target/demo/data/`, and their logs in
//! `target/demo/*.log`. Every process started is stopped at the end, on failure and on Ctrl-C.
//! The exit code is 0 only if every transaction ended as expected and the tables agree.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use serde_json::{Value, json};

mod processes;
mod tables;

use processes::{Processes, check_ports_free};
use tables::Tables;

/// Flags of the demo.
#[derive(Debug, Parser)]
#[command(
    name = "demo",
    about = "Run the apps of deploy/apps.txt and place orders through them"
)]
struct Flags {
    /// Where the apps' binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The demo directory; emptied first.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/demo"))]
    dir: PathBuf,
    /// Leave the apps running at the end, until Ctrl-C (`make demo KEEP=1`).
    #[arg(long)]
    keep: bool,
}

/// One app of the demo and the ports its shipped config listens on (HTTP, gRPC): every app of
/// deploy/apps.txt.
type App = e2e::apps::AppEntry;
const DTM: &str = "http://127.0.0.1:36789/api/dtmsvr";

/// One PlaceOrder of the demo and the outcome it must have.
struct Order {
    heading: &'static str,
    check: &'static str,
    mode: &'static str,
    transport: &'static str,
    sku: &'static str,
    quantity: i64,
    want: &'static str,
}

/// The orders placed, in order; the first is cancelled afterwards by a two-phase message.
const PLACE: [Order; 5] = [
    Order {
        heading: "PlaceOrder as a saga, branches called over HTTP: 2 × SKU-APPLE",
        check: "saga over HTTP",
        mode: "MODE_SAGA",
        transport: "TRANSPORT_HTTP",
        sku: "SKU-APPLE",
        quantity: 2,
        want: "succeed",
    },
    Order {
        heading: "PlaceOrder as a saga, branches called over gRPC: 3 × SKU-PEAR",
        check: "saga over gRPC",
        mode: "MODE_SAGA",
        transport: "TRANSPORT_GRPC",
        sku: "SKU-PEAR",
        quantity: 3,
        want: "succeed",
    },
    Order {
        heading: "PlaceOrder as a TCC (try, then confirm), over HTTP: 1 × SKU-APPLE",
        check: "tcc",
        mode: "MODE_TCC",
        transport: "TRANSPORT_HTTP",
        sku: "SKU-APPLE",
        quantity: 1,
        want: "succeed",
    },
    Order {
        heading: "PlaceOrder as a workflow the order service runs itself, over gRPC: 2 × SKU-PLUM",
        check: "workflow",
        mode: "MODE_WORKFLOW",
        transport: "TRANSPORT_GRPC",
        sku: "SKU-PLUM",
        quantity: 2,
        want: "succeed",
    },
    Order {
        heading: "PlaceOrder as a saga that fails: 8 × SKU-PLUM, only 3 in stock",
        check: "saga short of stock",
        mode: "MODE_SAGA",
        transport: "TRANSPORT_HTTP",
        sku: "SKU-PLUM",
        quantity: 8,
        want: "failed",
    },
];
const ORDERS: &str = "http://127.0.0.1:8002/api/order/v1/orders";

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    let bin_dir = match flags.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("the demo binary has no directory")?
            .to_path_buf(),
    };
    let mut procs = Processes::default();
    let outcome = tokio::select! {
        r = demo(&bin_dir, &flags.dir, &mut procs) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if outcome.is_ok() {
        step("Look around");
        let apps = e2e::apps::apps();
        let coordinator = apps[0].ports[0];
        println!("  the admin page: http://127.0.0.1:{coordinator}/admin");
        let services = apps[1..]
            .iter()
            .map(|a| format!("http://127.0.0.1:{}/metrics", a.ports[0]));
        let all: Vec<String> =
            std::iter::once(format!("http://127.0.0.1:{coordinator}/api/metrics"))
                .chain(services)
                .collect();
        println!("  metrics: {}", all.join(", "));
        let pages: Vec<String> = (apps[1..].iter())
            .map(|a| format!("http://127.0.0.1:{}/q/docs", a.ports[0]))
            .collect();
        println!(
            "  the services' APIs (Swagger UI; documents at /q/openapi.yaml): {}",
            pages.join(", ")
        );
        if flags.keep {
            println!("  the apps keep running; Ctrl-C stops them");
            let _ = tokio::signal::ctrl_c().await;
        } else {
            println!("  (make demo KEEP=1 leaves the apps running to open them)");
        }
    }
    procs.stop().await;
    let logs = flags.dir.canonicalize().unwrap_or(flags.dir);
    match outcome {
        Ok(Verdict { expected, total }) if expected == total => {
            println!("\n✔ all {total} checks passed: every transaction ended as expected.");
            Ok(())
        }
        Ok(Verdict { expected, total }) => {
            bail!(
                "{} of {total} checks failed (logs in {})",
                total - expected,
                logs.display()
            )
        }
        Err(e) => Err(e.context(format!("demo failed (logs in {})", logs.display()))),
    }
}

/// How many checks passed, of how many.
struct Verdict {
    expected: usize,
    total: usize,
}

/// The whole demo: start, transact, show.
async fn demo(bin_dir: &Path, dir: &Path, procs: &mut Processes) -> Result<Verdict> {
    let apps = e2e::apps::apps();
    for app in &apps {
        check_ports_free(app)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;

    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    step(&format!(
        "Starting {} in {}",
        names.join(", "),
        dir.display()
    ));
    for app in &apps {
        procs.start(app, bin_dir, &dir)?;
    }
    for app in &apps {
        procs.wait_healthy(app).await?;
        println!(
            "  {:<11} serving  HTTP :{}  gRPC :{}",
            app.name, app.ports[0], app.ports[1]
        );
    }

    let client = reqwest::Client::new();
    let db = Tables::open(&dir).await?;
    step("Tables before");
    db.print().await?;

    let mut checks = Checks::default();

    let mut placed = Vec::new();
    for (n, order) in PLACE.iter().enumerate() {
        step(&format!("{}. {}", n + 1, order.heading));
        let reply = place(&client, order).await?;
        checks.expect(order.check, &reply.status, order.want);
        if order.want == "failed" {
            println!(
                "  stock answered FAILURE, so the coordinator compensated instead of going on:"
            );
        }
        timeline(&client, &reply.gid).await?;
        placed.push(reply);
    }
    let first = placed.first().context("no order placed")?;

    step(&format!(
        "{}. CancelOrder {} as a two-phase message (local update + stock TransIn)",
        PLACE.len() + 1,
        first.order_id
    ));
    let reply = post(
        &client,
        &format!("{ORDERS}/{}/cancel", first.order_id),
        json!({}),
    )
    .await?;
    let status = text(&reply, "status");
    checks.expect("msg cancel", &status, "succeed");
    timeline(&client, &text(&reply, "gid")).await?;

    step("Tables after");
    db.print().await?;
    // What the six transactions must have left behind.
    checks.expect_rows(
        "stock",
        db.stock().await?,
        &["SKU-APPLE 99 0", "SKU-PEAR 47 0", "SKU-PLUM 3 0"],
    );
    let orders = db.orders().await?;
    checks.expect_rows(
        "orders",
        orders.iter().map(|(_, row)| row.clone()).collect(),
        &[
            "SKU-APPLE 2 CANCELLED",
            "SKU-PEAR 3 CREATED",
            "SKU-APPLE 1 CREATED",
            "SKU-PLUM 2 CREATED",
        ],
    );
    Ok(checks.verdict())
}

/// What PlaceOrder answered.
struct Placed {
    order_id: String,
    gid: String,
    status: String,
}

/// PlaceOrder through the order service's HTTP API, printed as a curl would send it.
async fn place(client: &reqwest::Client, o: &Order) -> Result<Placed> {
    let body = json!({"user_id": 1, "sku": o.sku, "quantity": o.quantity, "mode": o.mode, "transport": o.transport});
    let reply = post(client, ORDERS, body).await?;
    Ok(Placed {
        order_id: text(&reply, "orderId"),
        gid: text(&reply, "gid"),
        status: text(&reply, "status"),
    })
}

/// POSTs JSON, prints request and reply, and insists on a 200.
async fn post(client: &reqwest::Client, url: &str, body: Value) -> Result<Value> {
    println!("  POST {url} {body}");
    let res = client.post(url).json(&body).send().await?;
    let status = res.status();
    let reply: Value = res.json().await.unwrap_or(Value::Null);
    println!("  ← {} {reply}", status.as_u16());
    if !status.is_success() {
        bail!("{url} answered {status}: {reply}");
    }
    Ok(reply)
}

/// Prints the coordinator's record of `gid`: the global status, then every branch in the order
/// its status was last written, with the time since the transaction began.
async fn timeline(client: &reqwest::Client, gid: &str) -> Result<()> {
    let q: Value = client
        .get(format!("{DTM}/query"))
        .query(&[("gid", gid)])
        .send()
        .await?
        .json()
        .await?;
    let t = &q["transaction"];
    let start = ms_of_day(t["create_time"].as_str().unwrap_or_default());
    println!(
        "  coordinator: {} {} → {}{}",
        t["trans_type"].as_str().unwrap_or("?"),
        gid,
        t["status"].as_str().unwrap_or("?"),
        t["rollback_reason"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    // Called branches in the order their outcome was written; never-called ones (still
    // `prepared`: the compensations of a saga that succeeded) last.
    let mut branches: Vec<(Option<i64>, &Value)> = q["branches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| match b["status"].as_str() {
            Some("prepared") => (None, b),
            _ => (ms_of_day(b["update_time"].as_str().unwrap_or_default()), b),
        })
        .collect();
    branches.sort_by_key(|(at, _)| at.unwrap_or(i64::MAX));
    for (at, b) in branches {
        let when = match (at, start) {
            (Some(at), Some(start)) => format!("+{}ms", (at - start).rem_euclid(86_400_000)),
            _ => "not called".to_owned(),
        };
        println!(
            "    {when:>10}  {} {:<10} {:<9} {}",
            b["branch_id"].as_str().unwrap_or("?"),
            b["op"].as_str().unwrap_or("?"),
            b["status"].as_str().unwrap_or("?"),
            // A workflow's steps are called by its client, which records them: no URL.
            match b["url"].as_str() {
                Some("") => "(a step the order service ran and recorded)",
                url => url.unwrap_or("?"),
            },
        );
    }
    Ok(())
}

/// `2026-11-21T16:43:53.405Z` → milliseconds since midnight (enough for offsets within a demo).
fn ms_of_day(rfc3339: &str) -> Option<i64> {
    let t = rfc3339.get(11..23)?; // 16:43:53.405
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    Some(((n(0..2)? * 60 + n(3..5)?) * 60 + n(6..8)?) * 1000 + n(9..12)?)
}

/// Expected-vs-seen, printed as they are checked.
#[derive(Default)]
struct Checks {
    expected: usize,
    total: usize,
}

impl Checks {
    fn expect(&mut self, what: &str, seen: &str, want: &str) {
        self.total += 1;
        if seen == want {
            self.expected += 1;
            println!("  ✔ {what}: {seen}");
        } else {
            println!("  ✘ {what}: {seen}, expected {want}");
        }
    }

    fn expect_rows(&mut self, table: &str, seen: Vec<String>, want: &[&str]) {
        self.expect(table, &seen.join(", "), &want.join(", "));
    }

    fn verdict(&self) -> Verdict {
        Verdict {
            expected: self.expected,
            total: self.total,
        }
    }
}

/// A heading for the next step.
fn step(what: &str) {
    println!("\n== {what}");
}

/// `v[key]` as a string ("" when absent).
fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}
