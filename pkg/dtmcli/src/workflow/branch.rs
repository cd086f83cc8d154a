//! A running workflow and its branches: each step recorded at the coordinator once it has a
//! definite answer, replayed from that record when the workflow runs again, and the phase-two
//! callbacks run last branch first.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::caller::{CallRequest, Caller};
use crate::client::{Dtm, Progress};
use crate::workflow::{WorkflowError, WorkflowOptions, panicked};
use crate::{BranchInfo, DtmResult, Op, TransType};

/// A phase-two callback: given its context, it commits or undoes its branch.
type Phase2Fn = Box<dyn FnOnce(Phase2) -> BoxFuture<'static, Result<(), WorkflowError>> + Send>;

/// A workflow while its handler runs: where branches come from. Cheap to clone.
#[derive(Clone)]
pub struct Workflow {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
}

struct Shared {
    gid: String,
    dtm: Dtm,
    http: reqwest::Client,
    options: WorkflowOptions,
}

struct State {
    /// What was recorded before this run: `(branch_id, op)` → the step's answer.
    recorded: HashMap<(String, String), Step>,
    /// Branches opened so far.
    branches: u32,
    /// Branch id → its phase-two callbacks, in the order the branches were opened.
    on_commit: Vec<(String, Phase2Fn)>,
    on_rollback: Vec<(String, Phase2Fn)>,
}

/// A definite answer of a step: what is recorded and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// SUCCESS, with what the step returned.
    Succeed(Vec<u8>),
    /// FAILURE, with what the step said.
    Failed(Vec<u8>),
}

impl Step {
    fn status(&self) -> &'static str {
        match self {
            Step::Succeed(_) => "succeed",
            Step::Failed(_) => "failed",
        }
    }

    fn data(&self) -> &[u8] {
        match self {
            Step::Succeed(d) | Step::Failed(d) => d,
        }
    }

    /// The step's answer as its caller sees it.
    fn into_result(self) -> Result<Vec<u8>, WorkflowError> {
        match self {
            Step::Succeed(d) => Ok(d),
            Step::Failed(d) => Err(WorkflowError::Failure(
                String::from_utf8_lossy(&d).into_owned(),
            )),
        }
    }
}

impl Workflow {
    /// A workflow of `gid` resuming from `progress`.
    pub(crate) fn new(
        gid: &str,
        dtm: Dtm,
        http: reqwest::Client,
        options: WorkflowOptions,
        progress: Progress,
    ) -> Workflow {
        let recorded = (progress.steps.into_iter())
            .map(|s| {
                let step = if s.status == "failed" {
                    Step::Failed(s.data)
                } else {
                    Step::Succeed(s.data)
                };
                ((s.branch_id, s.op), step)
            })
            .collect();
        Workflow {
            shared: Arc::new(Shared {
                gid: gid.to_owned(),
                dtm,
                http,
                options,
            }),
            state: Arc::new(Mutex::new(State {
                recorded,
                branches: 0,
                on_commit: Vec::new(),
                on_rollback: Vec::new(),
            })),
        }
    }

    /// The workflow's gid.
    pub fn gid(&self) -> &str {
        &self.shared.gid
    }

