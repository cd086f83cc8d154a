//! Domain: orders, the order branches, the rules, and the repository they need.

mod order;

pub use order::{
    Branch, Change, NewOrder, Order, OrderError, OrderRepo, OrderStatus, OrderUsecase, Page,
};
