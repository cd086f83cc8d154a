//! The global transaction and its branches, as stored and as every state machine reads them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kit::time::UnixMs;

/// The transaction types and branch ops, the SDK's own enums: one definition for the
/// coordinator and the services.
pub use dtmcli::{Op, TransType};

/// A global transaction's status (docs/dtm-protocol.md, Statuses and state machines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created by prepare; branches may still be registered.
    Prepared,
    /// Going forward.
    Submitted,
    /// Rolling back.
    Aborting,
    /// Final: done.
    Succeed,
    /// Final: rolled back (or force-stopped).
    Failed,
}

impl Status {
    /// DTM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Prepared => "prepared",
            Status::Submitted => "submitted",
            Status::Aborting => "aborting",
            Status::Succeed => "succeed",
            Status::Failed => "failed",
        }
    }

    /// Parses DTM's spelling.
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Prepared,
            Status::Submitted,
            Status::Aborting,
            Status::Succeed,
            Status::Failed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// `succeed` or `failed`: nothing will change any more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeed | Status::Failed)
    }
}

/// A branch row's status: `prepared` until it is answered, then `succeed`, or (only a saga
/// action) `failed`. Spelled as DTM spells them, like [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchStatus {
    /// Not answered yet.
    Prepared,
    /// Answered SUCCESS.
    Succeed,
    /// A saga action that answered FAILURE.
    Failed,
}

impl BranchStatus {
    /// DTM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BranchStatus::Prepared => "prepared",
            BranchStatus::Succeed => "succeed",
            BranchStatus::Failed => "failed",
        }
    }

    /// Parses DTM's spelling.
    pub fn parse(s: &str) -> Option<BranchStatus> {
        [
            BranchStatus::Prepared,
            BranchStatus::Succeed,
            BranchStatus::Failed,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// The per-transaction options (docs/dtm-protocol.md, Transaction options), the SDK's own type;
/// stored as JSON in `options`.
pub use dtmcli::Options;

/// A global transaction row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Store id (insertion order; the `all` cursor).
    pub id: i64,
    /// Global transaction id.
    pub gid: String,
    /// Which [`TransType`].
    pub trans_type: TransType,
    /// Where it is.
    pub status: Status,
    /// `http` or `grpc`: how URLs without a scheme are called.
    pub protocol: String,
    /// Msg check-back URL.
    pub query_prepared: String,
    /// Saga concurrency / msg delay (JSON text, as sent).
    pub custom_data: String,
    /// Timeouts, retries, `wait_result`, branch headers, as the client sent them.
    pub options: Options,
    /// Why it rolled back.
    pub rollback_reason: String,
    /// What a workflow returned, as its client submitted it (base64 text); empty otherwise.
    pub result: String,
    /// When it was created.
    pub create_time: UnixMs,
    /// When it last changed.
    pub update_time: UnixMs,
    /// When it reached a final status.
    pub finish_time: Option<UnixMs>,
    /// When it began to roll back.
    pub rollback_time: Option<UnixMs>,
    /// Current retry interval (doubles per error, up to the cap; stored in ms).
    pub next_cron_interval: Duration,
    /// When the poller may take it next (also the end of the current lease).
    pub next_cron_time: UnixMs,
    /// The coordinator instance that last leased it.
    pub owner: String,
}

/// A transaction's `custom_data`, parsed once for its type (by the type's module in
/// `trans_type`) and kept with the transaction while a round drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomData {
    /// A saga's concurrency and orders.
    Saga(SagaData),
    /// A msg's delay.
    Msg(MsgData),
    /// A workflow's name and input.
    Workflow(WorkflowData),
    /// Nothing to read (tcc, xa).
    None,
}

/// A saga's `custom_data`: `{"concurrent":bool,"orders":{"<i>":[<j>,..]}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaData {
    /// Start the actions in parallel, each once the steps it waits for succeeded.
    pub concurrent: bool,
    /// Step index → the steps it waits for (0-based).
    pub orders: std::collections::BTreeMap<usize, Vec<usize>>,
}

/// A msg's `custom_data`: `{"delay":<seconds>}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgData {
    /// Seconds to wait after submit before calling the branches.
    pub delay: i64,
}

/// A workflow's `custom_data`: `{"name":"<workflow>","data":"<input, base64>"}`, what its resume
/// sends back to the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowData {
    /// The workflow's name, the resume's `op`.
    pub name: String,
    /// Its input, the resume's body.
    pub data: Vec<u8>,
}

/// A branch row: one call the coordinator makes (or, in a workflow, one step its client made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Store id (insertion order, which processing relies on).
    pub id: i64,
    /// Global transaction id.
    pub gid: String,
    /// What to call.
    pub url: String,
    /// The request body, verbatim.
    pub bin_data: Vec<u8>,
    /// `01`, `02`, … (opaque).
    pub branch_id: String,
    /// What this call does.
    pub op: Op,
    /// prepared, succeed, failed.
    pub status: BranchStatus,
    /// When it was created.
    pub create_time: UnixMs,
    /// When it last changed.
    pub update_time: UnixMs,
    /// When it reached succeed/failed.
    pub finish_time: Option<UnixMs>,
}

impl Branch {
    /// A new `prepared` branch row.
    pub fn new(
        gid: &str,
        branch_id: String,
        op: Op,
        url: &str,
        data: &[u8],
        now: UnixMs,
    ) -> Branch {
        Branch {
            id: 0,
            gid: gid.to_owned(),
            url: url.to_owned(),
            bin_data: data.to_vec(),
            branch_id,
            op,
            status: BranchStatus::Prepared,
            create_time: now,
            update_time: now,
            finish_time: None,
        }
    }

    /// Records the branch's answer as the stores write it: its status, answered `now`.
    pub fn answered(&mut self, status: BranchStatus, now: UnixMs) {
        self.status = status;
        self.update_time = now;
        self.finish_time = Some(now);
    }
}

/// Time as the coordinator sees it: the system clock, which tests may move forward (as DTM's
/// own tests do) instead of sleeping through production intervals.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Now.
    pub fn now(&self) -> UnixMs {
        UnixMs(
            UnixMs::now()
                .0
                .saturating_add(self.offset_ms.load(Ordering::Relaxed)),
        )
    }

    /// Moves this clock (and every clone) forward.
    pub fn advance(&self, d: Duration) {
        self.offset_ms
            .fetch_add(kit::time::millis(d), Ordering::Relaxed);
    }
}

/// A new gid: 22 characters of base57 over 128 random bits (DTM's shortuuid shape), so gids from
/// several coordinator instances never collide.
pub fn new_gid() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut out = [b'2'; 22];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(n % 57) as usize];
        n /= 57;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_are_22_base57_chars_and_differ() {
        let (a, b) = (new_gid(), new_gid());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"01IOl".contains(c))
        );
    }

    #[test]
    fn spellings_round_trip() {
        for s in [
            Status::Prepared,
            Status::Submitted,
            Status::Aborting,
            Status::Succeed,
            Status::Failed,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_clock_moves_forward_for_every_clone() {
        let c = Clock::default();
        let d = c.clone();
        let before = d.now();
        c.advance(std::time::Duration::from_secs(3600));
        assert!(d.now() >= before + Duration::from_secs(3_600));
    }
}
