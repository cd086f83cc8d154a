//! DTM's JSON-RPC: the coordinator's `/api/json-rpc` API, and JSON-RPC branches (protocol
//! `json-rpc`, URLs with `?method=`), against a JSON-RPC branch server in this test.

use std::sync::{Arc, Mutex};

use axum::Json;
use e2e::{Stack, gid};
use serde_json::{Value, json};

/// A JSON-RPC branch server: records every call (method, params) and answers each method as
/// planned — SUCCESS unless the method is listed as failing.
#[derive(Clone, Default)]
struct RpcBranches {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    failing: Arc<Mutex<Vec<String>>>,
}

impl RpcBranches {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/rpc",
            axum::routing::post(move |Json(req): Json<Value>| {
                let me = me.clone();
                async move {
                    let method = req["method"].as_str().unwrap_or_default().to_owned();
                    me.calls
                        .lock()
                        .expect("calls")
                        .push((method.clone(), req["params"].clone()));
                    let error = if me.failing.lock().expect("plan").contains(&method) {
                        json!({"code": -32901, "message": "FAILURE"})
                    } else {
                        Value::Null
                    };
                    Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": {}, "error": error}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/rpc", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn methods(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("calls");
        calls.iter().map(|(m, _)| m.clone()).collect()
    }
}

/// One JSON-RPC call to the coordinator: its reply (always HTTP 200).
async fn call(s: &Stack, body: Value) -> Value {
    let url = format!(
        "{}/api/json-rpc",
        s.dtm_http.trim_end_matches("/api/dtmsvr")
    );
    let res = s
        .client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("json-rpc");
    assert_eq!(res.status(), 200);
    res.json().await.expect("reply")
}

/// A two-step saga over JSON-RPC whose branches are JSON-RPC methods at `rpc`.
fn saga(g: &str, rpc: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": "submit-1", "method": "submit", "params": {
        "gid": g, "trans_type": "saga", "protocol": "json-rpc", "wait_result": true,
        "steps": [
            {"action": format!("{rpc}?method=TransOut"), "compensate": format!("{rpc}?method=TransOutRevert")},
            {"action": format!("{rpc}?method=TransIn"), "compensate": format!("{rpc}?method=TransInRevert")},
        ],
        "payloads": ["{\"amount\":30}", "{\"amount\":30}"],
    }})
}

#[tokio::test]
async fn a_saga_submitted_over_json_rpc_calls_its_json_rpc_branches() {
    let s = Stack::start().await;
    let branches = RpcBranches::default();
    let rpc = branches.start().await;

    let reply = call(&s, json!({"jsonrpc": "2.0", "id": "1", "method": "newGid"})).await;
    assert_eq!(reply["error"], Value::Null, "{reply}");
    let g = reply["result"]["gid"].as_str().expect("gid").to_owned();

    let reply = call(&s, saga(&g, &rpc)).await;
    assert_eq!(
        (&reply["id"], &reply["error"], &reply["result"]),
        (&json!("submit-1"), &Value::Null, &Value::Null),
        "{reply}"
    );
    assert_eq!(s.status(&g).await, "succeed");
    assert_eq!(branches.methods(), ["TransOut", "TransIn"]);
    let calls = branches.calls.lock().expect("calls").clone();
    let (_, params) = &calls[1];
    assert_eq!(
        (
            &params["amount"],
            &params["gid"],
            &params["trans_type"],
            &params["branch_id"],
            &params["op"]
        ),
        (
            &json!(30),
            &json!(g),
            &json!("saga"),
            &json!("02"),
            &json!("action")
        ),
        "the payload with DTM's context added"
    );
}

#[tokio::test]
async fn a_json_rpc_failure_rolls_the_saga_back_and_comes_back_as_its_code() {
    let s = Stack::start().await;
    let branches = RpcBranches::default();
    branches
        .failing
        .lock()
        .expect("plan")
        .push("TransIn".into());
    let rpc = branches.start().await;
    let g = gid("rpc-fail");
    let reply = call(&s, saga(&g, &rpc)).await;
    assert_eq!(reply["error"]["code"], -32901, "{reply}");
    assert_eq!(s.status(&g).await, "failed");
    let methods = branches.methods();
    assert_eq!(&methods[..2], ["TransOut", "TransIn"]);
    assert!(
        methods.contains(&"TransOutRevert".to_owned()),
        "{methods:?}"
    );
}

