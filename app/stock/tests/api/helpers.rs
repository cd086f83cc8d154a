//! `spawn_app` and typed calls over either transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api::stock::v1::{GetStockRequest, StockRequest, stock_client::StockClient};
use dtmcli::BranchInfo;
use dtmcli::testing::{TestDb, sqlite};
use kit::transcode::HttpRule;
use kit::{App, ServerConf, ServersConf};
use serde_json::Value;
use stock::biz::{Stock, StockUsecase};
use stock::data::{Data, StockRepoImpl};
use stock::server::{new_grpc_server, new_http_server};
use stock::service::StockService;
use tonic::transport::Channel;

/// The two transports every scenario runs over.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Http,
    Grpc,
}

pub const BOTH: [Transport; 2] = [Transport::Http, Transport::Grpc];

/// A running stock app and clients for it.
pub struct TestApp {
    pub http: String,
    pub grpc: Channel,
    pub client: reqwest::Client,
    pub db: TestDb,
}

/// What a branch answered, as the transport said it.
#[derive(Debug)]
pub enum Answer {
    Http { status: u16, body: Value },
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
        match self {
            Answer::Http { status, body } => *status == 409 && body["reason"] == "FAILURE",
            Answer::Grpc(Err(s)) => {
                s.code() == tonic::Code::Aborted && kit::Error::from(s.clone()).reason == "FAILURE"
            }
            Answer::Grpc(Ok(())) => false,
        }
    }

    /// A client error (HTTP 4xx / gRPC InvalidArgument) with this reason.
    pub fn is_bad_request(&self, reason: &str) -> bool {
        match self {
            Answer::Http { status, body } => *status == 400 && body["reason"] == reason,
            Answer::Grpc(Err(s)) => {
                s.code() == tonic::Code::InvalidArgument
                    && kit::Error::from(s.clone()).reason == reason
            }
            Answer::Grpc(Ok(())) => false,
        }
    }
}

/// Seeded in every test app.
pub const SKU: &str = "SKU-TEST";
pub const INITIAL: i64 = 10;

pub async fn spawn_app() -> TestApp {
    kit::log::init_for_tests();
    let db = sqlite().await;
    let server = |addr: &str| ServerConf {
        addr: addr.into(),
        timeout: std::time::Duration::from_secs(5),
        max_body_bytes: 1024,
    };
    let conf = ServersConf {
        http: server("127.0.0.1:0"),
        grpc: server("127.0.0.1:0"),
        shutdown_timeout: std::time::Duration::from_secs(1),
    };
    let database = stock::conf::Database {
        driver: "sqlite".into(),
        source: db.url.clone(),
        max_connections: 4,
    };

    // The wiring of cmd/stock/main.rs, with test config.
    let data = Data::new(&database).await.expect("data");
    let repo = StockRepoImpl::new(data);
    let uc = StockUsecase::new(repo);
    uc.seed(&[Stock {
        sku: SKU.into(),
        available: INITIAL,
        frozen: 0,
    }])
    .await
    .expect("seed");
    let svc = Arc::new(StockService::new(uc));
    let app = App::builder("stock")
        .http(new_http_server(svc.clone()))
        .grpc(new_grpc_server(&conf, svc))
        .reflection(api::FILE_DESCRIPTOR_SET)
        .build(&conf)
        .await
        .expect("build app");

    let http = format!("http://{}", app.http_addr());
    let grpc = Channel::from_shared(format!("http://{}", app.grpc_addr()))
        .expect("uri")
        .connect_lazy();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        http,
        grpc,
        client: reqwest::Client::new(),
        db,
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

/// The same branch, another op (its compensation, confirm, …).
pub fn with_op(info: &BranchInfo, op: &str) -> BranchInfo {
    BranchInfo {
        op: op.into(),
        ..info.clone()
    }
}

impl TestApp {
    /// Calls the branch `rule` as the coordinator would, over `t`.
    pub async fn call(
        &self,
        t: Transport,
        rule: &HttpRule,
        info: &BranchInfo,
        sku: &str,
        quantity: i64,
    ) -> Answer {
        match t {
            Transport::Http => {
                let body = serde_json::json!({ "sku": sku, "quantity": quantity });
                self.post(rule.path, &info.to_query(), &body.to_string())
                    .await
            }
            Transport::Grpc => {
                let mut req = tonic::Request::new(StockRequest {
                    sku: sku.into(),
                    quantity,
                });
                info.to_metadata(req.metadata_mut()).expect("metadata");
                let mut grpc = tonic::client::Grpc::new(self.grpc.clone());
                grpc.ready().await.expect("grpc ready");
                let path = rule.operation.parse().expect("path");
                let codec = tonic_prost::ProstCodec::<StockRequest, ()>::default();
                Answer::Grpc(grpc.unary(req, path, codec).await.map(|_| ()))
            }
        }
    }

    /// A raw HTTP POST with a query string and a body.
    pub async fn post(&self, path: &str, query: &[(&str, &str)], body: &str) -> Answer {
        let res = self
            .client
            .post(format!("{}{path}", self.http))
            .query(query)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("http send");
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        Answer::Http { status, body }
    }

    /// `(available, frozen)` of a SKU, read over gRPC.
    pub async fn stock(&self, sku: &str) -> (i64, i64) {
        let s = StockClient::new(self.grpc.clone())
            .get_stock(GetStockRequest { sku: sku.into() })
            .await
            .expect("get stock")
            .into_inner();
        (s.available, s.frozen)
    }
}
