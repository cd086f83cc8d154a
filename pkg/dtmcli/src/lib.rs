//! `dtmcli`: the Rust DTM SDK, branch side.
//!
//! A branch (a saga action, a TCC try, a msg action…) is an ordinary HTTP or gRPC method that the
//! DTM coordinator calls with the transaction context. This crate gives it:
//!
//! - [`BranchInfo`]: that context, read from gRPC metadata `dtm-*` (HTTP query parameters are
//!   copied there by the transcoder, so one reader serves both transports);
//! - [`result`]: SUCCESS / FAILURE / ONGOING and their HTTP and gRPC codes — the one table;
//! - [`barrier`]: the sub-transaction barrier that makes a branch idempotent and safe against
//!   null compensation and hanging, inside the caller's local transaction (SQLite, PostgreSQL, MySQL);
//! - [`dialect`]: the three SQL dialects the barrier and the apps' repositories speak;
//! - [`wire`]: the coordinator's request bodies, read as tolerantly as DTM reads them;
//! - [`caller`]: calling a branch as DTM does, over HTTP and (dynamically) gRPC;
//! - [`client`]: the client side — [`Saga`], [`Msg`], [`Tcc`] over the coordinator's HTTP or gRPC API.

#![warn(missing_docs)]

pub mod barrier;
pub mod branch;
pub mod caller;
pub mod client;
pub mod dialect;
pub mod policy;
pub mod result;
#[cfg(feature = "testing")]
pub mod script;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use barrier::{BarrierError, BranchBarrier, Outcome};
pub use branch::BranchInfo;
pub use client::{ClientError, Dtm, Msg, Options, Saga, Tcc};
pub use dialect::Dialect;
pub use result::{BranchError, DtmResult, refuse};
