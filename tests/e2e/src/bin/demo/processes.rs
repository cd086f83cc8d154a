//! The demo's processes: every app of deploy/apps.txt started with its shipped config, waited
//! for until healthy, and stopped at the end (killed if dropped first).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::{App, step};

/// A clear error instead of a confusing one when something already listens on `app`'s ports.
pub fn check_ports_free(app: &App) -> Result<()> {
    for port in app.ports {
        std::net::TcpListener::bind(("0.0.0.0", port)).with_context(|| {
            format!(
                "port {port} ({}) is taken: is a {} (or the compose demo) already running?",
                app.name, app.name
            )
        })?;
    }
    Ok(())
}

/// The processes the demo started; each is killed if dropped before [`Processes::stop`].
#[derive(Default)]
pub struct Processes {
    running: Vec<(String, Child, PathBuf)>,
}

impl Processes {
    /// `bin_dir/<app> --conf app/<app>/configs`, run in `dir`, logging to `dir/<app>.log`.
    pub fn start(&mut self, app: &App, bin_dir: &Path, dir: &Path) -> Result<()> {
        let exe = bin_dir.join(&app.name);
        let conf = e2e::apps::app_dir(&app.name).join("configs");
        let log_path = dir.join(format!("{}.log", app.name));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&exe)
            .arg("--conf")
            .arg(&conf)
            .current_dir(dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("starting {} (built? `make demo` builds it)", exe.display())
            })?;
        self.running.push((app.name.clone(), child, log_path));
        Ok(())
    }

    /// Polls the app's `/healthz` until it answers 200; fails early if the process exits.
    pub async fn wait_healthy(&mut self, app: &App) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/healthz", app.ports[0]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (_, child, log) = self
            .running
            .iter_mut()
            .find(|(name, ..)| *name == app.name)
            .context("not started")?;
        loop {
            if kit::probe::probe(&url, Duration::from_secs(1))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                bail!("{} exited ({status}); see {}", app.name, log.display());
            }
            if Instant::now() > deadline {
                bail!("{} not healthy after 30 s; see {}", app.name, log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM to each (a graceful stop), then waits; SIGKILL after 15 s.
    pub async fn stop(&mut self) {
        if self.running.is_empty() {
            return;
        }
        step("Stopping the apps");
        for (_, child, _) in self.running.iter().rev() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for (name, mut child, _) in self.running.drain(..).rev() {
            match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
                Ok(Ok(status)) => println!("  {name:<11} stopped ({status})"),
                _ => {
                    let _ = child.kill().await;
                    println!("  {name:<11} killed after 15 s");
                }
            }
        }
    }
}
