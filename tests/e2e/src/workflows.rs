//! Workflows in tests: a `dtmcli::workflow::Workflows` on a stack's coordinator, resumed through
//! servers of its own, and steps that call the stack's scripted branches.

use dtmcli::workflow::{Branch, Phase2, WorkflowError, Workflows};
use dtmtest::script::ScriptServer;

use crate::{Stack, Transport};

/// Workflows of `s`'s coordinator over `t`, resumed through servers of their own (the HTTP
/// route and the gRPC service, each mounted with its one call).
pub async fn workflows(s: &Stack, t: Transport) -> Workflows {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let resume = match t {
        Transport::Http => format!("http://{}/wf/resume", http.local_addr().expect("addr")),
        Transport::Grpc => Workflows::grpc_resume(&grpc.local_addr().expect("addr").to_string()),
    };
    let workflows = Workflows::new(s.dtm(t), &resume);
    let router = workflows.http_router("/wf/resume");
    tokio::spawn(async move { axum::serve(http, router).await });
    let service = workflows.grpc_service();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream(grpc)),
    );
    workflows
}

fn tokio_stream(
    l: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(
        l,
        |l| async move { Some((l.accept().await.map(|(s, _)| s), l)) },
    )
}

/// The scripted branches, as a workflow's code calls them.
#[derive(Clone)]
pub struct Calls {
    client: reqwest::Client,
    script: ScriptServer,
}

impl Calls {
    /// The scripted branches of `s`.
    pub fn of(s: &Stack) -> Calls {
        Calls {
            client: s.client.clone(),
            script: s.script.clone(),
        }
    }

    /// The URL of scripted branch `name` over `t`.
    pub fn url(&self, t: Transport, name: &str) -> String {
        self.script.url(crate::protocol(t), name)
    }
}

/// Calls scripted branch `name` as this branch's step, over `t`.
pub async fn step(
    b: Branch,
    s: &Calls,
    t: Transport,
    name: &str,
) -> Result<Vec<u8>, WorkflowError> {
    match t {
        Transport::Http => b.http(s.client.post(s.url(t, name)).body("{}")).await,
        Transport::Grpc => {
            let url = s.url(t, name);
            b.grpc((), |req| call_script(url, req))
                .await
                .map(|()| Vec::new())
        }
    }
}

/// A phase-two call of scripted branch `name`, over `t`.
pub async fn undo(
    p: Phase2,
    s: Calls,
    t: Transport,
    name: &'static str,
) -> Result<(), WorkflowError> {
    match t {
        Transport::Http => p.http(s.client.post(s.url(t, name)).body("{}")).await,
        Transport::Grpc => {
            let url = s.url(t, name);
            p.grpc((), |req| call_script(url, req)).await
        }
    }
}

/// A raw unary call of `host:port/e2e.Script/<name>`, `()` in and out.
async fn call_script(
    url: String,
    req: tonic::Request<()>,
) -> Result<tonic::Response<()>, tonic::Status> {
    let (authority, method) = url.split_at(url.find('/').expect("a method path"));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(method).expect("path");
    grpc.unary(req, path, kit::codec::ProstCodec::<(), ()>::default())
        .await
}
