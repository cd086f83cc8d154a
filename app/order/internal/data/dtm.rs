//! [`Transactions`] through a DTM coordinator with `dtmcli`'s client builders: the branch URLs
//! of the stock and order services, and payloads as each transport wants them — one proto
//! message, sent as protobuf bytes to gRPC branches and as its proto3 JSON to HTTP branches.

use api::order::v1 as order_api;
use api::stock::v1 as stock_api;
use dtmcli::{
    BranchDb, BranchInfo, ClientError, DoAndSubmitError, Dtm, Msg, Outcome, Saga, Tcc, Xa,
};
use kit::transcode::HttpRule;
use prost::Message;

use crate::biz::{GlobalOutcome, Mode, NewOrder, Order, OrderError, Transactions, Transport};
use crate::conf;

/// The coordinator, over both of its APIs, where the branches live, and the database whose
/// barrier table answers the msg check-back.
#[derive(Clone)]
pub struct DtmTransactions {
    http: Dtm,
    grpc: Dtm,
    conf: conf::Dtm,
    db: BranchDb,
}

impl DtmTransactions {
    /// Clients of the coordinator at `conf.http` / `conf.grpc` (connected lazily); TCC try
    /// branches at `discovery:///…` URLs are looked up with `resolver`; CancelOrder's local
    /// transactions run in `db`.
    pub fn new(
        conf: &conf::Dtm,
        resolver: registry::Resolver,
        db: BranchDb,
    ) -> Result<DtmTransactions, ClientError> {
        Ok(DtmTransactions {
            http: Dtm::http(&conf.http)
                .with_timeout(conf.timeout)
                .with_resolver(resolver.clone()),
            grpc: Dtm::grpc(&conf.grpc)?
                .with_timeout(conf.timeout)
                .with_resolver(resolver),
            conf: conf.clone(),
            db,
        })
    }

    fn dtm(&self, t: Transport) -> &Dtm {
        match t {
            Transport::Http => &self.http,
            Transport::Grpc => &self.grpc,
        }
    }

    /// The URL DTM calls for `rule` of a service at `endpoints`: the HTTP path, or
    /// `<grpc>/pkg.Svc/Method` (`host:port`, `discovery:///name` or `etcd://hosts/key`).
    fn url(t: Transport, endpoints: &conf::Endpoints, rule: &HttpRule) -> String {
        match t {
            Transport::Http => format!("{}{}", endpoints.http.trim_end_matches('/'), rule.path),
            Transport::Grpc => format!("{}{}", endpoints.grpc, rule.operation),
        }
    }

    fn stock(&self, t: Transport, rule: &HttpRule) -> String {
        Self::url(t, &self.conf.stock, rule)
    }

    fn order(&self, t: Transport, rule: &HttpRule) -> String {
        Self::url(t, &self.conf.order, rule)
    }
}

