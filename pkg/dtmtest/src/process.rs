//! Service binaries run as real processes.

use std::time::Duration;

use serde_json::Value;

use crate::{grpc_health, reflection_services};

/// A service binary started as a real process with its shipped config, on free ports.
pub struct Process {
    /// The child; killed on drop if still running.
    pub child: std::process::Child,
    /// HTTP base URL.
    pub http: String,
    /// gRPC URL.
    pub grpc: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Process {
    /// Starts `exe --conf <conf> --log-json` with `HTTP_ADDR`/`GRPC_ADDR` on `127.0.0.1:0` and
    /// `DB_SOURCE=<db>`, and waits (30 s at most) for its "serving" log line.
    pub fn start(exe: &str, conf: &str, db: &str) -> Process {
        Process::start_with(exe, conf, &[("DB_SOURCE", db)])
    }

    /// Like [`Process::start`], with these environment variables instead of `DB_SOURCE`.
    pub fn start_with(exe: &str, conf: &str, env: &[(&str, &str)]) -> Process {
        use std::io::BufRead;
        let mut child = std::process::Command::new(exe)
            .args(["-conf", conf, "--log-json"])
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("GRPC_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Process {
            child,
            http: String::new(),
            grpc: String::new(),
            lines,
        };
        let serving = p.wait_for_line("serving");
        let v: Value = serde_json::from_str(&serving).expect("JSON log line");
        p.http = format!("http://{}", v["http"].as_str().expect("http address"));
        p.grpc = format!("http://{}", v["grpc"].as_str().expect("grpc address"));
        p
    }

    /// The next log line whose message is `message` (30 s at most).
    pub fn wait_for_line(&mut self, message: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} log line within 30 s"));
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["message"] == message {
                return line;
            }
        }
    }

    /// Sends SIGTERM and waits (30 s at most) for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Asserts what every service binary serves: `/healthz` 200, gRPC health SERVING for
    /// `service`, and reflection listing `service`, health and reflection.
    pub async fn assert_serving(&self, service: &str) {
        let health = reqwest::get(format!("{}/healthz", self.http))
            .await
            .expect("healthz");
        assert_eq!(health.status().as_u16(), 200);
        assert_eq!(
            grpc_health(&self.grpc, service).await,
            1,
            "{service} is SERVING"
        );
        let services = reflection_services(&self.grpc).await;
        for s in [
            service,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(services.iter().any(|x| x == s), "{s} not in {services:?}");
        }
    }
}