    /// The next branch: `01`, `02`, … in the order the handler opens them (a resume opens them
    /// in the same order, which is how its steps find their records).
    pub fn new_branch(&self) -> Branch {
        let mut state = self.lock();
        state.branches += 1;
        Branch {
            wf: self.clone(),
            id: format!("{:02}", state.branches),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        (self.state.lock()).unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The context of a call of branch `branch_id` with `op`.
    fn info(&self, branch_id: &str, op: Op) -> BranchInfo {
        BranchInfo {
            gid: self.shared.gid.clone(),
            trans_type: TransType::Workflow,
            branch_id: branch_id.to_owned(),
            op,
            dtm: self.shared.dtm.address().to_owned(),
            phase2_url: String::new(),
        }
    }

    /// Runs step `(branch_id, op)` — or replays its record — and records a definite answer; an
    /// answer that could not be recorded is an error (the step runs again on resume, and its
    /// branch is idempotent). A FAILURE drops the branch's own rollback unless the options say
    /// otherwise.
    async fn recorded(
        &self,
        branch_id: &str,
        op: Op,
        run: impl Future<Output = Result<Step, WorkflowError>>,
    ) -> Result<Vec<u8>, WorkflowError> {
        let key = (branch_id.to_owned(), op.as_str().to_owned());
        let replayed = self.lock().recorded.get(&key).cloned();
        let step = match replayed {
            Some(step) => step,
            None => {
                let step = AssertUnwindSafe(run)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panicked("a workflow step", &panic)))?;
                let (gid, dtm) = (&self.shared.gid, &self.shared.dtm);
                dtm.record_workflow_step(gid, branch_id, op, step.status(), step.data())
                    .await?;
                step
            }
        };
        if matches!(step, Step::Failed(_)) && !self.shared.options.compensate_error_branch {
            let mut state = self.lock();
            if state
                .on_rollback
                .last()
                .is_some_and(|(b, _)| b == branch_id)
            {
                state.on_rollback.pop();
            }
        }
        step.into_result()
    }

    /// Phase two: every `on_rollback` (`failed`) or `on_commit`, last branch first, each recorded
    /// as op `rollback` / `commit` under its branch. Any of them not succeeding stops it (the
    /// workflow is resumed and phase two goes on from there).
    pub(crate) async fn phase_two(&self, failed: bool) -> Result<(), WorkflowError> {
        let (op, callbacks) = {
            let mut state = self.lock();
            if failed {
                (Op::Rollback, std::mem::take(&mut state.on_rollback))
            } else {
                (Op::Commit, std::mem::take(&mut state.on_commit))
            }
        };
        for (branch_id, callback) in callbacks.into_iter().rev() {
            let p = Phase2 {
                info: self.info(&branch_id, op),
                http: self.shared.http.clone(),
            };
            let run = async move {
                match callback(p).await {
                    Ok(()) => Ok(Step::Succeed(Vec::new())),
                    // Phase two cannot refuse: a FAILURE here would be retried for ever.
                    Err(WorkflowError::Failure(m)) => Err(WorkflowError::Error(format!(
                        "a {} answered FAILURE, which phase two may not: {m}",
                        op.as_str()
                    ))),
                    Err(e) => Err(e),
                }
            };
            self.recorded(&branch_id, op, run).await?;
        }
        Ok(())
    }
}

/// One branch of a workflow: its phase-two callbacks, then its one step. Set the callbacks
/// first — a step's FAILURE decides whether its own rollback runs.
pub struct Branch {
    wf: Workflow,
    id: String,
}