impl Transactions for DtmTransactions {
    async fn place(
        &self,
        mode: Mode,
        t: Transport,
        o: &NewOrder,
    ) -> Result<GlobalOutcome, OrderError> {
        let dtm = self.dtm(t);
        let gid = dtm.new_gid().await.map_err(unavailable)?;
        let stock = stock_api::StockRequest {
            sku: o.sku.clone(),
            quantity: o.quantity,
        };
        // Every stock branch takes a StockRequest, every order branch an OrderRequest: one
        // body per service serves all of its branches.
        let stock = payload(t, &stock_api::HTTP_TRANS_OUT, &stock)?;
        let order = order_api::OrderRequest {
            order_id: o.id.clone(),
            user_id: o.user_id,
            sku: o.sku.clone(),
            quantity: o.quantity,
        };
        let order = payload(t, &order_api::HTTP_TRANS_IN, &order)?;
        let result = match mode {
            Mode::Saga => {
                Saga::new(dtm, &gid)
                    .add(
                        &self.stock(t, &stock_api::HTTP_TRANS_OUT),
                        &self.stock(t, &stock_api::HTTP_TRANS_OUT_COMPENSATE),
                        stock,
                    )
                    .add(
                        &self.order(t, &order_api::HTTP_TRANS_IN),
                        &self.order(t, &order_api::HTTP_TRANS_IN_COMPENSATE),
                        order,
                    )
                    .wait_result(true)
                    .submit()
                    .await
            }
            Mode::Tcc => {
                let stock_urls = [
                    self.stock(t, &stock_api::HTTP_TRANS_OUT_TRY),
                    self.stock(t, &stock_api::HTTP_TRANS_OUT_CONFIRM),
                    self.stock(t, &stock_api::HTTP_TRANS_OUT_CANCEL),
                ];
                let order_urls = [
                    self.order(t, &order_api::HTTP_TRANS_IN_TRY),
                    self.order(t, &order_api::HTTP_TRANS_IN_CONFIRM),
                    self.order(t, &order_api::HTTP_TRANS_IN_CANCEL),
                ];
                // Both tries succeed → confirm both; either fails → cancel what was registered.
                Tcc::new(dtm, &gid)
                    .wait_result(true)
                    .run(async |tcc| {
                        let [try_, confirm, cancel] = &stock_urls;
                        tcc.call_branch(&stock, try_, confirm, cancel).await?;
                        let [try_, confirm, cancel] = &order_urls;
                        tcc.call_branch(&order, try_, confirm, cancel).await
                    })
                    .await
            }
            Mode::Xa => {
                let stock_url = self.stock(t, &stock_api::HTTP_TRANS_OUT_XA);
                let order_url = self.order(t, &order_api::HTTP_TRANS_IN_XA);
                // Each branch prepares its local transaction; both prepared → commit both,
                // either fails → roll back what was prepared.
                Xa::new(dtm, &gid)
                    .wait_result(true)
                    .run(async |xa| {
                        xa.call_branch(&stock, &stock_url).await?;
                        xa.call_branch(&order, &order_url).await
                    })
                    .await
            }
        };
        outcome(gid, result)
    }

    async fn cancel<F, Fut>(
        &self,
        t: Transport,
        o: &Order,
        local: F,
    ) -> Result<GlobalOutcome, OrderError>
    where
        F: FnOnce(BranchInfo) -> Fut + Send,
        Fut: Future<Output = Result<Outcome<()>, OrderError>> + Send,
    {
        let dtm = self.dtm(t);
        let gid = dtm.new_gid().await.map_err(unavailable)?;
        let stock = stock_api::StockRequest {
            sku: o.sku.clone(),
            quantity: o.quantity,
        };
        let stock = payload(t, &stock_api::HTTP_TRANS_IN, &stock)?;
        let msg = Msg::new(dtm, &gid)
            .add(&self.stock(t, &stock_api::HTTP_TRANS_IN), stock)
            .wait_result(true);
        let query_prepared = self.order(t, &order_api::HTTP_QUERY_PREPARED);
        match msg.do_and_submit(&query_prepared, local).await {
            Ok(_) => Ok(GlobalOutcome {
                gid,
                status: "succeed".into(),
            }),
            Err(DoAndSubmitError::Busi(e)) => Err(e),
            Err(DoAndSubmitError::Dtm(e)) => outcome(gid, Err(e)),
        }
    }

    async fn query_prepared(&self, branch: &BranchInfo) -> Result<(), OrderError> {
        Ok(self.db.query_prepared(branch).await?)
    }
}

/// The body of a branch that `rule` routes: protobuf for gRPC; for HTTP the same message as
/// proto3 JSON (`rule.input` names its type), so no payload is written twice.
fn payload(t: Transport, rule: &HttpRule, msg: &impl Message) -> Result<Vec<u8>, OrderError> {
    let bytes = msg.encode_to_vec();
    match t {
        Transport::Grpc => Ok(bytes),
        Transport::Http => kit::transcode::to_json(api::descriptor_pool(), rule.input, &bytes)
            .map_err(|e| OrderError::Invalid(format!("{}: {}", rule.input, e.message))),
    }
}

/// The coordinator's answer to a `wait_result` call, as the transaction's status.
fn outcome(gid: String, r: Result<(), ClientError>) -> Result<GlobalOutcome, OrderError> {
    let status = match r {
        Ok(()) => "succeed",
        Err(ClientError::Failure(_)) => "failed",
        Err(ClientError::Ongoing(_)) => "submitted",
        Err(e) => return Err(unavailable(e)),
    };
    Ok(GlobalOutcome {
        gid,
        status: status.into(),
    })
}

fn unavailable(e: ClientError) -> OrderError {
    OrderError::Coordinator(kit::errors::chain(&e))
}
