//! etcd registration and resolution (needs `TEST_ETCD_ENDPOINTS`; with `CI=true` a missing
//! server fails): the coordinator publishes itself in go-zero layout, the stock service in
//! kratos layout; the SDK finds the coordinator through `etcd://…`, the coordinator finds stock
//! through `discovery:///stock/…` and `etcd://…/<key>/…`; stopped instances leave at once, dead
//! ones when their lease runs out.

use std::sync::Arc;
use std::time::Duration;

use dtmcli::{Dtm, Saga};
use dtmtest::eventually;
use e2e::{Stack, coordinator_conf, stock_app};
use kit::registry::{Registrar, ServiceInstance};
use prost::Message;
use registry::{Etcd, EtcdRegistrar};
use serde_json::Value;

/// The etcd endpoints, or `None` (skipped with a printed reason) outside CI.
fn etcd() -> Option<(String, Etcd)> {
    let list = dtmtest::server_url("TEST_ETCD_ENDPOINTS")?;
    let client = Etcd::connect(&registry::split_endpoints(&list)).expect("etcd client");
    Some((list, client))
}

async fn keys(etcd: &Etcd, prefix: &str) -> Vec<(String, String)> {
    etcd.prefix(prefix)
        .await
        .expect("etcd range")
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn sagas_reach_branches_and_the_coordinator_through_etcd() {
    let Some((list, etcd)) = etcd() else { return };
    dtmtest::init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let unique = uuid::Uuid::new_v4().simple().to_string();

    // The coordinator, registered in go-zero layout under a key of this test.
    let dtm_key = format!("dtm-{unique}");
    let mut conf = coordinator_conf(coordinator::conf::Store::new(
        "sqlite",
        &format!("sqlite://{}/dtm.db", dir.path().display()),
    ));
    conf.micro_service = coordinator::conf::MicroService {
        driver: "dtm-driver-gozero".into(),
        target: format!("etcd://{list}/{dtm_key}"),
        end_point: String::new(),
    };
    let c = e2e::coordinator_app(&conf, Default::default()).await;
    let (dtm_http, dtm_grpc) = (c.http_addr(), c.grpc_addr());
    let (stop_dtm, stopped) = tokio::sync::oneshot::channel::<()>();
    let coordinator = tokio::spawn(c.run_until(async {
        let _ = stopped.await;
    }));
    eventually("the coordinator is registered", async || {
        keys(&etcd, &format!("{dtm_key}/"))
            .await
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            == [dtm_grpc.to_string()]
    })
    .await;

    // Stock, registered in kratos layout by its config; and under a go-zero key as well, as a
    // go-zero service would publish it.
    let registry_conf = registry::Conf {
        etcd: list.clone(),
        ttl: Duration::from_secs(3),
        host: String::new(),
    };
    let source = format!("sqlite://{}/stock.db", dir.path().display());
    let db = kit::DatabaseConf {
        max_connections: 4,
        ..kit::DatabaseConf::new("sqlite", source)
    };
    let (app, _pool) = stock_app(&db, registry_conf.registrar().expect("registrar")).await;
    let instance = app.instance().expect("registered instance").clone();
    let stock_http = format!("http://{}", app.http_addr());
    let stock_key = format!("/microservices/stock/{}", instance.id);
    let (stop_stock, stopped) = tokio::sync::oneshot::channel::<()>();
    let stock = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    eventually("stock is registered", async || {
        keys(&etcd, &stock_key).await.len() == 1
    })
    .await;
    let listed: ServiceInstance =
        serde_json::from_str(&keys(&etcd, &stock_key).await[0].1).expect("instance JSON");
    assert_eq!(listed, instance);
    let gozero_key = format!("stock-{unique}");
    let gozero = EtcdRegistrar::gozero(
        &format!("etcd://{list}/{gozero_key}"),
        instance.endpoint("grpc").map(str::to_owned),
        Duration::from_secs(3),
    )
    .expect("go-zero registrar");
    gozero.register(&instance).await.expect("go-zero register");

    // A saga over gRPC: the SDK resolves the coordinator, the coordinator the branches.
    let dtm = Dtm::grpc(&format!("etcd://{list}/{dtm_key}")).expect("dtm client");
    let gid = dtm.new_gid().await.expect("newGid through etcd");
    let payload = |n| {
        api::stock::v1::StockRequest {
            sku: "SKU-A".into(),
            quantity: n,
        }
        .encode_to_vec()
    };
    let method = |base: &str, m: &str| format!("{base}/api.stock.v1.Stock/{m}");
    let kratos = "discovery:///stock";
    let gozero_base = format!("etcd://{list}/{gozero_key}");
    Saga::new(&dtm, &gid)
        .add(
            &method(kratos, "TransOut"),
            &method(kratos, "TransOutCompensate"),
            payload(2),
        )
        .add(
            &method(&gozero_base, "TransOut"),
            &method(&gozero_base, "TransOutCompensate"),
            payload(3),
        )
        .submit()
        .await
        .expect("submit through etcd");
    let query = format!("http://{dtm_http}/api/dtmsvr/query?gid={gid}");
    eventually("the saga succeeds", async || {
        get_json(&query).await["transaction"]["status"] == "succeed"
    })
    .await;
    let level = get_json(&format!("{stock_http}/api/stock/v1/stocks/SKU-A")).await;
    assert_eq!(level["available"], 95, "{level}");

    // Stopped instances leave etcd at once.
    gozero
        .deregister(&instance)
        .await
        .expect("go-zero deregister");
    assert!(keys(&etcd, &format!("{gozero_key}/")).await.is_empty());
    let _ = stop_stock.send(());
    stock.await.expect("join").expect("stock stopped");
    assert!(
        keys(&etcd, &stock_key).await.is_empty(),
        "stock deregistered"
    );
    let _ = stop_dtm.send(());
    coordinator
        .await
        .expect("join")
        .expect("coordinator stopped");
    assert!(
        keys(&etcd, &format!("{dtm_key}/")).await.is_empty(),
        "coordinator deregistered"
    );
}

#[tokio::test]
async fn an_instance_that_dies_drops_out_when_its_lease_ends() {
    let Some((list, etcd)) = etcd() else { return };
    let endpoints = registry::split_endpoints(&list);
    let instance = ServiceInstance {
        id: uuid::Uuid::new_v4().to_string(),
        name: format!("lease-{}", uuid::Uuid::new_v4().simple()),
        version: String::new(),
        metadata: Default::default(),
        endpoints: vec!["grpc://127.0.0.1:1".into()],
    };
    let key = format!("/microservices/{}/{}", instance.name, instance.id);
    let registrar: Arc<dyn Registrar> =
        Arc::new(EtcdRegistrar::kratos(&endpoints, Duration::from_secs(2)).expect("registrar"));
    registrar.register(&instance).await.expect("register");
    // Renewed: still there after more than one TTL.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(keys(&etcd, &key).await.len(), 1, "renewed past its TTL");
    // "Dies": the renewals stop, nobody deregisters.
    drop(registrar);
    assert_eq!(keys(&etcd, &key).await.len(), 1, "still listed right after");
    eventually("the dead instance drops out", async || {
        keys(&etcd, &key).await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn discovery_urls_without_a_registry_are_refused_at_submit() {
    let s = Stack::start().await;
    let err = Saga::new(&s.dtm(e2e::Transport::Grpc), "no-registry")
        .add(
            "discovery:///stock/api.stock.v1.Stock/TransOut",
            "",
            Vec::new(),
        )
        .submit()
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("needs a registry"), "{err}");
    assert!(
        get_json(&format!("{}/query?gid=no-registry", s.dtm_http)).await["transaction"].is_null()
    );
}

/// A registered name with no live instance: the call ends at its own timeout, not the server's.
#[tokio::test]
async fn a_call_to_a_name_without_instances_ends_at_its_timeout() {
    let Some((list, _)) = etcd() else { return };
    let resolver = registry::Resolver::new(&registry::split_endpoints(&list)).expect("resolver");
    let caller = dtmcli::caller::Caller::new().with_resolver(resolver);
    let name = format!("nobody-{}", uuid::Uuid::new_v4().simple());
    let url = format!("discovery:///{name}/e2e.Script/a");
    let call = call_grpc(&caller, &url, Duration::from_millis(500));
    let result = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call ends by itself");
    assert!(
        matches!(result, Err(dtmcli::caller::CallError::Transport { .. })),
        "{result:?}"
    );
}

/// The branch network policy holds for registered instances too: their addresses come from etcd,
/// not from the URL. An instance at 127.0.0.2, with only 127.0.0.1 allowed, is never dialled;
/// without the policy it is.
#[tokio::test]
async fn registered_instances_outside_the_allowed_networks_are_never_called() {
    let Some((list, _)) = etcd() else { return };
    let endpoints = registry::split_endpoints(&list);
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    let instance = ServiceInstance {
        id: uuid::Uuid::new_v4().to_string(),
        name: format!("denied-{}", uuid::Uuid::new_v4().simple()),
        version: String::new(),
        metadata: Default::default(),
        endpoints: vec![format!("grpc://{addr}")],
    };
    let registrar = EtcdRegistrar::kratos(&endpoints, Duration::from_secs(10)).expect("registrar");
    registrar.register(&instance).await.expect("register");
    let url = format!("discovery:///{}/e2e.Script/a", instance.name);
    let timeout = Duration::from_millis(1500);
    let conf = coordinator::conf::Hardening {
        branch_networks: "127.0.0.1/32".into(),
        ..Default::default()
    };
    let reach = coordinator::data::reach::reach(&conf).expect("reach");
    let hardened = dtmcli::caller::Caller::new()
        .with_reach(reach)
        .with_resolver(registry::Resolver::new(&endpoints).expect("resolver"));
    let result = call_grpc(&hardened, &url, timeout).await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the refused instance was dialled"
    );
    // The same instance without the policy: dialled.
    let open = dtmcli::caller::Caller::new()
        .with_resolver(registry::Resolver::new(&endpoints).expect("resolver"));
    let _ = call_grpc(&open, &url, timeout).await;
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) > 0);
    registrar.deregister(&instance).await.expect("deregister");
}

/// A saga action over gRPC at `url` through `caller`, ended at `timeout`.
async fn call_grpc(
    caller: &dtmcli::caller::Caller,
    url: &str,
    timeout: Duration,
) -> Result<dtmcli::caller::Reply, dtmcli::caller::CallError> {
    let info = dtmtest::branch("saga", "action");
    let headers = Default::default();
    let request = dtmcli::caller::CallRequest {
        url,
        protocol: "grpc",
        body: b"",
        info: &info,
        headers: &headers,
        timeout,
        op_name: None,
    };
    caller.call(&request).await
}
