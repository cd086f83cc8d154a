//! `api.order.v1.Order`, implemented once and served on both transports.

use api::order::v1::order_server::Order as OrderApi;
use api::order::v1::{
    CancelOrderReply, CancelOrderRequest, ErrorReason, GetOrderRequest, ListOrdersReply,
    ListOrdersRequest, Mode as ApiMode, OrderInfo, OrderRef, OrderRequest,
    OrderStatus as ApiStatus, PlaceOrderReply, PlaceOrderRequest, Transport as ApiTransport,
};
use dtmcli::{BranchInfo, refuse};
use kit::time::UnixMs;
use tonic::{Request, Response, Status};

use crate::biz::{
    Branch, Mode, NewOrder, Order, OrderError, OrderRepo, OrderStatus, OrderUsecase, Transactions,
    Transport,
};

/// The order service: reads the DTM context, calls the use case, maps its errors.
pub struct OrderService<R, T> {
    uc: OrderUsecase<R, T>,
}

impl<R: OrderRepo, T: Transactions> OrderService<R, T> {
    /// A service over the use case.
    pub fn new(uc: OrderUsecase<R, T>) -> Self {
        OrderService { uc }
    }

    /// TransIn, TransInTry and TransInXa: record the order.
    async fn record(
        &self,
        req: Request<OrderRequest>,
        branch: Branch,
    ) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata())?;
        let r = req.into_inner();
        let order = NewOrder {
            id: r.order_id,
            user_id: r.user_id,
            sku: r.sku,
            quantity: r.quantity,
        };
        self.uc
            .record(&info, branch, order)
            .await
            .map_err(|e| to_status(e, Some(&info)))?;
        Ok(Response::new(()))
    }

    /// Every branch that moves an existing order.
    async fn transition(
        &self,
        info: Result<BranchInfo, kit::Error>,
        id: &str,
        branch: Branch,
    ) -> Result<Response<()>, Status> {
        let info = info?;
        self.uc
            .transition(&info, branch, id)
            .await
            .map_err(|e| to_status(e, Some(&info)))?;
        Ok(Response::new(()))
    }
}

