//! `dtmtest`: test support for DTM branch services — a dev-dependency only, never linked into a
//! service. Calling a branch the way the coordinator does over either transport and reading its
//! answer; scripted branches ([`script`]); a fresh database per test; child processes.
//!
//! Databases: a fresh, empty one per test on every backend the environment offers. SQLite always;
//! PostgreSQL when `TEST_PG_URL` is set and MySQL/MariaDB when `TEST_MYSQL_URL` is set (URLs of a
//! server and any existing database, used to create new ones). Outside CI a missing variable skips
//! that backend with a printed reason; with `CI=true` it fails.

#![warn(missing_docs)]

/// A headless browser over WebDriver.
pub mod browser;
pub mod flood;
/// A scripted branch server.
pub mod script;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kit::transcode::HttpRule;
use kit::{ServerConf, ServersConf};
use prost_reflect::DescriptorPool;
use serde_json::Value;
use sqlx::{AnyPool, Executor};
use tonic::transport::Channel;

use dtmcli::dialect::connect;
use dtmcli::{BranchInfo, Dialect};

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
        trans_type: trans_type.into(),
        branch_id: "01".into(),
        op: op.into(),
        ..Default::default()
    }
}

/// The same branch, another op (its compensation, confirm, cancel…).
pub fn with_op(info: &BranchInfo, op: &str) -> BranchInfo {
    BranchInfo {
        op: op.into(),
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

/// Servers on `127.0.0.1:0`, a 1 KiB body limit (so tests can cross it), short timeouts.
pub fn servers_conf() -> ServersConf {
    servers_conf_with_body(1024)
}

/// Servers on `127.0.0.1:0` with this body limit.
pub fn servers_conf_with_body(max_body_bytes: usize) -> ServersConf {
    let server = ServerConf::new("127.0.0.1:0", Duration::from_secs(5), max_body_bytes);
    ServersConf {
        http: server.clone(),
        grpc: server,
        shutdown_timeout: Duration::from_secs(1),
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

/// One fresh database.
pub struct TestDb {
    /// Which backend.
    pub dialect: Dialect,
    /// Its URL.
    pub url: String,
    /// A pool on it.
    pub pool: AnyPool,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// The database as an app's `data.database` config.
    pub fn conf(&self) -> kit::DatabaseConf {
        kit::DatabaseConf {
            driver: self.dialect.driver().into(),
            source: self.url.clone(),
            max_connections: 4,
        }
    }
}

/// Builds `app` on `servers` and runs it in the background for the rest of the test: its HTTP
/// base URL and a gRPC channel to it (connected on first use).
pub async fn serve(app: kit::AppBuilder, servers: &ServersConf) -> (String, Channel) {
    let app = app.build(servers).await.expect("build app");
    let http = format!("http://{}", app.http_addr());
    let grpc = Channel::from_shared(format!("http://{}", app.grpc_addr()))
        .expect("uri")
        .connect_lazy();
    tokio::spawn(app.run_until(std::future::pending()));
    (http, grpc)
}

/// The server backends and the variables that name them.
const SERVERS: &[(Dialect, &str)] = &[
    (Dialect::Postgres, "TEST_PG_URL"),
    (Dialect::MySql, "TEST_MYSQL_URL"),
];

/// A fresh database on every available backend, SQLite first.
pub async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    for (dialect, var) in SERVERS {
        if let Some(server) = server_url(var) {
            dbs.push(fresh(*dialect, &server).await);
        }
    }
    dbs
}

/// A fresh database on `dialect`'s backend; `None` (with a printed reason) when its server is not
/// configured outside CI.
pub async fn database(dialect: Dialect) -> Option<TestDb> {
    match SERVERS.iter().find(|(d, _)| *d == dialect) {
        None => Some(sqlite().await),
        Some((_, var)) => match server_url(var) {
            Some(server) => Some(fresh(dialect, &server).await),
            None => None,
        },
    }
}

/// A Redis server for one test: its URL and a key prefix no other test uses.
pub struct TestRedis {
    /// `redis://…` from `TEST_REDIS_URL`.
    pub url: String,
    /// `{t<uuid>}`: a hash tag, like DTM's default `{a}`, so the keys share one slot.
    pub prefix: String,
}

/// Redis from `TEST_REDIS_URL`; `None` (with a printed reason) when unset outside CI.
pub fn redis() -> Option<TestRedis> {
    server_url("TEST_REDIS_URL").map(|url| TestRedis {
        url,
        prefix: format!("{{t{}}}", uuid::Uuid::new_v4().simple()),
    })
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let pool = connect(&url, 8).await.expect("open SQLite");
    TestDb {
        dialect: Dialect::Sqlite,
        url,
        pool,
        _dir: Some(dir),
    }
}

/// The server URL in `var`; `None` (with a printed reason) when unset outside CI.
///
/// # Panics
/// When `var` is unset and `CI=true`: CI must run every backend, never skip one silently.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set but CI=true: start the servers with deploy/ci/servers.sh")
        }
        _ => {
            skip(format_args!(
                "the {var} backend: {var} is not set (deploy/ci/servers.sh starts one)"
            ));
            None
        }
    }
}

