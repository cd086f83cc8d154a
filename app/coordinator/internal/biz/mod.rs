//! The coordinator's domain: global transactions and branches, the state machine of each
//! [`TransType`], the retry policy, and the traits storage, branch calling and metrics implement.

mod caller;
mod observer;
mod policy;
mod poller;
mod process;
mod store;
mod trans;
mod usecase;

pub use caller::BranchCaller;
pub use observer::{RoundObserver, Unobserved};
pub use policy::Policy;
pub use poller::{POLLER_CONCURRENCY, POLLER_OVERFLOW, SLOW_ROUND};
pub use store::{
    Backlog, Created, Progress, ScanPage, ScanQuery, StatusChange, StoreError, Subscriber, Topic,
    TransStore,
};
pub use trans::{Branch, BranchStatus, Clock, Global, Op, Options, Status, TransType, new_gid};
pub use usecase::{NewBranch, NewTrans, Phase2, TransError, TransUsecase};