#[tonic::async_trait]
impl<R: OrderRepo, T: Transactions> OrderApi for OrderService<R, T> {
    async fn trans_in(&self, req: Request<OrderRequest>) -> Result<Response<()>, Status> {
        self.record(req, Branch::TransIn).await
    }
    async fn trans_in_try(&self, req: Request<OrderRequest>) -> Result<Response<()>, Status> {
        self.record(req, Branch::TransInTry).await
    }
    async fn trans_in_xa(&self, req: Request<OrderRequest>) -> Result<Response<()>, Status> {
        self.record(req, Branch::TransInXa).await
    }
    async fn trans_in_compensate(
        &self,
        req: Request<OrderRequest>,
    ) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata());
        self.transition(info, &req.into_inner().order_id, Branch::TransInCompensate)
            .await
    }
    async fn trans_in_confirm(&self, req: Request<OrderRequest>) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata());
        self.transition(info, &req.into_inner().order_id, Branch::TransInConfirm)
            .await
    }
    async fn trans_in_cancel(&self, req: Request<OrderRequest>) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata());
        self.transition(info, &req.into_inner().order_id, Branch::TransInCancel)
            .await
    }
    async fn trans_out(&self, req: Request<OrderRef>) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata());
        self.transition(info, &req.into_inner().order_id, Branch::TransOut)
            .await
    }
    async fn trans_out_compensate(&self, req: Request<OrderRef>) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata());
        self.transition(info, &req.into_inner().order_id, Branch::TransOutCompensate)
            .await
    }

    async fn query_prepared(&self, req: Request<()>) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata())?;
        self.uc
            .query_prepared(&info)
            .await
            .map_err(|e| to_status(e, Some(&info)))?;
        Ok(Response::new(()))
    }

    async fn place_order(
        &self,
        req: Request<PlaceOrderRequest>,
    ) -> Result<Response<PlaceOrderReply>, Status> {
        let r = req.into_inner();
        let mode = match ApiMode::try_from(r.mode) {
            Ok(ApiMode::Unspecified | ApiMode::Saga) => Mode::Saga,
            Ok(ApiMode::Tcc) => Mode::Tcc,
            Ok(ApiMode::Xa) => Mode::Xa,
            Ok(ApiMode::Workflow) => Mode::Workflow,
            Err(_) => return Err(ErrorReason::InvalidOrder.error("unknown mode").into()),
        };
        let transport = transport(r.transport)?;
        let (order_id, outcome) = self
            .uc
            .place(r.user_id, &r.sku, r.quantity, mode, transport)
            .await
            .map_err(|e| to_status(e, None))?;
        Ok(Response::new(PlaceOrderReply {
            order_id,
            gid: outcome.gid,
            status: outcome.status,
        }))
    }

    async fn cancel_order(
        &self,
        req: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderReply>, Status> {
        let id = req.into_inner().order_id;
        let outcome = self
            .uc
            .cancel(&id, Transport::Http)
            .await
            .map_err(|e| to_status(e, None))?;
        Ok(Response::new(CancelOrderReply {
            order_id: id,
            gid: outcome.gid,
            status: outcome.status,
        }))
    }

    async fn get_order(
        &self,
        req: Request<GetOrderRequest>,
    ) -> Result<Response<OrderInfo>, Status> {
        let order = self
            .uc
            .get(&req.into_inner().order_id)
            .await
            .map_err(|e| to_status(e, None))?;
        Ok(Response::new(to_info(order)))
    }

    async fn list_orders(
        &self,
        req: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersReply>, Status> {
        let r = req.into_inner();
        let after = match r.page_token.as_str() {
            "" => None,
            token => Some(
                parse_token(token)
                    .ok_or_else(|| ErrorReason::InvalidOrder.error("invalid page_token"))?,
            ),
        };
        let user = (r.user_id != 0).then_some(r.user_id);
        let size = u32::try_from(r.page_size)
            .map_err(|_| ErrorReason::InvalidOrder.error("page_size must be >= 0"))?;
        let page = self
            .uc
            .list(user, size, after)
            .await
            .map_err(|e| to_status(e, None))?;
        Ok(Response::new(ListOrdersReply {
            orders: page.orders.into_iter().map(to_info).collect(),
            next_page_token: page
                .next
                .map(|(t, id)| format!("{}_{id}", t.0))
                .unwrap_or_default(),
        }))
    }
}

fn transport(t: i32) -> Result<Transport, Status> {
    match ApiTransport::try_from(t) {
        Ok(ApiTransport::Unspecified | ApiTransport::Http) => Ok(Transport::Http),
        Ok(ApiTransport::Grpc) => Ok(Transport::Grpc),
        Err(_) => Err(ErrorReason::InvalidOrder.error("unknown transport").into()),
    }
}

fn parse_token(token: &str) -> Option<(UnixMs, String)> {
    let (t, id) = token.split_once('_')?;
    Some((UnixMs(t.parse().ok()?), id.to_owned()))
}

fn to_info(o: Order) -> OrderInfo {
    let status = match o.status {
        OrderStatus::Pending => ApiStatus::Pending,
        OrderStatus::Created => ApiStatus::Created,
        OrderStatus::Cancelled => ApiStatus::Cancelled,
    };
    OrderInfo {
        order_id: o.id,
        user_id: o.user_id,
        sku: o.sku,
        quantity: o.quantity,
        status: status.into(),
        create_time: o.create_time.rfc3339(),
        update_time: o.update_time.rfc3339(),
    }
}

/// Domain error → the answer DTM and people read. `info` is the DTM context of a branch call
/// (`None`: a user's request); a refusal is answered by the SDK's rule ([`dtmcli::refuse`]).
fn to_status(e: OrderError, info: Option<&BranchInfo>) -> Status {
    let message = e.to_string();
    let err: kit::Error = match e {
        OrderError::NotFound(_) => refuse(info, ErrorReason::OrderNotFound.error(message)),
        OrderError::QuantityLimit { .. } => {
            refuse(info, ErrorReason::QuantityLimitExceeded.error(message))
        }
        OrderError::Exists(_) => refuse(info, ErrorReason::OrderExists.error(message)),
        OrderError::StatusConflict { .. } => {
            refuse(info, ErrorReason::OrderStatusConflict.error(message))
        }
        // A well-formed request whose values the business refuses: FAILURE to an action, a 400
        // to a user.
        OrderError::Invalid(_) => refuse(info, ErrorReason::InvalidOrder.error(message)),
        OrderError::Dtm(e) => e.into(),
        OrderError::Coordinator(_) => kit::Error::new(503, "DTM_UNAVAILABLE", message),
        OrderError::Storage(cause) => kit::Error::internal(&kit::errors::chain(&*cause)),
    };
    err.into()
}
