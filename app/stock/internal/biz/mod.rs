//! Domain: SKUs, the stock branches, the rules, and the repository they need.

mod stock;

pub use stock::{
    Branch, MAX_COUNTER, MAX_QUANTITY, Movement, Stock, StockError, StockRepo, StockUsecase,
};
