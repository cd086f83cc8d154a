//! The workflow's state machine as units, over the in-memory store: what prepareWorkflow,
//! registerBranch and submit write and refuse, and the resume — when it is due, what it sends,
//! how its answers (ONGOING, errors, a submit during the call) decide the next visit. The
//! client is scripted in-process; the clock is moved, nothing sleeps.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use coordinator::biz::{
    BranchCaller, BranchStatus, Clock, NewTrans, Op, Options, Status, TransError, TransStore,
    TransType, TransUsecase, Unobserved, WorkflowEnd, WorkflowStep,
};
use dtmcli::DtmResult;
use dtmcli::caller::{CallError, CallRequest, Reply};
use support::memory::MemoryStore;
use support::policy;

mod support;

/// What the client does when it is resumed.
#[derive(Clone, Copy, Debug)]
enum Resume {
    /// Answers ONGOING.
    Ongoing,
    /// Fails to answer.
    Error,
    /// Submits the workflow `succeed` during the call, then answers SUCCESS.
    Finish,
    /// Answers SUCCESS without submitting.
    Lie,
}

/// A workflow's client as the coordinator sees it: resumes answered by a script (the last
/// answer repeats), each call recorded.
#[derive(Clone, Default)]
struct Client {
    script: Arc<Mutex<Vec<Resume>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    uc: Arc<OnceLock<TransUsecase>>,
}

/// One resume call as it was sent.
#[derive(Debug, Clone)]
struct Call {
    url: String,
    gid: String,
    trans_type: TransType,
    branch_id: String,
    op: String,
    body: Vec<u8>,
}

