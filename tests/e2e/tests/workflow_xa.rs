//! A workflow's XA step (`Branch::xa`, Go's `DoXa`) on PostgreSQL and MariaDB (`TEST_PG_URL`,
//! `TEST_MYSQL_URL`; with `CI=true` a missing server fails): its write is prepared, then
//! committed when the workflow succeeds, rolled back when a later step refuses, and held
//! prepared across an ONGOING step until the coordinator's resume commits it — no prepared
//! transaction left behind.

use std::time::Duration;

use dtmcli::workflow::{WorkflowError, Workflows};
use dtmcli::{BranchDb, Dialect};
use dtmtest::script::Reply;
use dtmtest::{TestDb, eventually};
use e2e::workflows::{Calls, step, workflows};
use e2e::{Stack, Transport, gid};
use futures_util::FutureExt;

#[tokio::test]
async fn an_xa_step_commits_rolls_back_and_resumes_on_postgres() {
    xa_step(Dialect::Postgres).await;
}

#[tokio::test]
async fn an_xa_step_commits_rolls_back_and_resumes_on_mariadb() {
    xa_step(Dialect::MySql).await;
}

async fn xa_step(dialect: Dialect) {
    let Some(db) = dtmtest::database(dialect).await else {
        return;
    };
    dtmcli::barrier::migrate(&db.pool).await.expect("barrier");
    sqlx::query("CREATE TABLE wf_xa (gid VARCHAR(128) NOT NULL)")
        .execute(&db.pool)
        .await
        .expect("table");
    let branch_db = BranchDb::from_pool(db.pool.clone(), dialect);
    let s = Stack::start().await;
    for t in [Transport::Http, Transport::Grpc] {
        let w = workflows(&s, t).await;
        register(&w, &s, &branch_db, t);
        // Success: committed.
        let g = gid("wf-xa");
        w.execute("xa", &g, b"").await.expect("succeeds");
        assert_eq!(rows(&db, &g).await, 1, "{t:?}: committed");
        let steps = s.branches(&g).await;
        assert!(steps.contains(&("01".into(), "business".into(), "succeed".into())));
        assert!(steps.contains(&("01".into(), "commit".into(), "succeed".into())));
        // A later refusal: rolled back.
        let g = gid("wf-xa");
        s.script.plan("in", &[Reply::Failure]);
        let err = w.execute("xa", &g, b"").await.expect_err("refused");
        assert!(matches!(err, WorkflowError::Failure(_)), "{err:?}");
        assert_eq!(rows(&db, &g).await, 0, "{t:?}: rolled back");
        // ONGOING: prepared until the resume commits it.
        let g = gid("wf-xa");
        s.script.plan("in", &[Reply::Ongoing]);
        w.execute("xa", &g, b"").await.expect_err("not yet");
        assert_eq!(dtmtest::prepared_xids(&db.pool, dialect, &g).await.len(), 1);
        s.clock.advance(Duration::from_secs(60));
        eventually("resumed and committed", async || {
            s.status(&g).await == "succeed"
        })
        .await;
        assert_eq!(rows(&db, &g).await, 1, "{t:?}: committed once");
        assert!(
            dtmtest::prepared_xids(&db.pool, dialect, &g)
                .await
                .is_empty()
        );
    }
}

/// Workflow `xa`: an XA step writing the gid into `wf_xa`, then scripted branch `in`.
fn register(w: &Workflows, s: &Stack, db: &BranchDb, t: Transport) {
    let (calls, db) = (Calls::of(s), db.clone());
    w.register("xa", move |wf, _| {
        let (calls, db) = (calls.clone(), db.clone());
        async move {
            let gid = wf.gid().to_owned();
            let sql = db
                .dialect
                .sql("INSERT INTO wf_xa (gid) VALUES (?)")
                .into_owned();
            wf.new_branch()
                .xa(&db, move |conn| {
                    async move {
                        sqlx::query(&sql)
                            .bind(gid)
                            .execute(conn)
                            .await
                            .map(drop)
                            .map_err(|e| WorkflowError::Error(e.to_string()))
                    }
                    .boxed()
                })
                .await?;
            step(wf.new_branch(), &calls, t, "in").await?;
            Ok(Vec::new())
        }
    })
    .expect("register");
}

async fn rows(db: &TestDb, gid: &str) -> i64 {
    let sql = db.dialect.sql("SELECT COUNT(*) FROM wf_xa WHERE gid = ?");
    sqlx::query_scalar(&sql)
        .bind(gid)
        .fetch_one(&db.pool)
        .await
        .expect("count")
}
