//! The stock service, kratos layout: `server` → `service` → `biz` ← `data`.
//!
//! - [`biz`]: what a SKU is, what every DTM branch does to its counters, the repository trait;
//! - [`data`]: the repository over SQLite/PostgreSQL/MySQL, each branch behind the barrier;
//! - [`service`]: the proto's `Stock` service (both transports), DTO ↔ domain, errors → results;
//! - [`server`]: the HTTP router and the gRPC server for the app;
//! - [`conf`]: the config schema.
//!
//! Copy this crate to start a new service (docs/template.md).

#![warn(missing_docs)]

pub mod biz;
pub mod conf;
pub mod data;
pub mod server;
pub mod service;
