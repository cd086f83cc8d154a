//! The store conformance suite: what the coordinator relies on from any `TransStore`, run against
//! every backend the environment offers — SQLite always, PostgreSQL with `TEST_PG_URL`, MySQL/
//! MariaDB with `TEST_MYSQL_URL`, Redis with `TEST_REDIS_URL`, a Redis Cluster with
//! `TEST_REDIS_CLUSTER_URL` (with `CI=true` a missing server fails). Each test gets fresh
//! databases, so tests run in parallel without seeing each other's transactions.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use coordinator::biz::{
    Backlog, Branch, BranchStatus, Created, Leased, Op, Progress, ScanQuery, Status, StatusChange,
    StoreError, Subscriber, Topic, TransType,
};
use coordinator::conf::Store;
use coordinator::data::open_store;
use kit::time::UnixMs;

mod support;

use support::{global, saga_branches, stores};

/// A transaction in `status`, created at `now`, due at `due`.
fn change(from: Status, to: Status, reason: Option<&str>, now: i64) -> StatusChange<'_> {
    StatusChange {
        from,
        to,
        rollback_reason: reason,
        result: None,
        now: UnixMs(now),
    }
}

#[tokio::test]
async fn create_writes_everything_once_per_gid() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let mut g = global("g-create", TransType::Saga, Status::Submitted, 1_000, 1_000);
        // Large, non-ASCII and binary data survive the round trip.
        g.custom_data = format!("{{\"steps\":\"{}\",\"名\":\"✓\"}}", "x".repeat(100_000));
        g.options.timeout_to_fail = 42;
        g.query_prepared = "http://s/query".into();
        let created = store.create(&g, &saga_branches(&g.gid, 1_000)).await?;
        assert!(matches!(created, Created::Inserted), "{driver}");

        let found = store.find(&g.gid).await?.expect("found");
        assert_eq!(
            (
                found.status,
                found.trans_type,
                found.custom_data.len(),
                found.options.timeout_to_fail,
                found.query_prepared.as_str(),
                found.next_cron_time,
                found.create_time,
            ),
            (
                Status::Submitted,
                TransType::Saga,
                g.custom_data.len(),
                42,
                "http://s/query",
                UnixMs(1_000),
                UnixMs(1_000)
            ),
            "{driver}"
        );
        assert_eq!(found.custom_data, g.custom_data, "{driver}");
        let branches = store.branches(&g.gid).await?;
        let seen: Vec<_> = branches
            .iter()
            .map(|b| (b.branch_id.as_str(), b.op, b.status, b.bin_data.clone()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("01", Op::Compensate, BranchStatus::Prepared, b"{}".to_vec()),
                ("01", Op::Action, BranchStatus::Prepared, vec![0, 159, 255]),
            ],
            "{driver}"
        );

        // The same gid again: nothing written, the existing transaction returned.
        let mut again = global(&g.gid, TransType::Msg, Status::Prepared, 2_000, 2_000);
        again.custom_data = "other".into();
        match store
            .create(&again, &saga_branches(&g.gid, 2_000)[..1])
            .await?
        {
            Created::Exists(existing) => {
                assert_eq!(existing.trans_type, TransType::Saga, "{driver}")
            }
            Created::Inserted => panic!("{driver}: a second create of one gid inserted"),
        }
        assert_eq!(store.branches(&g.gid).await?.len(), 2, "{driver}");
        assert!(store.find("g-missing").await?.is_none(), "{driver}");

        // Racing creates of one gid (they may share a batch, or wait on each other's row):
        // one is stored, the others see it.
        let racer = global("g-race", TransType::Saga, Status::Submitted, 3_000, 3_000);
        let racers = (0..8).map(|_| {
            let (store, racer) = (store.clone(), racer.clone());
            tokio::spawn(async move {
                let branches = saga_branches(&racer.gid, 3_000);
                store.create(&racer, &branches).await
            })
        });
        let mut inserted = 0;
        for r in futures_util::future::join_all(racers).await {
            if matches!(r??, Created::Inserted) {
                inserted += 1;
            }
        }
        assert_eq!(inserted, 1, "{driver}: racing creates");
        assert_eq!(store.branches(&racer.gid).await?.len(), 2, "{driver}");
    }
    Ok(())
}

