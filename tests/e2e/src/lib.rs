//! The end-to-end harness: the [`Stack`] every scenario runs on ([`stack`]), the one list of
//! the apps ([`apps`]), and what scenarios share: the apps' test configs, payloads, gids.

#![warn(missing_docs)]

pub mod apps;
pub mod stack;
pub mod workflows;

pub use stack::Stack;

use std::sync::Arc;
use std::time::Duration;

use api::order::v1 as order_api;
use api::stock::v1 as stock_api;
use coordinator::biz::Clock;
use dtmcli::Dialect;
pub use dtmtest::Transport;
use kit::transcode::HttpRule;
use prost::Message;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::net::TcpListener;

/// Seeded stock of every stack: plenty of one SKU, little of another, and the SKU the APIs'
/// documented examples name.
pub const SEED: &[(&str, i64)] = &[("SKU-A", 100), ("SKU-B", 5), ("SKU-APPLE", 100)];
/// The per-order limit of the order service in every stack.
pub const MAX_QUANTITY: i64 = 10;
/// The coordinator's `RetryInterval` in every stack; scenarios move the clock past it.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// The coordinator's `TimeoutToFail`.
pub const TIMEOUT_TO_FAIL: Duration = Duration::from_secs(35);

/// A backend of the matrix, named by the environment variable `var`.
async fn backend(var: &str) -> Backend {
    match std::env::var(var).as_deref() {
        Err(_) | Ok("") => Backend(Dialect::Sqlite),
        Ok(name) => Backend(
            Dialect::from_driver(name)
                .unwrap_or_else(|| panic!("{var}={name}: expected sqlite, postgres or mysql")),
        ),
    }
}

/// The coordinator's config of every stack: the shipped one on `store`, both APIs on
/// `127.0.0.1:0`, the poller every 10 ms, bodies up to 64 KiB.
pub fn coordinator_conf(store: coordinator::conf::Store) -> coordinator::conf::Bootstrap {
    let mut conf: coordinator::conf::Bootstrap =
        dtmtest::shipped_config(apps::app_dir("coordinator"));
    conf.store = store;
    (conf.http_port, conf.grpc_port, conf.listen_ip) = (0, 0, "127.0.0.1".into());
    conf.trans_cron_interval = Duration::from_millis(10);
    (conf.timeout_to_fail, conf.retry_interval) = (TIMEOUT_TO_FAIL, RETRY_INTERVAL);
    conf.max_body_bytes = 64 * 1024;
    conf
}

/// The stock service on `db`, seeded with [`SEED`], bound on `127.0.0.1:0` ([`stock::wire`]),
/// published through `registrar` if given; and a pool of its own on its database.
pub async fn stock_app(
    db: &kit::DatabaseConf,
    registrar: Option<Arc<dyn kit::registry::Registrar>>,
) -> (kit::App, AnyPool) {
    let mut conf: stock::conf::Bootstrap = dtmtest::shipped_config(apps::app_dir("stock"));
    conf.server = dtmtest::servers_conf_with_body(64 * 1024);
    conf.data.database = db.clone();
    conf.stock.seed = SEED
        .iter()
        .map(|(sku, n)| stock::conf::Seed {
            sku: (*sku).into(),
            available: *n,
        })
        .collect();
    let app = stock::wire(&conf)
        .await
        .expect("stock wiring")
        .registrar(registrar, None)
        .build(&conf.server)
        .await
        .expect("stock app");
    let pool = stock::data::open(db).await.expect("stock data").pool;
    (app, pool)
}

/// [`stock_app`] on a SQLite file in `dir` (bound, not serving yet).
pub async fn sqlite_stock_app(dir: &std::path::Path) -> (kit::App, AnyPool) {
    let db = kit::DatabaseConf::new("sqlite", format!("sqlite://{}/stock.db", dir.display()));
    stock_app(&db, None).await
}

