//! What the API operations take: a transaction as a client submits or prepares it, and a branch
//! registration of a tcc or xa.

use std::collections::BTreeMap;

use crate::biz::{Options, TransType};

/// A transaction as a client submits or prepares it.
#[derive(Debug, Clone, Default)]
pub struct NewTrans {
    /// Global transaction id (validated by the service).
    pub gid: String,
    /// Which [`TransType`]; `None` when the client named none (refused).
    pub trans_type: Option<TransType>,
    /// `http`, `grpc` or `json-rpc`.
    pub protocol: String,
    /// Saga `{action, compensate}`, msg `{action}` per step.
    pub steps: Vec<BTreeMap<String, String>>,
    /// One body per step.
    pub payloads: Vec<Vec<u8>>,
    /// JSON text (saga orders / msg delay), stored as sent and parsed by the type's module.
    pub custom_data: String,
    /// Msg check-back URL.
    pub query_prepared: String,
    /// Timeouts, retries, `wait_result`, branch headers (DTM's transaction options).
    pub options: Options,
    /// Abort: why.
    pub rollback_reason: String,
}

/// A branch registration of a tcc or xa: its two phase-two calls and the body they get.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Global transaction id.
    pub gid: String,
    /// Chosen by the client (`01`, `0201`, …).
    pub branch_id: String,
    /// What the branch does in phase two.
    pub phase2: Phase2,
    /// Request body of both calls (xa branches have none).
    pub data: Vec<u8>,
}

/// The phase-two URLs of a registered branch.
#[derive(Debug, Clone)]
pub enum Phase2 {
    /// TCC: confirm on submit, cancel on abort.
    Tcc {
        /// Called on submit.
        confirm: String,
        /// Called on abort.
        cancel: String,
    },
    /// XA: the branch's own URL (DTM's `phase2_url`), with op `commit` or `rollback`.
    Xa {
        /// Called with op `commit` on submit and op `rollback` on abort.
        url: String,
    },
}

impl Phase2 {
    /// The type of transaction these branches belong to.
    pub(crate) fn trans_type(&self) -> TransType {
        match self {
            Phase2::Tcc { .. } => TransType::Tcc,
            Phase2::Xa { .. } => TransType::Xa,
        }
    }
}