#[tokio::test]
async fn status_changes_are_compare_and_set() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let g = global("g-cas", TransType::Saga, Status::Submitted, 1_000, 1_000);
        store.create(&g, &[]).await?;
        let abort = change(
            Status::Submitted,
            Status::Aborting,
            Some("stock said no"),
            2_000,
        );
        assert!(store.change_status(&g.gid, &abort).await?, "{driver}");
        // The same change again finds the status moved on: refused, nothing written.
        let late = change(Status::Submitted, Status::Succeed, None, 3_000);
        assert!(!store.change_status(&g.gid, &late).await?, "{driver}");
        let fail = change(Status::Aborting, Status::Failed, None, 4_000);
        assert!(store.change_status(&g.gid, &fail).await?, "{driver}");

        let found = store.find(&g.gid).await?.expect("found");
        assert_eq!(
            (
                found.status,
                found.rollback_reason.as_str(),
                found.rollback_time,
                found.finish_time,
                found.update_time
            ),
            (
                Status::Failed,
                "stock said no",
                Some(UnixMs(2_000)),
                Some(UnixMs(4_000)),
                UnixMs(4_000)
            ),
            "{driver}"
        );
        assert!(!store.change_status("g-missing", &late).await?, "{driver}");
    }
    Ok(())
}

#[tokio::test]
async fn progress_is_written_whole_or_not_at_all() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let g = global(
            "g-progress",
            TransType::Saga,
            Status::Submitted,
            1_000,
            1_000,
        );
        let mut rows = saga_branches(&g.gid, 1_000);
        rows.extend([
            Branch::new(
                &g.gid,
                "02".into(),
                Op::Compensate,
                "http://s/c",
                b"{}",
                UnixMs(1_000),
            ),
            Branch::new(
                &g.gid,
                "02".into(),
                Op::Action,
                "http://s/a",
                b"{}",
                UnixMs(1_000),
            ),
        ]);
        store.create(&g, &rows).await?;
        let wave = |global_status, then| Progress {
            gid: &g.gid,
            global_status,
            branches: vec![
                ("01", Op::Action, BranchStatus::Succeed),
                ("02", Op::Action, BranchStatus::Succeed),
            ],
            then,
            now: UnixMs(2_000),
        };
        // A round that believes the global is aborting writes nothing, branches included.
        let stale = wave(Status::Aborting, None);
        assert!(!store.record(&stale).await?, "{driver}");
        let stale_end = wave(
            Status::Aborting,
            Some(change(Status::Aborting, Status::Failed, None, 2_000)),
        );
        assert!(!store.record(&stale_end).await?, "{driver}");
        assert!(
            store
                .branches(&g.gid)
                .await?
                .iter()
                .all(|b| b.status == BranchStatus::Prepared),
            "{driver}: a refused progress changed a branch"
        );
        // The right status: both branches and the status change, together.
        let end = wave(
            Status::Submitted,
            Some(change(Status::Submitted, Status::Succeed, None, 2_000)),
        );
        assert!(store.record(&end).await?, "{driver}");
        let found = store.find(&g.gid).await?.expect("stored");
        assert_eq!(
            (found.status, found.finish_time),
            (Status::Succeed, Some(UnixMs(2_000))),
            "{driver}"
        );
        let statuses: Vec<_> = store
            .branches(&g.gid)
            .await?
            .iter()
            .map(|b| (b.branch_id.clone(), b.op, b.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("01".into(), Op::Compensate, BranchStatus::Prepared),
                ("01".into(), Op::Action, BranchStatus::Succeed),
                ("02".into(), Op::Compensate, BranchStatus::Prepared),
                ("02".into(), Op::Action, BranchStatus::Succeed),
            ],
            "{driver}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn branch_updates_hold_only_while_the_global_keeps_its_status() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let g = global("g-branch", TransType::Saga, Status::Submitted, 1_000, 1_000);
        store.create(&g, &saga_branches(&g.gid, 1_000)).await?;
        let one = |global_status, op, now| Progress {
            gid: &g.gid,
            global_status,
            branches: vec![("01", op, BranchStatus::Succeed)],
            then: None,
            now,
        };
        let done = store
            .record(&one(Status::Submitted, Op::Action, UnixMs(2_000)))
            .await?;
        assert!(done, "{driver}");
        let abort = change(Status::Submitted, Status::Aborting, None, 3_000);
        store.change_status(&g.gid, &abort).await?;
        // A round that still believes the global is submitted must not write.
        let stale = store
            .record(&one(Status::Submitted, Op::Compensate, UnixMs(4_000)))
            .await?;
        assert!(!stale, "{driver}");

        let branches = store.branches(&g.gid).await?;
        let seen: Vec<_> = branches
            .iter()
            .map(|b| (b.op, b.status, b.update_time, b.finish_time))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Op::Compensate, BranchStatus::Prepared, UnixMs(1_000), None),
                (
                    Op::Action,
                    BranchStatus::Succeed,
                    UnixMs(2_000),
                    Some(UnixMs(2_000))
                ),
            ],
            "{driver}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn branches_are_added_only_in_the_expected_status_and_never_twice() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let g = global("g-tcc", TransType::Tcc, Status::Prepared, 1_000, 36_000);
        store.create(&g, &[]).await?;
        let pair = |id: &str| {
            vec![
                Branch::new(
                    &g.gid,
                    id.into(),
                    Op::Cancel,
                    "http://s/cancel",
                    b"{}",
                    UnixMs(1_000),
                ),
                Branch::new(
                    &g.gid,
                    id.into(),
                    Op::Confirm,
                    "http://s/confirm",
                    b"{}",
                    UnixMs(1_000),
                ),
            ]
        };
        assert!(
            store
                .add_branches(&g.gid, Status::Prepared, &pair("01"))
                .await?,
            "{driver}"
        );
        assert!(
            matches!(
                store
                    .add_branches(&g.gid, Status::Prepared, &pair("01"))
                    .await,
                Err(StoreError::Duplicate)
            ),
            "{driver}"
        );
        let submit = change(Status::Prepared, Status::Submitted, None, 2_000);
        store.change_status(&g.gid, &submit).await?;
        assert!(
            !store
                .add_branches(&g.gid, Status::Prepared, &pair("02"))
                .await?,
            "{driver}"
        );
        assert_eq!(store.branches(&g.gid).await?.len(), 2, "{driver}");
    }
    Ok(())
}

