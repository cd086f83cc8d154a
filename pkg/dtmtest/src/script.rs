//! A scripted branch server : any path answers what the test planned —
//! SUCCESS, FAILURE, ONGOING or an error — over HTTP (`/script/<name>`) and gRPC
//! (`/e2e.Script/<name>`, raw bytes), and records every call. For scenarios a real service cannot
//! produce on demand (a branch that is slow, flaky, or down for a while).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::response::IntoResponse;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tonic::server::NamedService;

use dtmcli::caller::RawCodec;
use dtmcli::{BranchError, BranchInfo};

/// What a scripted branch answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200 / OK.
    Success,
    /// 409 / Aborted.
    Failure,
    /// 425 / FailedPrecondition.
    Ongoing,
    /// 500 / Internal: no DTM result, so retried with back-off.
    Error,
}

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The branch name (last path segment).
    pub name: String,
    /// The DTM context it came with; `None` when it came without one (say, after a redirect
    /// that dropped the query).
    pub info: Option<BranchInfo>,
    /// The body.
    pub body: Vec<u8>,
    /// HTTP headers (and the method as `:method`) or gRPC metadata (lower-case names).
    pub headers: HashMap<String, String>,
    /// What it was answered.
    pub reply: Reply,
}

/// The plan and the record; cheap to clone.
#[derive(Clone, Default)]
pub struct Script {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    plans: HashMap<String, VecDeque<Reply>>,
    calls: Vec<Call>,
}

/// A running script server (clones share it).
#[derive(Clone)]
pub struct ScriptServer {
    /// The plan and the record.
    pub script: Script,
    /// `http://127.0.0.1:<port>`.
    pub http: String,
    /// `127.0.0.1:<port>`.
    pub grpc: String,
}

impl ScriptServer {
    /// Starts the server on two random ports.
    pub async fn start() -> ScriptServer {
        let script = Script::default();
        let s = script.clone();
        let router = axum::Router::new().route(
            "/script/{*name}",
            axum::routing::any(move |req: axum::extract::Request| {
                let s = s.clone();
                async move { s.serve_http(req).await }
            }),
        );
        let app = kit::App::builder("script")
            .http(router)
            .grpc(GrpcScript(script.clone()))
            .build(&crate::servers_conf_with_body(1 << 20))
            .await
            .expect("script server");
        let (http, grpc) = (
            format!("http://{}", app.http_addr()),
            app.grpc_addr().to_string(),
        );
        tokio::spawn(app.run_until(std::future::pending()));
        ScriptServer { script, http, grpc }
    }

    /// The URL of branch `name` for a transaction of `protocol` (`http` or `grpc`).
    pub fn url(&self, protocol: &str, name: &str) -> String {
        match protocol {
            "grpc" => format!("{}/e2e.Script/{name}", self.grpc),
            _ => format!("{}/script/{name}", self.http),
        }
    }
}

impl std::ops::Deref for ScriptServer {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.script
    }
}

impl Script {
    /// Branch `name` answers `replies` in turn, then SUCCESS.
    pub fn plan(&self, name: &str, replies: &[Reply]) {
        self.lock()
            .plans
            .insert(name.to_owned(), replies.iter().copied().collect());
    }

    /// Every call to `name`, in order.
    pub fn calls(&self, name: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect()
    }

    /// How many calls to `name` were answered SUCCESS (effects applied).
    pub fn successes(&self, name: &str) -> usize {
        self.calls(name)
            .iter()
            .filter(|c| c.reply == Reply::Success)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(
        &self,
        name: &str,
        info: Option<BranchInfo>,
        body: Vec<u8>,
        headers: HashMap<String, String>,
    ) -> Reply {
        let mut inner = self.lock();
        let reply = inner
            .plans
            .get_mut(name)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Success);
        inner.calls.push(Call {
            name: name.to_owned(),
            info,
            body,
            headers,
            reply,
        });
        reply
    }

    async fn serve_http(&self, req: axum::extract::Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let name = parts
            .uri
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let query: HashMap<String, String> = parts
            .uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        // Read as a service reads it: the query copied into `dtm-*` metadata.
        let mut md = tonic::metadata::MetadataMap::new();
        for (param, key) in kit::transcode::DTM_QUERY_TO_METADATA {
            if let Some(v) = query.get(*param).and_then(|v| v.parse().ok()) {
                md.insert(*key, v);
            }
        }
        let info = BranchInfo::from_metadata(&md).ok();
        let mut headers: HashMap<String, String> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        headers.insert(":method".into(), parts.method.to_string());
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        match self.record(&name, info, body.to_vec(), headers) {
            Reply::Success => {
                axum::Json(serde_json::json!({"dtm_result": "SUCCESS"})).into_response()
            }
            other => kit::Error::from(error_of(other)).into_response(),
        }
    }
}

fn error_of(r: Reply) -> ErrorOf {
    ErrorOf(r)
}

/// A non-success reply as the error a branch would return.
struct ErrorOf(Reply);

impl From<ErrorOf> for kit::Error {
    fn from(e: ErrorOf) -> Self {
        match e.0 {
            Reply::Failure => BranchError::Failure {
                message: "scripted FAILURE".into(),
                cause: "SCRIPT".into(),
            }
            .into(),
            Reply::Ongoing => BranchError::Ongoing("scripted ONGOING".into()).into(),
            Reply::Error | Reply::Success => kit::Error::new(500, "SCRIPT", "scripted error"),
        }
    }
}

/// The gRPC side: any method of `e2e.Script`, raw bytes in and out.
#[derive(Clone)]
struct GrpcScript(Script);

impl NamedService for GrpcScript {
    const NAME: &'static str = "e2e.Script";
}

impl tower::Service<http::Request<tonic::body::Body>> for GrpcScript {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let name = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let script = self.0.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            Ok(grpc.unary(Unary { script, name }, req).await)
        })
    }
}

struct Unary {
    script: Script,
    name: String,
}

impl tonic::server::UnaryService<Bytes> for Unary {
    type Response = Bytes;
    type Future = BoxFuture<'static, Result<tonic::Response<Bytes>, tonic::Status>>;

    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        let (script, name) = (self.script.clone(), self.name.clone());
        Box::pin(async move {
            let md = req.metadata();
            let info = BranchInfo::from_metadata(md).ok();
            let headers = md
                .clone()
                .into_headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            match script.record(&name, info, req.into_inner().to_vec(), headers) {
                Reply::Success => Ok(tonic::Response::new(Bytes::new())),
                other => Err(kit::Error::from(error_of(other)).into()),
            }
        })
    }
}
