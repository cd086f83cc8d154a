//! Domain: orders, the order branches, the rules, and what they need: the repository and the
//! global transactions.

mod order;
mod transactions;
mod usecase;

pub use order::{Branch, Change, NewOrder, Order, OrderError, OrderRepo, OrderStatus, Page};
pub use transactions::{GlobalOutcome, LocalStep, Mode, Transactions, Transport};
pub use usecase::OrderUsecase;
