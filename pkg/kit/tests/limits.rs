//! What a client can hold on either listener: idle and slow-header connections are closed after
//! `idle_timeout`; at most `max_connections` are served at once, and floods of idle, PINGing or
//! slow keep-alive connections beyond that cap do not lock fresh clients out; a failing health
//! check turns `/healthz` 503 until it passes again. Loopback only, bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dtmtest::flood::{self, FLOOD};
use kit::{App, ServerConf, ServersConf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    let grpc = app.grpc_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    // Says nothing at all.
    let idle = TcpStream::connect(addr).await.expect("connect");
    // On the gRPC listener: the HTTP/2 preface and an empty SETTINGS frame, then nothing.
    let mut idle_grpc = TcpStream::connect(grpc).await.expect("connect");
    idle_grpc
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("write");
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
        tokio::join!(
            until_closed(idle),
            until_closed(slow),
            until_closed(kept),
            until_closed(idle_grpc)
        )
    })
    .await
    .expect("the server closes all four");
    assert_eq!((closed.0, closed.1), (0, 0), "nothing answered");
    assert!(closed.2 > 0, "the kept-alive request was answered first");
    assert!(
        closed.3 > 0,
        "the gRPC server's SETTINGS came first, then the close"
    );
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
    // On each listener: sockets that say nothing, and (HTTP) keep-alive connections that made one
    // request and then stay idle.
    let _held = (
        flood::idle(http, FLOOD, Some("/healthz")).await,
        flood::idle(grpc, FLOOD, None).await,
    );
    flood::fresh_clients_are_served(http, "/healthz", grpc).await;
}

#[tokio::test]
async fn idle_http2_connections_answering_pings_do_not_lock_fresh_clients_out() {
    let app = start_default().await;
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let _held = flood::IdleHttp2::open(http, "/healthz", grpc, FLOOD).await;
    flood::fresh_clients_are_served(http, "/healthz", grpc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_keep_alive_clients_do_not_lock_fresh_clients_out() {
    let app = start_default().await;
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let _slow = flood::SlowClients::start(http, "/healthz", FLOOD).await;
    flood::fresh_clients_are_served(http, "/healthz", grpc).await;
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
