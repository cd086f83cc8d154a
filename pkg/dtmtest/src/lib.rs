//! `dtmtest`: test support for DTM branch services — a dev-dependency only, never linked into a
//! service. An app under test with its shipped config ([`TestApp`], [`shipped_config`]); calling
//! a branch the way the coordinator does over either transport and reading its answer; scripted
//! branches ([`script`]); a fresh database per test; a service's database in memory
//! ([`MemoryBranches`]); child processes; a Redis Cluster of a test's own ([`OwnCluster`]); a
//! server that comes up late ([`LateServer`]).
//!
//! Databases: a fresh, empty one per test on every backend the environment offers. SQLite always;
//! PostgreSQL when `TEST_PG_URL` is set and MySQL/MariaDB when `TEST_MYSQL_URL` is set (URLs of a
//! server and any existing database, used to create new ones). Outside CI a missing variable skips
//! that backend with a printed reason; with `CI=true` it fails.

#![warn(missing_docs)]

mod app;
/// A headless browser over WebDriver.
pub mod browser;
mod db;
pub mod flood;
mod late_server;
mod memory;
pub mod openapi;
mod process;
mod redis_cluster;
/// A scripted branch server.
pub mod script;

pub use app::{TestApp, init_logs, servers_conf, servers_conf_with_body, shipped_config};
pub use db::{
    TestDb, TestRedis, database, databases, missing, prepared_xids, redis, redis_cluster,
    server_url, skip, sqlite,
};
pub use late_server::LateServer;
pub use memory::MemoryBranches;
pub use process::Process;
pub use redis_cluster::OwnCluster;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kit::transcode::HttpRule;
use prost_reflect::DescriptorPool;
use serde_json::Value;
use sqlx::AnyPool;
use tonic::transport::Channel;

use dtmcli::{BranchInfo, Op, TransType};

/// The two transports every branch scenario runs over.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// HTTP/JSON, DTM context in the query string.
    Http,
    /// gRPC, DTM context in `dtm-*` metadata.
    Grpc,
}

/// Both transports, for `for t in BOTH`.
pub const BOTH: [Transport; 2] = [Transport::Http, Transport::Grpc];

/// What a branch answered, as the transport said it.
#[derive(Debug)]
pub enum Answer {
    /// HTTP status and JSON body.
    Http {
        /// Status code.
        status: u16,
        /// Body (`null` when not JSON).
        body: Value,
    },
    /// gRPC outcome.
    Grpc(Result<(), tonic::Status>),
}

impl Answer {
    /// SUCCESS: HTTP 200 / gRPC OK.
    pub fn is_success(&self) -> bool {
        match self {
            Answer::Http { status, .. } => *status == 200,
            Answer::Grpc(r) => r.is_ok(),
        }
    }

    /// FAILURE: HTTP 409 with reason FAILURE / gRPC Aborted with ErrorInfo reason FAILURE.
    pub fn is_failure(&self) -> bool {
        self.is(409, tonic::Code::Aborted, "FAILURE")
    }

    /// HTTP 400 / gRPC InvalidArgument with this reason.
    pub fn is_bad_request(&self, reason: &str) -> bool {
        self.is(400, tonic::Code::InvalidArgument, reason)
    }

    /// HTTP `status` / gRPC `code`, with this reason.
    pub fn is(&self, status: u16, code: tonic::Code, reason: &str) -> bool {
        match self {
            Answer::Http { status: s, body } => *s == status && body["reason"] == reason,
            Answer::Grpc(Err(s)) => {
                s.code() == code && kit::Error::from(s.clone()).reason == reason
            }
            Answer::Grpc(Ok(())) => false,
        }
    }