impl Client {
    fn answering(&self, script: &[Resume]) {
        *self.script.lock().expect("script") = script.to_vec();
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

#[async_trait::async_trait]
impl BranchCaller for Client {
    async fn call(&self, req: &CallRequest<'_>) -> Result<Reply, CallError> {
        self.calls.lock().expect("calls").push(Call {
            url: req.url.into(),
            gid: req.info.gid.clone(),
            trans_type: req.info.trans_type,
            branch_id: req.info.branch_id.clone(),
            op: req.op().into(),
            body: req.body.to_vec(),
        });
        let next = {
            let mut script = self.script.lock().expect("script");
            if script.len() > 1 {
                script.remove(0)
            } else {
                script.first().copied().unwrap_or(Resume::Error)
            }
        };
        let reply = |result| {
            Ok(Reply {
                result,
                body: String::new(),
            })
        };
        match next {
            Resume::Ongoing => reply(DtmResult::Ongoing),
            Resume::Error => Err(CallError::Transport {
                url: req.url.into(),
                message: "connection refused".into(),
            }),
            Resume::Lie => reply(DtmResult::Success),
            Resume::Finish => {
                let uc = self.uc.get().expect("use case");
                uc.end_workflow(end(&req.info.gid, Status::Succeed, "", "b2s="))
                    .await
                    .expect("submit");
                reply(DtmResult::Success)
            }
        }
    }
}

fn coordinator() -> (TransUsecase, Arc<MemoryStore>, Clock, Client) {
    let store = Arc::new(MemoryStore::default());
    let clock = Clock::default();
    let client = Client::default();
    let uc = TransUsecase::new(
        store.clone(),
        Arc::new(client.clone()),
        policy(),
        clock.clone(),
        Arc::new(Unobserved),
    );
    client.uc.set(uc.clone()).ok().expect("once");
    (uc, store, clock, client)
}

/// A workflow `wf_saga` of input `{"amount":30}` (base64 in custom_data, as Go sends it).
fn workflow(gid: &str, protocol: &str, options: Options) -> NewTrans {
    NewTrans {
        gid: gid.into(),
        trans_type: Some(TransType::Workflow),
        protocol: protocol.into(),
        custom_data: r#"{"data":"eyJhbW91bnQiOjMwfQ==","name":"wf_saga"}"#.into(),
        query_prepared: match protocol {
            "grpc" => "127.0.0.1:9000/workflow.Workflow/Execute".into(),
            _ => "http://busi/api/workflow/resume".into(),
        },
        options,
        ..NewTrans::default()
    }
}

fn step(gid: &str, branch_id: &str, op: Op, status: BranchStatus, data: &[u8]) -> WorkflowStep {
    WorkflowStep {
        gid: gid.into(),
        branch_id: branch_id.into(),
        op,
        status,
        data: data.to_vec(),
    }
}

fn end(gid: &str, status: Status, reason: &str, result: &str) -> WorkflowEnd {
    WorkflowEnd {
        gid: gid.into(),
        status,
        rollback_reason: reason.into(),
        result: result.into(),
    }
}

#[tokio::test]
async fn prepare_creates_it_once_and_then_loads_it_with_its_steps() {
    let (uc, _store, clock, _) = coordinator();
    let (g, steps) = uc
        .prepare_workflow(workflow("w1", "http", Options::default()))
        .await
        .expect("prepare");
    assert_eq!(
        (g.status, g.trans_type, steps.len()),
        (Status::Prepared, TransType::Workflow, 0)
    );
    // First due after the base interval (the server's RetryInterval, 1 s here).
    assert_eq!(g.next_cron_time, g.create_time + Duration::from_secs(1));
    uc.record_workflow_step(step(
        "w1",
        "01",
        Op::Action,
        BranchStatus::Succeed,
        b"{\"ok\":1}",
    ))
    .await
    .expect("record");
    uc.record_workflow_step(step(
        "w1",
        "02",
        Op::Action,
        BranchStatus::Failed,
        &[0, 255],
    ))
    .await
    .expect("record");
    clock.advance(Duration::from_millis(5));
    let (again, steps) = uc
        .prepare_workflow(workflow("w1", "http", Options::default()))
        .await
        .expect("load");
    assert_eq!(
        again.create_time, g.create_time,
        "loaded, not created again"
    );
    let seen: Vec<_> = steps
        .iter()
        .map(|b| (b.branch_id.as_str(), b.op, b.status, b.bin_data.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "01",
                Op::Action,
                BranchStatus::Succeed,
                b"{\"ok\":1}".to_vec()
            ),
            ("02", Op::Action, BranchStatus::Failed, vec![0, 255]),
        ]
    );
}

#[tokio::test]
async fn prepare_refuses_what_cannot_be_resumed() {
    let (uc, _store, _clock, _) = coordinator();
    let bad = |t: NewTrans| {
        let uc = uc.clone();
        async move { uc.prepare_workflow(t).await.expect_err("refused") }
    };
    let mut no_address = workflow("w2", "http", Options::default());
    no_address.query_prepared.clear();
    assert!(
        matches!(bad(no_address).await, TransError::BadRequest(m) if m.starts_with("query_prepared"))
    );
    let mut no_name = workflow("w2", "http", Options::default());
    no_name.custom_data = r#"{"data":""}"#.into();
    assert!(matches!(bad(no_name).await, TransError::BadRequest(m) if m.contains("name")));
    // A gid that is another type's.
    let saga = NewTrans {
        gid: "w3".into(),
        trans_type: Some(TransType::Tcc),
        protocol: "http".into(),
        ..NewTrans::default()
    };
    uc.prepare(saga).await.expect("tcc");
    let err = bad(workflow("w3", "http", Options::default())).await;
    assert!(matches!(err, TransError::Failure(m) if m.contains("tcc transaction")));
}

#[tokio::test]
async fn steps_are_recorded_once_and_only_while_prepared() {
    let (uc, store, _clock, _) = coordinator();
    uc.prepare_workflow(workflow("w4", "http", Options::default()))
        .await
        .expect("prepare");
    let first = step("w4", "01", Op::Action, BranchStatus::Succeed, b"a");
    uc.record_workflow_step(first.clone())
        .await
        .expect("record");
    let twice = uc.record_workflow_step(first).await.expect_err("twice");
    assert!(matches!(twice, TransError::Failure(m) if m.contains("recorded already")));
    // The same branch's phase two is another step.
    uc.record_workflow_step(step("w4", "01", Op::Rollback, BranchStatus::Succeed, b""))
        .await
        .expect("rollback of 01");
    uc.end_workflow(end("w4", Status::Failed, "02 refused", ""))
        .await
        .expect("end");
    let late = uc
        .record_workflow_step(step("w4", "02", Op::Action, BranchStatus::Succeed, b""))
        .await
        .expect_err("ended");
    assert!(matches!(late, TransError::Failure(m) if m.contains("status: prepared")));
    let unknown = uc
        .record_workflow_step(step("nope", "01", Op::Action, BranchStatus::Succeed, b""))
        .await
        .expect_err("unknown");
    assert!(matches!(unknown, TransError::Failure(_)));
    let rows = store.branches("w4").await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|b| b.url.is_empty() && b.finish_time.is_some())
    );
}

