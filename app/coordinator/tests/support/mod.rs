//! What the coordinator's tests share: branches scripted in-process, and a policy.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coordinator::biz::{BranchCaller, Policy};
use dtmcli::DtmResult;
use dtmcli::caller::{BranchRequest, CallError, Reply};

/// Branches that answer by name (the URL's last segment): a fixed result, recorded in order. A
/// dead process calls nothing.
#[derive(Clone, Default)]
pub struct Branches {
    answers: HashMap<String, DtmResult>,
    calls: Arc<Mutex<Vec<(String, String)>>>,
    /// Set when the "process" died: it calls nothing any more.
    pub dead: Arc<AtomicBool>,
    /// When set, every call waits for a permit here first (a slow branch).
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Branches {
    /// Branches answering `answers` by name, SUCCESS for any other name.
    pub fn new(answers: &[(&str, DtmResult)]) -> Branches {
        Branches {
            answers: answers.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
            ..Branches::default()
        }
    }

    /// These branches, each call waiting for a permit of `gate` before it answers.
    pub fn gated(self, gate: Arc<tokio::sync::Semaphore>) -> Branches {
        Branches {
            gate: Some(gate),
            ..self
        }
    }

    /// The same branches and record, called by a new process (the dead flag cleared).
    pub fn revived(&self) -> Branches {
        Branches {
            dead: Arc::new(AtomicBool::new(false)),
            ..self.clone()
        }
    }

    /// (branch name, op) of every call so far, in the order they began.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().expect("calls").clone()
    }

    /// Whether `name` was called.
    pub fn called(&self, name: &str) -> bool {
        self.calls().iter().any(|(n, _)| n == name)
    }
}

#[async_trait::async_trait]
impl BranchCaller for Branches {
    async fn call(&self, req: &BranchRequest<'_>) -> Result<Reply, CallError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(CallError::Transport {
                url: req.url.into(),
                message: "the process is dead".into(),
            });
        }
        let name = req.url.rsplit('/').next().unwrap_or_default().to_owned();
        self.calls
            .lock()
            .expect("calls")
            .push((name.clone(), req.info.op.clone()));
        if let Some(gate) = &self.gate {
            drop(gate.acquire().await);
        }
        let result = self
            .answers
            .get(&name)
            .copied()
            .unwrap_or(DtmResult::Success);
        Ok(Reply { result, body: name })
    }
}

/// Production-like timing; long branch timeouts so that no lease renewal (a timer) writes while
/// a round runs.
pub fn policy() -> Policy {
    Policy {
        retry_interval: Duration::from_secs(1),
        retry_max_interval: Duration::from_secs(8),
        timeout_to_fail: Duration::from_secs(30),
        request_timeout: Duration::from_secs(60),
        trans_cron_interval: Duration::from_millis(10),
    }
}
