//! A service's database server that comes up after the service (compose and Kubernetes start
//! everything at once): `BranchDb::open` waits for it up to `data.database.connect_timeout`, on
//! PostgreSQL and MariaDB when `TEST_PG_URL` / `TEST_MYSQL_URL` are set (required when
//! `CI=true`).

use std::time::Duration;

use dtmcli::{BranchDb, Dialect};
use dtmtest::{LateServer, TestDb};

/// The servers the environment offers (SQLite is a file: never waited for).
async fn servers() -> Vec<TestDb> {
    let mut out = Vec::new();
    for dialect in [Dialect::Postgres, Dialect::MySql] {
        out.extend(dtmtest::database(dialect).await);
    }
    out
}

/// `late`'s URL as a `db` config, waiting `patience`.
fn through(db: &TestDb, late: &LateServer, patience: Duration) -> kit::DatabaseConf {
    kit::DatabaseConf {
        connect_timeout: patience,
        ..kit::DatabaseConf::new(db.dialect.driver(), late.url())
    }
}

fn no_migrations(_: Dialect) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator::DEFAULT
}

#[tokio::test]
async fn a_database_that_comes_up_late_is_waited_for() {
    for db in servers().await {
        let late = LateServer::start(&db.url).await;
        let conf = through(&db, &late, Duration::from_secs(60));
        let opening = tokio::spawn(async move { BranchDb::open(&conf, no_migrations).await });
        dtmtest::eventually_within(
            "open tries the server",
            Duration::from_secs(30),
            async || late.refused() >= 2,
        )
        .await;
        assert!(
            !opening.is_finished(),
            "{:?}: open gave up while the server was down",
            db.dialect
        );

        late.open();
        let branch_db = opening
            .await
            .expect("joined")
            .expect("open once the server is up");
        // Opened and migrated: the barrier table answers (MySQL's is shared by every database).
        let sql = format!("SELECT COUNT(*) FROM {}", db.dialect.barrier_table());
        let counted: Result<i64, _> = sqlx::query_scalar(&sql).fetch_one(&branch_db.pool).await;
        assert!(counted.is_ok(), "{:?}: {counted:?}", db.dialect);
    }
}

#[tokio::test]
async fn a_database_that_never_comes_up_fails_open_after_its_patience() {
    for db in servers().await {
        let late = LateServer::start(&db.url).await;
        // Long enough for a second try on a busy machine (the first pause is 100 ms).
        let conf = through(&db, &late, Duration::from_secs(2));
        let Err(err) = BranchDb::open(&conf, no_migrations).await else {
            panic!("{:?}: open succeeded with no server", db.dialect);
        };
        assert!(err.to_string().starts_with("connect:"), "{err}");
        assert!(
            late.refused() >= 2,
            "{:?}: {} tries",
            db.dialect,
            late.refused()
        );
    }
}
