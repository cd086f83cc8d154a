//! The proto's `Order` service: one struct for gRPC and HTTP, DTO ↔ domain, errors → results.

mod order;

pub use order::OrderService;
