//! The servers: the generated HTTP routes and the tonic server, both over one service.

use std::sync::Arc;

use api::stock::v1::{register_stock_http_server, stock_server::StockServer};

use crate::biz::StockRepo;
use crate::service::StockService;

/// The HTTP/JSON router, generated from the proto's `google.api.http` annotations.
pub fn new_http_server<R: StockRepo>(svc: Arc<StockService<R>>) -> axum::Router {
    register_stock_http_server(axum::Router::new(), svc)
}

/// The gRPC server, with the configured message size limit.
pub fn new_grpc_server<R: StockRepo>(
    conf: &kit::ServersConf,
    svc: Arc<StockService<R>>,
) -> StockServer<StockService<R>> {
    StockServer::from_arc(svc).max_decoding_message_size(conf.grpc.max_body_bytes)
}
