//! Calling a branch the way DTM does (docs/dtm-protocol.md, Calling branches): the coordinator
//! calls the branches of every [`TransType`](crate::TransType) this way, and the SDK calls TCC
//! tries, XA actions and the msg check-back the same way.
//!
//! - HTTP: POST with the stored body, GET when it is empty (except xa: always POST); `gid,
//!   trans_type, branch_id, op` (and `dtm`, `phase2_url` from an SDK) appended to the query;
//!   `Content-Type: application/json` plus the transaction's `branch_headers`; the answer read by
//!   [`DtmResult::from_http`].
//! - gRPC: `host:port/pkg.Svc/Method`, called dynamically with the stored protobuf bytes (no
//!   generated stubs), the context as `dtm-*` metadata, one cached channel per `host:port`; the
//!   answer read by [`DtmResult::from_grpc`]. With a registry (feature `registry`; the go-zero and
//!   kratos drivers' rule, docs/dtm-protocol.md, Registry URLs), `discovery:///name/pkg.Svc/Method`
//!   and `etcd://hosts/key/pkg.Svc/Method` go through one balanced channel per registered server
//!   ([`registry::Resolver`]).
//!
//! A branch that cannot be reached is a [`CallError`] (retry), never a FAILURE.
//!
//! Its parts: [`Target`] (where a URL points), `http` and `json_rpc` (the HTTP calls), `grpc`
//! (dynamic gRPC and [`RawCodec`]), [`Reach`] (where calls may go, for a caller that takes URLs
//! from clients it does not fully trust).

mod grpc;
mod http;
mod json_rpc;
mod reach;
mod target;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Channel;

use crate::{BranchInfo, DtmResult};

pub use grpc::RawCodec;
pub use json_rpc::{JSON_RPC_FAILURE, JSON_RPC_ONGOING};
pub use reach::{AddressCheck, Reach};
pub use target::Target;

/// One branch call.
#[derive(Debug, Clone)]
pub struct CallRequest<'a> {
    /// `http(s)://…`, `host:port/pkg.Svc/Method` or a registry URL; empty means "nothing to
    /// call" (success).
    pub url: &'a str,
    /// The transaction's protocol: `""`/`http` or `grpc` (decides for URLs without a scheme).
    pub protocol: &'a str,
    /// Request body: JSON text for HTTP, protobuf bytes for gRPC.
    pub body: &'a [u8],
    /// The context sent with the call.
    pub info: &'a BranchInfo,
    /// Extra HTTP headers / gRPC metadata.
    pub headers: &'a BTreeMap<String, String>,
    /// How long the call may take.
    pub timeout: Duration,
    /// The `op` sent instead of `info.op`, for a call whose op is not one of DTM's branch ops: a
    /// workflow's resume carries the workflow's name.
    pub op_name: Option<&'a str>,
}

impl CallRequest<'_> {
    /// The `op` this call carries.
    pub fn op(&self) -> &str {
        self.op_name.unwrap_or(self.info.op.as_str())
    }

    /// The context as HTTP query parameters, with [`CallRequest::op`].
    pub(crate) fn query(&self) -> Vec<(&'static str, &str)> {
        let mut query = self.info.to_query();
        for (name, value) in &mut query {
            if *name == "op" {
                *value = self.op();
            }
        }
        query
    }
}

/// A branch's DTM result and what it said (HTTP body or gRPC status message, truncated), for
/// logs and rollback reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// SUCCESS, FAILURE or ONGOING.
    pub result: DtmResult,
    /// What the branch said.
    pub body: String,
}

impl Reply {
    pub(crate) fn new(result: DtmResult, body: String) -> Reply {
        Reply {
            result,
            body: truncate(body),
        }
    }
}

/// Why a branch gave no DTM result. Every variant means "try again later".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The URL names no branch we can call (refused when the transaction is submitted).
    #[error("bad branch url {url:?}: {reason}")]
    BadTarget {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Connection refused, timeout, reset…
    #[error("calling {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// The transport's error.
        message: String,
    },
    /// An answer that is none of SUCCESS, FAILURE, ONGOING (e.g. HTTP 500, gRPC Unavailable).
    #[error("{url} answered {status}: {body}")]
    Answer {
        /// The URL.
        url: String,
        /// HTTP status or gRPC code.
        status: String,
        /// Body or status message (truncated).
        body: String,
    },
}

/// Calls branches over HTTP and gRPC; cheap to clone (pooled HTTP client, shared channel cache).
#[derive(Clone)]
pub struct Caller {
    http: reqwest::Client,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    #[cfg(feature = "registry")]
    resolver: registry::Resolver,
    reach: Arc<Reach>,
}

impl Default for Caller {
    fn default() -> Self {
        Caller {
            http: crate::http_client::build(|b| b),
            channels: Arc::default(),
            #[cfg(feature = "registry")]
            resolver: registry::Resolver::default(),
            reach: Arc::default(),
        }
    }
}

impl Caller {
    /// A caller with a pooled keep-alive HTTP client; `discovery:///` URLs fail without a
    /// registry (see [`Caller::with_resolver`]), `etcd://hosts/…` ones name their own.
    pub fn new() -> Caller {
        Caller::default()
    }

