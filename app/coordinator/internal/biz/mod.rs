//! The coordinator's domain: global transactions and branches, the state machines of saga, msg
//! and tcc, the retry policy, and the traits storage and branch calling implement.

mod process;
mod store;
mod trans;
mod usecase;

pub use store::{Created, Progress, ScanPage, ScanQuery, StatusChange, StoreError, TransStore};
pub use trans::{Branch, BranchStatus, Clock, Global, Op, Options, Status, TransType, new_gid};
pub use usecase::{
    BranchCaller, NewTccBranch, NewTrans, POLLER_CONCURRENCY, POLLER_OVERFLOW, Policy, SLOW_ROUND,
    TransError, TransUsecase,
};
