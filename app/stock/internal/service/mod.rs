//! The proto's `Stock` service: one struct for gRPC and HTTP, DTO ↔ domain, errors → results.

mod stock;

pub use stock::StockService;
