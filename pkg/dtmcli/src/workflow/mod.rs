//! Workflow, DTM's fifth transaction type: the transaction is ordinary code in the client. Each
//! step is a branch the client calls itself — over HTTP, gRPC, or a local transaction — and the
//! coordinator records; a client that stops half-way is resumed by the coordinator and replays
//! what was recorded instead of calling it again (docs/dtm-protocol.md, Workflow).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dtmcli::workflow::WorkflowError> {
//! use dtmcli::workflow::{Workflows, WorkflowError};
//! let workflows = Workflows::new(
//!     dtmcli::Dtm::http("http://127.0.0.1:36789/api/dtmsvr"),
//!     "http://127.0.0.1:8002/api/workflow/resume", // where this app mounts `http_router`
//! );
//! workflows.register("transfer", |wf, input| async move {
//!     let http = reqwest::Client::new();
//!     // A saga-style step: the action, and the compensation run if the workflow fails.
//!     let out = wf.new_branch().on_rollback({
//!         let (http, input) = (http.clone(), input.clone());
//!         let undo = http.post("http://bank1/TransOutRevert").body(input);
//!         move |p| async move { p.http(undo).await }
//!     });
//!     out.http(http.post("http://bank1/TransOut").body(input.clone())).await?;
//!     // A FAILURE here rolls back what ran: TransOutRevert is called, the workflow ends failed.
//!     wf.new_branch().http(http.post("http://bank2/TransIn").body(input)).await?;
//!     Ok(b"done".to_vec())
//! })?;
//! let result = workflows.execute("transfer", "gid-1", br#"{"amount":30}"#).await?;
//! # Ok(()) }
//! ```
//!
//! What Go's SDK (`client/workflow`) does, this module does: [`Workflows::register`] at start-up,
//! [`Workflows::execute`] (a finished gid returns its stored result, or its FAILURE); inside, one
//! [`Branch`] per step with `on_rollback`, `on_commit`, `on_finish`; steps that are HTTP calls
//! (reqwest), gRPC calls (tonic) or local ([`Branch::run`], with the barrier through
//! [`crate::BranchDb`]). Every call carries `gid, trans_type=workflow, branch_id, op`.
//! SUCCESS and FAILURE are recorded, ONGOING and errors are not: the workflow stops unsubmitted and
//! the coordinator resumes it later. Then phase two: on success every `on_commit`, on FAILURE
//! every `on_rollback` of the branches that got that far, last branch first — except the rollback
//! of a branch whose own step failed ([`WorkflowOptions::compensate_error_branch`]). A handler that
//! panics is an error like any other: nothing is submitted.
//!
//! Steps run one after another (as in Go, where concurrent branches are "coming soon"). A
//! workflow must be deterministic in the branches it opens: a resume replays them by number.

mod branch;
mod calls;
mod resume;
mod run;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};

use base64::Engine;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use prost::Message;

pub use branch::Branch;
pub use calls::Phase2;
pub use resume::ResumeService;
pub use run::Workflow;

use crate::ClientError;
use crate::client::Dtm;
use crate::proto::workflow::WorkflowData;

/// Why a workflow (or one of its steps) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// A business refusal (a step answered FAILURE, or the handler refused): the workflow rolls
    /// back and ends `failed`.
    #[error("{0}")]
    Failure(String),
    /// Not decided yet (a step answered ONGOING): the workflow stops unsubmitted and is resumed.
    #[error("{0}")]
    Ongoing(String),
    /// Anything else (a transport error, the coordinator, a panic): the workflow stops
    /// unsubmitted and is resumed.
    #[error("{0}")]
    Error(String),
}

impl From<ClientError> for WorkflowError {
    /// The coordinator's answer never ends a workflow: whatever it said, it is resumed later.
    fn from(e: ClientError) -> Self {
        WorkflowError::Error(e.to_string())
    }
}

impl From<crate::xa::XaError> for WorkflowError {
    /// A database without XA can never run an XA step (FAILURE); the rest may pass (an error).
    fn from(e: crate::xa::XaError) -> Self {
        match e {
            crate::xa::XaError::Unsupported(_) => WorkflowError::Failure(e.to_string()),
            _ => WorkflowError::Error(e.to_string()),
        }
    }
}

/// Per-workflow options (Go's `workflow.Options`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkflowOptions {
    /// Also run the `on_rollback` of a branch whose own step answered FAILURE (off: a refused
    /// step did nothing to undo).
    pub compensate_error_branch: bool,
}

