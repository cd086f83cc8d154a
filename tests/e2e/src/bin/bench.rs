//! `make bench`: 2-step HTTP sagas with `wait_result` against the coordinator (the release binary,
//! its own process, production settings, SQLite store) and a minimal branch server, at a given
//! concurrency; and, in the same run, the raw ceiling — the same two branch POSTs without the
//! coordinator. Prints throughput, p50/p99 latency, the share of the ceiling, and the
//! coordinator's CPU time per saga (from /proc, so Linux only).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::post;
use clap::Parser;
use serde_json::json;
use tokio::net::TcpListener;

/// Load generator flags.
#[derive(Debug, Parser)]
#[command(name = "bench", about = "Saga throughput of the bundled coordinator")]
struct Flags {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured time per phase.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up per phase.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let dir = tempfile::tempdir()?;
    let branches = branch_server().await?;
    let (dtm, mut child) = coordinator(&dir).await?;
    let pid = child.id().context("the coordinator exited")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(flags.concurrency)
        .build()?;
    println!(
        "2-step HTTP sagas with wait_result, SQLite store, {} clients, {:?} per phase",
        flags.concurrency, flags.duration
    );

    let raw = {
        let (client, b) = (client.clone(), branches.clone());
        run(&flags, move |_| {
            let (client, b) = (client.clone(), b.clone());
            async move {
                for step in ["TransOut", "TransIn"] {
                    let res = client
                        .post(format!(
                            "{b}/api/busi/{step}?gid=g&trans_type=saga&branch_id=01&op=action"
                        ))
                        .body(r#"{"amount":30}"#)
                        .send()
                        .await?;
                    anyhow::ensure!(
                        res.status().is_success(),
                        "branch answered {}",
                        res.status()
                    );
                }
                Ok(())
            }
        })
        .await?
    };
    raw.print("raw ceiling (2 branch POSTs, no coordinator)");

    let cpu_before = cpu_ticks(pid)?;
    let sagas = {
        let (client, b, dtm) = (client.clone(), branches.clone(), dtm.clone());
        run(&flags, move |n| {
            let (client, b, dtm) = (client.clone(), b.clone(), dtm.clone());
            async move {
                let body = json!({
                    "gid": format!("bench-{n}-{}", uuid::Uuid::new_v4().simple()),
                    "trans_type": "saga",
                    "wait_result": true,
                    "steps": [
                        {"action": format!("{b}/api/busi/TransOut"), "compensate": format!("{b}/api/busi/TransOutCompensate")},
                        {"action": format!("{b}/api/busi/TransIn"), "compensate": format!("{b}/api/busi/TransInCompensate")},
                    ],
                    "payloads": [r#"{"amount":30}"#, r#"{"amount":30}"#],
                });
                let res = client.post(format!("{dtm}/submit")).json(&body).send().await?;
                anyhow::ensure!(res.status().is_success(), "submit answered {}", res.status());
                Ok(())
            }
        })
        .await?
    };
    let cpu = cpu_ticks(pid)? - cpu_before;
    sagas.print("sagas through the coordinator");
    println!(
        "coordinator / raw ceiling: {:.1}%",
        100.0 * sagas.per_second() / raw.per_second()
    );
    // Ticks of 10 ms (USER_HZ = 100 on Linux), over every saga of the phase, warm-up included.
    println!(
        "coordinator CPU: {:.3} ms per saga ({} sagas, {:.2} s of CPU)",
        cpu as f64 * 10.0 / sagas.total.max(1) as f64,
        sagas.total,
        cpu as f64 / 100.0
    );
    child.kill().await?;
    Ok(())
}

/// What one phase measured.
struct Figures {
    /// Operations in the measured period.
    done: usize,
    /// Operations in the whole phase, warm-up included.
    total: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, what: &str) {
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 * p) as usize)
                .min(self.latencies.len().saturating_sub(1));
            self.latencies.get(i).copied().unwrap_or_default()
        };
        println!(
            "{what}: {:.0}/s ({} in {:.1?}), p50 {:.2?}, p99 {:.2?}",
            self.per_second(),
            self.done,
            self.elapsed,
            pct(0.50),
            pct(0.99)
        );
    }
}

/// Runs `op` from `concurrency` clients: a warm-up, then the measured period.
async fn run<F, Fut>(flags: &Flags, op: F) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let total = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let measure_from = start + flags.warmup;
    let end = measure_from + flags.duration;
    let mut workers = Vec::new();
    for n in 0..flags.concurrency {
        let (op, total) = (op.clone(), total.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                op(n).await?;
                total.fetch_add(1, Ordering::Relaxed);
                if t0 >= measure_from {
                    latencies.push(t0.elapsed());
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.context("worker panicked")??);
    }
    latencies.sort_unstable();
    Ok(Figures {
        done: latencies.len(),
        total: total.load(Ordering::Relaxed),
        elapsed: flags.duration,
        latencies,
    })
}

/// The smallest branch server: every branch answers SUCCESS.
async fn branch_server() -> anyhow::Result<String> {
    let ok = || async { axum::Json(json!({"dtm_result": "SUCCESS"})) };
    let router = axum::Router::new()
        .route("/api/busi/TransOut", post(ok))
        .route("/api/busi/TransIn", post(ok))
        .route("/api/busi/TransOutCompensate", post(ok))
        .route("/api/busi/TransInCompensate", post(ok));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

/// The coordinator binary beside this one, with its shipped config (production settings) on a
/// temp SQLite file and free loopback ports; its API URL and the process.
async fn coordinator(dir: &tempfile::TempDir) -> anyhow::Result<(String, tokio::process::Child)> {
    let exe = std::env::current_exe()?
        .parent()
        .context("no directory")?
        .join("coordinator");
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../app/coordinator/configs");
    // Both held until both are read: released one at a time, the kernel may give one port twice.
    let bind = || std::net::TcpListener::bind("127.0.0.1:0");
    let held = [bind()?, bind()?];
    let port = |l: &std::net::TcpListener| l.local_addr().map(|a| a.port());
    let (http, grpc) = (port(&held[0])?, port(&held[1])?);
    drop(held);
    let child = tokio::process::Command::new(&exe)
        .arg("--conf")
        .arg(conf)
        .env(
            "STORE_SOURCE",
            format!("sqlite://{}/dtm.db", dir.path().display()),
        )
        .env("HTTP_PORT", http.to_string())
        .env("GRPC_PORT", grpc.to_string())
        .env("LISTEN_IP", "127.0.0.1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("coordinator.log"))?)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} (`make bench` builds it)", exe.display()))?;
    let health = format!("http://127.0.0.1:{http}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while kit::probe::probe(&health, Duration::from_secs(1))
        .await
        .is_err()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the coordinator is not healthy after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((format!("http://127.0.0.1:{http}/api/dtmsvr"), child))
}

/// User + system CPU ticks of process `pid` so far (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field =
        |n: usize| -> anyhow::Result<u64> { Ok(fields.get(n - 3).context("stat field")?.parse()?) };
    Ok(field(14)? + field(15)?)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        _ => Err(format!("bad duration {s:?} (use 500ms or 10s)")),
    }
}
