//! Domain: orders, the order branches, the rules, and what they need: the repository and the
//! global transactions.

mod order;

pub use order::{
    Branch, Change, GlobalOutcome, Mode, NewOrder, Order, OrderError, OrderRepo, OrderStatus,
    OrderUsecase, Page, Transactions, Transport,
};