#[tokio::test]
async fn submit_ends_it_with_its_result_and_calls_nothing() {
    let (uc, store, clock, client) = coordinator();
    uc.prepare_workflow(workflow("w5", "http", Options::default()))
        .await
        .expect("prepare");
    uc.end_workflow(end("w5", Status::Succeed, "", "eyJvayI6MX0="))
        .await
        .expect("end");
    let g = store.find("w5").await.expect("find").expect("there");
    assert_eq!(
        (g.status, g.result.as_str()),
        (Status::Succeed, "eyJvayI6MX0=")
    );
    assert!(g.finish_time.is_some());
    // A retried submit is accepted; the other ending is refused.
    uc.end_workflow(end("w5", Status::Succeed, "", "eyJvayI6MX0="))
        .await
        .expect("retry");
    let other = uc
        .end_workflow(end("w5", Status::Failed, "late", ""))
        .await
        .expect_err("ended");
    assert!(matches!(other, TransError::Failure(m) if m.contains("'succeed'")));
    // Ended: the poller never resumes it.
    clock.advance(Duration::from_secs(3600));
    assert!(!uc.poller().once().await.expect("poll"));
    assert!(client.calls().is_empty());
    let g = store.find("w5").await.expect("find").expect("there");
    assert_eq!(
        (g.status, g.rollback_reason.as_str()),
        (Status::Succeed, "")
    );
}

#[tokio::test]
async fn a_failed_end_keeps_its_reason() {
    let (uc, store, _clock, _) = coordinator();
    uc.prepare_workflow(workflow("w6", "http", Options::default()))
        .await
        .expect("prepare");
    uc.end_workflow(end("w6", Status::Failed, "stock refused", ""))
        .await
        .expect("end");
    let g = store.find("w6").await.expect("find").expect("there");
    assert_eq!(
        (g.status, g.rollback_reason.as_str()),
        (Status::Failed, "stock refused")
    );
    assert!(g.rollback_time.is_some());
}

#[tokio::test]
async fn a_due_workflow_is_resumed_with_its_name_and_input() {
    let (uc, store, clock, client) = coordinator();
    client.answering(&[Resume::Finish]);
    uc.prepare_workflow(workflow("w7", "http", Options::default()))
        .await
        .expect("prepare");
    assert!(!uc.poller().once().await.expect("poll"), "not due yet");
    clock.advance(Duration::from_secs(1));
    assert!(uc.poller().once().await.expect("poll"));
    let calls = client.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(
        (
            c.url.as_str(),
            c.gid.as_str(),
            c.trans_type,
            c.branch_id.as_str(),
            c.op.as_str()
        ),
        (
            "http://busi/api/workflow/resume",
            "w7",
            TransType::Workflow,
            "00",
            "wf_saga"
        )
    );
    assert_eq!(c.body, b"{\"amount\":30}");
    let g = store.find("w7").await.expect("find").expect("there");
    assert_eq!((g.status, g.result.as_str()), (Status::Succeed, "b2s="));
}

#[tokio::test]
async fn over_grpc_the_input_travels_in_workflow_data() {
    use prost::Message;
    let (uc, _store, clock, client) = coordinator();
    client.answering(&[Resume::Finish]);
    uc.prepare_workflow(workflow("w8", "grpc", Options::default()))
        .await
        .expect("prepare");
    clock.advance(Duration::from_secs(1));
    assert!(uc.poller().once().await.expect("poll"));
    let body = &client.calls()[0].body;
    let data = dtmcli::proto::workflow::WorkflowData::decode(body.as_slice()).expect("message");
    assert_eq!(data.data, b"{\"amount\":30}");
}