#[tokio::test]
async fn leases_go_to_one_owner_at_a_time() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        // Ten due, one due later, one finished.
        let mut due = HashSet::new();
        for i in 0..10 {
            let g = global(
                &format!("g-due-{i}"),
                TransType::Saga,
                Status::Submitted,
                1_000,
                1_000 + i,
            );
            store.create(&g, &[]).await?;
            due.insert(g.gid);
        }
        store
            .create(
                &global("g-later", TransType::Saga, Status::Submitted, 1_000, 50_000),
                &[],
            )
            .await?;
        store
            .create(
                &global("g-done", TransType::Saga, Status::Succeed, 1_000, 1_000),
                &[],
            )
            .await?;

        // Twenty pollers of two coordinators race for them: each due one goes to exactly one.
        let racers = (0..20).map(|i| {
            let store = store.clone();
            let owner = if i % 2 == 0 {
                "coordinator-a"
            } else {
                "coordinator-b"
            };
            tokio::spawn(async move {
                let mut won = Vec::new();
                loop {
                    match store.lease_due(UnixMs(2_000), UnixMs(9_000), owner).await? {
                        Leased::Taken(g) => {
                            assert_eq!(
                                (g.owner.as_str(), g.next_cron_time),
                                (owner, UnixMs(9_000))
                            );
                            won.push(g.gid);
                        }
                        Leased::Raced => {}
                        Leased::NothingDue => break,
                    }
                }
                Ok::<_, StoreError>(won)
            })
        });
        let mut leased = Vec::new();
        for r in futures_util::future::join_all(racers).await {
            leased.extend(r??);
        }
        leased.sort();
        let mut want: Vec<_> = due.into_iter().collect();
        want.sort();
        assert_eq!(leased, want, "{driver}");
        // Leased until 9000: nothing is due at 8999; at 9000 the leases have run out.
        assert!(
            store
                .lease_due(UnixMs(8_999), UnixMs(20_000), "c")
                .await?
                .taken()
                .is_none(),
            "{driver}"
        );
        assert!(
            store
                .lease_due(UnixMs(9_000), UnixMs(20_000), "c")
                .await?
                .taken()
                .is_some(),
            "{driver}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn only_the_lease_holder_schedules_and_a_take_over_moves_the_lease() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let g = global("g-lease", TransType::Saga, Status::Submitted, 1_000, 1_000);
        store.create(&g, &[]).await?;
        let leased = store
            .lease_due(UnixMs(1_000), UnixMs(5_000), "a")
            .await?
            .taken()
            .expect("due");
        assert_eq!(leased.gid, g.gid, "{driver}");
        assert!(
            !store
                .schedule(&g.gid, "b", UnixMs(7_000), None, UnixMs(2_000))
                .await?,
            "{driver}"
        );
        assert!(
            store
                .schedule(
                    &g.gid,
                    "a",
                    UnixMs(7_000),
                    Some(Duration::from_secs(20)),
                    UnixMs(2_000)
                )
                .await?,
            "{driver}"
        );
        let found = store.find(&g.gid).await?.expect("found");
        assert_eq!(
            (found.next_cron_time, found.next_cron_interval),
            (UnixMs(7_000), Duration::from_secs(20)),
            "{driver}"
        );

        // A submit handled by another instance takes the lease over; the old holder is out.
        assert!(
            store
                .take_lease(&g.gid, "b", UnixMs(8_000), UnixMs(3_000))
                .await?,
            "{driver}"
        );
        assert!(
            !store
                .schedule(&g.gid, "a", UnixMs(9_000), None, UnixMs(3_000))
                .await?,
            "{driver}"
        );
        // Finished transactions are nobody's.
        let done = change(Status::Submitted, Status::Succeed, None, 4_000);
        store.change_status(&g.gid, &done).await?;
        assert!(
            !store
                .take_lease(&g.gid, "c", UnixMs(9_000), UnixMs(4_000))
                .await?,
            "{driver}"
        );
        assert!(
            !store
                .schedule(&g.gid, "b", UnixMs(9_000), None, UnixMs(4_000))
                .await?,
            "{driver}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn scan_pages_newest_first_with_filters() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        for (i, (t, s)) in [
            (TransType::Saga, Status::Succeed),
            (TransType::Msg, Status::Submitted),
            (TransType::Saga, Status::Failed),
            (TransType::Tcc, Status::Succeed),
            (TransType::Saga, Status::Succeed),
        ]
        .into_iter()
        .enumerate()
        {
            let now = 1_000 * (i as i64 + 1);
            store
                .create(&global(&format!("g-scan-{i}"), t, s, now, now), &[])
                .await?;
        }
        let mut gids = Vec::new();
        let mut q = ScanQuery {
            limit: 2,
            ..ScanQuery::default()
        };
        loop {
            let page = store.scan(&q).await?;
            gids.extend(page.transactions.iter().map(|g| g.gid.clone()));
            if page.next_position.is_empty() {
                break;
            }
            q.position = Some(page.next_position);
        }
        assert_eq!(
            gids,
            ["g-scan-4", "g-scan-3", "g-scan-2", "g-scan-1", "g-scan-0"],
            "{driver}"
        );

        let only = |q: ScanQuery| {
            let store = store.clone();
            async move {
                let page = store.scan(&ScanQuery { limit: 10, ..q }).await?;
                Ok::<_, StoreError>(
                    page.transactions
                        .into_iter()
                        .map(|g| g.gid)
                        .collect::<Vec<_>>(),
                )
            }
        };
        let sagas_succeeded = only(ScanQuery {
            trans_type: Some("saga".into()),
            status: Some("succeed".into()),
            ..ScanQuery::default()
        })
        .await?;
        assert_eq!(sagas_succeeded, ["g-scan-4", "g-scan-0"], "{driver}");
        let window = only(ScanQuery {
            create_time_start: Some(UnixMs(2_000)),
            create_time_end: Some(UnixMs(3_000)),
            ..ScanQuery::default()
        })
        .await?;
        assert_eq!(window, ["g-scan-2", "g-scan-1"], "{driver}");
        let one = only(ScanQuery {
            gid: Some("g-scan-3".into()),
            ..ScanQuery::default()
        })
        .await?;
        assert_eq!(one, ["g-scan-3"], "{driver}");
        // A prefix, and LIKE's wildcards taken literally: `g-scan-%` matches no gid.
        store
            .create(
                &global("g-scan_x", TransType::Saga, Status::Succeed, 1, 1),
                &[],
            )
            .await?;
        for (prefix, want) in [
            (
                "g-scan-",
                vec!["g-scan-4", "g-scan-3", "g-scan-2", "g-scan-1", "g-scan-0"],
            ),
            ("g-scan_", vec!["g-scan_x"]),
            ("g-scan-%", vec![]),
        ] {
            let found = only(ScanQuery {
                gid_prefix: Some(prefix.into()),
                ..ScanQuery::default()
            })
            .await?;
            assert_eq!(found, want, "{driver}: prefix {prefix:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn cron_resets_make_unfinished_transactions_due_now() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        for i in 0..3 {
            let g = global(
                &format!("g-wait-{i}"),
                TransType::Msg,
                Status::Prepared,
                1_000,
                100_000,
            );
            store.create(&g, &[]).await?;
        }
        store
            .create(
                &global("g-fin", TransType::Msg, Status::Succeed, 1_000, 100_000),
                &[],
            )
            .await?;
        assert_eq!(
            store
                .reset_cron_time(UnixMs(50_000), UnixMs(2_000), 2)
                .await?,
            (2, true),
            "{driver}"
        );
        assert_eq!(
            store
                .reset_cron_time(UnixMs(50_000), UnixMs(2_000), 2)
                .await?,
            (1, false),
            "{driver}"
        );
        for i in 0..3 {
            let g = store.find(&format!("g-wait-{i}")).await?.expect("found");
            assert_eq!(g.next_cron_time, UnixMs(2_000), "{driver}");
        }
        assert_eq!(
            store.find("g-fin").await?.map(|g| g.next_cron_time),
            Some(UnixMs(100_000)),
            "{driver}"
        );

        store
            .create(
                &global("g-one", TransType::Msg, Status::Prepared, 1_000, 100_000),
                &[],
            )
            .await?;
        assert!(
            store.reset_next_cron_time("g-one", UnixMs(3_000)).await?,
            "{driver}"
        );
        assert!(
            !store.reset_next_cron_time("g-fin", UnixMs(3_000)).await?,
            "{driver}"
        );
        assert_eq!(
            store.find("g-one").await?.map(|g| g.next_cron_time),
            Some(UnixMs(3_000)),
            "{driver}"
        );
    }
    Ok(())
}

