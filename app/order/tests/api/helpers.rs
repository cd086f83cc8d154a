//! `spawn_app` and typed calls over either transport.

use std::sync::Arc;

use api::order::v1::order_client::OrderClient;
use api::order::v1::{GetOrderRequest, OrderRef, OrderRequest};
use dtmcli::BranchInfo;
pub use dtmcli::testing::{Answer, BOTH, Transport, branch, with_op};
use dtmcli::testing::{Target, TestDb, call, servers_conf, sqlite};
use kit::App;
use kit::transcode::HttpRule;
use order::biz::OrderUsecase;
use order::conf;
use order::data::{Data, DtmTransactions, OrderRepoImpl};
use order::server::{new_grpc_server, new_http_server};
use order::service::OrderService;
use tonic::transport::Channel;

/// The per-order quantity limit of every test app.
pub const MAX_QUANTITY: i64 = 5;

/// A running order app and clients for it.
pub struct TestApp {
    pub http: String,
    pub grpc: Channel,
    pub client: reqwest::Client,
    pub db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    kit::log::init_for_tests();
    let db = sqlite().await;
    let conf = servers_conf();
    let database = kit::DatabaseConf {
        driver: "sqlite".into(),
        source: db.url.clone(),
        max_connections: 4,
    };

    // The wiring of cmd/order/main.rs, with test config.
    let data = Data::new(&database).await.expect("data");
    let repo = OrderRepoImpl::new(data);
    // No coordinator runs here (tests/e2e has one): port 1 refuses, so PlaceOrder answers 503.
    let nowhere = conf::Endpoints {
        http: "http://127.0.0.1:1".into(),
        grpc: "127.0.0.1:1".into(),
    };
    let dtm = conf::Dtm {
        http: "http://127.0.0.1:1/api/dtmsvr".into(),
        grpc: "127.0.0.1:1".into(),
        timeout: std::time::Duration::from_secs(5),
        stock: nowhere.clone(),
        order: nowhere,
    };
    let tx = DtmTransactions::new(&dtm, Default::default()).expect("dtm client");
    let uc = OrderUsecase::new(repo, tx, MAX_QUANTITY);
    let svc = Arc::new(OrderService::new(uc));
    let app = App::builder("order")
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

/// A TransIn payload.
pub fn new_order(id: &str, quantity: i64) -> OrderRequest {
    OrderRequest {
        order_id: id.into(),
        user_id: 7,
        sku: "SKU-TEST".into(),
        quantity,
    }
}

impl TestApp {
    /// Where the app listens, for `dtmcli::testing::call`.
    pub fn target(&self) -> Target<'_> {
        Target {
            client: &self.client,
            http: &self.http,
            grpc: &self.grpc,
            pool: api::descriptor_pool(),
        }
    }

    /// Calls a TransIn-family branch (payload: the order).
    pub async fn call_in(
        &self,
        t: Transport,
        rule: &HttpRule,
        info: &BranchInfo,
        o: &OrderRequest,
    ) -> Answer {
        call(t, self.target(), rule, info, o.clone()).await
    }

    /// Calls a TransOut-family branch (payload: the order id).
    pub async fn call_out(
        &self,
        t: Transport,
        rule: &HttpRule,
        info: &BranchInfo,
        id: &str,
    ) -> Answer {
        call(
            t,
            self.target(),
            rule,
            info,
            OrderRef {
                order_id: id.into(),
            },
        )
        .await
    }

    /// The status of an order (`ORDER_STATUS_…` name), `None` if it does not exist.
    pub async fn status(&self, id: &str) -> Option<String> {
        let res = OrderClient::new(self.grpc.clone())
            .get_order(GetOrderRequest {
                order_id: id.into(),
            })
            .await;
        match res {
            Ok(o) => Some(o.into_inner().status().as_str_name().to_owned()),
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => panic!("get order: {s}"),
        }
    }
}
