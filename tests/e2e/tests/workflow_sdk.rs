//! The Rust workflow SDK (`dtmcli::workflow`) against the coordinator, over HTTP and gRPC, with
//! scripted branches: a saga-style workflow succeeds, rolls back what ran on a FAILURE (last
//! branch first, the failed branch's own rollback skipped unless asked), stops on ONGOING and is
//! finished by the coordinator's resume without calling a recorded step again, survives a
//! panicking handler, commits TCC-style, and returns a finished gid's stored result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dtmcli::workflow::{WorkflowError, WorkflowOptions, Workflows};
use dtmcli::{Op, TransType};
use dtmtest::eventually;
use dtmtest::script::Reply;
use e2e::workflows::{Calls, step, undo, workflows};
use e2e::{Stack, Transport, gid};

/// Registers `name`: branch `out` (undone by `out-undo`), then `in` (undone by `in-undo`),
/// returning `ok`; `panic_once` makes its first run panic after `out`.
fn register_saga(
    w: &Workflows,
    s: &Stack,
    t: Transport,
    name: &str,
    options: WorkflowOptions,
    panic_once: Option<Arc<AtomicBool>>,
) {
    let s = Calls::of(s);
    w.register_with(name, options, move |wf, _input| {
        let (s, panic_once) = (s.clone(), panic_once.clone());
        async move {
            let (s1, s2) = (s.clone(), s.clone());
            let out = wf
                .new_branch()
                .on_rollback(move |p| undo(p, s1, t, "out-undo"));
            step(out, &s, t, "out").await?;
            if panic_once.is_some_and(|p| p.swap(false, Ordering::SeqCst)) {
                panic!("the handler's bug");
            }
            let inn = wf
                .new_branch()
                .on_rollback(move |p| undo(p, s2, t, "in-undo"));
            step(inn, &s, t, "in").await?;
            Ok(b"ok".to_vec())
        }
    })
    .expect("register");
}

async fn both(test: impl AsyncFn(Transport)) {
    for t in [Transport::Http, Transport::Grpc] {
        test(t).await;
    }
}

#[tokio::test]
async fn a_saga_style_workflow_succeeds_and_each_call_carries_its_context() {
    let s = Stack::start().await;
    both(async |t| {
        let w = workflows(&s, t).await;
        register_saga(&w, &s, t, "saga", WorkflowOptions::default(), None);
        let g = gid("wf-ok");
        let result = w.execute("saga", &g, b"{}").await.expect("succeeds");
        assert_eq!(result, b"ok");
        assert_eq!(s.status(&g).await, "succeed");
        let calls: Vec<_> = ["out", "in"]
            .iter()
            .flat_map(|n| s.script.calls(n))
            .filter(|c| c.info.as_ref().is_some_and(|i| i.gid == g))
            .map(|c| {
                let i = c.info.expect("context");
                (c.name, i.trans_type, i.branch_id, i.op)
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("out".into(), TransType::Workflow, "01".into(), Op::Action),
                ("in".into(), TransType::Workflow, "02".into(), Op::Action),
            ],
            "{t:?}"
        );
        // A finished gid returns its stored result, calling nothing.
        let before = s.script.calls("out").len();
        assert_eq!(w.execute("saga", &g, b"{}").await.expect("again"), b"ok");
        assert_eq!(s.script.calls("out").len(), before);
        // Recorded: each step, with what it answered.
        let rows = s.branches(&g).await;
        assert_eq!(
            rows.iter()
                .map(|(b, o, st)| (b.as_str(), o.as_str(), st.as_str()))
                .collect::<Vec<_>>(),
            [("01", "action", "succeed"), ("02", "action", "succeed")],
            "{t:?}"
        );
    })
    .await;
}

/// Calls of `name` for gid `g`: their ops.
fn ops(s: &Stack, name: &str, g: &str) -> Vec<Op> {
    s.script
        .calls(name)
        .into_iter()
        .filter_map(|c| c.info.filter(|i| i.gid == g).map(|i| i.op))
        .collect()
}

