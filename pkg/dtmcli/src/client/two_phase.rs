//! What TCC and XA share on the client side: calling the first-phase branches, and prepare →
//! closure → submit or abort.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::caller::CallRequest;
use crate::client::trans::{Trans, TransOp};
use crate::client::{ClientError, Dtm};
use crate::{BranchInfo, DtmResult};

impl Dtm {
    /// Calls a branch the client itself calls (a TCC try, an XA action) with `payload`:
    /// `Ok` on SUCCESS, else why not (`Err` from the closure of [`Tcc::run`] / [`Xa::run`]
    /// then rolls the transaction back).
    pub(crate) async fn call_first_phase(
        &self,
        t: &Trans,
        info: &BranchInfo,
        url: &str,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let result = self
            .caller
            .call(&CallRequest {
                url,
                protocol: t.protocol,
                body: payload,
                info,
                headers: &t.options.branch_headers,
                timeout: self.timeout,
                op_name: None,
            })
            .await?;
        match result.result {
            DtmResult::Success => Ok(()),
            DtmResult::Failure => Err(ClientError::Failure(format!(
                "{} {url} answered FAILURE: {}",
                info.op, result.body
            ))),
            DtmResult::Ongoing => Err(ClientError::Ongoing(format!(
                "{} {url} answered ONGOING",
                info.op
            ))),
        }
    }

    /// Runs a TCC or XA transaction: prepare, then `body`, then submit if it returned `Ok`,
    /// abort (its error as the rollback reason) if it returned `Err` or panicked — the panic
    /// then continues. A clean abort answers [`ClientError::Failure`].
    pub(crate) async fn two_phase<T>(
        &self,
        mut t: Trans,
        body: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        self.trans(TransOp::Prepare, &t).await?;
        match AssertUnwindSafe(body).catch_unwind().await {
            Ok(Ok(value)) => {
                self.trans(TransOp::Submit, &t).await?;
                Ok(value)
            }
            Ok(Err(e)) => {
                t.rollback_reason = e.to_string();
                self.trans(TransOp::Abort, &t).await?;
                Err(ClientError::Failure(format!("rolled back: {e}")))
            }
            Err(panic) => {
                t.rollback_reason = format!(
                    "the {} closure panicked",
                    t.trans_type.as_str().to_uppercase()
                );
                // The panic is what the caller must see; a failed abort is settled by the
                // coordinator's timeout (prepared TCC and XA transactions roll back when they
                // expire).
                let _ = self.trans(TransOp::Abort, &t).await;
                std::panic::resume_unwind(panic)
            }
        }
    }
}
