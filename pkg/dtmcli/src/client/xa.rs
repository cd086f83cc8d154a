//! [`Xa`]: Go's `xa.go` (`XaGlobalTransaction`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

use super::{ClientError, Dtm, Trans, json_payload, option_setters};
use crate::{BranchInfo, Op, TransType};

/// An XA global transaction. [`Xa::run`] prepares it, runs your closure — which calls each
/// branch through [`Xa::call_branch`] — and then always settles it: submit (every branch
/// commits its prepared local transaction) when the closure returns `Ok`, abort (every branch
/// rolls back) when it returns `Err` or panics.
///
/// Each branch does its work in an XA local transaction, prepares it and registers itself
/// with the coordinator ([`crate::BranchDb::run`]); the coordinator then calls the same
/// URL with op `commit` or `rollback` (docs/dtm-protocol.md, XA).
#[must_use = "an XA transaction does nothing until it is run"]
#[derive(Clone)]
pub struct Xa {
    dtm: Dtm,
    t: Trans,
    /// Shared by the clones a closure may hold: branch ids stay unique.
    next_branch: Arc<AtomicU32>,
}

option_setters!(Xa);

impl Xa {
    /// An XA transaction with this gid.
    pub fn new(dtm: &Dtm, gid: &str) -> Xa {
        Xa {
            dtm: dtm.clone(),
            t: Trans::new(dtm, gid, TransType::Xa),
            next_branch: Arc::new(AtomicU32::new(1)),
        }
    }

    /// The gid.
    pub fn gid(&self) -> &str {
        &self.t.gid
    }

    /// Prepares the transaction, runs `branches` with a handle for [`Xa::call_branch`], then
    /// submits if it returned `Ok` and aborts if it returned `Err` or panicked, as
    /// [`crate::Tcc::run`] does.
    pub async fn run<T, F, Fut>(self, branches: F) -> Result<T, ClientError>
    where
        F: FnOnce(Xa) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let body = branches(self.clone());
        self.dtm.two_phase(self.t, body).await
    }

    /// Calls an XA branch (op `action`) with `payload`, already encoded, telling it the
    /// coordinator's address (`dtm`) and its own URL (`phase2_url`) so that it can register
    /// itself. `Err` means the branch did not prepare: return it from the closure.
    pub async fn call_branch(&self, payload: &[u8], url: &str) -> Result<(), ClientError> {
        let n = self.next_branch.fetch_add(1, Ordering::SeqCst);
        let info = BranchInfo {
            gid: self.t.gid.clone(),
            trans_type: TransType::Xa,
            branch_id: format!("{n:02}"),
            op: Op::Action,
            dtm: self.dtm.address().to_owned(),
            phase2_url: url.to_owned(),
        };
        self.dtm
            .call_first_phase(&self.t, &info, url, payload)
            .await
    }

    /// [`Xa::call_branch`] with `payload` as JSON (HTTP branches).
    pub async fn call_branch_json(
        &self,
        payload: &impl Serialize,
        url: &str,
    ) -> Result<(), ClientError> {
        let payload = json_payload(payload)
            .map_err(|e| ClientError::call(format!("the payload of {url}"), e))?;
        self.call_branch(&payload, url).await
    }

    /// [`Xa::call_branch`] with `payload` as protobuf (gRPC branches).
    pub async fn call_branch_proto(
        &self,
        payload: &impl prost::Message,
        url: &str,
    ) -> Result<(), ClientError> {
        self.call_branch(&payload.encode_to_vec(), url).await
    }
}