    /// The `cause` metadata of a FAILURE.
    pub fn cause(&self) -> String {
        match self {
            Answer::Http { body, .. } => body["metadata"]["cause"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Answer::Grpc(Err(s)) => kit::Error::from(s.clone())
                .metadata
                .get("cause")
                .cloned()
                .unwrap_or_default(),
            Answer::Grpc(Ok(())) => String::new(),
        }
    }
}

/// A branch context with a gid no other test uses.
pub fn branch(trans_type: &str, op: &str) -> BranchInfo {
    static N: AtomicU64 = AtomicU64::new(0);
    BranchInfo {
        gid: format!(
            "g-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        trans_type: TransType::parse(trans_type).expect("DTM's spelling of a trans_type"),
        branch_id: "01".into(),
        op: Op::parse(op).expect("DTM's spelling of an op"),
        dtm: String::new(),
        phase2_url: String::new(),
    }
}

/// The same branch, another op (its compensation, confirm, cancel…).
pub fn with_op(info: &BranchInfo, op: &str) -> BranchInfo {
    BranchInfo {
        op: Op::parse(op).expect("DTM's spelling of an op"),
        ..info.clone()
    }
}

/// Polls `check` every 5 ms until it holds; panics naming `what` after 10 s. The one way tests
/// wait for something to happen (never a bare sleep).
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    eventually_within(what, Duration::from_secs(10), check).await;
}

/// [`eventually`] with a deadline of its own, for work that takes long by design (a thousand
/// transactions), not as a cure for slowness.
pub async fn eventually_within(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Where a branch service listens, for [`call`].
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// HTTP client.
    pub client: &'a reqwest::Client,
    /// HTTP base URL, `http://127.0.0.1:port`.
    pub http: &'a str,
    /// gRPC channel.
    pub grpc: &'a Channel,
    /// The descriptors of the service's protos (`api::descriptor_pool()`), for the JSON body.
    pub pool: &'a DescriptorPool,
}

/// Calls the method of `rule` as the coordinator calls a branch: over HTTP the proto3 JSON of
/// `msg` (POST, or GET when the rule has no body) with the DTM query string; over gRPC `msg`
/// with `dtm-*` metadata.
pub async fn call<M>(
    t: Transport,
    to: Target<'_>,
    rule: &HttpRule,
    info: &BranchInfo,
    msg: M,
) -> Answer
where
    M: prost::Message + Send + Sync + 'static,
{
    match t {
        Transport::Http => {
            let url = format!("{}{}", to.http, rule.path);
            let req = if rule.body.is_empty() {
                to.client.get(url)
            } else {
                let body = kit::transcode::to_json(to.pool, rule.input, &msg.encode_to_vec())
                    .expect("message to JSON");
                to.client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
            };
            let res = req
                .query(&info.to_query())
                .send()
                .await
                .expect("HTTP request");
            let status = res.status().as_u16();
            let body = res.json().await.unwrap_or(Value::Null);
            Answer::Http { status, body }
        }
        Transport::Grpc => {
            let mut req = tonic::Request::new(msg);
            info.to_metadata(req.metadata_mut()).expect("metadata");
            let mut grpc = tonic::client::Grpc::new(to.grpc.clone());
            grpc.ready().await.expect("gRPC channel ready");
            let path = rule.operation.parse().expect("operation path");
            let codec = tonic_prost::ProstCodec::<M, ()>::default();
            Answer::Grpc(grpc.unary(req, path, codec).await.map(|_| ()))
        }
    }
}

/// gRPC health of `service` (`""` for the server as a whole).
pub async fn grpc_health(grpc: &str, service: &str) -> i32 {
    let channel = Channel::from_shared(grpc.to_owned())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

/// The services gRPC reflection lists (what `grpcurl list` prints).
pub async fn reflection_services(grpc: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let channel = Channel::from_shared(grpc.to_owned())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection")
        .into_inner();
    let res = stream
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    match res.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// Asserts that every method of `service` with a `google.api.http` rule is routed: a request to
/// its path (`{variables}` replaced from `vars`) with a DTM query reaches a handler and gets its
/// JSON answer, never the NOT_FOUND / METHOD_NOT_ALLOWED fallback of a route miss.
pub async fn assert_every_http_rule_is_routed(
    to: Target<'_>,
    service: &str,
    vars: &[(&str, &str)],
) {
    let ext = to
        .pool
        .get_extension_by_name("google.api.http")
        .expect("google/api/annotations.proto imported");
    let service = to
        .pool
        .get_service_by_name(service)
        .expect("service in the pool");
    for method in service.methods() {
        let options = method.options();
        let rule = options.get_extension(&ext);
        let prost_reflect::Value::Message(rule) = rule.as_ref() else {
            panic!("{} has no google.api.http rule", method.full_name());
        };
        let text = |f: &str| {
            rule.get_field_by_name(f)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let (get, mut path) = match text("get") {
            p if !p.is_empty() => (true, p),
            _ => (false, text("post")),
        };
        for (k, v) in vars {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        let url = format!("{}{path}", to.http);
        let req = if get {
            to.client.get(url)
        } else {
            to.client.post(url).body("{}")
        };
        let res = req
            .query(&branch("saga", "action").to_query())
            .send()
            .await
            .expect("HTTP request");
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("a JSON answer");
        assert!(
            body.get("reason")
                .is_none_or(|r| r != "NOT_FOUND" && r != "METHOD_NOT_ALLOWED"),
            "{} {path}: {status} {body}",
            method.full_name()
        );
    }
}

/// The msg check-back contract of a service, over both transports: `rule` (its QueryPrepared)
/// answers SUCCESS for a msg whose local transaction committed in `pool` — a barrier row of op
/// `msg`, as `do_and_submit` writes — and FAILURE for one whose local transaction never did.
pub async fn assert_query_prepared(to: Target<'_>, rule: &HttpRule, pool: &AnyPool) {
    use futures_util::FutureExt;
    for t in BOTH {
        let committed = BranchInfo {
            branch_id: "00".into(),
            ..branch("msg", "msg")
        };
        let tx = pool.begin().await.expect("begin");
        dtmcli::BranchBarrier::new(committed.clone())
            .call(tx, |_conn| {
                async { Ok::<_, dtmcli::BarrierError>(()) }.boxed()
            })
            .await
            .expect("the msg's local transaction");
        let never = BranchInfo {
            branch_id: "00".into(),
            ..branch("msg", "msg")
        };
        let ok = call(t, to, rule, &committed, ()).await;
        let failed = call(t, to, rule, &never, ()).await;
        assert!(ok.is_success(), "{t:?}: {ok:?}");
        assert!(failed.is_failure(), "{t:?}: {failed:?}");
    }
}
