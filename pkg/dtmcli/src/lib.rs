//! `dtmcli`: the Rust DTM SDK — the branch side, the client side and the branch caller.
//!
//! A branch (a saga action, a TCC try, a msg action…) is an ordinary HTTP or gRPC method that the
//! DTM coordinator calls with the transaction context. This crate gives it:
//!
//! - [`BranchInfo`]: that context, read from gRPC metadata `dtm-*` (HTTP query parameters are
//!   copied there by the transcoder, so one reader serves both transports);
//! - [`result`]: SUCCESS / FAILURE / ONGOING and their HTTP and gRPC codes — the one table;
//! - [`BranchDb`]: a service's database, which runs every branch's business write the way its
//!   context says (barrier, XA prepare, XA phase two) and answers the msg check-back;
//! - [`barrier`]: the sub-transaction barrier that makes a branch idempotent and safe against null
//!   compensation and hanging, inside the caller's local transaction (SQLite, PostgreSQL, MySQL);
//! - [`dialect`]: the three SQL dialects the barrier and the apps' repositories speak;
//! - [`caller`]: calling a branch as DTM does, over HTTP and (dynamically) gRPC;
//! - [`client`]: the client side — [`Saga`], [`Msg`], [`Tcc`], [`Xa`] over the coordinator's HTTP
//!   or gRPC API;
//! - [`xa`]: the branch side of XA — a local transaction prepared in MySQL/MariaDB or
//!   PostgreSQL, registered with the coordinator, committed or rolled back in phase two;
//! - [`proto`]: DTM's gRPC contract (`dtmgimp`), the client the SDK uses and the server a
//!   coordinator implements.
//!
//! Feature `registry` (on by default): `discovery:///` and `etcd://` addresses for branches and
//! for the coordinator. The test helpers live in the dev-only crate `dtmtest`.

#![warn(missing_docs)]

pub mod barrier;
pub mod branch;
pub mod branch_db;
pub mod caller;
pub mod client;
pub mod dialect;
pub mod http_client;
pub mod result;
pub mod workflow;
pub mod xa;

/// DTM's gRPC contract, `dtmgimp` (`proto/dtmgimp.proto`, DTM's package and field numbers).
pub mod proto {
    #![allow(missing_docs)]
    tonic::include_proto!("dtmgimp");

    /// The encoded `FileDescriptorSet` of `dtmgimp.proto` and its imports, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dtmgimp.bin"));

    /// The workflow resume service, `workflow.Workflow` (`proto/wf.proto`, DTM's package): a
    /// workflow's client serves it, the coordinator calls it.
    pub mod workflow {
        #![allow(missing_docs)]
        tonic::include_proto!("workflow");
    }
}

pub use barrier::{BarrierError, BarrierMetrics, BranchBarrier, Outcome};
pub use branch::{BranchInfo, Op, TransType};
pub use branch_db::{BranchDb, BranchDbError};
pub use client::{ClientError, DoAndSubmitError, Dtm, Msg, Options, Saga, Tcc, Xa};
pub use dialect::Dialect;
pub use result::{BranchError, DtmResult, refuse};