/// Says that a test skips `what`: on stderr, and as a line of the file `TEST_SKIP_LOG` names
/// (`make test` sets it and prints the count and the reasons at the end: a skipped test still
/// shows `ok`, and the summary must not overstate what ran).
pub fn skip(what: impl std::fmt::Display) {
    use std::io::Write;
    let line = format!("skipping {what}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("TEST_SKIP_LOG") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        // One write per line: concurrent tests append whole lines.
        if let Err(e) = file.and_then(|mut f| f.write_all(format!("{line}\n").as_bytes())) {
            eprintln!("TEST_SKIP_LOG: {e}");
        }
    }
}

/// Creates database `t_<uuid>` on the server at `server` and connects to it.
async fn fresh(dialect: Dialect, server: &str) -> TestDb {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = connect(server, 1)
        .await
        .unwrap_or_else(|e| panic!("connect {server}: {e}"));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("create database on {server}: {e}"));
    admin.close().await;
    let (base, query) = server.split_once('?').map_or((server, ""), |(b, q)| (b, q));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    let url = if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    };
    let pool = connect(&url, 8)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    TestDb {
        dialect,
        url,
        pool,
        _dir: None,
    }
}

/// A service binary started as a real process with its shipped config, on free ports.
pub struct Process {
    /// The child; killed on drop if still running.
    pub child: std::process::Child,
    /// HTTP base URL.
    pub http: String,
    /// gRPC URL.
    pub grpc: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Process {
    /// Starts `exe --conf <conf> --log-json` with `HTTP_ADDR`/`GRPC_ADDR` on `127.0.0.1:0` and
    /// `DB_SOURCE=<db>`, and waits (30 s at most) for its "serving" log line.
    pub fn start(exe: &str, conf: &str, db: &str) -> Process {
        Process::start_with(exe, conf, &[("DB_SOURCE", db)])
    }

    /// Like [`Process::start`], with these environment variables instead of `DB_SOURCE`.
    pub fn start_with(exe: &str, conf: &str, env: &[(&str, &str)]) -> Process {
        use std::io::BufRead;
        let mut child = std::process::Command::new(exe)
            .args(["-conf", conf, "--log-json"])
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("GRPC_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Process {
            child,
            http: String::new(),
            grpc: String::new(),
            lines,
        };
        let serving = p.wait_for_line("serving");
        let v: Value = serde_json::from_str(&serving).expect("JSON log line");
        p.http = format!("http://{}", v["http"].as_str().expect("http address"));
        p.grpc = format!("http://{}", v["grpc"].as_str().expect("grpc address"));
        p
    }

    /// The next log line whose message is `message` (30 s at most).
    pub fn wait_for_line(&mut self, message: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} log line within 30 s"));
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["message"] == message {
                return line;
            }
        }
    }

    /// Sends SIGTERM and waits (30 s at most) for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

impl Process {
    /// Asserts what every service binary serves: `/healthz` 200, gRPC health SERVING for
    /// `service`, and reflection listing `service`, health and reflection.
    pub async fn assert_serving(&self, service: &str) {
        let health = reqwest::get(format!("{}/healthz", self.http))
            .await
            .expect("healthz");
        assert_eq!(health.status().as_u16(), 200);
        assert_eq!(
            grpc_health(&self.grpc, service).await,
            1,
            "{service} is SERVING"
        );
        let services = reflection_services(&self.grpc).await;
        for s in [
            service,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(services.iter().any(|x| x == s), "{s} not in {services:?}");
        }
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

/// The xids of the XA transactions prepared in `pool`'s database server that start with
/// `prefix` (an XA branch's xid is `<gid>-<branch_id>`): the ones still waiting for phase two.
/// Both servers list prepared transactions server-wide, so tests filter by their own gids.
pub async fn prepared_xids(pool: &AnyPool, dialect: Dialect, prefix: &str) -> Vec<String> {
    let rows = match dialect {
        Dialect::Sqlite => return Vec::new(),
        // A text query: MySQL refuses XA statements as prepared statements.
        Dialect::MySql => pool.fetch_all("XA RECOVER").await,
        Dialect::Postgres => {
            pool.fetch_all("SELECT gid AS data FROM pg_prepared_xacts")
                .await
        }
    };
    use sqlx::Row;
    rows.expect("list prepared XA transactions")
        .iter()
        .map(|r| {
            r.try_get::<String, _>("data").unwrap_or_else(|_| {
                String::from_utf8_lossy(&r.get::<Vec<u8>, _>("data")).into_owned()
            })
        })
        .filter(|xid| xid.starts_with(prefix))
        .collect()
}
