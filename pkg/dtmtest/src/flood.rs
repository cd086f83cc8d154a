//! Floods of connections that hold an app's listeners — idle sockets, idle keep-alive HTTP/1.1,
//! idle HTTP/2 clients answering PINGs, slow keep-alive clients — and the check that fresh
//! clients are still answered meanwhile. Loopback only, bounded in count and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How many connections a flood holds: more than the default cap of 512.
pub const FLOOD: usize = 600;

/// An HTTP/1.1 request for `path` on a keep-alive connection.
fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// `n` connections to `addr` that say nothing (with `path`, every other one sends one
/// keep-alive request for it first, then stays idle).
pub async fn idle(addr: SocketAddr, n: usize, path: Option<&str>) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        if let (Some(path), 0) = (path, i % 2) {
            s.write_all(&get(path)).await.expect("write");
        }
        held.push(s);
    }
    held
}

/// Idle HTTP/2 connections held open: `n` h2c clients on `http` that made one request for
/// `path`, and `n` gRPC channels on `grpc` that made one health check. Their HTTP/2 stacks
/// answer the server's PINGs. Dropping the value closes them.
pub struct IdleHttp2 {
    _http: Vec<reqwest::Client>,
    _grpc: Vec<tonic::transport::Channel>,
}

impl IdleHttp2 {
    /// Opens them.
    pub async fn open(http: SocketAddr, path: &str, grpc: SocketAddr, n: usize) -> IdleHttp2 {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            let client = reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .expect("client");
            let _ = client.get(format!("http://{http}{path}")).send().await;
            clients.push(client);
        }
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n {
            let endpoint =
                tonic::transport::Endpoint::new(format!("http://{grpc}")).expect("endpoint");
            if let Ok(channel) = endpoint.connect().await {
                let _ = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest::default())
                    .await;
                channels.push(channel);
            }
        }
        IdleHttp2 {
            _http: clients,
            _grpc: channels,
        }
    }
}

/// `n` clients each sending a request for `path` every 2 s on its keep-alive connection (well
/// inside an idle timeout), reconnecting when the server closes it. Stopped on drop.
pub struct SlowClients {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl SlowClients {
    /// Starts them and returns once every one has been served at least once: more than the
    /// cap have held a connection.
    pub async fn start(addr: SocketAddr, path: &str, n: usize) -> SlowClients {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..n {
            let (stop, served, request) = (stop.clone(), served.clone(), get(path));
            tasks.spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut first = true;
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut s) = TcpStream::connect(addr).await else {
                        continue;
                    };
                    while !stop.load(Ordering::SeqCst) {
                        let sent = s.write_all(&request).await;
                        if sent.is_err() || !matches!(s.read(&mut buf).await, Ok(1..)) {
                            break;
                        }
                        if std::mem::take(&mut first) {
                            served.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while served.load(Ordering::SeqCst) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slow clients were never all served"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SlowClients { stop, tasks }
    }
}

impl Drop for SlowClients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tasks.abort_all();
    }
}

/// Each flood in turn against an app's listeners — idle sockets and keep-alive connections,
/// idle HTTP/2 clients answering PINGs, slow keep-alive clients — [`FLOOD`] connections each, and
/// under each one [`fresh_clients_are_served`] (`path`: an HTTP route answering 200).
pub async fn every_flood_leaves_fresh_clients_served(
    http: SocketAddr,
    path: &str,
    grpc: SocketAddr,
) {
    let held = (
        idle(http, FLOOD, Some(path)).await,
        idle(grpc, FLOOD, None).await,
    );
    fresh_clients_are_served(http, path, grpc).await;
    drop(held);
    let held = IdleHttp2::open(http, path, grpc, FLOOD).await;
    fresh_clients_are_served(http, path, grpc).await;
    drop(held);
    let _slow = SlowClients::start(http, path, FLOOD).await;
    fresh_clients_are_served(http, path, grpc).await;
}

/// Ten times over, a fresh client (a new connection each) GETs `http`'s `path` (expecting
/// 200) and asks `grpc`'s health service, each answered within 1 s: the flood of the moment
/// does not lock it out.
pub async fn fresh_clients_are_served(http: SocketAddr, path: &str, grpc: SocketAddr) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = format!("http://{http}{path}");
    for round in 0..10 {
        let answer = client.get(&url).send().await;
        assert!(
            answer.is_ok_and(|r| r.status() == 200),
            "round {round}: a fresh HTTP client was not answered within 1 s"
        );
        let checked = tokio::time::timeout(Duration::from_secs(1), async {
            let channel = tonic::transport::Endpoint::new(format!("http://{grpc}"))?
                .connect()
                .await?;
            let res = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(res?.into_inner().status)
        })
        .await;
        assert!(
            matches!(checked, Ok(Ok(s)) if s == ServingStatus::Serving as i32),
            "round {round}: a fresh gRPC client was not answered within 1 s: {checked:?}"
        );
    }
}
