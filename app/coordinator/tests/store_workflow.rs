//! The store conformance suite's workflow part, on every backend the environment offers (see
//! tests/store.rs): a workflow's input as large as a request may be, its steps recorded with
//! their status and data (binary too), once each, only while it is `prepared`, and its end with
//! the result its client submitted.

use std::time::Duration;

use anyhow::Result;
use coordinator::biz::{
    Branch, BranchStatus, Created, Global, Op, Options, Status, StatusChange, StoreError, TransType,
};
use kit::time::UnixMs;

mod support;

use support::stores;

/// A prepared workflow whose `custom_data` is `custom_data`.
fn workflow(gid: &str, custom_data: String) -> Global {
    Global {
        id: 0,
        gid: gid.into(),
        trans_type: TransType::Workflow,
        status: Status::Prepared,
        protocol: "http".into(),
        query_prepared: "http://busi/resume".into(),
        custom_data,
        options: Options::default(),
        rollback_reason: String::new(),
        result: String::new(),
        create_time: UnixMs(1_000),
        update_time: UnixMs(1_000),
        finish_time: None,
        rollback_time: None,
        next_cron_interval: Duration::from_secs(10),
        next_cron_time: UnixMs(11_000),
        owner: String::new(),
    }
}

/// A recorded step: no URL, answered when recorded.
fn step(gid: &str, branch_id: &str, op: Op, status: BranchStatus, data: &[u8]) -> Branch {
    let mut b = Branch::new(gid, branch_id.into(), op, "", data, UnixMs(2_000));
    b.answered(status, UnixMs(2_000));
    b
}

#[tokio::test]
async fn a_workflow_keeps_a_large_input_its_steps_and_its_result() -> Result<()> {
    // What a 1 MiB request can carry: 700 KiB of input, base64 in the JSON text.
    let input = "x".repeat(700 * 1024);
    let custom_data = format!(r#"{{"data":"{input}","name":"wf"}}"#);
    // A step's answer may be binary (a protobuf reply) and large.
    let reply: Vec<u8> = (0..256 * 1024).map(|i| (i % 256) as u8).collect();
    for (driver, store, _db) in stores().await? {
        let g = workflow("w-big", custom_data.clone());
        assert!(
            matches!(store.create(&g, &[]).await?, Created::Inserted),
            "{driver}"
        );
        let found = store.find("w-big").await?.expect("stored");
        assert_eq!(found.custom_data.len(), custom_data.len(), "{driver}");
        assert_eq!(found.result, "", "{driver}: no result yet");
        let steps = [
            step("w-big", "01", Op::Action, BranchStatus::Succeed, &reply),
            step(
                "w-big",
                "02",
                Op::Action,
                BranchStatus::Failed,
                b"409 refused",
            ),
        ];
        for s in &steps {
            assert!(
                store
                    .add_branches("w-big", Status::Prepared, std::slice::from_ref(s))
                    .await?,
                "{driver}"
            );
        }
        assert!(
            matches!(
                store
                    .add_branches("w-big", Status::Prepared, &steps[..1])
                    .await,
                Err(StoreError::Duplicate)
            ),
            "{driver}: the same (branch_id, op) twice"
        );
        let rollback = step("w-big", "01", Op::Rollback, BranchStatus::Succeed, b"");
        assert!(
            store
                .add_branches("w-big", Status::Prepared, std::slice::from_ref(&rollback))
                .await?,
            "{driver}"
        );
        let rows = store.branches("w-big").await?;
        let seen: Vec<_> = rows
            .iter()
            .map(|b| {
                (
                    b.branch_id.as_str(),
                    b.op,
                    b.status,
                    b.finish_time,
                    b.url.as_str(),
                )
            })
            .collect();
        let done = Some(UnixMs(2_000));
        assert_eq!(
            seen,
            [
                ("01", Op::Action, BranchStatus::Succeed, done, ""),
                ("02", Op::Action, BranchStatus::Failed, done, ""),
                ("01", Op::Rollback, BranchStatus::Succeed, done, ""),
            ],
            "{driver}"
        );
        assert_eq!(rows[0].bin_data, reply, "{driver}: binary data kept");
        assert_eq!(rows[1].bin_data, b"409 refused", "{driver}");

        let end = StatusChange {
            from: Status::Prepared,
            to: Status::Failed,
            rollback_reason: Some("02 refused"),
            result: Some("cmVzdWx0"),
            now: UnixMs(3_000),
        };
        assert!(store.change_status("w-big", &end).await?, "{driver}");
        assert!(!store.change_status("w-big", &end).await?, "{driver}: once");
        let g = store.find("w-big").await?.expect("stored");
        assert_eq!(
            (g.status, g.rollback_reason.as_str(), g.result.as_str()),
            (Status::Failed, "02 refused", "cmVzdWx0"),
            "{driver}"
        );
        assert_eq!(
            (g.finish_time, g.rollback_time),
            (Some(UnixMs(3_000)), Some(UnixMs(3_000))),
            "{driver}"
        );
        let late = step("w-big", "03", Op::Action, BranchStatus::Succeed, b"");
        assert!(
            !store
                .add_branches("w-big", Status::Prepared, &[late])
                .await?,
            "{driver}: nothing recorded once it ended"
        );
        assert_eq!(store.branches("w-big").await?.len(), 3, "{driver}");
    }
    Ok(())
}

#[tokio::test]
async fn a_change_without_a_result_keeps_the_stored_one() -> Result<()> {
    for (driver, store, _db) in stores().await? {
        store.create(&workflow("w-keep", "{}".into()), &[]).await?;
        let end = StatusChange {
            from: Status::Prepared,
            to: Status::Succeed,
            rollback_reason: None,
            result: Some("b2s="),
            now: UnixMs(3_000),
        };
        assert!(store.change_status("w-keep", &end).await?, "{driver}");
        let g = store.find("w-keep").await?.expect("stored");
        assert_eq!(g.result, "b2s=", "{driver}");
        // Another type's transaction has none, and a status change without one writes none.
        let mut saga = workflow("s-none", String::new());
        saga.trans_type = TransType::Saga;
        saga.status = Status::Submitted;
        store.create(&saga, &[]).await?;
        let done = StatusChange {
            from: Status::Submitted,
            to: Status::Succeed,
            rollback_reason: None,
            result: None,
            now: UnixMs(3_000),
        };
        assert!(store.change_status("s-none", &done).await?, "{driver}");
        assert_eq!(
            store.find("s-none").await?.expect("stored").result,
            "",
            "{driver}"
        );
    }
    Ok(())
}
