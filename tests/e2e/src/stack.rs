//! The stack every scenario runs on: a coordinator, the stock and order services in-process on
//! random ports with temporary databases, every other service of deploy/apps.txt as a process,
//! and a scripted branch server — and the checks scenarios end with (global status, branch
//! table, rows, the invariant).

use coordinator::biz::Clock;
use dtmcli::{Dialect, Dtm};
use dtmtest::Transport;
use dtmtest::script::ScriptServer;
use kit::transcode::HttpRule;
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::{
    MAX_QUANTITY, SEED, apps, backend, bind, branch_url, coordinator_app, coordinator_conf,
    protocol, stock_app, store_conf,
};

/// Coordinator + stock + order + script server.
pub struct Stack {
    /// The coordinator's clock: scenarios move it instead of sleeping.
    pub clock: Clock,
    /// `http://…/api/dtmsvr`.
    pub dtm_http: String,
    /// `127.0.0.1:…`.
    pub dtm_grpc: String,
    /// Stock service endpoints.
    pub stock: (String, String),
    /// Order service endpoints.
    pub order: (String, String),
    /// The scripted branch server.
    pub script: ScriptServer,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The order service's database (for msg scenarios that play the application's part).
    pub order_data: dtmcli::BranchDb,
    /// The services of `deploy/apps.txt` beyond stock and order, as processes: name, process,
    /// database URL.
    pub added: Vec<(String, dtmtest::Process, String)>,
    stock_pool: AnyPool,
    /// The services' SQL dialect (placeholders of the checks below).
    dialect: Dialect,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Starts everything; the coordinator's poller runs every 10 ms. The backends come from
    /// `E2E_STORE` (the coordinator's store: `sqlite`, the default, `postgres`, `mysql` or
    /// `redis`) and `E2E_DB` (the services' databases: `sqlite`, `postgres` or `mysql`) —
    /// `make test-matrix` runs every scenario on each.
    pub async fn start() -> Stack {
        dtmtest::init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let services = backend("E2E_DB").await;

        // Coordinator.
        let conf = coordinator_conf(store_conf(&dir).await);
        let clock = Clock::default();
        let c = coordinator_app(&conf, clock.clone()).await;
        let dtm_http = format!("http://{}/api/dtmsvr", c.http_addr());
        let dtm_grpc = c.grpc_addr().to_string();
        tokio::spawn(c.run_until(std::future::pending()));

        // Stock.
        let servers = dtmtest::servers_conf_with_body(64 * 1024);
        let stock_db = kit::DatabaseConf {
            max_connections: 4,
            ..kit::DatabaseConf::new(services.0.driver(), services.source(&dir, "stock").await)
        };
        let (app, stock_pool) = stock_app(&stock_db, None).await;
        let stock = (
            format!("http://{}", app.http_addr()),
            app.grpc_addr().to_string(),
        );
        tokio::spawn(app.run_until(std::future::pending()));

        // Order: it must know its own address (branch URLs) before it is built.
        let (http_l, grpc_l) = (bind().await, bind().await);
        let order = (
            format!("http://{}", http_l.local_addr().expect("addr")),
            grpc_l.local_addr().expect("addr").to_string(),
        );
        let order_db = kit::DatabaseConf {
            max_connections: 4,
            ..kit::DatabaseConf::new(services.0.driver(), services.source(&dir, "order").await)
        };
        // Every other service of deploy/apps.txt, as a process.
        let mut added = Vec::new();
        for app in apps::added_services() {
            let source = services.source(&dir, &app.name).await;
            let process = apps::start_added(&app, services.0.driver(), &source, SEED, dir.path());
            added.push((app.name, process, source));
        }
        let endpoints = |http: &str, grpc: &str| order::conf::Endpoints {
            http: http.to_owned(),
            grpc: grpc.trim_start_matches("http://").to_owned(),
        };
        let mut order_conf: order::conf::Bootstrap =
            dtmtest::shipped_config(apps::app_dir("order"));
        order_conf.server = servers.clone();
        order_conf.data.database = order_db.clone();
        order_conf.order.max_quantity = MAX_QUANTITY;
        (order_conf.dtm.http, order_conf.dtm.grpc) = (dtm_http.clone(), dtm_grpc.clone());
        let services_conf = &mut order_conf.dtm.services;
        services_conf.insert("stock".into(), endpoints(&stock.0, &stock.1));
        services_conf.insert("order".into(), endpoints(&order.0, &order.1));
        for (name, p, _) in &added {
            services_conf.insert(name.clone(), endpoints(&p.http, &p.grpc));
        }
        let app = order::wire(&order_conf)
            .await
            .expect("order wiring")
            .listeners(http_l, grpc_l)
            .build(&servers)
            .await
            .expect("order app");
        let order_data = order::data::open(&order_db).await.expect("order data");
        tokio::spawn(app.run_until(std::future::pending()));

        Stack {
            clock,
            dtm_http,
            dtm_grpc,
            stock,
            order,
            script: ScriptServer::start().await,
            client: reqwest::Client::new(),
            order_data,
            added,
            stock_pool,
            dialect: services.0,
            _dir: dir,
        }
    }

    /// A client of the coordinator over `t`.
    pub fn dtm(&self, t: Transport) -> Dtm {
        match t {
            Transport::Http => Dtm::http(&self.dtm_http),
            Transport::Grpc => Dtm::grpc(&self.dtm_grpc).expect("dtm grpc"),
        }
    }

    /// The URL of a stock branch for transactions over `t`.
    pub fn stock_url(&self, t: Transport, rule: &HttpRule) -> String {
        branch_url(t, &self.stock, rule)
    }

    /// The URL of an order branch for transactions over `t`.
    pub fn order_url(&self, t: Transport, rule: &HttpRule) -> String {
        branch_url(t, &self.order, rule)
    }

    /// The URL of scripted branch `name`.
    pub fn script_url(&self, t: Transport, name: &str) -> String {
        self.script.url(protocol(t), name)
    }

    /// PlaceOrder through the order service's HTTP API: `(status code, reply)`.
    pub async fn place_order(
        &self,
        t: Transport,
        mode: &str,
        sku: &str,
        quantity: i64,
    ) -> (u16, Value) {
        let transport = match t {
            Transport::Http => "TRANSPORT_HTTP",
            Transport::Grpc => "TRANSPORT_GRPC",
        };
        let body = json!({"user_id": 7, "sku": sku, "quantity": quantity, "mode": mode, "transport": transport});
        self.post(&format!("{}/api/order/v1/orders", self.order.0), body)
            .await
    }

    /// [`Stack::place_order`] that must answer 200 with the transaction `want` (`succeed`,
    /// `failed`): its `(gid, order id)`.
    pub async fn placed(
        &self,
        t: Transport,
        mode: &str,
        sku: &str,
        quantity: i64,
        want: &str,
    ) -> (String, String) {
        let (code, reply) = self.place_order(t, mode, sku, quantity).await;
        assert_eq!(
            (code, reply["status"].as_str()),
            (200, Some(want)),
            "{t:?} {mode}: {reply}"
        );
        let field = |k: &str| reply[k].as_str().expect(k).to_owned();
        (field("gid"), field("orderId"))
    }

    /// CancelOrder through the order service's HTTP API.
    pub async fn cancel_order(&self, order_id: &str) -> (u16, Value) {
        self.post(
            &format!("{}/api/order/v1/orders/{order_id}/cancel", self.order.0),
            json!({}),
        )
        .await
    }

    /// POSTs JSON to the coordinator's `/api/dtmsvr/<path>`.
    pub async fn dtm_post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post(&format!("{}/{path}", self.dtm_http), body).await
    }

    /// POSTs JSON; `(status, body)`.
    pub async fn post(&self, url: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GETs JSON; `(status, body)`.
    pub async fn get(&self, url: &str) -> (u16, Value) {
        let res = self.client.get(url).send().await.expect("send");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The coordinator's `query` of `gid`.
    pub async fn query(&self, gid: &str) -> Value {
        let (status, v) = self
            .get(&format!("{}/query?gid={gid}", self.dtm_http))
            .await;
        assert_eq!(status, 200, "query {gid}: {v}");
        v
    }

    /// The global status of `gid`.
    pub async fn status(&self, gid: &str) -> String {
        self.query(gid).await["transaction"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The branch table `(branch_id, op, status)` in insertion order, as `query` lists them.
    pub async fn branches(&self, gid: &str) -> Vec<(String, String, String)> {
        let v = self.query(gid).await;
        v["branches"]
            .as_array()
            .map(|bs| {
                bs.iter()
                    .map(|b| {
                        let f = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                        (f("branch_id"), f("op"), f("status"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls until `gid` has status `want` (10 s at most).
    pub async fn wait_status(&self, gid: &str, want: &str) {
        let what = format!("{gid} reaches status {want:?}");
        dtmtest::eventually(&what, async || self.status(gid).await == want).await;
    }

    /// Polls until `gid`'s retry interval is `secs` (10 s at most).
    pub async fn wait_interval(&self, gid: &str, secs: i64) {
        let what = format!("{gid} has a retry interval of {secs} s");
        dtmtest::eventually(&what, async || {
            self.query(gid).await["transaction"]["next_cron_interval"].as_i64() == Some(secs)
        })
        .await;
    }

    /// Polls until `f()` holds (10 s at most).
    pub async fn wait_until(&self, what: &str, mut f: impl FnMut() -> bool) {
        dtmtest::eventually(what, async || f()).await;
    }

    /// `(available, frozen)` of a SKU.
    pub async fn stock_of(&self, sku: &str) -> (i64, i64) {
        let sql = self
            .dialect
            .sql("SELECT available, frozen FROM stock WHERE sku = ?");
        let row = sqlx::query(&sql)
            .bind(sku)
            .fetch_one(&self.stock_pool)
            .await
            .expect("stock row");
        (row.get(0), row.get(1))
    }

    /// A pool on the database of `name`, a service of deploy/apps.txt beyond stock and order.
    pub async fn added_db(&self, name: &str) -> AnyPool {
        let (_, _, source) = self
            .added
            .iter()
            .find(|(n, ..)| n == name)
            .unwrap_or_else(|| panic!("{name} is not in deploy/apps.txt"));
        dtmcli::dialect::connect(source, 2)
            .await
            .expect("the service's database")
    }

    /// The services' database (the stack's `E2E_DB`).
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// XA transactions of `gid` still prepared on the services' database server (stock's and
    /// order's databases share it).
    pub async fn xa_prepared(&self, gid: &str) -> Vec<String> {
        dtmtest::prepared_xids(&self.stock_pool, self.dialect, gid).await
    }

    /// The status of an order, if it exists.
    pub async fn order_status(&self, id: &str) -> Option<String> {
        let sql = self.dialect.sql("SELECT status FROM orders WHERE id = ?");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.order_data.pool)
            .await
            .expect("order row")
            .map(|r| r.get(0))
    }

    /// The stock invariant (docs/architecture.md), once every transaction is final: for each SKU,
    /// `available + frozen + Σ quantity of PENDING/CREATED orders == seeded stock`.
    pub async fn assert_invariant(&self) {
        let (s, v) = self.get(&format!("{}/all?limit=1000", self.dtm_http)).await;
        assert_eq!(s, 200);
        for t in v["transactions"].as_array().into_iter().flatten() {
            let status = t["status"].as_str().unwrap_or_default();
            assert!(status == "succeed" || status == "failed", "not final: {t}");
        }
        for (sku, seeded) in SEED {
            let (available, frozen) = self.stock_of(sku).await;
            // Summed here: SUM's type differs per database (NUMERIC, DECIMAL, INTEGER).
            let sql = self.dialect.sql(
                "SELECT quantity FROM orders WHERE sku = ? AND status IN ('PENDING', 'CREATED')",
            );
            let held: i64 = sqlx::query(&sql)
                .bind(*sku)
                .fetch_all(&self.order_data.pool)
                .await
                .expect("held quantities")
                .iter()
                .map(|r| r.get::<i64, _>(0))
                .sum();
            assert_eq!(
                available + frozen + held,
                *seeded,
                "{sku}: available {available} + frozen {frozen} + ordered {held}"
            );
        }
    }
}
