//! TCC: try / confirm / cancel (docs/dtm-protocol.md, TCC). The client calls the tries and
//! registers each branch's confirm and cancel; the coordinator runs phase two.
//!
//! prepared — timeout → aborting; submitted — confirms, last registered first → succeed;
//! aborting — cancels, last registered first → failed.

use crate::biz::round::{Next, Round, Step};
use crate::biz::{Op, Status, TransError};

/// Whether a tcc that sets no `timeout_to_fail` times out: yes, after the server's.
pub(super) const TIMES_OUT_BY_DEFAULT: bool = true;

/// A registered branch's rows, backward op first (as DTM stores them).
pub(crate) fn rows<'a>(confirm: &'a str, cancel: &'a str) -> [(Op, &'a str); 2] {
    [(Op::Cancel, cancel), (Op::Confirm, confirm)]
}

/// One step of a tcc's round.
pub(super) async fn step(r: &mut Round<'_>) -> Result<Step, TransError> {
    match r.t.global.status {
        Status::Prepared => r.expire().await,
        Status::Submitted => phase_two(r, Op::Confirm, Status::Succeed).await,
        Status::Aborting => phase_two(r, Op::Cancel, Status::Failed).await,
        Status::Succeed | Status::Failed => Ok(Step::Stop(Next::Done)),
    }
}

/// Every `op` branch, one at a time and last registered first (undone in reverse, as a saga
/// is), then `to`.
async fn phase_two(r: &mut Round<'_>, op: Op, to: Status) -> Result<Step, TransError> {
    let order = r.t.pending(|b| b.op == op);
    let waves = order.into_iter().rev().map(|i| vec![i]).collect();
    r.call_all(waves, Some(to)).await
}
