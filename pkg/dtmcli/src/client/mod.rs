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

mod error;
mod msg;
mod options;
mod saga;
mod tcc;
mod trans;
mod two_phase;
mod workflow;
mod xa;

pub use error::ClientError;
pub use msg::{DoAndSubmitError, Msg};
pub use options::Options;
pub use saga::Saga;
pub use tcc::Tcc;
pub(crate) use workflow::Progress;
pub use xa::Xa;

use std::time::Duration;

use tonic::transport::Channel;

use crate::caller::Caller;
use crate::proto::DtmBranchRequest;
use crate::proto::dtm_client::DtmClient;
use crate::{BranchInfo, DtmResult};

use options::option_setters;
use trans::{Trans, TransOp, json_payload};

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
    pub(crate) fn protocol(&self) -> &'static str {
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
        self.post_for(client, url, body).await.map(drop)
    }

    /// [`Dtm::post`], returning the reply's body.
    async fn post_for(
        &self,
        client: &reqwest::Client,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<String, ClientError> {
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
        check_http(res).await
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
                    "gid": info.gid, "trans_type": info.trans_type.as_str(), "branch_id": info.branch_id,
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
                    trans_type: info.trans_type.as_str().to_owned(),
                    branch_id: info.branch_id.clone(),
                    op: info.op.as_str().to_owned(),
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

/// DTM's reply rule (docs/dtm-protocol.md, The coordinator's HTTP API): success iff 200 and no
/// `FAILURE` in the body.
pub(crate) async fn check_http(res: reqwest::Response) -> Result<String, ClientError> {
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

pub(crate) fn from_status(s: tonic::Status) -> ClientError {
    match DtmResult::from_grpc(s.code(), s.message()) {
        Some(DtmResult::Failure) => ClientError::Failure(s.message().to_owned()),
        Some(DtmResult::Ongoing) => ClientError::Ongoing(s.message().to_owned()),
        _ => ClientError::Answer {
            status: format!("{:?}", s.code()),
            message: s.message().to_owned(),
        },
    }
}
