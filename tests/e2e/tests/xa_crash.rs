//! A crash between prepare and commit, on PostgreSQL and MariaDB (`TEST_PG_URL`,
//! `TEST_MYSQL_URL`; with `CI=true` a missing server fails): the stock service, a real
//! process, is SIGKILLed right after its XA branch prepared and registered itself. The
//! prepared transaction outlives the process in the database; the coordinator's phase two
//! fails until a new stock process serves the same address, then commits — or, for an aborted
//! transaction, rolls back — exactly once.

use std::time::Duration;

use api::stock::v1 as stock_api;
use coordinator::biz::Clock;
use dtmcli::{ClientError, Dialect, Dtm, Xa};
use dtmtest::{Process, TestDb, Transport};
use e2e::{gid, stock_payload};
use sqlx::{AnyPool, Row};

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../app/stock/configs");

#[tokio::test]
async fn a_stock_process_killed_after_xa_prepare_commits_once_after_restart_on_postgres() {
    crash_after_prepare(Dialect::Postgres, Transport::Http, true).await;
    crash_after_prepare(Dialect::Postgres, Transport::Grpc, false).await;
}

#[tokio::test]
async fn a_stock_process_killed_after_xa_prepare_commits_once_after_restart_on_mariadb() {
    crash_after_prepare(Dialect::MySql, Transport::Grpc, true).await;
    crash_after_prepare(Dialect::MySql, Transport::Http, false).await;
}

/// One XA transaction with one stock branch (3 × SKU-APPLE) over `t`; the stock process dies
/// after the branch prepared; the client then submits (`commit`) or aborts.
async fn crash_after_prepare(dialect: Dialect, t: Transport, commit: bool) {
    if let Ok(db) = std::env::var("E2E_DB") {
        // Not a matrix scenario: it picks its own databases and ran in the plain run already.
        println!("the XA crash test runs in the plain run, not E2E_DB={db}");
        return;
    }
    let Some(db) = dtmtest::database(dialect).await else {
        return;
    };
    dtmtest::init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Clock::default();
    let store = coordinator::conf::Store::new(
        "sqlite",
        &format!("sqlite://{}/dtm.db", dir.path().display()),
    );
    let c = e2e::coordinator_app(&e2e::coordinator_conf(store), clock.clone()).await;
    let dtm_base = format!("http://{}", c.http_addr());
    let (dtm_http, dtm_grpc) = (format!("{dtm_base}/api/dtmsvr"), c.grpc_addr().to_string());
    tokio::spawn(c.run_until(std::future::pending()));
    let dtm = match t {
        Transport::Http => Dtm::http(&dtm_http),
        Transport::Grpc => Dtm::grpc(&dtm_grpc).expect("dtm"),
    };

    let mut stock = start_stock(&db, "127.0.0.1:0", "127.0.0.1:0");
    let (http, grpc) = (addr(&stock.http), addr(&stock.grpc));
    let rule = &stock_api::HTTP_TRANS_OUT_XA;
    let url = match t {
        Transport::Http => format!("http://{http}{}", rule.path),
        Transport::Grpc => format!("{grpc}{}", rule.operation),
    };
    let before = apple(&db.pool).await;
    let g = gid("xa-crash");
    let payload = stock_payload(t, "SKU-APPLE", 3);
    let result = Xa::new(&dtm, &g)
        .wait_result(true)
        .run(async |xa| {
            xa.call_branch(&payload, &url).await?;
            // Prepared and registered: now the branch's process dies.
            stock.child.kill().expect("SIGKILL");
            stock.child.wait().expect("reap");
            if commit {
                Ok(())
            } else {
                Err(ClientError::Failure("the client gives up".into()))
            }
        })
        .await;
    // The coordinator tried phase two against the dead process: not final yet.
    assert!(
        matches!(result, Err(ClientError::Ongoing(_))),
        "{t:?} commit={commit}: {result:?}"
    );
    let xid = format!("{g}-01");
    assert_eq!(
        dtmtest::prepared_xids(&db.pool, dialect, &g).await,
        vec![xid.clone()]
    );
    assert_eq!(apple(&db.pool).await, before, "prepared, not committed");

    // A new process on the same address; the coordinator's retry finishes the transaction.
    let _stock = start_stock(&db, &http, &grpc);
    let want = if commit { "succeed" } else { "failed" };
    let gids = [g.clone()];
    dtmtest::eventually(&format!("{g} is {want}"), async || {
        clock.advance(Duration::from_secs(30));
        e2e::statuses(&dtm_base, &gids).await == [want]
    })
    .await;
    let moved = if commit { 3 } else { 0 };
    assert_eq!(
        apple(&db.pool).await,
        before - moved,
        "{t:?} commit={commit}"
    );
    assert_eq!(
        dtmtest::prepared_xids(&db.pool, dialect, &g).await,
        Vec::<String>::new()
    );
}

/// The stock binary on `db` at these addresses.
fn start_stock(db: &TestDb, http: &str, grpc: &str) -> Process {
    Process::start_with(
        env!("CARGO_BIN_EXE_e2e-stock"),
        CONF,
        &[
            ("DB_DRIVER", db.dialect.driver()),
            ("DB_SOURCE", db.url.as_str()),
            ("HTTP_ADDR", http),
            ("GRPC_ADDR", grpc),
        ],
    )
}

/// `host:port` of a process's `http://host:port`.
fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// SKU-APPLE's `available`.
async fn apple(pool: &AnyPool) -> i64 {
    sqlx::query("SELECT available FROM stock WHERE sku = 'SKU-APPLE'")
        .fetch_one(pool)
        .await
        .expect("stock row")
        .get(0)
}
