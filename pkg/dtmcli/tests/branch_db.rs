//! `BranchDb::run`, the one entry of the branch side, on SQLite and on PostgreSQL / MariaDB when
//! `TEST_PG_URL` / `TEST_MYSQL_URL` are set (required when `CI=true`): the plan it makes from
//! the call and the input, and the barrier or XA under it. (An XA action, which registers with a
//! coordinator, runs in the e2e suite.)

use anyhow::{Result, anyhow};
use dtmcli::barrier;
use dtmcli::branch_db::BranchDbError;
use dtmcli::xa::XaError;
use dtmcli::{BranchDb, BranchInfo, Dialect, Outcome};
use dtmtest::{TestDb, branch, databases, with_op};
use futures_util::FutureExt;
use sqlx::{AnyConnection, Executor};

/// Every database the environment offers, with the barrier table and a business table.
async fn setup() -> Result<Vec<(TestDb, BranchDb)>> {
    let mut out = Vec::new();
    for db in databases().await {
        barrier::migrate(&db.pool).await?;
        db.pool
            .execute("CREATE TABLE busi_log (gid VARCHAR(128) NOT NULL, n INT NOT NULL)")
            .await?;
        let branch_db = BranchDb::from_pool(db.pool.clone(), db.dialect);
        out.push((db, branch_db));
    }
    Ok(out)
}

/// One branch call whose business logs `input` (and fails when it is 0, after writing).
async fn run(db: &BranchDb, info: &BranchInfo, input: Result<i32>) -> Result<Outcome<()>> {
    let dialect = db.dialect;
    let gid = info.gid.clone();
    db.run(info, input, move |conn: &mut AnyConnection, n| {
        async move {
            sqlx::query(&dialect.sql("INSERT INTO busi_log (gid, n) VALUES (?, ?)"))
                .bind(&gid)
                .bind(n)
                .execute(&mut *conn)
                .await?;
            if n == 0 {
                return Err(anyhow!("the business refuses 0"));
            }
            Ok(())
        }
        .boxed()
    })
    .await
}

async fn logged(db: &TestDb, gid: &str) -> Result<i64> {
    let sql = db
        .dialect
        .sql("SELECT COUNT(*) FROM busi_log WHERE gid = ?");
    Ok(sqlx::query_scalar(&sql)
        .bind(gid)
        .fetch_one(&db.pool)
        .await?)
}

#[tokio::test]
async fn saga_and_tcc_calls_run_once_behind_the_barrier() -> Result<()> {
    for (tdb, db) in setup().await? {
        let action = branch("saga", "action");
        assert_eq!(run(&db, &action, Ok(1)).await?, Outcome::Applied(()));
        assert_eq!(run(&db, &action, Ok(1)).await?, Outcome::Duplicate);
        assert_eq!(logged(&tdb, &action.gid).await?, 1, "{:?}", tdb.dialect);

        // A business error rolls its write back with the barrier row: the retry applies.
        let try_ = branch("tcc", "try");
        let failed = run(&db, &try_, Ok(0)).await;
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(logged(&tdb, &try_.gid).await?, 0);
        assert_eq!(run(&db, &try_, Ok(2)).await?, Outcome::Applied(()));
        assert_eq!(logged(&tdb, &try_.gid).await?, 1);
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_input_is_the_error_forward_and_nothing_to_undo_backward() -> Result<()> {
    for (tdb, db) in setup().await? {
        let action = branch("saga", "action");
        let refused = run(&db, &action, Err(anyhow!("invalid quantity"))).await;
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("invalid quantity".to_owned())
        );
        let undo = with_op(&action, "compensate");
        let undone = run(&db, &undo, Err(anyhow!("invalid quantity"))).await?;
        assert_eq!(undone, Outcome::NullCompensation);
        assert_eq!(logged(&tdb, &action.gid).await?, 0, "{:?}", tdb.dialect);
    }
    Ok(())
}

#[tokio::test]
async fn an_xa_phase_two_reads_no_input() -> Result<()> {
    for (tdb, db) in setup().await? {
        let action = branch("xa", "action");
        for op in ["commit", "rollback"] {
            // No body: the input the service read is empty and refused, and never looked at.
            let done = run(&db, &with_op(&action, op), Err(anyhow!("no body"))).await;
            match tdb.dialect {
                Dialect::Sqlite => {
                    let e = done.expect_err("SQLite has no XA");
                    assert!(
                        matches!(
                            e.downcast_ref::<BranchDbError>(),
                            Some(BranchDbError::Xa(XaError::Unsupported(_)))
                        ),
                        "{e:?}"
                    );
                }
                // Nothing was prepared under this xid: a commit is done already, a rollback
                // has nothing to undo.
                _ if op == "commit" => assert_eq!(done?, Outcome::Duplicate),
                _ => assert_eq!(done?, Outcome::NullCompensation),
            }
        }
        assert_eq!(logged(&tdb, &action.gid).await?, 0);
    }
    Ok(())
}
