//! The App lifecycle: a stop turns health NOT_SERVING first (gRPC health, `/healthz`)
//! and lets in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use kit::{App, ServerConf, ServersConf};
use tokio::sync::{Notify, oneshot};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn conf() -> ServersConf {
    let s = ServerConf::new("127.0.0.1:0", Duration::from_secs(30), 1024);
    ServersConf {
        http: s.clone(),
        grpc: s,
        shutdown_timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn stop_flips_health_then_drains_in_flight_requests() -> Result<()> {
    let (arrived_tx, arrived_rx) = oneshot::channel::<()>();
    let arrived_tx = Arc::new(std::sync::Mutex::new(Some(arrived_tx)));
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let router = Router::new().route(
        "/slow",
        axum::routing::get(move || async move {
            if let Some(tx) = arrived_tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(());
            }
            gate.notified().await;
            "done"
        }),
    );
    let app = App::builder("test").http(router).build(&conf()).await?;
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));

    // A health watch opened while serving sees every change.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))?
        .connect()
        .await?;
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        watch.message().await?.context("first status")?.status,
        ServingStatus::Serving as i32
    );
    let healthz = format!("http://{http}/healthz");
    kit::probe::probe(&healthz, Duration::from_secs(5)).await?;

    let slow = tokio::spawn(reqwest::get(format!("http://{http}/slow")));
    arrived_rx.await?; // the request is in flight
    stop_tx.send(()).ok().context("stop")?;

    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await??
        .context("status")?;
    assert_eq!(next.status, ServingStatus::NotServing as i32);

    release.notify_one();
    let res = slow.await??;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.text().await?, "done");
    tokio::time::timeout(Duration::from_secs(10), running).await???;
    let probed = kit::probe::probe(&healthz, Duration::from_secs(5)).await;
    assert!(
        matches!(probed, Err(kit::probe::ProbeError::Io { .. })),
        "{probed:?}"
    );
    Ok(())
}

/// A worker is meant to run as long as the app: one that ends, or panics, stops the app, which
/// says which worker and why (a supervisor then restarts the process).
#[tokio::test]
async fn a_worker_that_ends_or_panics_stops_the_app() -> Result<()> {
    let ended = App::builder("test")
        .worker("short-lived", async {})
        .build(&conf())
        .await?
        .run_until(std::future::pending());
    let err = tokio::time::timeout(Duration::from_secs(10), ended)
        .await?
        .expect_err("the app stops");
    assert!(
        matches!(&err, kit::AppError::Worker { name: "short-lived", why } if why == "ended"),
        "{err}"
    );
    let panicked = App::builder("test")
        .worker("buggy", async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            panic!("a bug");
        })
        .build(&conf())
        .await?
        .run_until(std::future::pending());
    let err = tokio::time::timeout(Duration::from_secs(10), panicked)
        .await?
        .expect_err("the app stops");
    assert!(
        err.to_string().contains("worker buggy panicked: a bug"),
        "{err}"
    );
    // A worker that runs until the stop is dropped with the app, which stops cleanly.
    let app = App::builder("test")
        .worker("forever", std::future::pending())
        .build(&conf())
        .await?;
    app.run_until(tokio::time::sleep(Duration::from_millis(50)))
        .await?;
    Ok(())
}

#[tokio::test]
async fn stop_steps_run_in_order_after_the_servers_stop_whatever_stopped_them() -> Result<()> {
    for failing_worker in [false, true] {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut builder = App::builder("test");
        if failing_worker {
            builder = builder.worker("short-lived", async {});
        }
        let (first, second) = (tx.clone(), tx);
        let app = builder
            .on_stop("first", async move { first.send("first").expect("send") })
            .on_stop(
                "second",
                async move { second.send("second").expect("send") },
            )
            .build(&conf())
            .await?;
        let healthz = format!("http://{}/healthz", app.http_addr());
        let stopped = if failing_worker {
            app.run_until(std::future::pending()).await
        } else {
            app.run_until(async {}).await
        };
        assert_eq!(stopped.is_err(), failing_worker, "{stopped:?}");
        assert_eq!(rx.recv().await, Some("first"));
        assert_eq!(rx.recv().await, Some("second"));
        // Run once the servers are gone: nothing answers any more.
        assert!(
            kit::probe::probe(&healthz, Duration::from_secs(2))
                .await
                .is_err()
        );
    }
    Ok(())
}
