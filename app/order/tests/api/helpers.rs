//! `spawn_app` and typed calls over either transport.

use api::order::v1::order_client::OrderClient;
use api::order::v1::{GetOrderRequest, OrderRef, OrderRequest};
use dtmcli::BranchInfo;
pub use dtmtest::{Answer, BOTH, Transport, branch, with_op};
use dtmtest::{TestDb, call, servers_conf, shipped_config, sqlite};
use kit::transcode::HttpRule;
use order::conf::Bootstrap;

/// The per-order quantity limit of every test app.
pub const MAX_QUANTITY: i64 = 5;

/// A running order app and clients for it: dtmtest's, with order's typed calls.
pub struct TestApp(dtmtest::TestApp);

impl std::ops::Deref for TestApp {
    type Target = dtmtest::TestApp;
    fn deref(&self) -> &dtmtest::TestApp {
        &self.0
    }
}

pub async fn spawn_app() -> TestApp {
    dtmtest::init_logs();
    let db = sqlite().await;
    let conf = for_tests(&db);
    let app = order::wire(&conf).await.expect("wire");
    TestApp(dtmtest::TestApp::spawn(app, &conf.server, db, api::descriptor_pool()).await)
}

/// The shipped config on `db`, both servers on `127.0.0.1:0`, the limit [`MAX_QUANTITY`]. No
/// coordinator runs here (tests/e2e has one): port 1 refuses, so PlaceOrder answers 503.
pub fn for_tests(db: &TestDb) -> Bootstrap {
    let mut conf: Bootstrap = shipped_config(env!("CARGO_MANIFEST_DIR"));
    (conf.server, conf.data.database) = (servers_conf(), db.conf());
    conf.order.max_quantity = MAX_QUANTITY;
    (conf.dtm.http, conf.dtm.grpc) = ("http://127.0.0.1:1/api/dtmsvr".into(), "127.0.0.1:1".into());
    conf.dtm.timeout = std::time::Duration::from_secs(5);
    conf
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
