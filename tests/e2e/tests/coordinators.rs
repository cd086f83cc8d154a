//! Two coordinator processes on one store (PostgreSQL with `TEST_PG_URL`, Redis with
//! `TEST_REDIS_URL`, a Redis Cluster with `TEST_REDIS_CLUSTER_URL`; with `CI=true` a missing
//! server fails): 1,000 sagas submitted to both, one
//! coordinator SIGKILLed while every transaction is still unfinished, and the other drives all
//! of them — its own and the dead one's — to final states with the stock invariant intact.
//!
//! To make "still unfinished" certain rather than likely, the stock service is bound but not
//! serving while the sagas arrive: every branch call times out, and nothing can finish until
//! the survivor retries after the stock service starts.

use std::collections::HashSet;
use std::time::Duration;

use dtmcli::{Dtm, Saga};
use dtmtest::{Process, eventually_within};
use e2e::{SEED, sqlite_stock_app};
use futures_util::StreamExt;

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../app/coordinator/configs");
const SAGAS: usize = 1000;

/// A coordinator process on the store `driver` at `source` (`prefix`: its Redis key prefix;
/// `cluster`: `true` for a Redis Cluster).
fn coordinator(driver: &str, source: &str, prefix: &str, cluster: &str) -> Process {
    Process::start_with(
        env!("CARGO_BIN_EXE_e2e-coordinator"),
        CONF,
        &[
            ("STORE_DRIVER", driver),
            ("STORE_SOURCE", source),
            ("STORE_REDIS_PREFIX", prefix),
            ("STORE_REDIS_CLUSTER", cluster),
            ("STORE_MAX_OPEN_CONNS", "16"),
            ("HTTP_PORT", "0"),
            ("GRPC_PORT", "0"),
            ("LISTEN_IP", "127.0.0.1"),
            // Production rules, scaled down: a dead owner's lease (3 × RequestTimeout) ends
            // after 3 s, retries start 1 s apart and back off to 4 s at most.
            ("TRANS_CRON_INTERVAL", "50ms"),
            ("RETRY_INTERVAL", "1"),
            ("RETRY_MAX_INTERVAL", "4"),
            ("REQUEST_TIMEOUT", "1"),
        ],
    )
}

#[tokio::test]
async fn two_coordinators_on_postgres_survive_a_sigkill() {
    let Some(db) = dtmtest::database(dtmcli::Dialect::Postgres).await else {
        return;
    };
    two_coordinators("postgres", &db.url, "", "false").await;
}

#[tokio::test]
async fn two_coordinators_on_redis_survive_a_sigkill() {
    let Some(redis) = dtmtest::redis() else {
        return;
    };
    two_coordinators("redis", &redis.url, &redis.prefix, "false").await;
}

#[tokio::test]
async fn two_coordinators_on_a_redis_cluster_survive_a_sigkill() {
    let Some(cluster) = dtmtest::redis_cluster() else {
        return;
    };
    two_coordinators("redis", &cluster.url, &cluster.prefix, "true").await;
}

async fn two_coordinators(driver: &str, source: &str, prefix: &str, cluster: &str) {
    if let Ok(store) = std::env::var("E2E_STORE") {
        // Not a matrix scenario: it picks its own stores and ran in the plain run already.
        println!("two_coordinators on {driver} runs in the plain run, not E2E_STORE={store}");
        return;
    }
    dtmtest::init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    // Bound, not serving yet: connections wait in the backlog and calls time out.
    let (stock, pool) = sqlite_stock_app(dir.path()).await;
    let stock_http = format!("http://{}", stock.http_addr());

    let mut a = coordinator(driver, source, prefix, cluster);
    let b = coordinator(driver, source, prefix, cluster);
    let (dtm_a, dtm_b) = (
        Dtm::http(&format!("{}/api/dtmsvr", a.http)),
        Dtm::http(&format!("{}/api/dtmsvr", b.http)),
    );

    // 1,000 sagas, every other one to each coordinator, 64 at a time; gids from both.
    let url = |path: &str| format!("{stock_http}/api/stock/v1/{path}");
    let body = |sku: &str| format!(r#"{{"sku":"{sku}","quantity":1}}"#);
    let gids: Vec<String> = futures_util::stream::iter(0..SAGAS)
        .map(|i| {
            let dtm = if i % 2 == 0 { &dtm_a } else { &dtm_b };
            let (url, body) = (&url, &body);
            async move {
                let gid = dtm.new_gid().await.expect("newGid");
                Saga::new(dtm, &gid)
                    .add(
                        &url("trans-out"),
                        &url("trans-out-compensate"),
                        body("SKU-A"),
                    )
                    .add(&url("trans-in"), &url("trans-in-compensate"), body("SKU-B"))
                    .submit()
                    .await
                    .expect("submit");
                gid
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(
        gids.iter().collect::<HashSet<_>>().len(),
        SAGAS,
        "gids collide"
    );

    // SIGKILL A; nothing has finished (stock does not answer yet).
    a.child.kill().expect("SIGKILL");
    a.child.wait().expect("reap");
    let statuses = async |gids: Vec<String>| e2e::statuses(&b.http, &gids).await;
    let before = statuses(gids.clone()).await;
    assert!(
        before.iter().all(|s| s == "submitted" || s == "aborting"),
        "all unfinished when A dies"
    );

    // The stock service starts; B alone finishes all 1,000.
    tokio::spawn(stock.run_until(std::future::pending()));
    let mut last = Vec::new();
    eventually_within(
        "every saga reaches a final state",
        Duration::from_secs(120),
        async || {
            last = statuses(gids.clone()).await;
            last.iter().all(|s| s == "succeed" || s == "failed")
        },
    )
    .await;

    // Each saga took one SKU-A and gave one SKU-B, or did neither: 100 SKU-A, so 100 succeed.
    let succeeded = last.iter().filter(|s| *s == "succeed").count() as i64;
    let level = |sku: &'static str| {
        let pool = pool.clone();
        async move {
            let row: (i64, i64) =
                sqlx::query_as("SELECT available, frozen FROM stock WHERE sku = ?")
                    .bind(sku)
                    .fetch_one(&pool)
                    .await
                    .expect("stock row");
            row
        }
    };
    let seed = |sku: &str| {
        SEED.iter()
            .find(|(s, _)| *s == sku)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    assert_eq!(succeeded, seed("SKU-A").min(SAGAS as i64), "successes");
    assert_eq!(level("SKU-A").await, (seed("SKU-A") - succeeded, 0));
    assert_eq!(level("SKU-B").await, (seed("SKU-B") + succeeded, 0));
}
