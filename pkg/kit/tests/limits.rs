//! What a client can hold on either listener: idle and slow-header connections are closed after
//! `idle_timeout`; at most `max_connections` are served at once, and floods of idle, PINGing or
//! slow keep-alive connections beyond that cap do not lock fresh clients out; a failing health
//! check turns `/healthz` 503 until it passes again. Loopback only, bounded in count and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kit::{App, ServerConf, ServersConf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn start(idle_timeout: Duration, max_connections: usize) -> (std::net::SocketAddr, App) {
    let http = ServerConf {
        idle_timeout,
        max_connections,
        ..ServerConf::new("127.0.0.1:0", Duration::from_secs(30), 1024)
    };
    let conf = ServersConf {
        grpc: http.clone(),
        http,
        shutdown_timeout: Duration::from_secs(1),
    };
    let app = App::builder("limits").build(&conf).await.expect("build");
    (app.http_addr(), app)
}

/// Reads until the server closes the connection; how many bytes it sent.
async fn until_closed(mut s: TcpStream) -> usize {
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let (addr, app) = start(Duration::from_millis(300), 64).await;
    tokio::spawn(app.run_until(std::future::pending()));
    // Says nothing at all.
    let idle = TcpStream::connect(addr).await.expect("connect");
    // Starts a request and never finishes its headers (slow loris).
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // Keep-alive: one request served, then idle.
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(until_closed(idle), until_closed(slow), until_closed(kept))
    })
    .await
    .expect("the server closes all three");
    assert_eq!((closed.0, closed.1), (0, 0), "nothing answered");
    assert!(closed.2 > 0, "the kept-alive request was answered first");
}

/// How many connections a flood holds: more than the default cap of 512.
const FLOOD: usize = 600;

/// While `flood` holds its connections, fresh clients (a new connection each) are answered
/// within 1 s, ten times over: the flood never locks them out.
async fn fresh_clients_are_served(http: SocketAddr, grpc: SocketAddr) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let healthz = format!("http://{http}/healthz");
    let grpc = format!("http://{grpc}");
    for round in 0..10 {
        let answer = client.get(&healthz).send().await;
        assert!(
            answer.is_ok_and(|r| r.status() == 200),
            "round {round}: a fresh HTTP client was not answered within 1 s"
        );
        let checked = tokio::time::timeout(Duration::from_secs(1), async {
            let channel = tonic::transport::Endpoint::new(grpc.clone())?
                .connect()
                .await?;
            let mut health = HealthClient::new(channel);
            let res = health.check(HealthCheckRequest::default()).await;
            Ok::<_, anyhow::Error>(res?.into_inner().status)
        })
        .await;
        assert!(
            matches!(checked, Ok(Ok(s)) if s == ServingStatus::Serving as i32),
            "round {round}: a fresh gRPC client was not answered within 1 s: {checked:?}"
        );
    }
}

/// The default limits (512 connections, 30 s idle timeout: longer than the test).
async fn start_default() -> App {
    let http = ServerConf::new("127.0.0.1:0", Duration::from_secs(5), 1024);
    let conf = ServersConf {
        grpc: http.clone(),
        http,
        shutdown_timeout: Duration::from_secs(1),
    };
    App::builder("flooded").build(&conf).await.expect("build")
}

#[tokio::test]
async fn idle_http1_connections_beyond_the_cap_do_not_lock_fresh_clients_out() {
    let app = start_default().await;
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    // On each listener: plain sockets that say nothing, and keep-alive connections that made one
    // request and then stay idle.
    let mut held = Vec::new();
    for addr in [http, grpc] {
        for i in 0..FLOOD {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            if addr == http && i % 2 == 0 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .expect("write");
            }
            held.push(s);
        }
    }
    fresh_clients_are_served(http, grpc).await;
    drop(held);
}

