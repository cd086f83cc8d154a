//! The client side of the SDK: starting global transactions on a DTM coordinator (ours or Go
//! DTM) over its HTTP API (`/api/dtmsvr/*`) or its gRPC API (`dtmgimp.Dtm`).
//!
//! - [`Saga`]: steps of action + compensation, submitted at once;
//! - [`Msg`]: a two-phase message; [`Msg::do_and_submit`] runs the local business inside the
//!   barrier so that the message is sent if and only if the local transaction committed;
//! - [`Tcc`]: register each branch, call its try yourself, then submit or abort.
//!
//! Payloads are JSON text for HTTP branches and protobuf bytes for gRPC branches; the
//! coordinator forwards them verbatim.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use api::dtm::v1::dtm_client::DtmClient;
use api::dtm::v1::{DtmBranchRequest, DtmRequest, DtmTransOptions};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::caller::{BranchRequest, CallError, Caller};
use crate::{BranchInfo, DtmResult};

/// How long the SDK waits for one call to the coordinator or to a try branch by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A coordinator, reached over HTTP or gRPC. Cheap to clone.
#[derive(Clone)]
pub struct Dtm {
    api: Api,
    caller: Caller,
    timeout: Duration,
}

#[derive(Clone)]
enum Api {
    Http {
        client: reqwest::Client,
        base: String,
    },
    Grpc {
        client: DtmClient<Channel>,
        addr: String,
    },
}

/// Why a call to the coordinator (or a try branch) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// FAILURE: the coordinator refused (409 / Aborted), or a try answered FAILURE; for a
    /// `wait_result` submit, the transaction rolled back.
    #[error("FAILURE: {0}")]
    Failure(String),
    /// ONGOING: not final yet (425 / FailedPrecondition).
    #[error("ONGOING: {0}")]
    Ongoing(String),
    /// Anything else: unreachable coordinator, 4xx/5xx, bad address.
    #[error("{0}")]
    Other(String),
}

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        ClientError::Other(e.to_string())
    }
}

