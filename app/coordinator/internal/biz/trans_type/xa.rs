//! XA: branches prepared in their own databases, then all committed or all rolled back
//! (docs/dtm-protocol.md, XA). Each branch registers one URL, called in phase two with op
//! `commit` or `rollback`.
//!
//! prepared — timeout → aborting; submitted — commits, in registration order → succeed;
//! aborting — rollbacks, in registration order → failed.

use crate::biz::round::{Next, Round, Step};
use crate::biz::{Op, Status, TransError};

/// Whether an xa that sets no `timeout_to_fail` times out: yes, after the server's (a prepared
/// XA transaction holds its locks until then).
pub(super) const TIMES_OUT_BY_DEFAULT: bool = true;

/// A registered branch's rows, backward op first (as DTM stores them).
pub(crate) fn rows(url: &str) -> [(Op, &str); 2] {
    [(Op::Rollback, url), (Op::Commit, url)]
}

/// One step of an xa's round.
pub(super) async fn step(r: &mut Round<'_>) -> Result<Step, TransError> {
    match r.t.global.status {
        Status::Prepared => r.expire().await,
        Status::Submitted => phase_two(r, Op::Commit, Status::Succeed).await,
        Status::Aborting => phase_two(r, Op::Rollback, Status::Failed).await,
        Status::Succeed | Status::Failed => Ok(Step::Stop(Next::Done)),
    }
}

/// Every `op` branch, one at a time in registration order as DTM does (each commits or rolls
/// back its own prepared transaction, so the order does not matter), then `to`.
async fn phase_two(r: &mut Round<'_>, op: Op, to: Status) -> Result<Step, TransError> {
    let waves =
        r.t.pending(|b| b.op == op)
            .into_iter()
            .map(|i| vec![i])
            .collect();
    r.call_all(waves, Some(to)).await
}