#[tokio::test]
async fn malformed_json_rpc_gets_its_standard_error_codes() {
    let s = Stack::start().await;
    let url = format!(
        "{}/api/json-rpc",
        s.dtm_http.trim_end_matches("/api/dtmsvr")
    );
    let raw: Value = s
        .client
        .post(&url)
        .body("{not json")
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("reply");
    assert_eq!(raw["error"]["code"], -32700, "{raw}");
    for (body, code) in [
        (
            json!({"jsonrpc": "1.0", "id": "1", "method": "newGid"}),
            -32600,
        ),
        (json!({"jsonrpc": "2.0", "method": "newGid"}), -32600),
        (
            json!({"jsonrpc": "2.0", "id": "1", "method": "nope"}),
            -32601,
        ),
        (
            json!({"jsonrpc": "2.0", "id": "1", "method": "submit", "params": {"gid": "x"}}),
            -32602,
        ),
    ] {
        let reply = call(&s, body.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{body} → {reply}");
    }
    // Nothing was stored by the refused submit.
    assert_eq!(s.query("x").await["transaction"], Value::Null);
}

#[tokio::test]
async fn a_payload_a_json_rpc_branch_cannot_take_is_refused_at_submit() {
    let s = Stack::start().await;
    for payload in ["[1,2]", "\"text\"", "{not json"] {
        let g = gid("rpc-payload");
        let mut body = saga(&g, "http://127.0.0.1:9/rpc");
        body["params"]["payloads"] = json!([payload, "{}"]);
        let reply = call(&s, body.clone()).await;
        assert_eq!(reply["error"]["code"], -32602, "{payload}: {reply}");
        let msg = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("must be a JSON object"), "{msg}");
        // The same over the HTTP API: a 400, and nothing stored either way.
        let res = s
            .client
            .post(format!("{}/submit", s.dtm_http))
            .json(&body["params"])
            .send()
            .await
            .expect("submit");
        assert_eq!(res.status(), 400, "{payload}");
        assert_eq!(s.query(&g).await["transaction"], Value::Null);
    }
}

#[tokio::test]
async fn a_bad_request_is_not_echoed_back_whole() {
    let s = Stack::start().await;
    let big = "x".repeat(50_000); // under the body cap
    for body in [
        json!({"jsonrpc": "1.0", "id": "1", "method": "newGid", "pad": big}),
        json!({"jsonrpc": "2.0", "id": big, "method": "newGid"}),
        json!({"jsonrpc": "2.0", "id": "1", "method": big}),
    ] {
        let reply = call(&s, body).await;
        let size = reply.to_string().len();
        assert!(
            size < 1024,
            "a {size}-byte reply: {}",
            &reply.to_string()[..200]
        );
        assert!(reply["error"]["code"].is_i64(), "{reply}");
    }
}

#[tokio::test]
async fn a_workflow_is_prepared_recorded_and_ended_over_json_rpc() {
    let s = Stack::start().await;
    let g = gid("rpc-wf");
    let rpc = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": format!("{method}-1"), "method": method, "params": params});
    let prepare = rpc(
        "prepareWorkflow",
        json!({"gid": g, "trans_type": "workflow", "query_prepared": "http://127.0.0.1:1/resume",
               "custom_data": "{\"name\":\"wf\",\"data\":\"\"}"}),
    );
    let reply = call(&s, prepare.clone()).await;
    assert_eq!(
        reply["result"]["transaction"]["status"], "prepared",
        "{reply}"
    );
    assert_eq!(reply["result"]["progresses"], json!([]), "{reply}");
    let step = rpc(
        "registerBranch",
        json!({"gid": g, "trans_type": "workflow", "branch_id": "01", "op": "action",
               "status": "succeed", "data": "ok"}),
    );
    let reply = call(&s, step.clone()).await;
    assert_eq!(reply["error"], Value::Null, "{reply}");
    // The same step again is refused, as FAILURE.
    assert_eq!(call(&s, step).await["error"]["code"], -32901);
    let reply = call(&s, prepare).await;
    assert_eq!(
        reply["result"]["progresses"],
        json!([{"branch_id": "01", "op": "action", "status": "succeed", "bin_data": "b2s="}]),
        "{reply}"
    );
    let end = rpc(
        "submit",
        json!({"gid": g, "trans_type": "workflow",
               "req_extra": {"status": "succeed", "rollback_reason": "", "result": ""}}),
    );
    assert_eq!(call(&s, end).await["error"], Value::Null);
    assert_eq!(s.status(&g).await, "succeed");
}
