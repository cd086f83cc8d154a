//! `spawn_app` and typed calls over either transport.

use api::stock::v1::{GetStockRequest, StockRequest, stock_client::StockClient};
use dtmcli::BranchInfo;
pub use dtmtest::{Answer, BOTH, Transport, branch, with_op};
use dtmtest::{TestDb, call, servers_conf, shipped_config, sqlite};
use kit::transcode::HttpRule;
use serde_json::Value;
use stock::conf::{self, Bootstrap};

/// A running stock app and clients for it: dtmtest's, with stock's typed calls.
pub struct TestApp(dtmtest::TestApp);

impl std::ops::Deref for TestApp {
    type Target = dtmtest::TestApp;
    fn deref(&self) -> &dtmtest::TestApp {
        &self.0
    }
}

/// Seeded in every test app.
pub const SKU: &str = "SKU-TEST";
pub const INITIAL: i64 = 10;

pub async fn spawn_app() -> TestApp {
    dtmtest::init_logs();
    let db = sqlite().await;
    let conf = for_tests(&db);
    let app = stock::wire(&conf).await.expect("wire");
    TestApp(dtmtest::TestApp::spawn(app, &conf.server, db, api::descriptor_pool()).await)
}

/// The shipped config on `db`, both servers on `127.0.0.1:0`, [`SKU`] seeded.
pub fn for_tests(db: &TestDb) -> Bootstrap {
    let mut conf: Bootstrap = shipped_config(env!("CARGO_MANIFEST_DIR"));
    (conf.server, conf.data.database) = (servers_conf(), db.conf());
    conf.stock.seed = vec![conf::Seed {
        sku: SKU.into(),
        available: INITIAL,
    }];
    conf
}

impl TestApp {
    /// Calls the stock branch `rule` as the coordinator would, over `t`.
    pub async fn call(
        &self,
        t: Transport,
        rule: &HttpRule,
        info: &BranchInfo,
        sku: &str,
        quantity: i64,
    ) -> Answer {
        call(
            t,
            self.target(),
            rule,
            info,
            StockRequest {
                sku: sku.into(),
                quantity,
            },
        )
        .await
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