#[tokio::test]
async fn ongoing_keeps_the_base_interval_and_errors_back_off_to_the_cap() {
    let (uc, store, clock, client) = coordinator();
    client.answering(&[
        Resume::Ongoing,
        Resume::Error,
        Resume::Error,
        Resume::Lie,
        Resume::Error,
        Resume::Error,
        Resume::Error,
        Resume::Finish,
    ]);
    // The transaction's own retry_interval: 2 s (the server's is 1 s, its cap 8 s).
    let options = Options {
        retry_interval: 2,
        ..Options::default()
    };
    let (g, _) = uc
        .prepare_workflow(workflow("w9", "http", options))
        .await
        .expect("prepare");
    assert_eq!(g.next_cron_time, g.create_time + Duration::from_secs(2));
    let mut waits = Vec::new();
    loop {
        let g = store.find("w9").await.expect("find").expect("there");
        if g.status.is_final() {
            break;
        }
        // The interval as written (both times come from one write): the real clock under the
        // test's offset moves on meanwhile, so `next_cron_time - now` may fall a ms short.
        waits.push((g.next_cron_time - g.update_time).as_secs());
        clock.advance(g.next_cron_time - clock.now());
        assert!(uc.poller().once().await.expect("poll"), "due");
        assert!(waits.len() < 20, "never finished: {waits:?}");
    }
    // Due after 2 s; ONGOING: 2 s again; errors (a SUCCESS without a submit is one): 2, 4, 8,
    // then the cap.
    assert_eq!(waits, [2, 2, 2, 4, 8, 8, 8, 8]);
    assert_eq!(client.calls().len(), 8);
}

#[tokio::test]
async fn a_workflow_never_times_out_and_force_stop_ends_it() {
    let (uc, store, clock, client) = coordinator();
    client.answering(&[Resume::Ongoing]);
    let options = Options {
        timeout_to_fail: 3,
        ..Options::default()
    };
    uc.prepare_workflow(workflow("w10", "http", options))
        .await
        .expect("prepare");
    for _ in 0..5 {
        clock.advance(Duration::from_secs(10));
        assert!(uc.poller().once().await.expect("poll"));
    }
    let g = store.find("w10").await.expect("find").expect("there");
    assert_eq!(
        g.status,
        Status::Prepared,
        "its client decides, not a timeout"
    );
    assert_eq!(client.calls().len(), 5);
    // resetNextCronTime makes it due now.
    assert!(g.next_cron_time > clock.now());
    uc.reset_next_cron_time("w10").await.expect("reset");
    assert!(uc.poller().once().await.expect("poll"));
    assert_eq!(client.calls().len(), 6);
    uc.force_stop("w10").await.expect("stop");
    clock.advance(Duration::from_secs(3600));
    assert!(!uc.poller().once().await.expect("poll"));
    let g = store.find("w10").await.expect("find").expect("there");
    assert_eq!(g.status, Status::Failed);
    // Its client, resuming late, can no longer record or end it another way.
    let late = uc
        .record_workflow_step(step("w10", "01", Op::Action, BranchStatus::Succeed, b""))
        .await;
    assert!(matches!(late, Err(TransError::Failure(_))));
    assert!(
        uc.end_workflow(end("w10", Status::Succeed, "", ""))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn abort_and_a_plain_submit_do_not_touch_a_workflow() {
    let (uc, store, _clock, _) = coordinator();
    uc.prepare_workflow(workflow("w11", "http", Options::default()))
        .await
        .expect("prepare");
    let same = NewTrans {
        gid: "w11".into(),
        trans_type: Some(TransType::Workflow),
        protocol: "http".into(),
        ..NewTrans::default()
    };
    assert!(matches!(
        uc.abort(same.clone()).await,
        Err(TransError::Failure(_))
    ));
    let g = store.find("w11").await.expect("find").expect("there");
    assert_eq!(g.status, Status::Prepared);
}
