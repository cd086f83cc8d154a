//! The client side of the SDK: starting global transactions on a DTM coordinator (ours or Go
//! DTM) over its HTTP API (`/api/dtmsvr/*`) or its gRPC API (`dtmgimp.Dtm`) — one file per
//! transaction type, as in Go's `trans_{saga,msg,tcc}.go` and `xa.go`:
//!
//! - [`Saga`]: steps of action + compensation, submitted at once;
//! - [`Msg`]: a two-phase message; [`Msg::do_and_submit`] runs the local business inside the
//!   barrier so that the message is sent if and only if the local transaction committed;
//! - [`Tcc`]: [`Tcc::run`] prepares, runs your closure (which calls each try through
//!   [`Tcc::call_branch`]) and then always submits or aborts;
//! - [`Xa`]: the same shape for XA — [`Xa::call_branch`] calls each branch, which prepares its
//!   local transaction ([`crate::xa`]) and registers itself; submit commits them all.
//!
//! Payloads are JSON text for HTTP branches and protobuf bytes for gRPC branches; the coordinator
//! forwards them verbatim. `add_json` and `add_proto` encode a typed value, `add` takes bytes
//! already encoded. Options are chained setters on each builder ([`Saga::wait_result`]…).

mod msg;
mod saga;
mod tcc;
mod xa;

