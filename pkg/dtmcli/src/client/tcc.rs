//! [`Tcc`]: Go's `tcc.go` (`TccGlobalTransaction`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

use super::{ClientError, Dtm, Trans, json_payload, option_setters};
use crate::{BranchInfo, Op, TransType};

/// A TCC global transaction. [`Tcc::run`] prepares it, runs your closure — which calls each
/// try through [`Tcc::call_branch`] — and then always settles it: submit (confirm every
/// branch) when the closure returns `Ok`, abort (cancel every branch) when it returns `Err` or
/// panics.
#[must_use = "a TCC transaction does nothing until it is run"]
#[derive(Clone)]
pub struct Tcc {
    dtm: Dtm,
    t: Trans,
    /// Shared by the clones a closure may hold: branch ids stay unique.
    next_branch: Arc<AtomicU32>,
}

option_setters!(Tcc);

impl Tcc {
    /// A TCC transaction with this gid.
    pub fn new(dtm: &Dtm, gid: &str) -> Tcc {
        Tcc {
            dtm: dtm.clone(),
            t: Trans::new(dtm, gid, TransType::Tcc),
            next_branch: Arc::new(AtomicU32::new(1)),
        }
    }

    /// The gid.
    pub fn gid(&self) -> &str {
        &self.t.gid
    }

    /// Prepares the transaction, runs `tries` with a handle for [`Tcc::call_branch`], then
    /// submits if it returned `Ok` and aborts (its error as the rollback reason) if it returned
    /// `Err` or panicked — the panic then continues. With [`Tcc::wait_result`], a clean abort
    /// answers [`ClientError::Failure`] (the transaction rolled back, as a saga's says it);
    /// otherwise the coordinator's error, if it had one.
    pub async fn run<T, F, Fut>(self, tries: F) -> Result<T, ClientError>
    where
        F: FnOnce(Tcc) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let body = tries(self.clone());
        self.dtm.two_phase(self.t, body).await
    }

    /// Registers a branch (its confirm and cancel) and calls its try with `payload`, already
    /// encoded. `Err` means the try did not succeed: return it from the closure, and the
    /// coordinator cancels.
    pub async fn call_branch(
        &self,
        payload: &[u8],
        try_url: &str,
        confirm: &str,
        cancel: &str,
    ) -> Result<(), ClientError> {
        let n = self.next_branch.fetch_add(1, Ordering::SeqCst);
        let info = BranchInfo {
            gid: self.t.gid.clone(),
            trans_type: TransType::Tcc,
            branch_id: format!("{n:02}"),
            op: Op::Try,
            dtm: self.dtm.address().to_owned(),
            phase2_url: String::new(),
        };
        let phase2 = [("confirm", confirm), ("cancel", cancel)];
        self.dtm.register_branch(&info, &phase2, payload).await?;
        self.dtm
            .call_first_phase(&self.t, &info, try_url, payload)
            .await
    }

    /// [`Tcc::call_branch`] with `payload` as JSON (HTTP branches).
    pub async fn call_branch_json(
        &self,
        payload: &impl Serialize,
        try_url: &str,
        confirm: &str,
        cancel: &str,
    ) -> Result<(), ClientError> {
        let payload = json_payload(payload)
            .map_err(|e| ClientError::call(format!("the payload of {try_url}"), e))?;
        self.call_branch(&payload, try_url, confirm, cancel).await
    }

    /// [`Tcc::call_branch`] with `payload` as protobuf (gRPC branches).
    pub async fn call_branch_proto(
        &self,
        payload: &impl prost::Message,
        try_url: &str,
        confirm: &str,
        cancel: &str,
    ) -> Result<(), ClientError> {
        let payload = payload.encode_to_vec();
        self.call_branch(&payload, try_url, confirm, cancel).await
    }
}
