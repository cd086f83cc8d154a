//! [`Transactions`] through a DTM coordinator with `dtmcli`'s client builders: PlaceOrder's
//! steps ([`steps`]) turned into branch URLs at the services of `dtm.services`, and payloads as
//! each transport wants them — one proto message, sent as protobuf bytes to gRPC branches and as
//! its proto3 JSON to HTTP branches.

use std::collections::BTreeMap;

use api::order::v1 as order_api;
use api::stock::v1 as stock_api;
use dtmcli::caller::Caller;
use dtmcli::workflow::{WorkflowError, Workflows};
use dtmcli::{
    BranchDb, BranchInfo, ClientError, DoAndSubmitError, Dtm, Msg, Outcome, Saga, Tcc, Xa,
};
use kit::transcode::HttpRule;
use prost::Message;

use super::steps::{self, Step};
use super::workflow::{self, PLACE_ORDER};
use crate::biz::{
    GlobalOutcome, LocalStep, Mode, NewOrder, Order, OrderError, Transactions, Transport,
};
use crate::conf;

/// The coordinator, over both of its APIs, where the branches live, the database whose barrier
/// table answers the msg check-back, and PlaceOrder's workflow (which calls the branches itself,
/// through `caller`).
#[derive(Clone)]
pub struct DtmTransactions {
    http: Dtm,
    grpc: Dtm,
    services: BTreeMap<String, conf::Endpoints>,
    db: BranchDb,
    caller: Caller,
    workflows: [Workflows; 2],
}

/// Why the coordinator's side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DtmError {
    /// The coordinator's address is unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A service a transaction calls has no endpoints in the config.
    #[error(
        "dtm.services.{0}: missing — the HTTP and gRPC addresses the coordinator reaches {0} at"
    )]
    MissingService(String),
}

/// A step over one transport: its branch URLs and its body.
pub(super) struct Resolved {
    pub(super) saga: [String; 2],
    pub(super) tcc: [String; 3],
    pub(super) xa: String,
    pub(super) body: Vec<u8>,
}

impl DtmTransactions {
    /// Clients of the coordinator at `conf.http` / `conf.grpc` (connected lazily); TCC try
    /// branches at `discovery:///…` URLs are looked up with `resolver`; CancelOrder's local
    /// transactions run in `db`. Every service PlaceOrder or CancelOrder calls must be in
    /// `conf.services`.
    pub fn new(
        conf: &conf::Dtm,
        resolver: registry::Resolver,
        db: BranchDb,
    ) -> Result<DtmTransactions, DtmError> {
        // PlaceOrder's services (the steps of any order name the same ones), and CancelOrder's:
        // stock's TransIn and this service's check-back.
        let placing = steps::place_order(&NewOrder::default());
        let called = placing.iter().map(|s| s.service).chain(["stock", "order"]);
        if let Some(missing) = called.into_iter().find(|s| !conf.services.contains_key(*s)) {
            return Err(DtmError::MissingService(missing.to_owned()));
        }
        let http = Dtm::http(&conf.http)
            .with_timeout(conf.timeout)
            .with_resolver(resolver.clone());
        let grpc = Dtm::grpc(&conf.grpc)?
            .with_timeout(conf.timeout)
            .with_resolver(resolver.clone());
        let own =
            (conf.services.get("order")).ok_or_else(|| DtmError::MissingService("order".into()))?;
        let workflows = workflow::workflows(&http, &grpc, own);
        Ok(DtmTransactions {
            http,
            grpc,
            services: conf.services.clone(),
            db,
            caller: Caller::new().with_resolver(resolver),
            workflows,
        })
    }

    /// PlaceOrder's workflows, one per transport: mount their resume entry points in the app
    /// (`Workflows::mount`).
    pub fn workflows_to_mount(&self) -> [Workflows; 2] {
        self.workflows.clone()
    }

    /// The workflows whose coordinator is reached over `t`.
    pub(super) fn workflows(&self, t: Transport) -> &Workflows {
        match t {
            Transport::Http => &self.workflows[0],
            Transport::Grpc => &self.workflows[1],
        }
    }

    /// How the workflow calls the branches.
    pub(super) fn caller(&self) -> &Caller {
        &self.caller
    }

    fn dtm(&self, t: Transport) -> &Dtm {
        match t {
            Transport::Http => &self.http,
            Transport::Grpc => &self.grpc,
        }
    }

