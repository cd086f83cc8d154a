//! Trace context across the coordinator: a transaction started inside a trace carries that trace
//! id to every branch call — over HTTP and gRPC, on the first call and on a retry the poller
//! makes later — and the coordinator keeps it with the transaction.

use dtmcli::Saga;
use dtmtest::BOTH;
use dtmtest::script::Reply;
use e2e::{RETRY_INTERVAL, Stack, gid};
use tracing::Instrument;

/// The caller's trace: a remote parent, as an upstream service would send it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn a_saga_started_in_a_trace_carries_its_trace_id_to_every_branch_call() {
    let s = Stack::start().await;
    for t in BOTH {
        let name = format!("traced-{t:?}");
        // The first call errors: the retry comes from the poller, in a later round.
        s.script.plan(&name, &[Reply::Error]);
        let g = gid("traced");
        let caller = kit::trace::span_from(
            tracing::info_span!("caller", trace_id = tracing::field::Empty),
            &format!("00-{TRACE_ID}-00f067aa0ba902b7-01"),
        );
        Saga::new(&s.dtm(t), &g)
            .add(
                &s.script_url(t, &name),
                &s.script_url(t, "traced-undo"),
                "{}",
            )
            .submit()
            .instrument(caller)
            .await
            .expect("submit");
        s.wait_until("first call", || s.script.calls(&name).len() == 1)
            .await;
        s.wait_interval(&g, 20).await;
        s.clock.advance(RETRY_INTERVAL);
        s.wait_status(&g, "succeed").await;

        let calls = s.script.calls(&name);
        assert_eq!(calls.len(), 2, "{t:?}");
        for call in &calls {
            let traceparent = call.headers.get("traceparent").map(String::as_str);
            assert_eq!(
                traceparent.and_then(kit::trace::trace_id_of),
                Some(TRACE_ID),
                "{t:?}: {traceparent:?}"
            );
        }
        // Each call is a span of its own (its parent id differs from the caller's).
        assert!(
            calls
                .iter()
                .all(|c| !c.headers["traceparent"].contains("00f067aa0ba902b7"))
        );
        // The coordinator keeps the context with the transaction.
        let options: serde_json::Value = serde_json::from_str(
            s.query(&g).await["transaction"]["options"]
                .as_str()
                .expect("options"),
        )
        .expect("options JSON");
        let stored = options["traceparent"].as_str().unwrap_or_default();
        assert_eq!(kit::trace::trace_id_of(stored), Some(TRACE_ID), "{options}");
    }
}

#[tokio::test]
async fn without_a_caller_trace_each_transaction_gets_one_of_its_own() {
    let s = Stack::start().await;
    let mut ids = Vec::new();
    for t in BOTH {
        let name = format!("untraced-{t:?}");
        let g = gid("untraced");
        Saga::new(&s.dtm(t), &g)
            .add(
                &s.script_url(t, &name),
                &s.script_url(t, "untraced-undo"),
                "{}",
            )
            .wait_result(true)
            .submit()
            .await
            .expect("submit");
        let call = &s.script.calls(&name)[0];
        let id = call
            .headers
            .get("traceparent")
            .and_then(|tp| kit::trace::trace_id_of(tp))
            .map(str::to_owned);
        assert!(
            id.as_deref().is_some_and(|id| id != "0".repeat(32)),
            "{t:?}: {id:?}"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "two transactions, two traces");
}

#[tokio::test]
async fn place_order_continues_the_callers_trace_through_the_coordinator() {
    let s = Stack::start().await;
    for transport in ["TRANSPORT_HTTP", "TRANSPORT_GRPC"] {
        let body = serde_json::json!({"user_id": 7, "sku": "SKU-A", "quantity": 1,
            "mode": "MODE_SAGA", "transport": transport});
        let reply: serde_json::Value = s
            .client
            .post(format!("{}/api/order/v1/orders", s.order.0))
            .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
            .json(&body)
            .send()
            .await
            .expect("PlaceOrder")
            .json()
            .await
            .expect("reply");
        assert_eq!(reply["status"], "succeed", "{transport}: {reply}");
        let gid = reply["gid"].as_str().expect("gid");
        // order's request span → its dtmcli client → the coordinator's submit, which keeps it.
        let options: serde_json::Value = serde_json::from_str(
            s.query(gid).await["transaction"]["options"]
                .as_str()
                .expect("options"),
        )
        .expect("options JSON");
        let stored = options["traceparent"].as_str().unwrap_or_default();
        assert_eq!(
            kit::trace::trace_id_of(stored),
            Some(TRACE_ID),
            "{transport}: {options}"
        );
    }
}
