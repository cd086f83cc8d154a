//! A running workflow: its record (what earlier runs of it left at the coordinator), the
//! branches it opens, each step recorded once it has a definite answer and replayed from that
//! record when the workflow runs again, and phase two, last branch first.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::client::{Dtm, Progress};
use crate::workflow::branch::Branch;
use crate::workflow::calls::Phase2;
use crate::workflow::{WorkflowError, WorkflowOptions, panicked};
use crate::{BranchInfo, Op, TransType};

/// A phase-two callback: given its context, it commits or undoes its branch.
pub(super) type Phase2Fn =
    Box<dyn FnOnce(Phase2) -> BoxFuture<'static, Result<(), WorkflowError>> + Send>;

/// A workflow while its handler runs: where branches come from. Cheap to clone.
#[derive(Clone)]
pub struct Workflow {
    pub(super) shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
}

pub(super) struct Shared {
    pub(super) gid: String,
    pub(super) dtm: Dtm,
    pub(super) http: reqwest::Client,
    options: WorkflowOptions,
}

pub(super) struct State {
    /// What was recorded before this run: `(branch_id, op)` → the step's answer.
    pub(super) recorded: HashMap<(String, String), Step>,
    /// Branches opened so far.
    branches: u32,
    /// Branch id → its phase-two callbacks, in the order the branches were opened.
    pub(super) on_commit: Vec<(String, Phase2Fn)>,
    pub(super) on_rollback: Vec<(String, Phase2Fn)>,
}

/// A definite answer of a step: what is recorded and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
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

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        (self.state.lock()).unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The context of a call of branch `branch_id` with `op`.
    pub(super) fn info(&self, branch_id: &str, op: Op) -> BranchInfo {
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
    pub(super) async fn recorded(
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
