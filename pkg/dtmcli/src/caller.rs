//! Calling a branch the way DTM does (docs/dtm-protocol.md, Calling branches): the coordinator
//! calls every saga, msg, TCC and XA phase-2 branch this way, and the SDK calls TCC tries, XA
//! actions and the msg check-back the same way.
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

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::policy::BranchPolicy;
use crate::{BranchInfo, DtmResult};

/// One branch call.
#[derive(Debug, Clone)]
pub struct BranchRequest<'a> {
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
    fn new(result: DtmResult, body: String) -> Reply {
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

/// Where a branch URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// Nothing to call: an empty URL succeeds at once (DTM's rule).
    Empty,
    /// An HTTP URL.
    Http(&'a str),
    /// A JSON-RPC 2.0 method over HTTP: protocol `json-rpc` and a URL with `method=` in its
    /// query (DTM's rule).
    JsonRpc(&'a str),
    /// A gRPC server and the full method name (`/pkg.Svc/Method`).
    Grpc {
        /// `host:port`.
        authority: &'a str,
        /// `/pkg.Svc/Method`.
        method: &'a str,
    },
    /// A registered gRPC server and the full method name.
    Registry {
        /// `discovery:///name` or `etcd://hosts/key`.
        server: &'a str,
        /// `/pkg.Svc/Method`.
        method: &'a str,
    },
}

impl<'a> Target<'a> {
    /// DTM's selection (docs/dtm-protocol.md, Calling branches): HTTP when the protocol is `http`
    /// (or empty) or the URL has an `http(s)://` scheme; otherwise gRPC,
    /// `host:port/pkg.Svc/Method`, cut at the first `/`.
    pub fn parse(protocol: &str, url: &'a str) -> Result<Target<'a>, CallError> {
        let bad = |reason: &str| CallError::BadTarget {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.is_empty() {
            return Ok(Target::Empty);
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            if protocol == "json-rpc" && url.contains("method") {
                return Ok(Target::JsonRpc(url));
            }
            return Ok(Target::Http(url));
        }
        if protocol != "grpc" {
            return Err(bad("an HTTP branch URL starts with http:// or https://"));
        }
        const SHAPE: &str = "a gRPC branch URL is host:port/pkg.Service/Method, \
            discovery:///name/pkg.Service/Method or etcd://hosts/key/pkg.Service/Method";
        if url.contains("://") {
            return match registry_target(url) {
                Some((server, method)) if is_grpc_method(method) => {
                    Ok(Target::Registry { server, method })
                }
                _ => Err(bad(SHAPE)),
            };
        }
        let Some(slash) = url.find('/') else {
            return Err(bad(SHAPE));
        };
        let (authority, method) = url.split_at(slash);
        if authority.is_empty() || !is_grpc_method(method) {
            return Err(bad(SHAPE));
        }
        Ok(Target::Grpc { authority, method })
    }
}

/// A registry URL's server and method: `discovery:///name` or `etcd://hosts/key`, then
/// `/pkg.Svc/Method`. Without the `registry` feature there are none.
#[cfg(feature = "registry")]
fn registry_target(url: &str) -> Option<(&str, &str)> {
    registry::split_method(url).filter(|(server, _)| registry::Server::parse(server).is_ok())
}

#[cfg(not(feature = "registry"))]
fn registry_target(_: &str) -> Option<(&str, &str)> {
    None
}

/// `/pkg.Service/Method`.
fn is_grpc_method(method: &str) -> bool {
    method.len() > 1
        && method.starts_with('/')
        && method[1..].split('/').count() == 2
        && !method[1..].split('/').any(str::is_empty)
        && http::uri::PathAndQuery::from_str(method).is_ok()
}

/// Where redirects may go: nowhere, or (as DTM) up to 10 hops to addresses `policy` allows.
fn redirects(policy: &Arc<BranchPolicy>) -> reqwest::redirect::Policy {
    if !policy.follow_redirects {
        return reqwest::redirect::Policy::none();
    }
    let p = policy.clone();
    reqwest::redirect::Policy::custom(move |attempt| {
        let refused = attempt.url().host_str().and_then(|h| p.refuses_host(h));
        match refused {
            Some(why) => attempt.error(why),
            None if attempt.previous().len() >= 10 => attempt.error("too many redirects"),
            None => attempt.follow(),
        }
    })
}

/// DTM's JSON-RPC error code for FAILURE.
pub const JSON_RPC_FAILURE: i64 = -32901;
/// DTM's JSON-RPC error code for ONGOING.
pub const JSON_RPC_ONGOING: i64 = -32902;

/// Calls branches over HTTP and gRPC; cheap to clone (pooled HTTP client, shared channel cache).
#[derive(Clone)]
pub struct Caller {
    http: reqwest::Client,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    #[cfg(feature = "registry")]
    resolver: registry::Resolver,
    policy: Arc<BranchPolicy>,
}

impl Default for Caller {
    fn default() -> Self {
        Caller {
            http: crate::http_client::build(|b| b),
            channels: Arc::default(),
            #[cfg(feature = "registry")]
            resolver: registry::Resolver::default(),
            policy: Arc::default(),
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

    /// Applies the address policy to registered instances too: their addresses come from the
    /// registry, not from the URL, so the URL's check cannot see them.
    #[cfg(feature = "registry")]
    fn check_registered(&mut self) {
        if self.policy.checks_addresses() {
            let policy = self.policy.clone();
            let check: registry::AddressCheck = Arc::new(move |ip| policy.refuses(ip));
            self.resolver = self.resolver.clone().with_address_check(check);
        }
    }

    #[cfg(not(feature = "registry"))]
    fn check_registered(&mut self) {}

    /// Calls only where `policy` allows (see [`crate::policy`]).
    pub fn with_policy(mut self, policy: BranchPolicy) -> Caller {
        let policy = Arc::new(policy);
        let p = policy.clone();
        self.http = crate::http_client::build(move |mut http| {
            if p.checks_addresses() {
                http = http.dns_resolver(Arc::new(PolicyResolver(p.clone())));
            }
            if !p.extra_roots_pem.is_empty() {
                // Checked where the policy was made (the coordinator's config); unreadable
                // here means the system's roots only.
                match reqwest::Certificate::from_pem_bundle(&p.extra_roots_pem) {
                    Ok(certs) => http = http.tls_certs_merge(certs),
                    Err(e) => tracing::warn!(error = %e, "branch CA certificates ignored"),
                }
            }
            http.redirect(redirects(&p))
        });
        self.policy = policy;
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
    pub async fn call(&self, req: &BranchRequest<'_>) -> Result<Reply, CallError> {
        match tokio::time::timeout(req.timeout, self.call_unbounded(req)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Transport {
                url: req.url.to_owned(),
                message: format!("no answer within {:?}", req.timeout),
            }),
        }
    }

    /// Why the policy refuses the literal address `url` names, if it does.
    fn refused_literal(&self, protocol: &str, url: &str) -> Option<String> {
        if !self.policy.checks_addresses() {
            return None;
        }
        match Target::parse(protocol, url).ok()? {
            Target::Http(url) | Target::JsonRpc(url) => {
                let url = reqwest::Url::parse(url).ok()?;
                self.policy.refuses_host(url.host_str()?)
            }
            Target::Grpc { authority, .. } => {
                let authority = http::uri::Authority::from_str(authority).ok()?;
                self.policy.refuses_host(authority.host())
            }
            Target::Empty | Target::Registry { .. } => None,
        }
    }

    /// With an address policy, a gRPC host name is resolved and every address checked before
    /// any connection is made.
    async fn check_grpc_host(&self, authority: &str) -> Result<(), String> {
        if !self.policy.checks_addresses() {
            return Ok(());
        }
        let addrs = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("resolving {authority}: {e}"))?;
        for addr in addrs {
            if let Some(why) = self.policy.refuses(addr.ip()) {
                return Err(format!("refused by the branch policy: {why}"));
            }
        }
        Ok(())
    }

    async fn call_unbounded(&self, req: &BranchRequest<'_>) -> Result<Reply, CallError> {
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

    async fn call_http(&self, url: &str, req: &BranchRequest<'_>) -> Result<Reply, CallError> {
        // XA's phase two has no body yet is a POST (DTM's rule).
        let builder = if req.body.is_empty() && req.info.trans_type != "xa" {
            self.http.get(url)
        } else {
            self.http.post(url).body(req.body.to_vec())
        };
        let query = req.info.to_query();
        let builder = builder
            .query(&query)
            .header(http::header::CONTENT_TYPE, "application/json");
        let (status, body) = self.send_http(builder, url, req).await?;
        http_result(url, status, body)
    }

    /// Sends an HTTP branch call with the transaction's headers, the caller's trace (retries
    /// included: each call injects) and the timeout, and reads the answer — at most
    /// [`MAX_REPLY_BODY`] of it: a branch's answer must not decide our memory use.
    async fn send_http(
        &self,
        mut builder: reqwest::RequestBuilder,
        url: &str,
        req: &BranchRequest<'_>,
    ) -> Result<(u16, String), CallError> {
        let transport = |e: reqwest::Error| CallError::Transport {
            url: url.to_owned(),
            message: kit::errors::chain(&e),
        };
        for (k, v) in req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let mut trace = http::HeaderMap::new();
        kit::trace::inject(&mut trace);
        let mut res = builder
            .headers(trace)
            .timeout(req.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = res.status().as_u16();
        let mut body = Vec::new();
        while body.len() < MAX_REPLY_BODY {
            match res.chunk().await.map_err(transport)? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(MAX_REPLY_BODY);
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// DTM's JSON-RPC branch call: POST `{"jsonrpc":"2.0","method":<the URL's method>,"id",
    /// "params":<the payload object with gid, trans_type, branch_id, op added>}`; the answer is
    /// read as HTTP first (409 / 425), then by its JSON-RPC error code: -32901 FAILURE,
    /// -32902 ONGOING, any other error a failed call (retried), none SUCCESS.
    async fn call_json_rpc(&self, url: &str, req: &BranchRequest<'_>) -> Result<Reply, CallError> {
        let method = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "method")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| CallError::BadTarget {
                url: url.to_owned(),
                reason: "a JSON-RPC branch URL names its method: …?method=<name>".into(),
            })?;
        let mut params: serde_json::Map<String, serde_json::Value> = if req.body.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_slice(req.body).map_err(|e| CallError::Transport {
                url: url.to_owned(),
                message: format!("a JSON-RPC payload must be a JSON object: {e}"),
            })?
        };
        let info = req.info;
        for (k, v) in [
            ("gid", &info.gid),
            ("trans_type", &info.trans_type),
            ("branch_id", &info.branch_id),
            ("op", &info.op),
        ] {
            params.insert(k.to_owned(), serde_json::Value::String(v.clone()));
        }
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "method": method,
            "id": format!("{}-{}-{}", info.gid, info.branch_id, info.op),
            "params": params,
        });
        let (status, text) = self
            .send_http(self.http.post(url).json(&body), url, req)
            .await?;
        // HTTP first: a 409 or 425 (or an answer that is no DTM result) says it all.
        if DtmResult::from_http(status, &text) != Some(DtmResult::Success) {
            return http_result(url, status, text);
        }
        let answer = |result| Ok(Reply::new(result, text.clone()));
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        match reply["error"]["code"].as_i64() {
            None if reply["error"].is_null() => answer(DtmResult::Success),
            Some(JSON_RPC_FAILURE) => answer(DtmResult::Failure),
            Some(JSON_RPC_ONGOING) => answer(DtmResult::Ongoing),
            _ => Err(CallError::Answer {
                url: url.to_owned(),
                status: format!("JSON-RPC error {}", reply["error"]["code"]),
                body: truncate(text),
            }),
        }
    }

    async fn call_grpc(
        &self,
        channel: Channel,
        server: &str,
        method: &str,
        req: &BranchRequest<'_>,
    ) -> Result<Reply, CallError> {
        let url = || format!("{server}{method}");
        let transport = |message: String| CallError::Transport {
            url: url(),
            message,
        };
        let mut grpc = tonic::client::Grpc::new(channel);
        // A registry channel waits while no instance is registered: bound that wait too.
        match tokio::time::timeout(req.timeout, grpc.ready()).await {
            Ok(ready) => ready.map_err(|e| transport(kit::errors::chain(&e)))?,
            Err(_) => return Err(transport("no instance ready before the timeout".into())),
        }
        let mut request = tonic::Request::new(Bytes::copy_from_slice(req.body));
        request.set_timeout(req.timeout);
        let md = request.metadata_mut();
        req.info.to_metadata(md).map_err(|e| transport(e.message))?;
        for (k, v) in req.headers {
            // Header names were checked when the transaction was submitted; skip what gRPC refuses.
            if let (Ok(k), Ok(v)) = (
                MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                MetadataValue::try_from(v.as_str()),
            ) {
                md.insert(k, v);
            }
        }
        kit::trace::inject_metadata(md);
        let path =
            http::uri::PathAndQuery::from_str(method).map_err(|e| transport(e.to_string()))?;
        match grpc.unary(request, path, RawCodec).await {
            Ok(_) => Ok(Reply::new(DtmResult::Success, String::new())),
            Err(status) => match DtmResult::from_grpc(status.code(), status.message()) {
                Some(result) => Ok(Reply::new(result, status.message().to_owned())),
                None => Err(CallError::Answer {
                    url: url(),
                    status: format!("{:?}", status.code()),
                    body: truncate(status.message().to_owned()),
                }),
            },
        }
    }

    /// One lazily connected channel per `host:port`, shared by every call to it.
    fn channel(&self, authority: &str, timeout: Duration) -> Result<Channel, CallError> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = channels.get(authority) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{authority}")).map_err(|e| {
            CallError::Transport {
                url: authority.to_owned(),
                message: e.to_string(),
            }
        })?;
        let channel = endpoint
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(authority.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// A DNS resolver that drops the addresses the policy refuses, so that no connection is ever
/// made to them (a host name that resolves only to refused addresses fails to resolve).
struct PolicyResolver(Arc<BranchPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.refuses(a.ip()).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host}: every address is refused by the branch policy").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How much of an HTTP branch's answer is read (the rest is dropped unread): enough for any
/// DTM result body and a useful rollback reason.
pub const MAX_REPLY_BODY: usize = 64 * 1024;

/// Protobuf bytes in, bytes out: the coordinator forwards what the client encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// An HTTP branch answer read as DTM reads it; an answer that is no DTM result is an error.
fn http_result(url: &str, status: u16, body: String) -> Result<Reply, CallError> {
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
fn truncate(s: String) -> String {
    const MAX: usize = 512;
    if s.len() <= MAX {
        s
    } else {
        kit::errors::clip(&s, MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_dtm_selection() {
        assert_eq!(Target::parse("", ""), Ok(Target::Empty));
        // JSON-RPC: protocol json-rpc and a method in the URL; otherwise plain HTTP.
        assert_eq!(
            Target::parse("json-rpc", "http://h/rpc?method=TransOut"),
            Ok(Target::JsonRpc("http://h/rpc?method=TransOut"))
        );
        assert_eq!(
            Target::parse("json-rpc", "http://h/plain"),
            Ok(Target::Http("http://h/plain"))
        );
        assert_eq!(
            Target::parse("http", "http://h/rpc?method=TransOut"),
            Ok(Target::Http("http://h/rpc?method=TransOut"))
        );
        assert_eq!(
            Target::parse("grpc", "http://b/x"),
            Ok(Target::Http("http://b/x"))
        );
        assert_eq!(
            Target::parse("grpc", "localhost:9001/api.stock.v1.Stock/TransOut"),
            Ok(Target::Grpc {
                authority: "localhost:9001",
                method: "/api.stock.v1.Stock/TransOut"
            })
        );
        assert!(Target::parse("http", "localhost:9001/a.B/C").is_err());
        assert_eq!(
            Target::parse("grpc", "discovery:///stock/api.stock.v1.Stock/TransOut"),
            Ok(Target::Registry {
                server: "discovery:///stock",
                method: "/api.stock.v1.Stock/TransOut"
            })
        );
        assert_eq!(
            Target::parse("grpc", "etcd://h:2379/k/a.B/C"),
            Ok(Target::Registry {
                server: "etcd://h:2379/k",
                method: "/a.B/C"
            })
        );
        assert!(Target::parse("grpc", "consul://h/k/a.B/C").is_err());
        assert!(Target::parse("grpc", "etcd://h/k/a.B").is_err());
        assert!(Target::parse("grpc", "localhost:9001//a.B").is_err());
        assert!(Target::parse("grpc", "localhost:9001").is_err());
        assert!(Target::parse("grpc", "localhost:9001/a.B").is_err());
    }
}