impl Dtm {
    /// A coordinator's HTTP API, e.g. `http://127.0.0.1:36789/api/dtmsvr`.
    pub fn http(base: &str) -> Dtm {
        Dtm {
            api: Api::Http {
                client: reqwest::Client::new(),
                base: base.trim_end_matches('/').to_owned(),
            },
            caller: Caller::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A coordinator's gRPC API, e.g. `127.0.0.1:36790` (connected lazily), or where it is
    /// registered: `etcd://127.0.0.1:2379/dtmservice` (go-zero layout, what the coordinator's
    /// `MicroService.Target` publishes) or `discovery://127.0.0.1:2379/dtm` (kratos layout).
    /// A registry address needs a tokio runtime.
    pub fn grpc(addr: &str) -> Result<Dtm, ClientError> {
        let addr = addr.trim_start_matches("http://").to_owned();
        let channel = if addr.contains("://") {
            registry::Resolver::default()
                .channel(&addr)
                .map_err(|e| ClientError::Other(format!("dtm address {addr:?}: {e}")))?
        } else {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| ClientError::Other(format!("dtm address {addr:?}: {e}")))?
                .connect_lazy()
        };
        Ok(Dtm {
            api: Api::Grpc {
                client: DtmClient::new(channel),
                addr,
            },
            caller: Caller::new(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Calls TCC try branches at `discovery:///…` URLs through `resolver`'s registry.
    #[must_use]
    pub fn with_resolver(mut self, resolver: registry::Resolver) -> Dtm {
        self.caller = self.caller.with_resolver(resolver);
        self
    }

    /// Sets how long one call may take (a `wait_result` submit includes the branches' work).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Dtm {
        self.timeout = timeout;
        self
    }

    /// The `protocol` of transactions started through this coordinator handle.
    fn protocol(&self) -> &'static str {
        match self.api {
            Api::Http { .. } => "http",
            Api::Grpc { .. } => "grpc",
        }
    }

    /// The address SDKs pass to branches as `dtm` (so a try branch can nest).
    pub fn address(&self) -> &str {
        match &self.api {
            Api::Http { base, .. } => base,
            Api::Grpc { addr, .. } => addr,
        }
    }

    /// `newGid`: a fresh, globally unique gid.
    pub async fn new_gid(&self) -> Result<String, ClientError> {
        match &self.api {
            Api::Http { client, base } => {
                let res = client
                    .get(format!("{base}/newGid"))
                    .timeout(self.timeout)
                    .send()
                    .await
                    .map_err(|e| ClientError::Other(e.to_string()))?;
                let body = check_http(res).await?;
                let v: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| ClientError::Other(format!("newGid reply {body:?}: {e}")))?;
                match v["gid"].as_str() {
                    Some(gid) if !gid.is_empty() => Ok(gid.to_owned()),
                    _ => Err(ClientError::Other(format!(
                        "newGid reply without gid: {body}"
                    ))),
                }
            }
            Api::Grpc { client, .. } => {
                let mut req = tonic::Request::new(());
                req.set_timeout(self.timeout);
                let reply = self.within(client.clone().new_gid(req)).await?;
                Ok(reply.into_inner().gid)
            }
        }
    }

    /// `prepare`, `submit` or `abort` of a transaction.
    async fn trans(&self, op: TransOp, t: &Trans) -> Result<(), ClientError> {
        match &self.api {
            Api::Http { client, base } => {
                self.post(client, &format!("{base}/{}", op.path()), &t.to_json())
                    .await
            }
            Api::Grpc { client, .. } => {
                let mut req = tonic::Request::new(t.to_grpc());
                req.set_timeout(self.timeout);
                let mut client = client.clone();
                match op {
                    TransOp::Prepare => self.within(client.prepare(req)).await.map(drop),
                    TransOp::Submit => self.within(client.submit(req)).await.map(drop),
                    TransOp::Abort => self.within(client.abort(req)).await.map(drop),
                }
            }
        }
    }

    /// A gRPC call to the coordinator, bounded by the timeout here too: `grpc-timeout` bounds
    /// the server, but a registry address with no coordinator registered would wait forever.
    async fn within<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<tonic::Response<T>, ClientError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(res) => res.map_err(from_status),
            Err(_) => Err(ClientError::Other(format!(
                "the coordinator did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// POSTs a JSON body to the HTTP API and reads DTM's reply.
    async fn post(
        &self,
        client: &reqwest::Client,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<(), ClientError> {
        let res = client
            .post(url)
            .json(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| ClientError::Other(e.to_string()))?;
        check_http(res).await.map(drop)
    }

    /// `registerBranch` of a TCC branch.
    async fn register_tcc_branch(
        &self,
        gid: &str,
        branch_id: &str,
        confirm: &str,
        cancel: &str,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        match &self.api {
            Api::Http { client, base } => {
                let body = serde_json::json!({
                    "gid": gid, "trans_type": "tcc", "branch_id": branch_id,
                    "confirm": confirm, "cancel": cancel,
                    "data": String::from_utf8_lossy(payload),
                });
                self.post(client, &format!("{base}/registerBranch"), &body)
                    .await
            }
            Api::Grpc { client, .. } => {
                let data = [("confirm", confirm), ("cancel", cancel)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let mut req = tonic::Request::new(DtmBranchRequest {
                    gid: gid.to_owned(),
                    trans_type: "tcc".into(),
                    branch_id: branch_id.to_owned(),
                    op: "try".into(),
                    data,
                    busi_payload: payload.to_vec(),
                });
                req.set_timeout(self.timeout);
                let res = self.within(client.clone().register_branch(req)).await;
                res.map(drop)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum TransOp {
    Prepare,
    Submit,
    Abort,
}

impl TransOp {
    fn path(self) -> &'static str {
        match self {
            TransOp::Prepare => "prepare",
            TransOp::Submit => "submit",
            TransOp::Abort => "abort",
        }
    }
}

/// What the SDK sends for prepare/submit/abort (docs/dtm-protocol.md, The coordinator's HTTP API / The gRPC API).
#[derive(Debug, Clone, Default)]
struct Trans {
    gid: String,
    trans_type: &'static str,
    protocol: &'static str,
    steps: Vec<BTreeMap<String, String>>,
    payloads: Vec<Vec<u8>>,
    custom_data: String,
    query_prepared: String,
    options: Options,
    rollback_reason: String,
}

/// Transaction options (docs/dtm-protocol.md, Transaction options), all optional. The coordinator stores them as this JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Submit/abort answer only once the transaction is processed.
    pub wait_result: bool,
    /// Seconds after which an unfinished transaction rolls back (0: coordinator default).
    pub timeout_to_fail: i64,
    /// Seconds one branch call may take (0: coordinator default).
    pub request_timeout: i64,
    /// Base retry interval in seconds (0: coordinator default).
    pub retry_interval: i64,
    /// Saga: give up after this many retries of an action (0: no limit).
    pub retry_limit: i64,
    /// Extra headers / metadata for every branch call.
    pub branch_headers: BTreeMap<String, String>,
    /// Msg: call the branches concurrently.
    pub concurrent: bool,
}

impl Trans {
    fn new(dtm: &Dtm, gid: &str, trans_type: &'static str) -> Trans {
        Trans {
            gid: gid.to_owned(),
            trans_type,
            protocol: dtm.protocol(),
            ..Trans::default()
        }
    }

    /// The HTTP body, as the Go SDK spells it (payloads are JSON text).
    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.options).unwrap_or_default();
        let fields = serde_json::json!({
            "gid": self.gid,
            "trans_type": self.trans_type,
            "protocol": self.protocol,
            "steps": self.steps,
            "payloads": self.payloads.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>(),
            "custom_data": self.custom_data,
            "query_prepared": self.query_prepared,
            "rollback_reason": self.rollback_reason,
        });
        if let (Some(v), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
            v.extend(f);
        }
        v
    }

    /// The gRPC request (payloads are protobuf bytes, steps JSON text).
    fn to_grpc(&self) -> DtmRequest {
        let o = &self.options;
        DtmRequest {
            gid: self.gid.clone(),
            trans_type: self.trans_type.to_owned(),
            trans_options: Some(DtmTransOptions {
                wait_result: o.wait_result,
                timeout_to_fail: o.timeout_to_fail,
                retry_interval: o.retry_interval,
                branch_headers: o.branch_headers.clone().into_iter().collect(),
                request_timeout: o.request_timeout,
                retry_limit: o.retry_limit,
            }),
            customed_data: self.custom_data.clone(),
            bin_payloads: self.payloads.clone(),
            query_prepared: self.query_prepared.clone(),
            steps: serde_json::to_string(&self.steps).unwrap_or_default(),
            req_extra: Default::default(),
            rollback_reason: self.rollback_reason.clone(),
        }
    }
}

/// A saga: steps of `action` + `compensate`, run in order (or concurrently) by the coordinator,
/// compensated in reverse when an action answers FAILURE.
#[must_use = "a saga does nothing until it is submitted"]
pub struct Saga {
    dtm: Dtm,
    t: Trans,
    concurrent: bool,
    orders: BTreeMap<usize, Vec<usize>>,
}

impl Saga {
    /// A saga with this gid.
    pub fn new(dtm: &Dtm, gid: &str) -> Saga {
        Saga {
            dtm: dtm.clone(),
            t: Trans::new(dtm, gid, "saga"),
            concurrent: false,
            orders: BTreeMap::new(),
        }
    }

    /// Adds a step; both branches get `payload`.
    pub fn add(mut self, action: &str, compensate: &str, payload: impl Into<Vec<u8>>) -> Saga {
        self.t.steps.push(BTreeMap::from([
            ("action".to_owned(), action.to_owned()),
            ("compensate".to_owned(), compensate.to_owned()),
        ]));
        self.t.payloads.push(payload.into());
        self
    }

    /// Runs the actions concurrently (except as [`Saga::add_branch_order`] says).
    pub fn enable_concurrent(mut self) -> Saga {
        self.concurrent = true;
        self
    }

    /// Step `step` (0-based) starts only after the steps `after` succeeded.
    pub fn add_branch_order(mut self, step: usize, after: Vec<usize>) -> Saga {
        self.orders.insert(step, after);
        self
    }

    /// Sets the options.
    pub fn options(mut self, options: Options) -> Saga {
        self.t.options = options;
        self
    }

    /// Submits the saga. With `wait_result`, `Ok` means it succeeded and
    /// [`ClientError::Failure`] that it rolled back.
    pub async fn submit(mut self) -> Result<(), ClientError> {
        if self.concurrent || !self.orders.is_empty() {
            let orders: BTreeMap<String, &Vec<usize>> = self
                .orders
                .iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            self.t.custom_data =
                serde_json::json!({"concurrent": self.concurrent, "orders": orders}).to_string();
        }
        self.dtm.trans(TransOp::Submit, &self.t).await
    }
}

/// A two-phase message: the coordinator calls every action (in order, or concurrently) until
/// each succeeds; it never rolls back once submitted.
#[must_use = "a msg does nothing until it is prepared and submitted"]
pub struct Msg {
    dtm: Dtm,
    t: Trans,
}

impl Msg {
    /// A message with this gid.
    pub fn new(dtm: &Dtm, gid: &str) -> Msg {
        Msg {
            dtm: dtm.clone(),
            t: Trans::new(dtm, gid, "msg"),
        }
    }

    /// Adds an action branch and its payload.
    pub fn add(mut self, action: &str, payload: impl Into<Vec<u8>>) -> Msg {
        self.t
            .steps
            .push(BTreeMap::from([("action".to_owned(), action.to_owned())]));
        self.t.payloads.push(payload.into());
        self
    }

    /// Delays the branches by `seconds` after submit.
    pub fn delay(mut self, seconds: i64) -> Msg {
        self.t.custom_data = serde_json::json!({ "delay": seconds }).to_string();
        self
    }

    /// Sets the options.
    pub fn options(mut self, options: Options) -> Msg {
        self.t.options = options;
        self
    }

    /// The gid.
    pub fn gid(&self) -> &str {
        &self.t.gid
    }

    /// Phase one: the coordinator stores the message; if it is neither submitted nor aborted
    /// before its timeout, it asks `query_prepared` whether the local transaction committed.
    pub async fn prepare(&mut self, query_prepared: &str) -> Result<(), ClientError> {
        self.t.query_prepared = query_prepared.to_owned();
        self.dtm.trans(TransOp::Prepare, &self.t).await
    }

    /// Sends the message (prepared or not).
    pub async fn submit(&self) -> Result<(), ClientError> {
        self.dtm.trans(TransOp::Submit, &self.t).await
    }

    /// Drops a prepared message.
    pub async fn abort(&self) -> Result<(), ClientError> {
        self.dtm.trans(TransOp::Abort, &self.t).await
    }

    /// The barrier context of the local transaction (`branch_id 00`, `op msg`).
    pub fn local_branch(&self) -> BranchInfo {
        BranchInfo {
            gid: self.t.gid.clone(),
            trans_type: "msg".into(),
            branch_id: "00".into(),
            op: "msg".into(),
            dtm: self.dtm.address().to_owned(),
            phase2_url: String::new(),
        }
    }

    /// DTM's `DoAndSubmit`: prepare; run `busi` (which must write its changes and the barrier
    /// of [`Msg::local_branch`] in one local transaction); then submit if it committed, abort if
    /// it did not. When `busi` fails, whether its transaction committed is asked of
    /// `query_prepared` (a commit whose reply was lost still gets its message); if even that is
    /// unclear, the coordinator's own check-back settles it later.
    ///
    /// Returns `busi`'s result, or the error that kept the message from being settled.
    pub async fn do_and_submit<T, E, F, Fut>(
        mut self,
        query_prepared: &str,
        busi: F,
    ) -> Result<T, DoAndSubmitError<E>>
    where
        F: FnOnce(BranchInfo) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.prepare(query_prepared)
            .await
            .map_err(DoAndSubmitError::Dtm)?;
        let local = self.local_branch();
        match busi(local.clone()).await {
            Ok(v) => {
                self.submit().await.map_err(DoAndSubmitError::Dtm)?;
                Ok(v)
            }
            Err(e) => {
                let headers = BTreeMap::new();
                let checked = self
                    .dtm
                    .caller
                    .call(&BranchRequest {
                        url: query_prepared,
                        protocol: self.t.protocol,
                        body: &[],
                        info: &BranchInfo {
                            dtm: String::new(),
                            ..local
                        },
                        headers: &headers,
                        timeout: self.dtm.timeout,
                    })
                    .await;
                match checked.map(|r| r.result) {
                    Ok(DtmResult::Failure) => {
                        self.abort().await.map_err(DoAndSubmitError::Dtm)?;
                    }
                    Ok(DtmResult::Success) => {
                        self.submit().await.map_err(DoAndSubmitError::Dtm)?;
                    }
                    // Undecided: the coordinator asks again after the timeout.
                    Ok(DtmResult::Ongoing) | Err(_) => {}
                }
                Err(DoAndSubmitError::Busi(e))
            }
        }
    }
}

/// Why [`Msg::do_and_submit`] did not return the business result.
#[derive(Debug, thiserror::Error)]
pub enum DoAndSubmitError<E> {
    /// The local business failed (the message was aborted, or will be by the check-back).
    #[error("local transaction: {0}")]
    Busi(E),
    /// The coordinator could not be told.
    #[error("dtm: {0}")]
    Dtm(ClientError),
}

/// A TCC global transaction: [`Tcc::begin`], [`Tcc::call_branch`] per branch, then
/// [`Tcc::finish`] with the outcome (submit → confirms; abort → cancels).
pub struct Tcc {
    dtm: Dtm,
    t: Trans,
    next_branch: AtomicU32,
}

impl Tcc {
    /// Prepares the global transaction.
    pub async fn begin(dtm: &Dtm, gid: &str, options: Options) -> Result<Tcc, ClientError> {
        let mut t = Trans::new(dtm, gid, "tcc");
        t.options = options;
        dtm.trans(TransOp::Prepare, &t).await?;
        Ok(Tcc {
            dtm: dtm.clone(),
            t,
            next_branch: AtomicU32::new(1),
        })
    }

    /// The gid.
    pub fn gid(&self) -> &str {
        &self.t.gid
    }

    /// Registers a branch (its confirm and cancel) and calls its try with `payload`.
    /// `Err` means the try did not succeed: finish with it, and the coordinator cancels.
    pub async fn call_branch(
        &self,
        payload: &[u8],
        try_url: &str,
        confirm: &str,
        cancel: &str,
    ) -> Result<(), ClientError> {
        let n = self.next_branch.fetch_add(1, Ordering::SeqCst);
        let branch_id = format!("{n:02}");
        self.dtm
            .register_tcc_branch(&self.t.gid, &branch_id, confirm, cancel, payload)
            .await?;
        let info = BranchInfo {
            gid: self.t.gid.clone(),
            trans_type: "tcc".into(),
            branch_id,
            op: "try".into(),
            dtm: self.dtm.address().to_owned(),
            phase2_url: String::new(),
        };
        let result = self
            .dtm
            .caller
            .call(&BranchRequest {
                url: try_url,
                protocol: self.t.protocol,
                body: payload,
                info: &info,
                headers: &self.t.options.branch_headers,
                timeout: self.dtm.timeout,
            })
            .await?;
        match result.result {
            DtmResult::Success => Ok(()),
            DtmResult::Failure => Err(ClientError::Failure(format!(
                "try {try_url} answered FAILURE: {}",
                result.body
            ))),
            DtmResult::Ongoing => Err(ClientError::Ongoing(format!(
                "try {try_url} answered ONGOING"
            ))),
        }
    }

    /// Submits (confirm every branch) when `outcome` is `Ok`, aborts (cancel every branch) with
    /// the error as rollback reason otherwise. After a clean abort the answer is
    /// [`ClientError::Failure`] — the transaction rolled back, as a saga's `wait_result` says it;
    /// otherwise the coordinator's error.
    pub async fn finish(mut self, outcome: Result<(), ClientError>) -> Result<(), ClientError> {
        match outcome {
            Ok(()) => self.dtm.trans(TransOp::Submit, &self.t).await,
            Err(e) => {
                self.t.rollback_reason = e.to_string();
                self.dtm.trans(TransOp::Abort, &self.t).await?;
                Err(ClientError::Failure(format!("rolled back: {e}")))
            }
        }
    }
}

/// DTM's reply rule (docs/dtm-protocol.md, The coordinator's HTTP API): success iff 200 and no `FAILURE` in the body.
async fn check_http(res: reqwest::Response) -> Result<String, ClientError> {
    let status = res.status().as_u16();
    let body = res
        .text()
        .await
        .map_err(|e| ClientError::Other(e.to_string()))?;
    match DtmResult::from_http(status, &body) {
        Some(DtmResult::Success) => Ok(body),
        Some(DtmResult::Failure) => Err(ClientError::Failure(message_of(&body))),
        Some(DtmResult::Ongoing) => Err(ClientError::Ongoing(message_of(&body))),
        None => Err(ClientError::Other(format!("dtm answered {status}: {body}"))),
    }
}

fn message_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

fn from_status(s: tonic::Status) -> ClientError {
    match DtmResult::from_grpc(s.code(), s.message()) {
        Some(DtmResult::Failure) => ClientError::Failure(s.message().to_owned()),
        Some(DtmResult::Ongoing) => ClientError::Ongoing(s.message().to_owned()),
        _ => ClientError::Other(format!("dtm answered {:?}: {}", s.code(), s.message())),
    }
}