/// Redis keeps finished transactions for `FinishedDataExpire` only; unfinished ones never expire.
#[tokio::test]
async fn redis_expires_finished_transactions_only() -> Result<()> {
    let Some(redis) = dtmtest::redis() else {
        return Ok(());
    };
    let conf = Store {
        redis_prefix: redis.prefix.clone(),
        finished_data_expire: std::time::Duration::from_secs(600),
        ..Store::new("redis", &redis.url)
    };
    let store = open_store(&conf, Default::default()).await?;
    let g = global("g-expire", TransType::Saga, Status::Submitted, 1_000, 1_000);
    store.create(&g, &saga_branches(&g.gid, 1_000)).await?;
    let mut conn = ::redis::Client::open(redis.url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let key = |kind: &str| format!("{}_{kind}_g-expire", redis.prefix);
    for kind in ["g", "b", "bs"] {
        let t: i64 = ::redis::cmd("TTL")
            .arg(key(kind))
            .query_async(&mut conn)
            .await?;
        assert_eq!(t, -1, "{kind}: unfinished, no expiry");
    }
    let to_succeed = change(Status::Submitted, Status::Succeed, None, 2_000);
    assert!(store.change_status(&g.gid, &to_succeed).await?);
    for kind in ["g", "b", "bs"] {
        let t: i64 = ::redis::cmd("TTL")
            .arg(key(kind))
            .query_async(&mut conn)
            .await?;
        assert!((1..=600).contains(&t), "{kind}: finished, expires in {t} s");
    }
    Ok(())
}

#[tokio::test]
async fn corrupt_stored_options_are_an_error_not_the_defaults() -> Result<()> {
    for (driver, store, db) in stores().await? {
        let Some(db) = db else { continue };
        let g = global(
            "g-corrupt",
            TransType::Saga,
            Status::Submitted,
            1_000,
            1_000,
        );
        store.create(&g, &saga_branches(&g.gid, 1_000)).await?;
        sqlx::query("UPDATE trans_global SET options = '{\"retry_limit\": \"many\"' WHERE gid = 'g-corrupt'")
            .execute(&db.pool)
            .await?;
        let err = store.find(&g.gid).await.expect_err("corrupt options");
        assert!(
            err.to_string().contains("options of g-corrupt are corrupt"),
            "{driver}: {err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_backlog_counts_unfinished_transactions_and_the_earliest_due() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        assert_eq!(
            store.backlog().await?,
            Backlog::default(),
            "{driver}: empty"
        );
        for (gid, status, due) in [
            ("b-prep", Status::Prepared, 30_000),
            ("b-sub1", Status::Submitted, 7_000),
            ("b-sub2", Status::Submitted, 9_000),
            ("b-abort", Status::Aborting, 12_000),
            ("b-done", Status::Succeed, 1_000),
            ("b-failed", Status::Failed, 2_000),
        ] {
            store
                .create(&global(gid, TransType::Saga, status, 1_000, due), &[])
                .await?;
        }
        let mut backlog = store.backlog().await?;
        backlog.unfinished.sort_by_key(|(s, _)| s.as_str());
        assert_eq!(
            backlog,
            Backlog {
                unfinished: vec![
                    (Status::Aborting, 1),
                    (Status::Prepared, 1),
                    (Status::Submitted, 2)
                ],
                // Finished transactions are not due, however old their times.
                earliest_due: Some(UnixMs(7_000)),
            },
            "{driver}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn topics_are_compare_and_set_on_their_version() -> Result<()> {
    let sub = |url: &str| Subscriber {
        url: url.into(),
        remark: "r".into(),
    };
    for (driver, store, _db) in stores().await? {
        assert_eq!(store.topic("t").await?, None, "{driver}");
        let t = Topic {
            name: "t".into(),
            subscribers: vec![sub("http://a")],
            version: 0,
        };
        assert!(store.put_topic(&t).await?, "{driver}: create");
        assert!(!store.put_topic(&t).await?, "{driver}: created twice");
        let stored = store.topic("t").await?.expect("stored");
        assert_eq!(
            (stored.subscribers.clone(), stored.version),
            (vec![sub("http://a")], 1),
            "{driver}"
        );
        let mut next = stored.clone();
        next.subscribers.push(sub("http://b"));
        assert!(store.put_topic(&next).await?, "{driver}: update");
        assert!(!store.put_topic(&next).await?, "{driver}: a stale version");
        let stored = store.topic("t").await?.expect("stored");
        assert_eq!(
            (stored.subscribers.len(), stored.version),
            (2, 2),
            "{driver}"
        );
        assert!(store.delete_topic("t").await?, "{driver}");
        assert!(!store.delete_topic("t").await?, "{driver}");
        assert_eq!(store.topic("t").await?, None, "{driver}");
    }
    Ok(())
}

/// Closing lets go of every connection, on every backend: the coordinator's shutdown ends with
/// it (PostgreSQL's and MySQL's writers hold pooled connections until they are stopped). The
/// timeout only turns a hang into a failure.
#[tokio::test]
async fn close_returns_on_every_backend() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        let g = global("g-close", TransType::Saga, Status::Submitted, 1_000, 1_000);
        store.create(&g, &saga_branches(&g.gid, 1_000)).await?;
        let closed = tokio::time::timeout(Duration::from_secs(30), store.close()).await;
        assert!(matches!(closed, Ok(Ok(()))), "{driver}: {closed:?}");
    }
    Ok(())
}
