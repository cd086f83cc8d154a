//! The order service, kratos layout: `server` → `service` → `biz` ← `data`.
//!
//! - [`biz`]: what an order is, what every DTM branch does to its status, the repository trait;
//! - [`data`]: the repository over SQLite/PostgreSQL/MySQL, each branch behind the barrier;
//! - [`service`]: the proto's `Order` service (both transports), DTO ↔ domain, errors → results;
//! - [`server`]: the HTTP router and the gRPC server for the app;
//! - [`conf`]: the config schema.

#![warn(missing_docs)]

pub mod biz;
pub mod conf;
pub mod data;
pub mod server;
pub mod service;
