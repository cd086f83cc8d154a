//! The chaos run's cluster: every app of deploy/apps.txt as a process on free loopback ports,
//! killed and restarted at will.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::MAX_QUANTITY;

/// The apps of deploy/apps.txt, in start order (read once; the cluster keys by name for the
/// whole run).
pub fn apps() -> impl Iterator<Item = &'static str> {
    static APPS: std::sync::LazyLock<Vec<e2e::apps::AppEntry>> =
        std::sync::LazyLock::new(e2e::apps::apps);
    APPS.iter().map(|a| a.name.as_str())
}

/// The apps as processes on free loopback ports, restartable.
pub struct Cluster {
    bin_dir: PathBuf,
    dir: PathBuf,
    /// app → (HTTP port, gRPC port).
    ports: HashMap<&'static str, [u16; 2]>,
    running: HashMap<&'static str, Child>,
}

impl Cluster {
    pub fn new(bin_dir: &Path, dir: &Path) -> Result<Cluster> {
        // Every port held until all are picked: released one by one, the kernel may hand the
        // same port out twice (a CI run gave order the coordinator's HTTP port).
        let bind = || std::net::TcpListener::bind("127.0.0.1:0");
        let mut held = Vec::new();
        let mut ports = HashMap::new();
        for app in apps() {
            let pair = [bind()?, bind()?];
            let port = |l: &std::net::TcpListener| l.local_addr().map(|a| a.port());
            ports.insert(app, [port(&pair[0])?, port(&pair[1])?]);
            held.extend(pair);
        }
        drop(held);
        // The seed of stock (and of services made from it) for this run: the shipped config
        // with more apples and pears.
        for app in apps() {
            if matches!(app, "coordinator" | "order") {
                continue;
            }
            let shipped = e2e::apps::app_dir(app).join("configs/config.yaml");
            let text = std::fs::read_to_string(shipped)?
                .replace("available: 100 }", "available: 100000 }")
                .replace("available: 50 }", "available: 100000 }");
            std::fs::write(dir.join(format!("{app}.yaml")), text)?;
        }
        Ok(Cluster {
            bin_dir: bin_dir.to_owned(),
            dir: dir.to_owned(),
            ports,
            running: HashMap::new(),
        })
    }

    pub fn port(&self, app: &str, which: usize) -> u16 {
        self.ports[app][which]
    }

    /// Starts `app` (again), appending to `dir/<app>.log`.
    pub fn start(&mut self, app: &'static str) -> Result<()> {
        let [http, grpc] = self.ports[app];
        let [dtm_http, dtm_grpc] = self.ports["coordinator"];
        let conf = match app {
            "coordinator" | "order" => e2e::apps::app_dir(app).join("configs"),
            _ => self.dir.join(format!("{app}.yaml")),
        };
        let env: Vec<(String, String)> = match app {
            "coordinator" => [
                ("HTTP_PORT", http.to_string()),
                ("GRPC_PORT", grpc.to_string()),
                ("LISTEN_IP", "127.0.0.1".into()),
                ("TRANS_CRON_INTERVAL", "200ms".into()),
                ("RETRY_INTERVAL", "1".into()),
                ("RETRY_MAX_INTERVAL", "4".into()),
                ("TIMEOUT_TO_FAIL", "3".into()),
                ("REQUEST_TIMEOUT", "3".into()),
            ]
            .map(|(k, v)| (k.to_owned(), v))
            .into(),
            _ => {
                let mut env = vec![
                    ("HTTP_ADDR".to_owned(), format!("127.0.0.1:{http}")),
                    ("GRPC_ADDR".to_owned(), format!("127.0.0.1:{grpc}")),
                    (
                        "DTM_HTTP".to_owned(),
                        format!("http://127.0.0.1:{dtm_http}/api/dtmsvr"),
                    ),
                    ("DTM_GRPC".to_owned(), format!("127.0.0.1:{dtm_grpc}")),
                    ("ORDER_MAX_QUANTITY".to_owned(), MAX_QUANTITY.to_string()),
                ];
                // Where order reaches every branch service: `<NAME>_HTTP`, `<NAME>_GRPC`.
                for service in apps().filter(|a| *a != "coordinator") {
                    let [h, g] = self.ports[service];
                    let name = service.to_ascii_uppercase();
                    env.push((format!("{name}_HTTP"), format!("http://127.0.0.1:{h}")));
                    env.push((format!("{name}_GRPC"), format!("127.0.0.1:{g}")));
                }
                env
            }
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{app}.log")))?;
        let child = Command::new(self.bin_dir.join(app))
            .arg("--conf")
            .arg(conf)
            .envs(env)
            .current_dir(&self.dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {app} (built? `make chaos` builds it)"))?;
        self.running.insert(app, child);
        Ok(())
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self, app: &str) {
        if let Some(mut child) = self.running.remove(app) {
            let _ = child.kill().await;
        }
    }

    /// Polls `/healthz` until 200; restarts the app if it exited.
    pub async fn wait_healthy(&mut self, app: &'static str) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/healthz", self.port(app, 0));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if kit::probe::probe(&url, Duration::from_secs(1))
                .await
                .is_ok()
            {
                return Ok(());
            }
            let exited = match self.running.get_mut(app) {
                Some(child) => child.try_wait()?.is_some(),
                None => true,
            };
            if exited {
                self.start(app)?;
            }
            if Instant::now() > deadline {
                bail!("{app} not healthy after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM to each, then waits (SIGKILL after 15 s).
    pub async fn stop_all(&mut self) {
        for (_, child) in self.running.iter() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for (_, mut child) in self.running.drain() {
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}