/// The coordinator's store from `E2E_STORE`: a SQL backend, `redis` or `redis-cluster` (a key
/// prefix of its own).
pub async fn store_conf(dir: &tempfile::TempDir) -> coordinator::conf::Store {
    match std::env::var("E2E_STORE").as_deref() {
        Ok("redis") => {
            let redis = dtmtest::redis()
                .unwrap_or_else(|| panic!("redis asked for, but TEST_REDIS_URL is not set"));
            return coordinator::conf::Store {
                redis_prefix: redis.prefix,
                ..coordinator::conf::Store::new("redis", &redis.url)
            };
        }
        Ok("redis-cluster") => {
            let cluster = dtmtest::redis_cluster().unwrap_or_else(|| {
                panic!("redis-cluster asked for, but TEST_REDIS_CLUSTER_URL is not set")
            });
            return coordinator::conf::Store {
                redis_prefix: cluster.prefix,
                redis_cluster: true,
                ..coordinator::conf::Store::new("redis", &cluster.url)
            };
        }
        _ => {}
    }
    let store = backend("E2E_STORE").await;
    coordinator::conf::Store {
        max_open_conns: 4,
        ..coordinator::conf::Store::new(store.0.driver(), &store.source(dir, "dtm").await)
    }
}

/// Where one app of a stack keeps its data.
struct Backend(Dialect);

impl Backend {
    /// A fresh database for `name`: a file in `dir`, or a new database on the server.
    async fn source(&self, dir: &tempfile::TempDir, name: &str) -> String {
        if self.0 == Dialect::Sqlite {
            return format!("sqlite://{}/{name}.db", dir.path().display());
        }
        dtmtest::database(self.0)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{} asked for, but its server is not configured",
                    self.0.driver()
                )
            })
            .url
    }
}

/// The `protocol` word of a transport.
pub fn protocol(t: Transport) -> &'static str {
    match t {
        Transport::Http => "http",
        Transport::Grpc => "grpc",
    }
}

/// A stock branch's body over `t`.
pub fn stock_payload(t: Transport, sku: &str, quantity: i64) -> Vec<u8> {
    match t {
        Transport::Http => json!({"sku": sku, "quantity": quantity})
            .to_string()
            .into_bytes(),
        Transport::Grpc => stock_api::StockRequest {
            sku: sku.into(),
            quantity,
        }
        .encode_to_vec(),
    }
}

/// An order TransIn body over `t`.
pub fn order_payload(t: Transport, id: &str, sku: &str, quantity: i64) -> Vec<u8> {
    match t {
        Transport::Http => json!({"order_id": id, "user_id": 7, "sku": sku, "quantity": quantity})
            .to_string()
            .into_bytes(),
        Transport::Grpc => order_api::OrderRequest {
            order_id: id.into(),
            user_id: 7,
            sku: sku.into(),
            quantity,
        }
        .encode_to_vec(),
    }
}

/// A fresh gid.
pub fn gid(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `[(branch_id, op, status)]` from a compact spec: `["01 compensate prepared", …]`.
pub fn table(rows: &[&str]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|r| {
            let mut f = r.split_whitespace().map(str::to_owned);
            let mut next = || f.next().expect("three words");
            (next(), next(), next())
        })
        .collect()
}

fn branch_url(t: Transport, (http, grpc): &(String, String), rule: &HttpRule) -> String {
    match t {
        Transport::Http => format!("{http}{}", rule.path),
        Transport::Grpc => format!("{grpc}{}", rule.operation),
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// The status of each of `gids` (in order; `""` when not stored), from the coordinator's query
/// API at `http` (`http://host:port`), 32 queries at a time.
pub async fn statuses(http: &str, gids: &[String]) -> Vec<String> {
    use futures_util::StreamExt;
    let client = reqwest::Client::new();
    futures_util::stream::iter(gids)
        .map(|gid| {
            let client = &client;
            async move {
                let v: Value = client
                    .get(format!("{http}/api/dtmsvr/query?gid={gid}"))
                    .send()
                    .await
                    .expect("query")
                    .json()
                    .await
                    .expect("JSON");
                v["transaction"]["status"].as_str().unwrap_or("").to_owned()
            }
        })
        .buffered(32)
        .collect()
        .await
}

/// The coordinator `conf` describes on `clock`, its listeners bound.
pub async fn coordinator_app(conf: &coordinator::conf::Bootstrap, clock: Clock) -> kit::App {
    let overrides = coordinator::Overrides {
        clock,
        ..Default::default()
    };
    coordinator::wire(conf, overrides)
        .await
        .expect("coordinator")
        .build(&conf.servers())
        .await
        .expect("coordinator's listeners")
}