#[tokio::test]
async fn a_failure_rolls_back_what_ran_last_branch_first() {
    let s = Stack::start().await;
    both(async |t| {
        let w = workflows(&s, t).await;
        register_saga(&w, &s, t, "saga", WorkflowOptions::default(), None);
        let all = WorkflowOptions {
            compensate_error_branch: true,
        };
        register_saga(&w, &s, t, "saga-all", all, None);
        for (name, in_undone) in [("saga", false), ("saga-all", true)] {
            let g = gid("wf-undo");
            s.script.plan("in", &[Reply::Failure]);
            let err = w.execute(name, &g, b"{}").await.expect_err("refused");
            assert!(matches!(err, WorkflowError::Failure(_)), "{err:?}");
            assert_eq!(s.status(&g).await, "failed", "{t:?} {name}");
            assert_eq!(ops(&s, "out-undo", &g), [Op::Rollback], "{t:?} {name}");
            let undone = ops(&s, "in-undo", &g);
            assert_eq!(undone.len(), usize::from(in_undone), "{t:?} {name}");
            let rows = s.branches(&g).await;
            let mut expected = vec![("01", "action", "succeed"), ("02", "action", "failed")];
            if in_undone {
                expected.push(("02", "rollback", "succeed"));
            }
            expected.push(("01", "rollback", "succeed"));
            let got: Vec<_> = rows
                .iter()
                .map(|(b, o, st)| (b.as_str(), o.as_str(), st.as_str()))
                .collect();
            assert_eq!(got, expected, "{t:?} {name}: last branch first");
        }
    })
    .await;
}

#[tokio::test]
async fn ongoing_stops_it_and_the_resume_finishes_it_without_calling_a_recorded_step_again() {
    let s = Stack::start().await;
    both(async |t| {
        let w = workflows(&s, t).await;
        register_saga(&w, &s, t, "saga", WorkflowOptions::default(), None);
        let g = gid("wf-ongoing");
        s.script.plan("in", &[Reply::Ongoing]);
        let err = w.execute("saga", &g, b"{}").await.expect_err("not yet");
        assert!(matches!(err, WorkflowError::Ongoing(_)), "{err:?}");
        assert_eq!(s.status(&g).await, "prepared");
        assert_eq!(
            s.branches(&g).await.len(),
            1,
            "only the decided step is recorded"
        );
        // The coordinator resumes it once due.
        s.clock.advance(Duration::from_secs(60));
        eventually("resumed and finished", async || {
            s.status(&g).await == "succeed"
        })
        .await;
        assert_eq!(
            ops(&s, "out", &g),
            [Op::Action],
            "{t:?}: replayed, not called again"
        );
        assert_eq!(ops(&s, "in", &g), [Op::Action, Op::Action], "{t:?}");
    })
    .await;
}

#[tokio::test]
async fn a_panicking_handler_is_not_submitted_and_is_resumed() {
    let s = Stack::start().await;
    both(async |t| {
        let w = workflows(&s, t).await;
        let once = Arc::new(AtomicBool::new(true));
        register_saga(&w, &s, t, "saga", WorkflowOptions::default(), Some(once));
        let g = gid("wf-panic");
        let err = w.execute("saga", &g, b"{}").await.expect_err("panicked");
        assert!(
            matches!(&err, WorkflowError::Error(m) if m.contains("panicked")),
            "{err:?}"
        );
        assert_eq!(s.status(&g).await, "prepared", "never half-submitted");
        s.clock.advance(Duration::from_secs(60));
        eventually("resumed and finished", async || {
            s.status(&g).await == "succeed"
        })
        .await;
        assert_eq!(ops(&s, "out", &g).len(), 1, "{t:?}");
        assert!(ops(&s, "out-undo", &g).is_empty(), "{t:?}");
    })
    .await;
}

#[tokio::test]
async fn a_tcc_style_branch_is_confirmed_on_success() {
    let s = Stack::start().await;
    both(async |t| {
        let w = workflows(&s, t).await;
        let s2 = Calls::of(&s);
        w.register("tcc", move |wf, _| {
            let s = s2.clone();
            async move {
                let (c, x) = (s.clone(), s.clone());
                let b = wf
                    .new_branch()
                    .on_commit(move |p| undo(p, c, t, "confirm"))
                    .on_rollback(move |p| undo(p, x, t, "cancel"));
                step(b, &s, t, "try").await?;
                Ok(Vec::new())
            }
        })
        .expect("register");
        let g = gid("wf-tcc");
        w.execute("tcc", &g, b"").await.expect("succeeds");
        assert_eq!(ops(&s, "confirm", &g), [Op::Commit]);
        assert!(ops(&s, "cancel", &g).is_empty());
        let g = gid("wf-tcc");
        s.script.plan("try", &[Reply::Failure]);
        w.execute("tcc", &g, b"").await.expect_err("refused");
        // The try refused: nothing to cancel (its own rollback is skipped), nothing confirmed.
        assert!(ops(&s, "confirm", &g).is_empty() && ops(&s, "cancel", &g).is_empty());
        assert_eq!(s.status(&g).await, "failed");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_workflow_and_a_second_registration_are_refused() {
    let s = Stack::start().await;
    let w = Workflows::new(s.dtm(Transport::Http), "http://127.0.0.1:1/unused");
    w.register("one", |_, _| async { Ok(Vec::new()) })
        .expect("first");
    assert!(w.register("one", |_, _| async { Ok(Vec::new()) }).is_err());
    let err = w
        .execute("two", &gid("wf-none"), b"")
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("not registered"), "{err}");
}