pub use msg::{DoAndSubmitError, Msg};
pub use saga::Saga;
pub use tcc::Tcc;
pub use xa::Xa;

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::caller::{BranchRequest, CallError, Caller};
use crate::proto::dtm_client::DtmClient;
use crate::proto::{DtmBranchRequest, DtmRequest, DtmTransOptions};
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
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// FAILURE: the coordinator refused (409 / Aborted), or a try answered FAILURE; for a
    /// `wait_result` submit, the transaction rolled back.
    #[error("FAILURE: {0}")]
    Failure(String),
    /// ONGOING: not final yet (425 / FailedPrecondition).
    #[error("ONGOING: {0}")]
    Ongoing(String),
    /// The coordinator answered with an error that is no DTM result (a 4xx/5xx, a gRPC status).
    #[error("the coordinator answered {status}: {message}")]
    Answer {
        /// HTTP status or gRPC code.
        status: String,
        /// Its body or status message.
        message: String,
    },
    /// The call did not complete: a bad address, no connection, no answer in time, an
    /// unreadable reply, a try branch that could not be called, a payload that did not encode.
    #[error("{context}")]
    Call {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ClientError {
    fn call(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ClientError {
        ClientError::Call {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        ClientError::call("calling a branch", e)
    }
}

/// Transaction options (docs/dtm-protocol.md, Transaction options), all optional. The
/// coordinator stores them as this JSON. The builders set them one by one ([`Saga::wait_result`]…).
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
    /// The W3C `traceparent` of the request that created the transaction: the coordinator
    /// keeps it so that its later rounds, and their branch calls, stay in that trace. Not
    /// sent by clients (their trace goes in the request's own header).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub traceparent: String,
}

impl Dtm {
    /// A coordinator's HTTP API, e.g. `http://127.0.0.1:36789/api/dtmsvr`.
    pub fn http(base: &str) -> Dtm {
        Dtm {
            api: Api::Http {
                client: crate::http_client::build(|b| b),
                base: base.trim_end_matches('/').to_owned(),
            },
            caller: Caller::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A coordinator's gRPC API, e.g. `127.0.0.1:36790` (connected lazily), or where it is
    /// registered: `etcd://127.0.0.1:2379/dtmservice` (go-zero layout, what the coordinator's
    /// `MicroService.Target` publishes) or `discovery://127.0.0.1:2379/dtm` (kratos layout).
    /// A registry address needs the `registry` feature and a tokio runtime.
    pub fn grpc(addr: &str) -> Result<Dtm, ClientError> {
        let addr = addr.trim_start_matches("http://").to_owned();
        let bad = |e: Box<dyn std::error::Error + Send + Sync>| {
            ClientError::call(format!("dtm address {addr:?}"), e)
        };
        let channel = if addr.contains("://") {
            registry_channel(&addr).map_err(bad)?
        } else {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| bad(e.into()))?
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

    /// The coordinator at an address as branches receive it in `dtm`: its HTTP API for an
    /// `http(s)://` URL, else its gRPC API ([`Dtm::http`], [`Dtm::grpc`]).
    pub fn at(addr: &str) -> Result<Dtm, ClientError> {
        if addr.starts_with("http://") || addr.starts_with("https://") {
            Ok(Dtm::http(addr))
        } else {
            Dtm::grpc(addr)
        }
    }

    /// Calls TCC try branches at `discovery:///…` URLs through `resolver`'s registry.
    #[cfg(feature = "registry")]
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
                    .map_err(|e| ClientError::call("newGid", e))?;
                let body = check_http(res).await?;
                let v: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| ClientError::call(format!("newGid reply {body:?}"), e))?;
                match v["gid"].as_str() {
                    Some(gid) if !gid.is_empty() => Ok(gid.to_owned()),
                    _ => Err(ClientError::Answer {
                        status: "200 without a gid".into(),
                        message: body,
                    }),
                }
            }
            Api::Grpc { client, .. } => {
                let mut req = tonic::Request::new(());
                req.set_timeout(self.timeout);
                kit::trace::inject_metadata(req.metadata_mut());
                let reply = self.within(client.clone().new_gid(req)).await?;
                Ok(reply.into_inner().gid)
            }
        }
    }

    /// `prepare`, `submit` or `abort` of a transaction.
    async fn trans(&self, op: TransOp, t: &Trans) -> Result<(), ClientError> {
        if let Some(e) = &t.invalid {
            return Err(ClientError::call(
                format!("{} of {}: a payload did not encode", op.path(), t.gid),
                e.clone(),
            ));
        }
        match &self.api {
            Api::Http { client, base } => {
                self.post(client, &format!("{base}/{}", op.path()), &t.to_json())
                    .await
            }
            Api::Grpc { client, .. } => {
                let mut req = tonic::Request::new(t.to_grpc());
                req.set_timeout(self.timeout);
                kit::trace::inject_metadata(req.metadata_mut());
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
            Err(e) => Err(ClientError::call(
                format!("the coordinator did not answer within {:?}", self.timeout),
                e,
            )),
        }
    }

    /// POSTs a JSON body to the HTTP API and reads DTM's reply.
    async fn post(
        &self,
        client: &reqwest::Client,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<(), ClientError> {
        // The caller's trace goes on to the coordinator, and from there to the branches.
        let mut trace = http::HeaderMap::new();
        kit::trace::inject(&mut trace);
        let res = client
            .post(url)
            .headers(trace)
            .json(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| ClientError::call(format!("POST {url}"), e))?;
        check_http(res).await.map(drop)
    }

    /// `registerBranch`: a TCC branch (`confirm`, `cancel` and the body they get) or an XA
    /// branch (`url`, no body), as DTM's SDKs send it — `fields` are the body's extra string
    /// fields over HTTP and the `Data` map over gRPC.
    pub(crate) async fn register_branch(
        &self,
        info: &BranchInfo,
        fields: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<(), ClientError> {
        match &self.api {
            Api::Http { client, base } => {
                let mut body = serde_json::json!({
                    "gid": info.gid, "trans_type": info.trans_type, "branch_id": info.branch_id,
                });
                for (k, v) in fields {
                    body[*k] = (*v).into();
                }
                if !payload.is_empty() {
                    body["data"] = String::from_utf8_lossy(payload).into();
                }
                self.post(client, &format!("{base}/registerBranch"), &body)
                    .await
            }
            Api::Grpc { client, .. } => {
                let mut req = tonic::Request::new(DtmBranchRequest {
                    gid: info.gid.clone(),
                    trans_type: info.trans_type.clone(),
                    branch_id: info.branch_id.clone(),
                    op: info.op.clone(),
                    data: fields
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    busi_payload: payload.to_vec(),
                });
                req.set_timeout(self.timeout);
                kit::trace::inject_metadata(req.metadata_mut());
                let res = self.within(client.clone().register_branch(req)).await;
                res.map(drop)
            }
        }
    }

    /// Calls a branch the client itself calls (a TCC try, an XA action) with `payload`:
    /// `Ok` on SUCCESS, else why not (`Err` from the closure of [`Tcc::run`] / [`Xa::run`]
    /// then rolls the transaction back).
    async fn call_first_phase(
        &self,
        t: &Trans,
        info: &BranchInfo,
        url: &str,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let result = self
            .caller
            .call(&BranchRequest {
                url,
                protocol: t.protocol,
                body: payload,
                info,
                headers: &t.options.branch_headers,
                timeout: self.timeout,
            })
            .await?;
        match result.result {
            DtmResult::Success => Ok(()),
            DtmResult::Failure => Err(ClientError::Failure(format!(
                "{} {url} answered FAILURE: {}",
                info.op, result.body
            ))),
            DtmResult::Ongoing => Err(ClientError::Ongoing(format!(
                "{} {url} answered ONGOING",
                info.op
            ))),
        }
    }

    /// Runs a TCC or XA transaction: prepare, then `body`, then submit if it returned `Ok`,
    /// abort (its error as the rollback reason) if it returned `Err` or panicked — the panic
    /// then continues. A clean abort answers [`ClientError::Failure`].
    async fn two_phase<T>(
        &self,
        mut t: Trans,
        body: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        self.trans(TransOp::Prepare, &t).await?;
        match AssertUnwindSafe(body).catch_unwind().await {
            Ok(Ok(value)) => {
                self.trans(TransOp::Submit, &t).await?;
                Ok(value)
            }
            Ok(Err(e)) => {
                t.rollback_reason = e.to_string();
                self.trans(TransOp::Abort, &t).await?;
                Err(ClientError::Failure(format!("rolled back: {e}")))
            }
            Err(panic) => {
                t.rollback_reason = format!("the {} closure panicked", t.trans_type.to_uppercase());
                // The panic is what the caller must see; a failed abort is settled by the
                // coordinator's timeout (prepared TCC and XA transactions roll back when they
                // expire).
                let _ = self.trans(TransOp::Abort, &t).await;
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// A channel to a coordinator registered at `addr` (`etcd://…`, `discovery://…`).
#[cfg(feature = "registry")]
fn registry_channel(addr: &str) -> Result<Channel, Box<dyn std::error::Error + Send + Sync>> {
    Ok(registry::Resolver::default().channel(addr)?)
}

#[cfg(not(feature = "registry"))]
fn registry_channel(_: &str) -> Result<Channel, Box<dyn std::error::Error + Send + Sync>> {
    Err("a registry address needs dtmcli's `registry` feature".into())
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

/// What the SDK sends for prepare/submit/abort (docs/dtm-protocol.md, The coordinator's HTTP
/// API / The gRPC API), shared by the three builders.
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
    /// The first payload that did not encode: reported by the next call instead of a panic in
    /// the middle of a builder chain.
    invalid: Option<String>,
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

    /// Adds a step's branch URLs and its payload (or remembers why the payload is missing).
    fn push(&mut self, branches: &[(&str, &str)], payload: Result<Vec<u8>, String>) {
        self.steps.push(
            branches
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        match payload {
            Ok(p) => self.payloads.push(p),
            Err(e) => {
                self.payloads.push(Vec::new());
                self.invalid.get_or_insert(e);
            }
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

/// A value as a JSON payload (the body of an HTTP branch).
fn json_payload(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("JSON payload: {e}"))
}

/// The option setters every builder has (`$t` holds its `Trans` in `t`), as Go's
/// `TransOptions` fields are on every transaction type.
macro_rules! option_setters {
    ($t:ty) => {
        impl $t {
            /// Submit (and abort) answer only once the transaction is processed: `Ok` then
            /// means it succeeded and [`ClientError::Failure`](crate::ClientError::Failure) that it
            /// rolled back.
            pub fn wait_result(mut self, on: bool) -> Self {
                self.t.options.wait_result = on;
                self
            }

            /// Seconds after which an unfinished transaction rolls back.
            pub fn timeout_to_fail(mut self, seconds: i64) -> Self {
                self.t.options.timeout_to_fail = seconds;
                self
            }

            /// Seconds one branch call may take.
            pub fn request_timeout(mut self, seconds: i64) -> Self {
                self.t.options.request_timeout = seconds;
                self
            }

            /// Base retry interval in seconds (doubled after each branch error).
            pub fn retry_interval(mut self, seconds: i64) -> Self {
                self.t.options.retry_interval = seconds;
                self
            }

            /// Saga: roll back after an action was retried this many times.
            pub fn retry_limit(mut self, retries: i64) -> Self {
                self.t.options.retry_limit = retries;
                self
            }

            /// A header (HTTP) or metadata entry (gRPC) sent with every branch call.
            pub fn branch_header(mut self, name: &str, value: &str) -> Self {
                self.t
                    .options
                    .branch_headers
                    .insert(name.to_owned(), value.to_owned());
                self
            }

            /// Replaces all options at once.
            pub fn options(mut self, options: $crate::client::Options) -> Self {
                self.t.options = options;
                self
            }
        }
    };
}
use option_setters;

/// DTM's reply rule (docs/dtm-protocol.md, The coordinator's HTTP API): success iff 200 and no
/// `FAILURE` in the body.
async fn check_http(res: reqwest::Response) -> Result<String, ClientError> {
    let status = res.status().as_u16();
    let body = res
        .text()
        .await
        .map_err(|e| ClientError::call("reading the coordinator's reply", e))?;
    match DtmResult::from_http(status, &body) {
        Some(DtmResult::Success) => Ok(body),
        Some(DtmResult::Failure) => Err(ClientError::Failure(message_of(&body))),
        Some(DtmResult::Ongoing) => Err(ClientError::Ongoing(message_of(&body))),
        None => Err(ClientError::Answer {
            status: status.to_string(),
            message: body,
        }),
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
        _ => ClientError::Answer {
            status: format!("{:?}", s.code()),
            message: s.message().to_owned(),
        },
    }
}
