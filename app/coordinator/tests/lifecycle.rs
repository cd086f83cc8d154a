//! The poller runs as a worker of the coordinator's app: a poller that panics stops the app with
//! an error naming it, instead of leaving a coordinator that looks healthy and drives nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::memory::MemoryStore;

mod support;

#[tokio::test]
async fn a_poller_that_panics_stops_the_coordinator() {
    let store = Arc::new(MemoryStore::default());
    store.lease_panics.store(true, Ordering::SeqCst);
    let c = support::app(
        &support::bootstrap("sqlite::memory:"),
        coordinator::Overrides {
            store: Some(store),
            ..Default::default()
        },
    )
    .await;
    let healthz = format!("http://{}/healthz", c.http_addr());
    let run = tokio::spawn(c.run_until(std::future::pending()));
    let stopped = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the app stops by itself")
        .expect("joined");
    let err = stopped.expect_err("with an error");
    assert!(err.to_string().contains("worker poller panicked"), "{err}");
    // And it no longer answers at all.
    assert!(
        kit::probe::probe(&healthz, Duration::from_secs(2))
            .await
            .is_err()
    );
}
