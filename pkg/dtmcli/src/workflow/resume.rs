//! Where the coordinator resumes an app's workflows: an HTTP route (Go's `ExecuteByQS`) and the
//! gRPC service `workflow.Workflow`, each mounted with one call. Both run the workflow named by
//! `op` as transaction `gid`, and answer as a branch does: SUCCESS when it ended (either way:
//! the coordinator only needs to know it was submitted), ONGOING when a step is not decided yet,
//! an error otherwise — the coordinator calls again later.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::BranchError;
use crate::proto::workflow::WorkflowData;
use crate::proto::workflow::workflow_server::{Workflow as WorkflowApi, WorkflowServer};
use crate::workflow::{WorkflowError, Workflows};

impl Workflows {
    /// The HTTP resume route at `path` (`POST`, and `GET` for a workflow without input): mount
    /// it in the app's HTTP server, at the URL given to [`Workflows::new`].
    pub fn http_router(&self, path: &str) -> axum::Router {
        axum::Router::new()
            .route(path, axum::routing::post(http_resume).get(http_resume))
            .with_state(self.clone())
    }

    /// The gRPC resume service, `workflow.Workflow/Execute`: add it to the app's gRPC server.
    pub fn grpc_service(&self) -> WorkflowServer<ResumeService> {
        WorkflowServer::new(ResumeService(self.clone()))
    }

    /// Mounts the resume entry point the coordinator calls these workflows back at: the HTTP
    /// route at `http_path` for a coordinator reached over HTTP, the gRPC service for one
    /// reached over gRPC.
    pub fn mount(&self, app: kit::AppBuilder, http_path: &str) -> kit::AppBuilder {
        if self.over_grpc() {
            app.grpc(self.grpc_service())
        } else {
            app.http(self.http_router(http_path))
        }
    }
}

async fn http_resume(
    State(workflows): State<Workflows>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let get = |k: &str| query.get(k).map_or("", String::as_str);
    let (gid, name) = (get("gid"), get("op"));
    match answer(workflows.resume(name, gid, &body).await) {
        Ok(()) => axum::Json(serde_json::json!({"dtm_result": "SUCCESS"})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The gRPC resume service (see [`Workflows::grpc_service`]).
#[derive(Clone)]
pub struct ResumeService(Workflows);

#[tonic::async_trait]
impl WorkflowApi for ResumeService {
    async fn execute(
        &self,
        req: tonic::Request<WorkflowData>,
    ) -> Result<tonic::Response<()>, tonic::Status> {
        let md = req.metadata();
        let get = |k: &str| {
            md.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (gid, name) = (get("dtm-gid"), get("dtm-op"));
        let input = req.into_inner().data;
        answer(self.0.resume(&name, &gid, &input).await)
            .map(|()| tonic::Response::new(()))
            .map_err(tonic::Status::from)
    }
}

/// A resumed workflow's outcome as a branch's answer: ended (succeed or failed) is SUCCESS — it
/// was submitted; not decided is ONGOING; anything else an error.
fn answer(outcome: Result<(), WorkflowError>) -> Result<(), kit::Error> {
    match outcome {
        Ok(()) | Err(WorkflowError::Failure(_)) => Ok(()),
        Err(WorkflowError::Ongoing(m)) => Err(BranchError::Ongoing(m).into()),
        Err(WorkflowError::Error(m)) => Err(kit::Error::new(500, "WORKFLOW", m)),
    }
}