impl Branch {
    /// Its id (`01`, `02`, …).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `undo` if the workflow fails (a saga's compensation, a TCC cancel).
    #[must_use]
    pub fn on_rollback<F, Fut>(self, undo: F) -> Branch
    where
        F: FnOnce(Phase2) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), WorkflowError>> + Send + 'static,
    {
        let f: Phase2Fn = Box::new(move |p| Box::pin(undo(p)));
        self.wf.lock().on_rollback.push((self.id.clone(), f));
        self
    }

    /// Runs `confirm` if the workflow succeeds (a TCC confirm).
    #[must_use]
    pub fn on_commit<F, Fut>(self, confirm: F) -> Branch
    where
        F: FnOnce(Phase2) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), WorkflowError>> + Send + 'static,
    {
        let f: Phase2Fn = Box::new(move |p| Box::pin(confirm(p)));
        self.wf.lock().on_commit.push((self.id.clone(), f));
        self
    }

    /// Runs `finish(p, rolled_back)` whichever way the workflow ends.
    #[must_use]
    pub fn on_finish<F, Fut>(self, finish: F) -> Branch
    where
        F: Fn(Phase2, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), WorkflowError>> + Send + 'static,
    {
        let finish = Arc::new(finish);
        let again = finish.clone();
        self.on_commit(move |p| finish(p, false))
            .on_rollback(move |p| again(p, true))
    }

    /// The context of this branch's step (op `action`): for a local step's barrier
    /// ([`crate::BranchDb::run`]) or a call made by other means.
    pub fn info(&self) -> BranchInfo {
        self.wf.info(&self.id, Op::Action)
    }

    /// A local step: `step` runs with this branch's context (run its write through
    /// [`crate::BranchDb::run`] for the barrier) and returns what to record.
    pub async fn run<F, Fut>(self, step: F) -> Result<Vec<u8>, WorkflowError>
    where
        F: FnOnce(BranchInfo) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, WorkflowError>>,
    {
        let info = self.info();
        let run = async move { definite(step(info).await) };
        self.wf.recorded(&self.id, Op::Action, run).await
    }

    /// An HTTP step: `req` is sent with the branch's context in its query; 200 is SUCCESS (its
    /// body returned), 409 FAILURE, 425 ONGOING, anything else an error.
    pub async fn http(self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, WorkflowError> {
        let info = self.info();
        let run = async move { definite(send_http(&info, req).await) };
        self.wf.recorded(&self.id, Op::Action, run).await
    }

    /// A step through the SDK's branch caller, as the coordinator would call it: `url` an HTTP
    /// URL or a gRPC `host:port/pkg.Svc/Method` (a registry URL too, with the caller's
    /// resolver), `body` JSON or protobuf bytes as `protocol` (`http` or `grpc`) says. SUCCESS
    /// returns what the branch said.
    pub async fn call(
        self,
        caller: &Caller,
        protocol: &str,
        url: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, WorkflowError> {
        let info = self.info();
        let run = async move { definite(call(caller, &info, protocol, url, body).await) };
        self.wf.recorded(&self.id, Op::Action, run).await
    }

    /// A gRPC step: `call` sends `req` (with the branch's context as `dtm-*` metadata) through a
    /// generated client; OK is SUCCESS (the reply recorded as its protobuf bytes), `Aborted`
    /// FAILURE, `FailedPrecondition` ONGOING, anything else an error.
    pub async fn grpc<Req, Reply, F, Fut>(self, req: Req, call: F) -> Result<Reply, WorkflowError>
    where
        Reply: prost::Message + Default,
        F: FnOnce(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Reply>, tonic::Status>>,
    {
        let info = self.info();
        let run = async move {
            let reply = send_grpc(&info, req, call).await;
            definite(reply.map(|r| r.encode_to_vec()))
        };
        let bytes = self.wf.recorded(&self.id, Op::Action, run).await?;
        Reply::decode(bytes.as_slice())
            .map_err(|e| WorkflowError::Error(format!("the recorded reply: {e}")))
    }
}

/// A phase-two callback's context: its branch, op `commit` or `rollback`. Calls made through it
/// carry that context; they are not recorded one by one — the callback is, as a whole.
pub struct Phase2 {
    info: BranchInfo,
    http: reqwest::Client,
}

impl Phase2 {
    /// The context (for the barrier, [`crate::BranchDb::run`]).
    pub fn info(&self) -> &BranchInfo {
        &self.info
    }

    /// Whether the workflow is rolling back.
    pub fn is_rollback(&self) -> bool {
        self.info.op == Op::Rollback
    }

    /// The client the workflow's HTTP calls go through.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// An HTTP call with this context; anything but 200 is an error (retried on resume).
    pub async fn http(&self, req: reqwest::RequestBuilder) -> Result<(), WorkflowError> {
        send_http(&self.info, req).await.map(drop)
    }

    /// A call through the SDK's branch caller with this context (see [`Branch::call`]);
    /// anything but SUCCESS is an error (retried on resume).
    pub async fn call(
        &self,
        caller: &Caller,
        protocol: &str,
        url: &str,
        body: &[u8],
    ) -> Result<(), WorkflowError> {
        call(caller, &self.info, protocol, url, body)
            .await
            .map(drop)
    }

    /// A gRPC call with this context; anything but OK is an error (retried on resume).
    pub async fn grpc<Req, Reply, F, Fut>(&self, req: Req, call: F) -> Result<Reply, WorkflowError>
    where
        F: FnOnce(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Reply>, tonic::Status>>,
    {
        send_grpc(&self.info, req, call).await
    }
}

/// SUCCESS and FAILURE are definite (recorded); ONGOING and errors are not.
fn definite(result: Result<Vec<u8>, WorkflowError>) -> Result<Step, WorkflowError> {
    match result {
        Ok(data) => Ok(Step::Succeed(data)),
        Err(WorkflowError::Failure(m)) => Ok(Step::Failed(m.into_bytes())),
        Err(e) => Err(e),
    }
}

/// Calls a branch through `caller` with `info`, and reads its answer by DTM's table.
async fn call(
    caller: &Caller,
    info: &BranchInfo,
    protocol: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<u8>, WorkflowError> {
    let req = CallRequest {
        url,
        protocol,
        body,
        info,
        headers: &Default::default(),
        timeout: crate::client::DEFAULT_TIMEOUT,
        op_name: None,
    };
    match caller.call(&req).await {
        Ok(r) => match r.result {
            DtmResult::Success => Ok(r.body.into_bytes()),
            DtmResult::Failure => Err(WorkflowError::Failure(r.body)),
            DtmResult::Ongoing => Err(WorkflowError::Ongoing(r.body)),
        },
        Err(e) => Err(WorkflowError::Error(e.to_string())),
    }
}

/// Sends an HTTP branch call with `info` in its query, and reads its answer by DTM's table.
async fn send_http(
    info: &BranchInfo,
    req: reqwest::RequestBuilder,
) -> Result<Vec<u8>, WorkflowError> {
    let mut trace = http::HeaderMap::new();
    kit::trace::inject(&mut trace);
    let res = req
        .query(&info.to_query())
        .headers(trace)
        .send()
        .await
        .map_err(|e| WorkflowError::Error(kit::errors::chain(&e)))?;
    let status = res.status().as_u16();
    let body = res
        .bytes()
        .await
        .map_err(|e| WorkflowError::Error(kit::errors::chain(&e)))?;
    let text = || String::from_utf8_lossy(&body).into_owned();
    match DtmResult::from_http(status, &String::from_utf8_lossy(&body)) {
        Some(DtmResult::Success) => Ok(body.to_vec()),
        Some(DtmResult::Failure) => Err(WorkflowError::Failure(text())),
        Some(DtmResult::Ongoing) => Err(WorkflowError::Ongoing(text())),
        None => Err(WorkflowError::Error(format!(
            "answered {status}: {}",
            text()
        ))),
    }
}

/// Sends a gRPC branch call with `info` as `dtm-*` metadata, and reads its status by DTM's table.
async fn send_grpc<Req, Reply, F, Fut>(
    info: &BranchInfo,
    req: Req,
    call: F,
) -> Result<Reply, WorkflowError>
where
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Reply>, tonic::Status>>,
{
    let mut req = tonic::Request::new(req);
    info.to_metadata(req.metadata_mut())
        .map_err(|e| WorkflowError::Error(e.message))?;
    kit::trace::inject_metadata(req.metadata_mut());
    match call(req).await {
        Ok(reply) => Ok(reply.into_inner()),
        Err(s) => Err(match DtmResult::from_grpc(s.code(), s.message()) {
            Some(DtmResult::Failure) => WorkflowError::Failure(s.message().to_owned()),
            Some(DtmResult::Ongoing) => WorkflowError::Ongoing(s.message().to_owned()),
            _ => WorkflowError::Error(format!("{:?}: {}", s.code(), s.message())),
        }),
    }
}
