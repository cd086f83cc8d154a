//! The barrier suite: every scenario of the barrier (docs/protocol.md) on SQLite, and on PostgreSQL
//! / MariaDB when `TEST_PG_URL` / `TEST_MYSQL_URL` are set (required when `CI=true`).

use anyhow::Result;
use dtmcli::barrier::{self, query_prepared};
use dtmcli::{BarrierError, BranchBarrier, BranchInfo, Outcome};
use dtmtest::{TestDb, branch, databases, with_op};
use futures_util::FutureExt;
use sqlx::{AnyConnection, Executor};

/// The business of the tests: one row per execution, so "ran once" is a count.
async fn setup() -> Result<Vec<TestDb>> {
    let dbs = databases().await;
    for db in &dbs {
        barrier::migrate(&db.pool).await?;
        db.pool
            .execute("CREATE TABLE busi_log (gid VARCHAR(128) NOT NULL, op VARCHAR(45) NOT NULL)")
            .await?;
    }
    Ok(dbs)
}

/// Runs the barrier for `info` with a business that logs one row (or fails when `fail`).
async fn run(db: &TestDb, info: &BranchInfo, fail: bool) -> Result<Outcome<()>, BarrierError> {
    let tx = db.pool.begin().await?;
    let (gid, op) = (info.gid.clone(), info.op.as_str());
    let dialect = db.dialect;
    BranchBarrier::new(info.clone())
        .call(tx, move |conn: &mut AnyConnection| {
            async move {
                sqlx::query(&dialect.sql("INSERT INTO busi_log (gid, op) VALUES (?, ?)"))
                    .bind(&gid)
                    .bind(op)
                    .execute(&mut *conn)
                    .await?;
                if fail {
                    return Err(BarrierError::RolledBack);
                }
                Ok(())
            }
            .boxed()
        })
        .await
}

async fn busi_count(db: &TestDb, gid: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        &db.dialect
            .sql("SELECT COUNT(*) FROM busi_log WHERE gid = ?"),
    )
    .bind(gid)
    .fetch_one(&db.pool)
    .await?)
}

async fn barrier_rows(db: &TestDb, gid: &str) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE gid = ?",
        db.dialect.barrier_table()
    );
    Ok(sqlx::query_scalar(&db.dialect.sql(&sql))
        .bind(gid)
        .fetch_one(&db.pool)
        .await?)
}

#[tokio::test]
async fn action_delivered_twice_runs_once() -> Result<()> {
    for db in setup().await? {
        let action = branch("saga", "action");
        assert_eq!(
            run(&db, &action, false).await?,
            Outcome::Applied(()),
            "{:?}",
            db.dialect
        );
        assert_eq!(
            run(&db, &action, false).await?,
            Outcome::Duplicate,
            "{:?}",
            db.dialect
        );
        assert_eq!(busi_count(&db, &action.gid).await?, 1, "{:?}", db.dialect);
    }
    Ok(())
}

#[tokio::test]
async fn action_then_compensation_both_run() -> Result<()> {
    for db in setup().await? {
        let action = branch("saga", "action");
        assert_eq!(run(&db, &action, false).await?, Outcome::Applied(()));
        let comp = with_op(&action, "compensate");
        assert_eq!(
            run(&db, &comp, false).await?,
            Outcome::Applied(()),
            "{:?}",
            db.dialect
        );
        assert_eq!(
            run(&db, &comp, false).await?,
            Outcome::Duplicate,
            "{:?}",
            db.dialect
        );
        assert_eq!(busi_count(&db, &action.gid).await?, 2, "{:?}", db.dialect);
    }
    Ok(())
}

