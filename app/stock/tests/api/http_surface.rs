//! The HTTP side of the contract: every annotated method is routed, bad input gets a kratos
//! error body, health answers.

use dtmtest::assert_every_http_rule_is_routed;
use serde_json::json;

use crate::helpers::{Answer, INITIAL, SKU, branch, spawn_app};

#[tokio::test]
async fn every_annotated_method_is_reachable_over_http() {
    let app = spawn_app().await;
    assert_every_http_rule_is_routed(app.target(), "api.stock.v1.Stock", &[("sku", "SKU-TEST")])
        .await;
}

#[tokio::test]
async fn malformed_json_is_a_codec_error() {
    let app = spawn_app().await;
    let q = branch("saga", "action");
    for body in [r#"{"sku": "#, "not json", r#"{"sku":"A"} trailing"#] {
        let a = app
            .post("/api/stock/v1/trans-out", &q.to_query(), body)
            .await;
        let Answer::Http { status, body: b } = &a else {
            unreachable!()
        };
        assert_eq!(
            (*status, b["reason"].as_str()),
            (400, Some("CODEC")),
            "{body}: {a:?}"
        );
        assert_eq!(b["code"], 400);
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(b["metadata"].is_object());
    }
    assert_eq!(app.stock(SKU).await, (INITIAL, 0));
}

#[tokio::test]
async fn wrong_field_types_and_unknown_fields_are_codec_errors() {
    let app = spawn_app().await;
    let q = branch("saga", "action");
    for body in [
        json!({"sku": 1, "quantity": 1}),
        json!({"sku": SKU, "quantity": "many"}),
        json!({"sku": SKU, "quantity": 1.5}),
        json!({"sku": SKU, "quantity": 1, "color": "red"}),
        json!([1, 2]),
    ] {
        let a = app
            .post("/api/stock/v1/trans-out", &q.to_query(), &body.to_string())
            .await;
        assert!(
            matches!(&a, Answer::Http { status: 400, body } if body["reason"] == "CODEC"),
            "{body}: {a:?}"
        );
    }
    // Proto3 JSON: 64-bit integers may come as strings, names in either case.
    let a = app
        .post(
            "/api/stock/v1/trans-out",
            &q.to_query(),
            &json!({"sku": SKU, "quantity": "2"}).to_string(),
        )
        .await;
    assert!(a.is_success(), "{a:?}");
    assert_eq!(app.stock(SKU).await, (INITIAL - 2, 0));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_a_kratos_body() {
    let app = spawn_app().await; // max_body_bytes: 1024 in the test config
    let q = branch("saga", "action");
    let big = json!({"sku": "x".repeat(4096), "quantity": 1}).to_string();
    let a = app
        .post("/api/stock/v1/trans-out", &q.to_query(), &big)
        .await;
    assert!(
        matches!(&a, Answer::Http { status: 413, body } if body["code"] == 413 && body["reason"] == "BODY"),
        "{a:?}"
    );
    assert_eq!(app.stock(SKU).await, (INITIAL, 0));
}

#[tokio::test]
async fn get_stock_of_an_unknown_sku_is_404_with_a_reason() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/api/stock/v1/stocks/NOPE", app.http))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 404);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["reason"], "SKU_NOT_FOUND");
}

/// GetStock's rule and its additional binding: the SKU in the path or in the query, one answer.
#[tokio::test]
async fn get_stock_answers_by_path_and_by_query() {
    let app = spawn_app().await;
    let mut bodies = Vec::new();
    for url in [
        format!("{}/api/stock/v1/stocks/{SKU}", app.http),
        format!("{}/api/stock/v1/stock?sku={SKU}", app.http),
    ] {
        let res = app.client.get(&url).send().await.expect("send");
        assert_eq!(res.status().as_u16(), 200, "{url}");
        bodies.push(res.json::<serde_json::Value>().await.expect("json"));
    }
    assert_eq!(bodies[0]["sku"], SKU, "{bodies:?}");
    assert_eq!(bodies[0]["available"], INITIAL, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn healthz_answers_serving() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/healthz", app.http))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.expect("json")["status"],
        "SERVING"
    );
}

/// The gRPC twin of malformed JSON: bytes that are not a `StockRequest` (field 2 sent as a
/// string where an int64 belongs) are `InvalidArgument` with reason CODEC, and change nothing.
#[tokio::test]
async fn malformed_protobuf_over_grpc_is_invalid_argument() {
    let app = spawn_app().await;
    let wrong = api::order::v1::PlaceOrderReply {
        order_id: SKU.into(),
        gid: "not a number".into(),
        status: String::new(),
    };
    let mut req = tonic::Request::new(wrong);
    branch("saga", "action")
        .to_metadata(req.metadata_mut())
        .expect("metadata");
    let mut grpc = tonic::client::Grpc::new(app.grpc.clone());
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<api::order::v1::PlaceOrderReply, ()>::default();
    let err = grpc
        .unary(
            req,
            "/api.stock.v1.Stock/TransOut".parse().expect("path"),
            codec,
        )
        .await
        .expect_err("a decode error");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(kit::Error::from(err).reason, "CODEC");
    assert_eq!(app.stock(SKU).await, (INITIAL, 0));
}

/// More connections than the cap, held idle, PINGing or slow on both listeners, do not lock a
/// fresh client out: each flood in turn, a fresh HTTP and gRPC client answered within 1 s.
#[tokio::test(flavor = "multi_thread")]
async fn floods_of_connections_do_not_lock_fresh_clients_out() {
    use dtmtest::flood;
    let db = dtmtest::sqlite().await;
    let conf = crate::helpers::for_tests(&db);
    let app = stock::wire(&conf)
        .await
        .expect("wire")
        .build(&conf.server)
        .await
        .expect("build");
    let (http, grpc) = (app.http_addr(), app.grpc_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let path = "/healthz";
    flood::every_flood_leaves_fresh_clients_served(http, path, grpc).await;
}