    /// The URL DTM calls for `rule` of `service`: its HTTP base and the path, or
    /// `<grpc>/pkg.Svc/Method` (`host:port`, `discovery:///name` or `etcd://hosts/key`).
    fn url(&self, t: Transport, service: &str, rule: &HttpRule) -> Result<String, OrderError> {
        let endpoints = self
            .services
            .get(service)
            .ok_or_else(|| OrderError::Invalid(format!("dtm.services.{service}: missing")))?;
        Ok(match t {
            Transport::Http => format!("{}{}", endpoints.http.trim_end_matches('/'), rule.path),
            Transport::Grpc => format!("{}{}", endpoints.grpc, rule.operation),
        })
    }

    /// `step` over `t`.
    pub(super) fn resolve(&self, t: Transport, step: Step) -> Result<Resolved, OrderError> {
        let url = |rule| self.url(t, step.service, rule);
        let [action, compensate] = step.saga;
        let [try_, confirm, cancel] = step.tcc;
        Ok(Resolved {
            saga: [url(action)?, url(compensate)?],
            tcc: [url(try_)?, url(confirm)?, url(cancel)?],
            xa: url(step.xa)?,
            body: payload(t, action, step.request)?,
        })
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
        // Each step's URLs and body over `t`: what the builders below take.
        let steps = steps::place_order(o)
            .into_iter()
            .map(|s| self.resolve(t, s))
            .collect::<Result<Vec<_>, _>>()?;
        let result = match mode {
            // The actions in order; a FAILURE compensates what ran, last first.
            Mode::Saga => {
                let mut saga = Saga::new(dtm, &gid);
                for s in &steps {
                    saga = saga.add(&s.saga[0], &s.saga[1], s.body.clone());
                }
                saga.wait_result(true).submit().await
            }
            // Every try succeeds → confirm all; one fails → cancel what was registered.
            Mode::Tcc => {
                Tcc::new(dtm, &gid)
                    .wait_result(true)
                    .run(async |tcc| {
                        for s in &steps {
                            let [try_, confirm, cancel] = &s.tcc;
                            tcc.call_branch(&s.body, try_, confirm, cancel).await?;
                        }
                        Ok(())
                    })
                    .await
            }
            // This service runs it, step by step; a FAILURE rolls back what ran.
            Mode::Workflow => {
                let input = order_api::OrderRequest {
                    order_id: o.id.clone(),
                    user_id: o.user_id,
                    sku: o.sku.clone(),
                    quantity: o.quantity,
                };
                let input = input.encode_to_vec();
                let run = self.workflows(t).execute(PLACE_ORDER, &gid, &input);
                let status = match run.await {
                    Ok(_) => "succeed",
                    Err(WorkflowError::Failure(_)) => "failed",
                    // Not decided yet: the coordinator resumes it.
                    Err(e) => {
                        tracing::warn!(%gid, error = %e, "place order workflow not finished");
                        "prepared"
                    }
                };
                return Ok(GlobalOutcome {
                    gid,
                    status: status.into(),
                });
            }
            // Each branch prepares its local transaction; all prepared → commit all, one
            // fails → roll back what was prepared.
            Mode::Xa => {
                Xa::new(dtm, &gid)
                    .wait_result(true)
                    .run(async |xa| {
                        for s in &steps {
                            xa.call_branch(&s.body, &s.xa).await?;
                        }
                        Ok(())
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
        let rule = &stock_api::HTTP_TRANS_IN;
        let stock = stock_api::StockRequest {
            sku: o.sku.clone(),
            quantity: o.quantity,
        };
        let msg = Msg::new(dtm, &gid)
            .add(
                &self.url(t, "stock", rule)?,
                payload(t, rule, stock.encode_to_vec())?,
            )
            .wait_result(true);
        let query_prepared = self.url(t, "order", &order_api::HTTP_QUERY_PREPARED)?;
        match msg.do_and_submit(&query_prepared, local).await {
            Ok(_) => Ok(GlobalOutcome {
                gid,
                status: "succeed".into(),
            }),
            Err(DoAndSubmitError::Busi(e)) => Err(e),
            Err(DoAndSubmitError::Dtm(e)) => outcome(gid, Err(e)),
        }
    }

    fn register_workflows(&self, local: LocalStep) -> Result<(), OrderError> {
        workflow::register(self, local)
    }

    async fn query_prepared(&self, branch: &BranchInfo) -> Result<(), OrderError> {
        Ok(self.db.query_prepared(branch).await?)
    }
}

/// The body of a branch that `rule` routes, from its protobuf `bytes`: as they are for gRPC; for
/// HTTP the same message as proto3 JSON (`rule.input` names its type), so no payload is written
/// twice.
fn payload(t: Transport, rule: &HttpRule, bytes: Vec<u8>) -> Result<Vec<u8>, OrderError> {
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
