//! The services' documented examples against the whole stack: with the coordinator running,
//! PlaceOrder's example places an order (the services' own tests, without one, can only see it
//! refused), and the read examples find what they name.

use e2e::Stack;

#[tokio::test]
async fn the_documented_examples_work_against_the_whole_stack() {
    let s = Stack::start().await;
    let mut answers = Vec::new();
    for (base, yaml) in [
        (&s.stock.0, api::stock::v1::OPENAPI_YAML),
        (&s.order.0, api::order::v1::OPENAPI_YAML),
    ] {
        answers.extend(dtmtest::openapi::send_examples(&s.client, base, yaml).await);
    }
    for id in [
        "Order_PlaceOrder",
        "Order_ListOrders",
        "Stock_GetStock",
        "Stock_GetStock_1",
    ] {
        let status = answers.iter().find(|(op, _)| op == id).map(|(_, s)| *s);
        assert_eq!(status, Some(200), "{id}: {answers:?}");
    }
    s.assert_invariant().await;
}
