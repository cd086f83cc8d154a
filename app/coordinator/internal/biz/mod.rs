//! The coordinator's domain: global transactions and branches, the state machine of each
//! [`TransType`] (one module each in `trans_type`), the rounds that run them, the retry policy,
//! and the traits storage, branch calling and the metrics implement.

mod caller;
mod drive;
mod driver;
mod error;
mod observer;
mod policy;
mod poller;
mod request;
mod round;
mod store;
mod topics;
mod trans;
mod trans_type;
mod usecase;

pub use caller::BranchCaller;
pub use error::TransError;
pub use observer::{RoundObserver, Unobserved};
pub use policy::{MAX_REQUEST_TIMEOUT_SECS, MAX_RETRY_LIMIT, MAX_TIMEOUT_SECS, Policy};
pub use poller::{POLLER_CONCURRENCY, POLLER_OVERFLOW, Poller, SLOW_ROUND};
pub use request::{NewTrans, Phase2, Registration};
pub use store::{
    Backlog, Created, Leased, Progress, ScanPage, ScanQuery, StatusChange, StoreError, Subscriber,
    Topic, TransStore,
};
pub use topics::TopicUsecase;
pub use trans::{
    Branch, BranchStatus, Clock, CustomData, Global, MsgData, Op, Options, SagaData, Status,
    TransType, WorkflowData, new_gid,
};
pub use trans_type::workflow::{STEP_OPS, WorkflowEnd, WorkflowStep};
pub use usecase::TransUsecase;
