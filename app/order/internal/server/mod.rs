//! The servers: the generated HTTP routes and the tonic server, both over one service.

use std::sync::Arc;

use api::order::v1::{order_server::OrderServer, register_order_http_server};

use crate::biz::{OrderRepo, Transactions};
use crate::service::OrderService;

/// The HTTP/JSON router, generated from the proto's `google.api.http` annotations.
pub fn new_http_server<R: OrderRepo, T: Transactions>(
    svc: Arc<OrderService<R, T>>,
) -> axum::Router {
    register_order_http_server(axum::Router::new(), svc)
}

/// The gRPC server, with the configured message size limit.
pub fn new_grpc_server<R: OrderRepo, T: Transactions>(
    conf: &kit::ServersConf,
    svc: Arc<OrderService<R, T>>,
) -> OrderServer<OrderService<R, T>> {
    OrderServer::from_arc(svc).max_decoding_message_size(conf.grpc.max_body_bytes)
}
