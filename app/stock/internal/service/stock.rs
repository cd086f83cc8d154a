//! `api.stock.v1.Stock`, implemented once and served on both transports.

use api::stock::v1::stock_server::Stock as StockApi;
use api::stock::v1::{ErrorReason, GetStockRequest, StockLevel, StockRequest};
use dtmcli::{BranchInfo, refuse};
use tonic::{Request, Response, Status};

use crate::biz::{Branch, StockError, StockRepo, StockUsecase};

/// The stock service: reads the DTM context, calls the use case, maps its errors.
pub struct StockService<R> {
    uc: StockUsecase<R>,
}

impl<R: StockRepo> StockService<R> {
    /// A service over the use case.
    pub fn new(uc: StockUsecase<R>) -> Self {
        StockService { uc }
    }

    /// Every branch method is this: context, request, use case, result.
    async fn branch(
        &self,
        req: Request<StockRequest>,
        branch: Branch,
    ) -> Result<Response<()>, Status> {
        let info = BranchInfo::from_metadata(req.metadata())?;
        let StockRequest { sku, quantity } = req.into_inner();
        self.uc
            .branch(&info, branch, &sku, quantity)
            .await
            .map_err(|e| to_status(e, Some(&info)))?;
        Ok(Response::new(()))
    }
}

#[tonic::async_trait]
impl<R: StockRepo> StockApi for StockService<R> {
    async fn trans_out(&self, req: Request<StockRequest>) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransOut).await
    }
    async fn trans_out_compensate(
        &self,
        req: Request<StockRequest>,
    ) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransOutCompensate).await
    }
    async fn trans_in(&self, req: Request<StockRequest>) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransIn).await
    }
    async fn trans_in_compensate(
        &self,
        req: Request<StockRequest>,
    ) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransInCompensate).await
    }
    async fn trans_out_try(&self, req: Request<StockRequest>) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransOutTry).await
    }
    async fn trans_out_confirm(&self, req: Request<StockRequest>) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransOutConfirm).await
    }
    async fn trans_out_cancel(&self, req: Request<StockRequest>) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransOutCancel).await
    }

    async fn trans_out_xa(&self, req: Request<StockRequest>) -> Result<Response<()>, Status> {
        self.branch(req, Branch::TransOutXa).await
    }

    async fn get_stock(
        &self,
        req: Request<GetStockRequest>,
    ) -> Result<Response<StockLevel>, Status> {
        let s = self
            .uc
            .get(&req.into_inner().sku)
            .await
            .map_err(|e| to_status(e, None))?;
        Ok(Response::new(StockLevel {
            sku: s.sku,
            available: s.available,
            frozen: s.frozen,
        }))
    }
}

/// Domain error → the answer DTM and people read. `info` is the DTM context of a branch call
/// (`None`: a user's request); a refusal is answered by the SDK's rule ([`dtmcli::refuse`]):
/// FAILURE where the call may refuse, a retried 503 where it may not.
fn to_status(e: StockError, info: Option<&BranchInfo>) -> Status {
    let message = e.to_string();
    let err: kit::Error = match e {
        // A well-formed request whose values the business refuses: FAILURE to an action (its
        // transaction rolls back at once), a 400 to a user.
        StockError::InvalidSku => refuse(info, ErrorReason::InvalidSku.error(message)),
        StockError::InvalidQuantity(_) => refuse(info, ErrorReason::InvalidQuantity.error(message)),
        StockError::Insufficient { .. } => {
            refuse(info, ErrorReason::InsufficientStock.error(message))
        }
        StockError::NotFound(_) => refuse(info, ErrorReason::SkuNotFound.error(message)),
        StockError::Overflow(_) => refuse(info, ErrorReason::InvalidQuantity.error(message)),
        StockError::Dtm(e) => e.into(),
        StockError::Storage(cause) => kit::Error::internal(&kit::errors::chain(&*cause)),
    };
    err.into()
}
