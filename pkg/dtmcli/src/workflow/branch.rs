//! One branch of a running workflow: its phase-two callbacks, then its one step — local, XA,
//! an HTTP or gRPC call, or a call through the SDK's branch caller.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::AnyConnection;

use crate::caller::Caller;
use crate::workflow::WorkflowError;
use crate::workflow::calls::{Phase2, call, definite, send_grpc, send_http};
use crate::workflow::run::{Phase2Fn, Step, Workflow};
use crate::xa;
use crate::{BranchDb, BranchInfo, Op, Outcome};

/// One branch of a workflow: its phase-two callbacks, then its one step. Set the callbacks
/// first — a step's FAILURE decides whether its own rollback runs.
pub struct Branch {
    pub(super) wf: Workflow,
    pub(super) id: String,
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

    /// An XA step on this service's own database (MySQL/MariaDB or PostgreSQL): `busi` writes in
    /// a local transaction that is prepared, not committed; the workflow commits it if it
    /// succeeds and rolls it back if it fails (Go's `DoXa`). The step is recorded as `business`
    /// once its business is done, before the prepare: a resume that finds that record without
    /// the step's own cannot know whether the prepare happened, and rolls the workflow back.
    pub async fn xa<F>(self, db: &BranchDb, busi: F) -> Result<Vec<u8>, WorkflowError>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(), WorkflowError>>,
    {
        let info = self.info();
        let (wf, id) = (self.wf.clone(), self.id.clone());
        let reached_prepare = {
            let key = (id.clone(), Op::Business.as_str().to_owned());
            wf.lock().recorded.contains_key(&key)
        };
        let pool = db.pool.clone();
        let run = async move {
            if reached_prepare {
                return Err(WorkflowError::Failure(format!(
                    "the XA step {} stopped at its prepare: not resumable, rolled back",
                    info.branch_id
                )));
            }
            let (gid, dtm) = (&wf.shared.gid, &wf.shared.dtm);
            let business =
                dtm.record_workflow_step(gid, &info.branch_id, Op::Business, "succeed", b"");
            match xa::prepare_with(&pool, &info, business, busi).await {
                Ok(Outcome::Applied(()) | Outcome::Duplicate) => Ok(Step::Succeed(Vec::new())),
                Ok(other) => Err(WorkflowError::Failure(format!(
                    "the XA step {} was rolled back before it ran ({})",
                    info.branch_id,
                    other.as_str()
                ))),
                Err(e) => definite(Err(e)),
            }
        };
        let result = self.wf.recorded(&self.id, Op::Action, run).await;
        // Its phase two, whichever way the workflow ends (an unknown xid is done already).
        let pool = db.pool.clone();
        let _ = self.on_finish(move |p, _| {
            let pool = pool.clone();
            async move {
                let done = xa::phase_two(&pool, p.info()).await;
                done.map(drop)
                    .map_err(|e| WorkflowError::Error(e.to_string()))
            }
        });
        result
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
