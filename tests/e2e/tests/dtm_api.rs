//! The coordinator's API as DTM's SDKs use it: bodies shaped exactly like those of the Go,
//! Python, Java, C# and PHP SDKs are accepted; bad input is a clear 4xx and stores nothing;
//! resubmit, forceStop, query and all behave as docs/dtm-protocol.md says.

use dtmcli::proto::DtmRequest;
use dtmcli::proto::dtm_client::DtmClient;
use dtmcli::{ClientError, Saga};
use dtmtest::BOTH;
use e2e::{Stack, gid, table};
use serde_json::{Value, json};

/// How many transactions the coordinator holds.
async fn stored(s: &Stack) -> usize {
    let (_, v) = s.get(&format!("{}/all?limit=1000", s.dtm_http)).await;
    v["transactions"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn requests_shaped_like_every_sdk_are_accepted() {
    let s = Stack::start().await;
    let url = |name: &str| s.script.url("http", name);
    let steps = json!([{"action": url("a"), "compensate": url("c")}]);
    let bodies = [
        // Go: flat options, protocol "", concurrent always present.
        json!({"gid": gid("go"), "trans_type": "saga", "protocol": "", "concurrent": false,
               "steps": steps, "payloads": ["{\"amount\":30}"], "wait_result": true,
               "custom_data": "", "branch_headers": {}}),
        // Python: explicit nulls, request_timeout default 8, passthrough_headers.
        json!({"gid": gid("py"), "trans_type": "saga", "custom_data": null, "query_prepared": null,
               "protocol": null, "steps": steps, "payloads": ["{}"], "request_timeout": 8,
               "passthrough_headers": [], "wait_result": true}),
        // Java: Jackson's subType, custom_data null.
        json!({"gid": gid("java"), "trans_type": "saga", "subType": "saga", "custom_data": null,
               "steps": steps, "payloads": ["{}"], "retry_limit": 0, "retry_count": 0, "wait_result": true}),
        // C#: every nullable field null, PascalCase-insensitive names.
        json!({"Gid": gid("cs"), "Trans_Type": "saga", "steps": steps, "payloads": ["{}"],
               "branch_headers": null, "query_prepared": null, "rollback_reason": null,
               "wait_result": true}),
        // dtm-php: its whole context, orders null.
        json!({"gid": gid("php"), "trans_type": "saga", "dtm": s.dtm_http, "branch_id": "", "op": "",
               "barrier_id": 0, "sub_branch_id": 0, "bin_payloads": [], "phase2_url": "",
               "steps": steps, "payloads": ["{}"], "custom_data": "{\"orders\":null}", "wait_result": true}),
        // DTM < 1.10: the payload inside the step.
        json!({"gid": gid("legacy"), "trans_type": "saga",
               "steps": [{"action": url("a"), "compensate": url("c"), "data": "{\"amount\":1}"}],
               "wait_result": true}),
    ];
    for body in bodies {
        let (code, reply) = s
            .post(&format!("{}/submit", s.dtm_http), body.clone())
            .await;
        assert_eq!(
            (code, reply.clone()),
            (200, json!({"dtm_result": "SUCCESS"})),
            "{body}"
        );
    }
    assert_eq!(s.script.successes("a"), 6);
    assert_eq!(s.script.calls("a")[5].body, b"{\"amount\":1}");
    assert_eq!(s.script.calls("a")[0].body, b"{\"amount\":30}");

    // newGid: every value a string (Go's MustGenGid decodes a map[string]string).
    let (_, v) = s.get(&format!("{}/newGid", s.dtm_http)).await;
    assert!(
        v.as_object()
            .expect("object")
            .values()
            .all(Value::is_string),
        "{v}"
    );
    assert_eq!(v["dtm_result"], "SUCCESS");
    let (_, v) = s.get(&format!("{}/version", s.dtm_http)).await;
    assert!(v["version"].as_str().is_some_and(|v| v.starts_with('v')));
    let ping = s
        .client
        .post(format!(
            "{}/api/ping",
            s.dtm_http.trim_end_matches("/api/dtmsvr")
        ))
        .send()
        .await
        .expect("ping")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(ping, json!({"msg": "pong"}));

    // TCC by hand, through the legacy registerTccBranch alias and string-only values.
    let g = gid("tcc-alias");
    assert_eq!(
        s.dtm_post("prepare", json!({"gid": g, "trans_type": "tcc"}))
            .await
            .0,
        200
    );
    let branch = json!({"gid": g, "trans_type": "tcc", "branch_id": "01", "data": "{}",
                        "confirm": url("confirm"), "cancel": url("cancel"), "status": "prepared"});
    assert_eq!(s.dtm_post("registerTccBranch", branch.clone()).await.0, 200);
    // A client retrying the same registration is fine; other URLs for the same id are not.
    assert_eq!(s.dtm_post("registerBranch", branch.clone()).await.0, 200);
    let mut other = branch.clone();
    other["confirm"] = json!(url("elsewhere"));
    assert_eq!(s.dtm_post("registerBranch", other).await.0, 409);
    let mut number = branch;
    number["branch_id"] = json!(2);
    let (code, v) = s.dtm_post("registerBranch", number).await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{v}"
    );
    assert_eq!(
        s.dtm_post(
            "submit",
            json!({"gid": g, "trans_type": "tcc", "wait_result": true})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.branches(&g).await,
        table(&["01 cancel prepared", "01 confirm succeed"])
    );
    // An xa branch cannot join a tcc.
    let xa_branch =
        |g: &str| json!({"gid": g, "trans_type": "xa", "branch_id": "01", "url": url("xa")});
    let (code, v) = s.dtm_post("registerBranch", xa_branch(&g)).await;
    assert_eq!(code, 400, "{v}");

    // XA by hand, as DTM's SDKs send it: the legacy registerXaBranch route, a url and no data;
    // the abort's phase two is a POST with op rollback and an empty body.
    let g = gid("xa-alias");
    let (code, v) = s
        .dtm_post("prepare", json!({"gid": g, "trans_type": "xa"}))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(s.dtm_post("registerXaBranch", xa_branch(&g)).await.0, 200);
    let (code, v) = s
        .dtm_post(
            "abort",
            json!({"gid": g, "trans_type": "xa", "wait_result": true}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        s.branches(&g).await,
        table(&["01 rollback succeed", "01 commit prepared"])
    );
    let call = s.script.calls("xa").pop().expect("the rollback");
    assert_eq!(
        (
            call.info.as_ref().expect("DTM's context").op.as_str(),
            call.headers[":method"].as_str(),
            call.body.len()
        ),
        ("rollback", "POST", 0)
    );
    s.assert_invariant().await;
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_stores_nothing() {
    let s = Stack::start().await;
    let submit = format!("{}/submit", s.dtm_http);
    let raw = |body: String| {
        let (client, submit) = (s.client.clone(), submit.clone());
        async move {
            let res = client.post(submit).body(body).send().await.expect("send");
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let cases = [
        ("{not json".to_owned(), 400, "invalid request body"),
        (r#"{"gid":"g1","trans_type":"saga","wait_result":"yes"}"#.to_owned(), 400, "invalid request body"),
        (r#"{"gid":"g1","trans_type":"sagas"}"#.to_owned(), 400, "unknown trans_type"),
        (r#"{"gid":"g1","trans_type":"workflow"}"#.to_owned(), 400, "req_extra.status"),
        (format!(r#"{{"gid":"{}","trans_type":"saga"}}"#, "x".repeat(129)), 400, "longer than 128"),
        (r#"{"trans_type":"saga"}"#.to_owned(), 400, "gid"),
        (r#"{"gid":"g1","trans_type":"saga","steps":[{"action":"ftp://x"}],"payloads":["{}"]}"#.to_owned(), 400, "http://"),
        (r#"{"gid":"g1","trans_type":"saga","steps":[{"action":"http://a","compensate":"http://b"}],"payloads":["{}"],"custom_data":"{\"concurrent\":true,\"orders\":{\"0\":[0]}}"}"#.to_owned(), 400, "custom_data"),
        (r#"{"gid":"g1","trans_type":"msg","steps":[{"action":"topic://t"}],"payloads":["{}"]}"#.to_owned(), 400, "topic not found: t"),
        (format!(r#"{{"gid":"g1","trans_type":"saga","payloads":["{}"]}}"#, "x".repeat(70 * 1024)), 413, ""),
        // Out of range: a panic inside tonic, or overflowing time arithmetic, if accepted.
        (r#"{"gid":"g1","trans_type":"saga","request_timeout":1000000000000}"#.to_owned(), 400, "request_timeout: must be 0 to 86400"),
        (r#"{"gid":"g1","trans_type":"tcc","timeout_to_fail":9223372036854775807}"#.to_owned(), 400, "timeout_to_fail"),
        (r#"{"gid":"g1","trans_type":"saga","retry_interval":9223372036854775000}"#.to_owned(), 400, "retry_interval"),
        (r#"{"gid":"g1","trans_type":"msg","custom_data":"{\"delay\":9223372036854775000}"}"#.to_owned(), 400, "delay"),
        // Gids that cannot travel as gRPC metadata.
        ("{\"gid\":\"g\\u0000x\",\"trans_type\":\"saga\"}".to_owned(), 400, "visible ASCII"),
        (r#"{"gid":"äpfel","trans_type":"saga"}"#.to_owned(), 400, "visible ASCII"),
        // DTM drops these from gids (`a\nb` stored as `ab`): refused, never changed.
        (r#"{"gid":"a\nb","trans_type":"saga"}"#.to_owned(), 400, "visible ASCII"),
        (r#"{"gid":"a\rb","trans_type":"saga"}"#.to_owned(), 400, "visible ASCII"),
        (r#"{"gid":"a;b","trans_type":"saga"}"#.to_owned(), 400, "';' is not allowed"),
        // A header every branch call would carry, and could not.
        (r#"{"gid":"g1","trans_type":"saga","branch_headers":{"bad name":"x"}}"#.to_owned(), 400, "not a valid header"),
        (r#"{"gid":"g1","trans_type":"saga","branch_headers":{"x-ok":"line\nbreak"}}"#.to_owned(), 400, "not a valid header"),
        // A registry this coordinator was not configured with: it must not poll it.
        (r#"{"gid":"g1","trans_type":"saga","protocol":"grpc","steps":[{"action":"etcd://127.0.0.2:2379/k/a.B/C","compensate":""}],"payloads":["{}"]}"#.to_owned(), 400, "not this coordinator's registry"),
    ];
    for (body, status, words) in cases {
        let (code, v) = raw(body.clone()).await;
        assert_eq!(code, status, "{}: {v}", &body[..body.len().min(80)]);
        // kratos' error body.
        assert!(v["reason"].is_string() && v["code"] == status, "{v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(words),
            "{words}: {v}"
        );
    }
    // gRPC: InvalidArgument.
    let mut grpc = DtmClient::connect(format!("http://{}", s.dtm_grpc))
        .await
        .expect("grpc");
    let err = grpc
        .submit(DtmRequest {
            gid: "g2".into(),
            trans_type: "sagas".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown trans_type");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = grpc
        .submit(DtmRequest {
            gid: "g2".into(),
            trans_type: "saga".into(),
            steps: "not json".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad steps");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // A cursor this coordinator never gave.
    let (code, v) = s.get(&format!("{}/all?position=x", s.dtm_http)).await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{v}"
    );
    assert_eq!(stored(&s).await, 0);
}

#[tokio::test]
async fn resubmitting_a_finished_gid_is_refused() {
    let s = Stack::start().await;
    for t in BOTH {
        let g = gid("again");
        let saga = || {
            Saga::new(&s.dtm(t), &g)
                .add(&s.script_url(t, "a"), &s.script_url(t, "c"), b"{}".to_vec())
                .wait_result(true)
        };
        saga().submit().await.expect("first");
        let r = saga().submit().await;
        let Err(ClientError::Failure(m)) = r else {
            panic!("{r:?}")
        };
        assert!(m.contains("current status 'succeed', cannot submit"), "{m}");
    }
    assert_eq!(s.script.successes("a"), 2);
}

#[tokio::test]
async fn force_stop_ends_an_unfinished_transaction_without_compensation() {
    let s = Stack::start().await;
    let g = gid("stop");
    assert_eq!(
        s.dtm_post("prepare", json!({"gid": g, "trans_type": "tcc"}))
            .await
            .0,
        200
    );
    let (code, v) = s.dtm_post("forceStop", json!({"gid": g})).await;
    assert_eq!((code, v), (200, json!({"dtm_result": "SUCCESS"})));
    assert_eq!(s.status(&g).await, "failed");
    let (code, v) = s.dtm_post("forceStop", json!({"gid": g})).await;
    assert_eq!(
        (code, v["dtm_result"].as_str()),
        (409, Some("FAILURE")),
        "{v}"
    );
    let (code, _) = s.dtm_post("forceStop", json!({"gid": "no-such-gid"})).await;
    assert_eq!(code, 404);
    // Registering on a stopped transaction is refused as DTM does.
    let branch =
        json!({"gid": g, "trans_type": "tcc", "branch_id": "01", "confirm": "", "cancel": ""});
    assert_eq!(s.dtm_post("registerBranch", branch).await.0, 409);
}

#[tokio::test]
async fn query_and_all_page_through_transactions() {
    let s = Stack::start().await;
    let mut gids = Vec::new();
    for i in 0..5 {
        let g = format!("page-{i}");
        let trans_type = if i % 2 == 0 { "tcc" } else { "msg" };
        assert_eq!(
            s.dtm_post("prepare", json!({"gid": g, "trans_type": trans_type}))
                .await
                .0,
            200
        );
        gids.push(g);
    }
    // Newest first, two at a time, following next_position until it is empty.
    let mut seen = Vec::new();
    let mut position = String::new();
    loop {
        let (code, v) = s
            .get(&format!("{}/all?limit=2&position={position}", s.dtm_http))
            .await;
        assert_eq!(code, 200);
        seen.extend(
            v["transactions"]
                .as_array()
                .expect("list")
                .iter()
                .map(|t| t["gid"].as_str().expect("gid").to_owned()),
        );
        position = v["next_position"]
            .as_str()
            .expect("next_position")
            .to_owned();
        if position.is_empty() {
            break;
        }
    }
    gids.reverse();
    assert_eq!(seen, gids);
    let (_, v) = s
        .get(&format!("{}/all?transType=msg&status=prepared", s.dtm_http))
        .await;
    assert_eq!(v["transactions"].as_array().map(Vec::len), Some(2));
    let (code, _) = s.get(&format!("{}/all?limit=many", s.dtm_http)).await;
    assert_eq!(code, 400);

    let v = s.query("page-0").await;
    assert_eq!(
        (
            v["transaction"]["trans_type"].as_str(),
            v["transaction"]["status"].as_str()
        ),
        (Some("tcc"), Some("prepared"))
    );
    // Times are RFC 3339 strings or absent, never null (the C# SDK needs that).
    assert!(
        v["transaction"]["create_time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(v["transaction"].get("finish_time").is_none());
    assert_eq!(
        s.query("unknown").await,
        json!({"transaction": null, "branches": []})
    );
    let (code, _) = s.get(&format!("{}/query", s.dtm_http)).await;
    assert_eq!(code, 400);
}

/// dtmgrpc (Go) marshals TCC's empty step list as `Steps: "null"` in Prepare, Submit and Abort,
/// always sends `TransOptions` (zero values by default), and registers a TCC branch with
/// `Data {confirm, cancel}` and no `Op` (its `GetDtmRequest` and `TccGrpc.CallBranch`): requests
/// shaped exactly so are accepted.
#[tokio::test]
async fn tcc_requests_shaped_like_dtmgrpc_are_accepted() {
    let s = Stack::start().await;
    let mut grpc = DtmClient::connect(format!("http://{}", s.dtm_grpc))
        .await
        .expect("grpc");
    let request = |gid: &str| DtmRequest {
        gid: gid.into(),
        trans_type: "tcc".into(),
        trans_options: Some(dtmcli::proto::DtmTransOptions::default()),
        steps: "null".into(),
        ..Default::default()
    };
    for (gid, end) in [
        (gid("grpc-tcc-ok"), "succeed"),
        (gid("grpc-tcc-abort"), "failed"),
    ] {
        grpc.prepare(request(&gid)).await.expect("prepare");
        let data = [
            ("confirm", s.script_url(e2e::Transport::Grpc, "confirm")),
            ("cancel", s.script_url(e2e::Transport::Grpc, "cancel")),
        ];
        grpc.register_branch(dtmcli::proto::DtmBranchRequest {
            gid: gid.clone(),
            trans_type: "tcc".into(),
            branch_id: "01".into(),
            op: String::new(),
            data: data.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            busi_payload: vec![],
        })
        .await
        .expect("register");
        if end == "succeed" {
            grpc.submit(request(&gid)).await.expect("submit");
        } else {
            grpc.abort(request(&gid)).await.expect("abort");
        }
        s.wait_status(&gid, end).await;
    }
    assert_eq!(
        (s.script.successes("confirm"), s.script.successes("cancel")),
        (1, 1)
    );
}