/// A workflow's code: its handle and its input in, its result out.
type Handler = Arc<
    dyn Fn(Workflow, Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, WorkflowError>> + Send + Sync,
>;

/// The workflows of an app: registered by name at start-up, executed by name, resumed by the
/// coordinator through [`Workflows::http_router`] or [`Workflows::grpc_service`]. Cheap to clone.
#[derive(Clone)]
pub struct Workflows {
    inner: Arc<Inner>,
}

struct Inner {
    dtm: Dtm,
    resume: String,
    http: reqwest::Client,
    handlers: RwLock<HashMap<String, (Handler, WorkflowOptions)>>,
}

impl Workflows {
    /// The workflows that talk to coordinator `dtm` (its HTTP or its gRPC API) and are resumed
    /// at `resume`: this app's resume URL (`http://host:port/path` where it mounts
    /// [`Workflows::http_router`]) or, with a gRPC coordinator,
    /// `host:port/workflow.Workflow/Execute` (see [`Workflows::grpc_resume`]).
    pub fn new(dtm: Dtm, resume: &str) -> Workflows {
        Workflows {
            inner: Arc::new(Inner {
                dtm,
                resume: resume.to_owned(),
                http: crate::http_client::build(|b| b),
                handlers: RwLock::default(),
            }),
        }
    }

    /// Whether the coordinator is reached over gRPC (and resumes over gRPC).
    pub(crate) fn over_grpc(&self) -> bool {
        self.inner.dtm.protocol() == "grpc"
    }

    /// The resume address of a gRPC server at `host_port`: its `workflow.Workflow/Execute`.
    pub fn grpc_resume(host_port: &str) -> String {
        format!("{host_port}/workflow.Workflow/Execute")
    }

    /// Registers workflow `name` (refused if the name is taken).
    pub fn register<F, Fut>(&self, name: &str, handler: F) -> Result<(), WorkflowError>
    where
        F: Fn(Workflow, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, WorkflowError>> + Send + 'static,
    {
        self.register_with(name, WorkflowOptions::default(), handler)
    }

    /// [`Workflows::register`] with options.
    pub fn register_with<F, Fut>(
        &self,
        name: &str,
        options: WorkflowOptions,
        handler: F,
    ) -> Result<(), WorkflowError>
    where
        F: Fn(Workflow, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, WorkflowError>> + Send + 'static,
    {
        let mut handlers = self.handlers_mut();
        if handlers.contains_key(name) {
            return Err(WorkflowError::Error(format!(
                "a handler already exists for {name}"
            )));
        }
        let handler: Handler = Arc::new(move |wf, input| Box::pin(handler(wf, input)));
        handlers.insert(name.to_owned(), (handler, options));
        Ok(())
    }

    /// Runs workflow `name` as transaction `gid` with `input`: to its end (the handler's result,
    /// or its FAILURE after the rollbacks), or until a step is not decided (ONGOING, an error —
    /// the coordinator resumes it). A gid that ended already returns what it returned.
    pub async fn execute(
        &self,
        name: &str,
        gid: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, WorkflowError> {
        let (handler, options) = self.handlers().get(name).cloned().ok_or_else(|| {
            WorkflowError::Error(format!(
                "workflow '{name}' not registered. please register at startup"
            ))
        })?;
        let i = &self.inner;
        let progress = (i.dtm)
            .prepare_workflow(gid, name, input, &i.resume)
            .await?;
        match progress.status.as_str() {
            "succeed" => {
                return base64::engine::general_purpose::STANDARD
                    .decode(&progress.result)
                    .map_err(|e| WorkflowError::Error(format!("the stored result: {e}")));
            }
            "failed" => return Err(WorkflowError::Failure(progress.rollback_reason)),
            _ => {}
        }
        let wf = Workflow::new(gid, i.dtm.clone(), i.http.clone(), options, progress);
        let run = AssertUnwindSafe(handler(wf.clone(), input.to_vec())).catch_unwind();
        let outcome = run
            .await
            .unwrap_or_else(|panic| Err(panicked("the workflow", &panic)));
        let failed = match &outcome {
            Ok(_) => false,
            Err(WorkflowError::Failure(_)) => true,
            // Not decided: no phase two, no submit; resumed later.
            Err(_) => return outcome,
        };
        wf.phase_two(failed).await?;
        match &outcome {
            Ok(result) => i.dtm.end_workflow(gid, "succeed", "", result).await?,
            Err(e) => {
                i.dtm
                    .end_workflow(gid, "failed", &e.to_string(), b"")
                    .await?
            }
        }
        outcome
    }

    /// Runs a resume: the coordinator's call with `op` = the workflow's name, `gid`, and its
    /// input.
    pub(crate) async fn resume(
        &self,
        name: &str,
        gid: &str,
        input: &[u8],
    ) -> Result<(), WorkflowError> {
        tracing::info!(%gid, workflow = name, "resuming");
        self.execute(name, gid, input).await.map(drop)
    }

    fn handlers(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, (Handler, WorkflowOptions)>> {
        (self.inner.handlers.read()).unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handlers_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (Handler, WorkflowOptions)>> {
        (self.inner.handlers.write()).unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A panic caught in `what`, as the error that leaves the workflow to be resumed.
pub(crate) fn panicked(what: &str, panic: &Box<dyn std::any::Any + Send>) -> WorkflowError {
    let message = (panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(%message, "{what} panicked; it is resumed later");
    WorkflowError::Error(format!("{what} panicked: {message}"))
}

/// The body of a workflow's resume call: its input as it is over HTTP, wrapped in
/// `workflow.WorkflowData` over gRPC (`protocol` `grpc`).
pub fn resume_body(protocol: &str, input: &[u8]) -> Vec<u8> {
    if protocol == "grpc" {
        WorkflowData {
            data: input.to_vec(),
        }
        .encode_to_vec()
    } else {
        input.to_vec()
    }
}
