//! What a client can hold on the HTTP listener: idle and slow-header connections are closed
//! after `idle_timeout`, at most `max_connections` are served at once, and a failing health
//! check turns `/healthz` 503 until it passes again. Loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (addr, app) = start(Duration::from_secs(60), 2).await;
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let healthz = format!("http://{addr}/healthz");
    assert!(client.get(&healthz).send().await.is_ok());
    // Two idle sockets take both slots: the next request is not served...
    let first = TcpStream::connect(addr).await.expect("connect");
    let second = TcpStream::connect(addr).await.expect("connect");
    // (the server takes them up as it accepts: wait until a request is refused service)
    wait_served(&client, &healthz, false).await;
    // ...until one goes away.
    drop(first);
    wait_served(&client, &healthz, true).await;
    drop(second);
}

/// Polls until a GET of `url` succeeds (`true`) or times out (`false`), for at most 10 s.
async fn wait_served(client: &reqwest::Client, url: &str, served: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.get(url).send().await.is_ok() != served {
        assert!(
            tokio::time::Instant::now() < deadline,
            "served = {served} never held"
        );
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