#[tokio::test]
async fn compensation_before_action_is_null_and_the_late_action_hangs_harmlessly() -> Result<()> {
    for db in setup().await? {
        let action = branch("saga", "action");
        let comp = with_op(&action, "compensate");
        assert_eq!(
            run(&db, &comp, false).await?,
            Outcome::NullCompensation,
            "{:?}",
            db.dialect
        );
        assert_eq!(
            run(&db, &action, false).await?,
            Outcome::Hanging,
            "{:?}",
            db.dialect
        );
        assert_eq!(busi_count(&db, &action.gid).await?, 0, "{:?}", db.dialect);
    }
    Ok(())
}

#[tokio::test]
async fn failed_business_rolls_back_its_barrier_rows() -> Result<()> {
    for db in setup().await? {
        let action = branch("saga", "action");
        assert!(matches!(
            run(&db, &action, true).await,
            Err(BarrierError::RolledBack)
        ));
        assert_eq!(barrier_rows(&db, &action.gid).await?, 0, "{:?}", db.dialect);
        assert_eq!(busi_count(&db, &action.gid).await?, 0, "{:?}", db.dialect);
        // The compensation then finds no action: null compensation.
        let comp = with_op(&action, "compensate");
        assert_eq!(
            run(&db, &comp, false).await?,
            Outcome::NullCompensation,
            "{:?}",
            db.dialect
        );
    }
    Ok(())
}

#[tokio::test]
async fn tcc_cancel_before_try_then_late_try() -> Result<()> {
    for db in setup().await? {
        let try_ = branch("tcc", "try");
        let cancel = with_op(&try_, "cancel");
        assert_eq!(
            run(&db, &cancel, false).await?,
            Outcome::NullCompensation,
            "{:?}",
            db.dialect
        );
        assert_eq!(
            run(&db, &try_, false).await?,
            Outcome::Hanging,
            "{:?}",
            db.dialect
        );
        // A normal try → confirm pair on another gid runs both.
        let try2 = branch("tcc", "try");
        assert_eq!(run(&db, &try2, false).await?, Outcome::Applied(()));
        assert_eq!(
            run(&db, &with_op(&try2, "confirm"), false).await?,
            Outcome::Applied(())
        );
        assert_eq!(busi_count(&db, &try_.gid).await?, 0);
        assert_eq!(busi_count(&db, &try2.gid).await?, 2);
    }
    Ok(())
}

#[tokio::test]
async fn query_prepared_tells_committed_from_never_committed() -> Result<()> {
    for db in setup().await? {
        let committed = BranchInfo {
            branch_id: "00".into(),
            ..branch("msg", "msg")
        };
        assert_eq!(run(&db, &committed, false).await?, Outcome::Applied(()));
        query_prepared(&db.pool, &committed).await?;

        let never = BranchInfo {
            branch_id: "00".into(),
            ..branch("msg", "msg")
        };
        assert!(
            matches!(
                query_prepared(&db.pool, &never).await,
                Err(BarrierError::RolledBack)
            ),
            "{:?}",
            db.dialect
        );
        // The local transaction arriving after the check-back decided is refused, not applied.
        assert!(matches!(
            run(&db, &never, false).await,
            Err(BarrierError::Duplicated)
        ));
        assert_eq!(busi_count(&db, &never.gid).await?, 0);
        // Asking again gives the same answer.
        assert!(matches!(
            query_prepared(&db.pool, &never).await,
            Err(BarrierError::RolledBack)
        ));
    }
    Ok(())
}

#[tokio::test]
async fn two_calls_in_one_handler_get_their_own_barrier_ids() -> Result<()> {
    for db in setup().await? {
        let info = branch("saga", "action");
        let barrier = BranchBarrier::new(info.clone());
        for _ in 0..2 {
            let tx = db.pool.begin().await?;
            let outcome: Outcome<()> = barrier
                .call(tx, |_conn: &mut AnyConnection| {
                    async { Ok::<_, BarrierError>(()) }.boxed()
                })
                .await?;
            assert_eq!(outcome, Outcome::Applied(()));
        }
        assert_eq!(barrier_rows(&db, &info.gid).await?, 2, "{:?}", db.dialect);
    }
    Ok(())
}
