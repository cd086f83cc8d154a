//! A population of sagas whose branch hangs: the test that the poller is never starved. Their
//! one action is a loopback server that reads each call and answers nothing until released, and
//! each saga asks for the longest `request_timeout` the coordinator accepts (a day), so every
//! round the poller starts on them — after each coordinator restart — holds on for the whole
//! run. The PlaceOrder sagas and TCCs, which need the poller for their retries and timeouts, must
//! still all finish. Released at the end, the hanging actions answer FAILURE and their sagas roll
//! back: each must end `failed`.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How many: more than the poller's 64 slots and 256 overflow of old together.
pub const HANGING: usize = 400;

/// The branch server that hangs until released.
pub struct Hanging {
    addr: SocketAddr,
    release: watch::Sender<bool>,
}

impl Hanging {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Result<Hanging> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (release, released) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, released.clone()));
            }
        });
        Ok(Hanging { addr, release })
    }

    /// Submits the hanging sagas to the coordinator at `dtm` (`http://…/api/dtmsvr`), retrying
    /// while it is unavailable.
    pub async fn submit(&self, client: &reqwest::Client, dtm: &str) -> Result<()> {
        for i in 0..HANGING {
            let body = json!({
                "gid": gid(i),
                "trans_type": "saga",
                "steps": [{
                    "action": format!("http://{}/hang/action", self.addr),
                    "compensate": format!("http://{}/hang/compensate", self.addr),
                }],
                "payloads": ["{}"],
                "request_timeout": 24 * 3600,
            });
            let mut tries = 0;
            while !client
                .post(format!("{dtm}/submit"))
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                tries += 1;
                anyhow::ensure!(tries < 100, "the coordinator refused hanging saga {i}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// From now on every call is answered (the actions FAILURE), the held ones included.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

/// The gid of hanging saga `i`.
pub fn gid(i: usize) -> String {
    format!("hanging-{i}")
}

/// How many hanging sagas are in each final status: (failed, other).
pub async fn outcomes(dtm: &sqlx::SqlitePool) -> Result<(usize, Vec<String>)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT gid, status FROM trans_global WHERE gid LIKE 'hanging-%'")
            .fetch_all(dtm)
            .await
            .context("reading the hanging sagas")?;
    let failed = rows.iter().filter(|(_, s)| s == "failed").count();
    let mut wrong: Vec<String> = rows
        .iter()
        .filter(|(_, s)| s != "failed")
        .map(|(g, s)| format!("{g} is {s}, not failed"))
        .collect();
    if rows.len() != HANGING {
        wrong.push(format!("{} of {HANGING} hanging sagas stored", rows.len()));
    }
    Ok((failed, wrong))
}

/// One keep-alive connection: each request is held until release, then answered.
async fn serve(mut stream: TcpStream, mut released: watch::Receiver<bool>) {
    let mut buf = Vec::new();
    loop {
        let Some((head, body_len)) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        while buf.len() < body_len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..body_len);
        if released.wait_for(|r| *r).await.is_err() {
            return;
        }
        let (status, result) = if head.contains("/hang/action") {
            ("409 Conflict", "FAILURE")
        } else {
            ("200 OK", "SUCCESS")
        };
        let body = format!(r#"{{"dtm_result":"{result}"}}"#);
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request head from `stream` (into `buf`, which keeps what follows it): the head
/// and its `content-length`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            return Some((head, len));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