#[tokio::test]
async fn idle_http2_connections_answering_pings_do_not_lock_fresh_clients_out() {
    let app = start_default().await;
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    // Real HTTP/2 clients (h2c on the HTTP listener, gRPC on the other), each on a connection of
    // its own, one request made, then idle: their HTTP/2 stacks answer the server's PINGs.
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .expect("client");
        let _ = client.get(format!("http://{http}/healthz")).send().await;
        held.push(client);
    }
    let mut channels = Vec::new();
    for _ in 0..FLOOD {
        if let Ok(channel) = tonic::transport::Endpoint::new(format!("http://{grpc}"))
            .expect("endpoint")
            .connect()
            .await
        {
            let mut health = HealthClient::new(channel.clone());
            let _ = health.check(HealthCheckRequest::default()).await;
            channels.push(channel);
        }
    }
    fresh_clients_are_served(http, grpc).await;
    drop((held, channels));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_keep_alive_clients_do_not_lock_fresh_clients_out() {
    let app = start_default().await;
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    // Each client sends a request every 2 s on its keep-alive connection (well inside the idle
    // timeout), and reconnects when the server closes it: they hold more than the cap throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..FLOOD {
        let (stop, served) = (stop.clone(), served.clone());
        clients.spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut first = true;
            while !stop.load(Ordering::SeqCst) {
                let Ok(mut s) = TcpStream::connect(http).await else {
                    continue;
                };
                while !stop.load(Ordering::SeqCst) {
                    let sent = s
                        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await;
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
    // Every client has been served once: more than the cap have held a connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while served.load(Ordering::SeqCst) < FLOOD {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flood was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fresh_clients_are_served(http, grpc).await;
    stop.store(true, Ordering::SeqCst);
    clients.abort_all();
}

#[tokio::test]
async fn a_new_connection_is_refused_at_once_when_every_slot_is_busy() {
    let release = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(AtomicUsize::new(0));
    let (gate, count) = (release.clone(), arrived.clone());
    let router = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || async move {
            count.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            "done"
        }),
    );
    let http = ServerConf {
        max_connections: 2,
        ..ServerConf::new("127.0.0.1:0", Duration::from_secs(30), 1024)
    };
    let conf = ServersConf {
        grpc: http.clone(),
        http,
        shutdown_timeout: Duration::from_secs(1),
    };
    let app = App::builder("busy")
        .http(router)
        .build(&conf)
        .await
        .expect("build");
    let addr = app.http_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        busy.push(s);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while arrived.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow requests never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Both slots have a request in flight: a third connection is closed unanswered, at once
    // (not after the 30 s idle timeout).
    let third = TcpStream::connect(addr).await.expect("connect");
    let refused = tokio::time::timeout(Duration::from_secs(10), until_closed(third)).await;
    assert_eq!(refused.ok(), Some(0), "a third connection was not refused");
    release.notify_waiters();
    for s in busy {
        assert!(until_closed(s).await > 0, "a busy request was cut off");
    }
}

#[tokio::test]
async fn a_failing_health_check_turns_healthz_503_until_it_passes() {
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let http = ServerConf::new("127.0.0.1:0", Duration::from_secs(30), 1024);
    let conf = ServersConf {
        grpc: http.clone(),
        http,
        shutdown_timeout: Duration::from_secs(1),
    };
    let app = App::builder("checked")
        .health_check(
            Duration::from_millis(20),
            Arc::new(move || {
                let failing = flag.load(Ordering::SeqCst);
                Box::pin(async move {
                    if failing {
                        Err("the store cannot write".to_owned())
                    } else {
                        Ok(())
                    }
                })
            }),
        )
        .build(&conf)
        .await
        .expect("build");
    let healthz = format!("http://{}/healthz", app.http_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let status = async || {
        reqwest::get(&healthz)
            .await
            .map(|r| r.status().as_u16())
            .ok()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while status().await != Some(503) {
        assert!(tokio::time::Instant::now() < deadline, "never 503");
    }
    let body = reqwest::get(&healthz)
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(body.contains("the store cannot write"), "{body}");
    failing.store(false, Ordering::SeqCst);
    while status().await != Some(200) {
        assert!(tokio::time::Instant::now() < deadline, "never 200 again");
    }
}
