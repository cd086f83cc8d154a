//! The user-facing calls: GetOrder, ListOrders, and PlaceOrder/CancelOrder's checks (their
//! transactions run in tests/e2e, with a coordinator).

use api::order::v1::HTTP_TRANS_IN;
use dtmtest::assert_every_http_rule_is_routed;
use serde_json::json;

use crate::helpers::{Transport, branch, new_order, spawn_app};

#[tokio::test]
async fn get_order_over_http_and_unknown_is_404() {
    let app = spawn_app().await;
    assert!(
        app.call_in(
            Transport::Http,
            &HTTP_TRANS_IN,
            &branch("saga", "action"),
            &new_order("o1", 2)
        )
        .await
        .is_success()
    );
    let res = app
        .client
        .get(format!("{}/api/order/v1/orders/o1", app.http))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 200);
    let o: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        (
            o["orderId"].as_str(),
            o["quantity"].as_i64(),
            o["status"].as_str()
        ),
        (Some("o1"), Some(2), Some("ORDER_STATUS_CREATED"))
    );
    assert!(
        o["createTime"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{o}"
    );

    let res = app
        .client
        .get(format!("{}/api/order/v1/orders/missing", app.http))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        res.json::<serde_json::Value>().await.expect("json")["reason"],
        "ORDER_NOT_FOUND"
    );
}

#[tokio::test]
async fn list_orders_pages_newest_first() {
    let app = spawn_app().await;
    for i in 0..5 {
        let a = app
            .call_in(
                Transport::Grpc,
                &HTTP_TRANS_IN,
                &branch("saga", "action"),
                &new_order(&format!("o{i}"), 1),
            )
            .await;
        assert!(a.is_success(), "{a:?}");
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let url = format!(
            "{}/api/order/v1/orders?page_size=2&pageToken={token}",
            app.http
        );
        let page: serde_json::Value = app
            .client
            .get(url)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let orders = page["orders"].as_array().expect("orders").clone();
        assert!(orders.len() <= 2, "{page}");
        seen.extend(
            orders
                .iter()
                .map(|o| o["orderId"].as_str().unwrap_or_default().to_owned()),
        );
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted,
        ["o0", "o1", "o2", "o3", "o4"],
        "every order exactly once: {seen:?}"
    );

    let bad = app
        .client
        .get(format!(
            "{}/api/order/v1/orders?page_token=garbage",
            app.http
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 400);
    let unknown = app
        .client
        .get(format!("{}/api/order/v1/orders?color=red", app.http))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status().as_u16(), 400);
}

#[tokio::test]
async fn place_and_cancel_order_validate_and_need_the_coordinator() {
    let app = spawn_app().await;
    let post = |path: &str, body: serde_json::Value| {
        app.client
            .post(format!("{}{path}", app.http))
            .body(body.to_string())
            .send()
    };
    let res = post(
        "/api/order/v1/orders",
        json!({"userId": 1, "sku": "", "quantity": 1}),
    )
    .await
    .expect("send");
    assert_eq!(res.status().as_u16(), 400);
    let res = post(
        "/api/order/v1/orders",
        json!({"user_id": 1, "sku": "SKU-APPLE", "quantity": 1, "mode": "MODE_TCC"}),
    )
    .await
    .expect("send");
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(
        res.json::<serde_json::Value>().await.expect("json")["reason"],
        "DTM_UNAVAILABLE"
    );
    let res = post("/api/order/v1/orders/missing/cancel", json!({}))
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        res.json::<serde_json::Value>().await.expect("json")["reason"],
        "ORDER_NOT_FOUND"
    );
}

#[tokio::test]
async fn every_annotated_method_is_reachable_over_http() {
    let app = spawn_app().await;
    assert_every_http_rule_is_routed(app.target(), "api.order.v1.Order", &[("order_id", "o1")])
        .await;
}
