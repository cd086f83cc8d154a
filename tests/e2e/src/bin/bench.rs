//! `make bench`: 2-step HTTP sagas with `wait_result` against the coordinator (SQLite store) and a
//! minimal branch server, at a given concurrency; and, in the same run, the raw ceiling — the
//! same two branch POSTs without the coordinator. Prints throughput and p50/p99 latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::post;
use clap::Parser;
use coordinator::biz::Clock;
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
    let dtm = coordinator(&dir).await?;
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
    sagas.print("sagas through the coordinator");
    println!(
        "coordinator / raw ceiling: {:.1}%",
        100.0 * sagas.per_second() / raw.per_second()
    );
    Ok(())
}

/// What one phase measured.
struct Figures {
    done: usize,
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
    let start = Instant::now();
    let measure_from = start + flags.warmup;
    let end = measure_from + flags.duration;
    let mut workers = Vec::new();
    for n in 0..flags.concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                op(n).await?;
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

/// The coordinator with its production settings, on a temp SQLite file.
async fn coordinator(dir: &tempfile::TempDir) -> anyhow::Result<String> {
    let conf = coordinator::conf::Bootstrap {
        store: coordinator::conf::Store::new(
            "sqlite",
            &format!("sqlite://{}/dtm.db", dir.path().display()),
        ),
        trans_cron_interval: Duration::from_secs(3),
        timeout_to_fail: Duration::from_secs(35),
        retry_interval: Duration::from_secs(10),
        retry_max_interval: Duration::from_secs(300),
        request_timeout: Duration::from_secs(3),
        http_port: 0,
        grpc_port: 0,
        listen_ip: "127.0.0.1".into(),
        server_timeout: Duration::from_secs(60),
        max_body_bytes: 1 << 20,
        idle_timeout: Duration::from_secs(30),
        max_connections: 512,
        hardening: Default::default(),
        micro_service: Default::default(),
    };
    let c = coordinator::wire(&conf, Clock::default()).await?;
    let url = format!("http://{}/api/dtmsvr", c.app.http_addr());
    let _poller = c.usecase.spawn_poller();
    tokio::spawn(c.app.run_until(std::future::pending()));
    Ok(url)
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