    /// Resolves registry URLs with `resolver` (whose registry serves `discovery:///`).
    #[cfg(feature = "registry")]
    pub fn with_resolver(mut self, resolver: registry::Resolver) -> Caller {
        self.resolver = resolver;
        self.check_registered();
        self
    }

    /// Applies the address check to registered instances too: their addresses come from the
    /// registry, not from the URL, so the URL's check cannot see them.
    #[cfg(feature = "registry")]
    fn check_registered(&mut self) {
        if let Some(check) = &self.reach.check {
            self.resolver = self.resolver.clone().with_address_check(check.clone());
        }
    }

    #[cfg(not(feature = "registry"))]
    fn check_registered(&mut self) {}

    /// Calls only where `reach` allows.
    pub fn with_reach(mut self, reach: Reach) -> Caller {
        let reach = Arc::new(reach);
        self.http = reach.http_client();
        self.reach = reach;
        self.check_registered();
        self
    }

    /// Whether `url` can be called: it parses, a `discovery:///` URL has a registry, and a
    /// literal address is one the policy allows.
    pub fn check(&self, protocol: &str, url: &str) -> Result<(), CallError> {
        let bad = |reason: String| CallError::BadTarget {
            url: url.to_owned(),
            reason,
        };
        if let Some(why) = self.refused_literal(protocol, url) {
            return Err(bad(format!("refused by the branch policy: {why}")));
        }
        match Target::parse(protocol, url)? {
            Target::Registry { server, .. } => self.check_registry(server).map_err(bad),
            _ => Ok(()),
        }
    }

    /// Whether a registered server can be looked up: `discovery:///` needs a registry, and
    /// `etcd://` hosts must be ones the resolver permits.
    #[cfg(feature = "registry")]
    fn check_registry(&self, server: &str) -> Result<(), String> {
        if server.starts_with("discovery:///") && !self.resolver.has_discovery() {
            return Err(
                "discovery:/// needs a registry (the coordinator's MicroService.Target)".into(),
            );
        }
        self.resolver.permits(server).map_err(|e| e.to_string())
    }

    #[cfg(not(feature = "registry"))]
    fn check_registry(&self, _: &str) -> Result<(), String> {
        Err("registry URLs need dtmcli's `registry` feature".into())
    }

    /// The balanced channel to the instances registered as `server`.
    #[cfg(feature = "registry")]
    fn registry_channel(&self, server: &str) -> Result<Channel, String> {
        self.resolver.channel(server).map_err(|e| e.to_string())
    }

    #[cfg(not(feature = "registry"))]
    fn registry_channel(&self, _: &str) -> Result<Channel, String> {
        Err("registry URLs need dtmcli's `registry` feature".into())
    }

    /// Calls one branch and reads its answer as DTM does. The whole call — resolving,
    /// connecting, waiting for an instance, the answer — is bounded by `req.timeout`.
    pub async fn call(&self, req: &CallRequest<'_>) -> Result<Reply, CallError> {
        match tokio::time::timeout(req.timeout, self.call_unbounded(req)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Transport {
                url: req.url.to_owned(),
                message: format!("no answer within {:?}", req.timeout),
            }),
        }
    }

    async fn call_unbounded(&self, req: &CallRequest<'_>) -> Result<Reply, CallError> {
        if let Some(why) = self.refused_literal(req.protocol, req.url) {
            return Err(CallError::Transport {
                url: req.url.to_owned(),
                message: format!("refused by the branch policy: {why}"),
            });
        }
        match Target::parse(req.protocol, req.url)? {
            Target::Empty => Ok(Reply::new(DtmResult::Success, String::new())),
            Target::Http(url) => self.call_http(url, req).await,
            Target::JsonRpc(url) => self.call_json_rpc(url, req).await,
            Target::Grpc { authority, method } => {
                self.check_grpc_host(authority)
                    .await
                    .map_err(|message| CallError::Transport {
                        url: req.url.to_owned(),
                        message,
                    })?;
                let channel = self.channel(authority, req.timeout)?;
                self.call_grpc(channel, authority, method, req).await
            }
            Target::Registry { server, method } => {
                let channel =
                    self.registry_channel(server)
                        .map_err(|message| CallError::Transport {
                            url: req.url.to_owned(),
                            message,
                        })?;
                self.call_grpc(channel, server, method, req).await
            }
        }
    }
}

/// How much of an HTTP branch's answer is read (the rest is dropped unread): enough for any
/// DTM result body and a useful rollback reason.
pub const MAX_REPLY_BODY: usize = 64 * 1024;

/// An HTTP branch answer read as DTM reads it; an answer that is no DTM result is an error.
pub(crate) fn http_result(url: &str, status: u16, body: String) -> Result<Reply, CallError> {
    match DtmResult::from_http(status, &body) {
        Some(result) => Ok(Reply::new(result, body)),
        None => Err(CallError::Answer {
            url: url.to_owned(),
            status: status.to_string(),
            body: truncate(body),
        }),
    }
}

/// Answers end up in logs and rollback reasons: keep them short.
pub(crate) fn truncate(s: String) -> String {
    const MAX: usize = 512;
    if s.len() <= MAX {
        s
    } else {
        kit::errors::clip(&s, MAX)
    }
}
