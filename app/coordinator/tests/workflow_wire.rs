//! Workflow on the wire, written from DTM's Go SDK (client/workflow/rpc.go, imp.go,
//! server.go) and not from ours: the exact HTTP sequence a Go workflow sends — prepareWorkflow
//! with its TransBase JSON, registerBranch per step, submit with `req_extra` — and its replies
//! parsed as the Go SDK parses them (protojson into `DtmProgressesReply`, unknown fields
//! discarded); the gRPC calls with `DtmRequest` / `DtmBranchRequest`; and the coordinator's resume
//! as a Go client receives it (HTTP query and body; gRPC `workflow.Workflow/Execute` with
//! `WorkflowData` and `dtm-*` metadata). All on loopback; the clock is moved, not waited for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use coordinator::biz::Clock;
use dtmcli::proto::dtm_client::DtmClient;
use dtmcli::proto::workflow::WorkflowData;
use dtmcli::proto::workflow::workflow_server::{Workflow, WorkflowServer};
use dtmcli::proto::{DtmBranchRequest, DtmProgressesReply, DtmRequest, DtmTransOptions};
use dtmtest::eventually;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};
use serde_json::{Value, json};

mod support;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A coordinator on a temp SQLite store with a clock the test moves; HTTP base, gRPC address.
struct Coordinator {
    api: String,
    grpc: String,
    clock: Clock,
    _dir: tempfile::TempDir,
}

async fn coordinator() -> Coordinator {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = support::bootstrap(&format!("sqlite://{}/dtm.db", dir.path().display()));
    let clock = Clock::default();
    let overrides = coordinator::Overrides {
        clock: clock.clone(),
        ..Default::default()
    };
    let c = support::app(&conf, overrides).await;
    let (api, grpc) = (
        format!("http://{}/api/dtmsvr", c.http_addr()),
        c.grpc_addr().to_string(),
    );
    tokio::spawn(c.run_until(std::future::pending()));
    Coordinator {
        api,
        grpc,
        clock,
        _dir: dir,
    }
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The reply parsed as the Go SDK parses it: protojson into `dtmgimp.DtmProgressesReply`,
/// unknown fields discarded. A field of the wrong JSON type fails here as it fails there.
fn as_go_parses(reply: &Value) -> DtmProgressesReply {
    let pool = DescriptorPool::decode(dtmcli::proto::FILE_DESCRIPTOR_SET).expect("descriptor pool");
    let desc = pool
        .get_message_by_name("dtmgimp.DtmProgressesReply")
        .expect("message");
    let text = reply.to_string();
    let mut de = serde_json::Deserializer::from_str(&text);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let msg = DynamicMessage::deserialize_with_options(desc, &mut de, &options)
        .unwrap_or_else(|e| panic!("protojson refuses {text}: {e}"));
    msg.transcode_to().expect("typed")
}

/// The TransBase JSON a Go workflow sends to prepareWorkflow (`json` tags of dtmimp.TransBase:
/// `concurrent` and `protocol` always, the rest omitempty).
fn go_trans_base(gid: &str, input: &[u8], resume: &str) -> Value {
    let custom = json!({"data": B64.encode(input), "name": "wf_saga"}).to_string();
    json!({"gid": gid, "trans_type": "workflow", "custom_data": custom, "concurrent": false,
           "query_prepared": resume, "protocol": "http"})
}

/// What a Go client's HTTP resume route received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    query: HashMap<String, String>,
    content_type: String,
    body: Vec<u8>,
}

/// A Go client's HTTP resume route (`POST|GET /api/busi/workflow/resume`, as DTM's test busi
/// mounts it): it records the call and, like `ExecuteByQS` finishing the workflow, submits it
/// `succeed` before answering 200.
async fn http_client(api: String) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let handler = move |method: axum::http::Method,
                        axum::extract::Query(query): axum::extract::Query<
        HashMap<String, String>,
    >,
                        headers: axum::http::HeaderMap,
                        body: bytes::Bytes| {
        let (seen, api) = (seen.clone(), api.clone());
        async move {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let gid = query.get("gid").cloned().unwrap_or_default();
            seen.lock().expect("seen").push(Received {
                method: method.to_string(),
                query,
                content_type,
                body: body.to_vec(),
            });
            let end = json!({"gid": gid, "trans_type": "workflow",
                "req_extra": {"status": "succeed", "rollback_reason": "", "result": "cmVzdW1lZA=="}});
            let (status, _) = post(&format!("{api}/submit"), &end).await;
            axum::http::StatusCode::from_u16(status).expect("status")
        }
    };
    let app = axum::Router::new().route(
        "/api/busi/workflow/resume",
        axum::routing::post(handler.clone()).get(handler),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/busi/workflow/resume",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn the_go_sdk_http_sequence() {
    let c = coordinator().await;
    let (resume, _) = http_client(c.api.clone()).await;
    let input = br#"{"amount":30}"#;

    // 1. prepareWorkflow: created, no progress ([] — never null).
    let (status, reply) = post(
        &format!("{}/prepareWorkflow", c.api),
        &go_trans_base("wf-http", input, &resume),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["progresses"], json!([]), "{reply}");
    let parsed = as_go_parses(&reply);
    let t = parsed.transaction.expect("transaction");
    assert_eq!((t.gid.as_str(), t.status.as_str()), ("wf-http", "prepared"));

    // 2–4. One registerBranch per recorded step (rpc.go: data is the raw body as a string).
    let steps = [
        ("01", "action", "succeed", r#"{"dtm_result":"SUCCESS"}"#),
        (
            "02",
            "action",
            "failed",
            r#"{"reason":"FAILURE","message":"refused"}"#,
        ),
        ("01", "rollback", "succeed", ""),
    ];
    for (branch_id, op, st, data) in steps {
        let body = json!({"gid": "wf-http", "trans_type": "workflow", "data": data,
                          "branch_id": branch_id, "op": op, "status": st});
        let (status, reply) = post(&format!("{}/registerBranch", c.api), &body).await;
        assert_eq!(status, 200, "{branch_id}/{op}: {reply}");
    }
    // The same (branch_id, op) again is refused; so are an op and a status a step cannot have.
    for (op, st, want) in [
        ("action", "succeed", 409),
        ("try", "succeed", 400),
        ("action", "prepared", 400),
    ] {
        let body = json!({"gid": "wf-http", "trans_type": "workflow", "data": "",
                          "branch_id": "01", "op": op, "status": st});
        let (status, reply) = post(&format!("{}/registerBranch", c.api), &body).await;
        assert_eq!(status, want, "{op}/{st}: {reply}");
    }

    // A resumed client's prepareWorkflow: every step, its data base64 (Go's []byte).
    let (_, reply) = post(
        &format!("{}/prepareWorkflow", c.api),
        &go_trans_base("wf-http", input, &resume),
    )
    .await;
    let parsed = as_go_parses(&reply);
    let seen: Vec<_> = parsed
        .progresses
        .iter()
        .map(|p| {
            (
                p.branch_id.as_str(),
                p.op.as_str(),
                p.status.as_str(),
                p.bin_data.clone(),
            )
        })
        .collect();
    let want: Vec<_> = steps
        .iter()
        .map(|(b, o, s, d)| (*b, *o, *s, d.as_bytes().to_vec()))
        .collect();
    assert_eq!(seen, want);

    // 5. submit with req_extra (rpc.go's three keys); an unknown status is a 400.
    let end = |st: &str| {
        json!({"gid": "wf-http", "trans_type": "workflow", "req_extra":
            {"status": st, "rollback_reason": "refused FAILURE", "result": ""}})
    };
    let (status, _) = post(&format!("{}/submit", c.api), &end("done")).await;
    assert_eq!(status, 400);
    let (status, reply) = post(&format!("{}/submit", c.api), &end("failed")).await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = post(&format!("{}/submit", c.api), &end("succeed")).await;
    assert_eq!(status, 409, "ended the other way already");
    // A step after the end: FAILURE, as DTM answers.
    let late = json!({"gid": "wf-http", "trans_type": "workflow", "data": "", "branch_id": "03",
                      "op": "action", "status": "succeed"});
    let (status, reply) = post(&format!("{}/registerBranch", c.api), &late).await;
    assert_eq!(
        (status, reply["dtm_result"].as_str()),
        (409, Some("FAILURE"))
    );

    // Executing the finished gid again: its final status and reason, as getProgress reads them.
    let (_, reply) = post(
        &format!("{}/prepareWorkflow", c.api),
        &go_trans_base("wf-http", input, &resume),
    )
    .await;
    let t = as_go_parses(&reply).transaction.expect("transaction");
    assert_eq!(
        (t.status.as_str(), t.rollback_reason.as_str()),
        ("failed", "refused FAILURE")
    );
    let q: Value = reqwest::get(format!("{}/query?gid=wf-http", c.api))
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(q["transaction"]["trans_type"], "workflow");
    assert_eq!(q["branches"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn an_unfinished_http_workflow_is_resumed_as_a_go_client_expects() {
    let c = coordinator().await;
    let (resume, received) = http_client(c.api.clone()).await;
    for (gid, input) in [("wf-resume", &br#"{"amount":30}"#[..]), ("wf-empty", b"")] {
        let (status, _) = post(
            &format!("{}/prepareWorkflow", c.api),
            &go_trans_base(gid, input, &resume),
        )
        .await;
        assert_eq!(status, 200);
    }
    // The client "died": nothing submitted. Once due (the base interval, 1 s here)…
    c.clock.advance(Duration::from_secs(2));
    eventually("both resumed and submitted by their client", async || {
        received.lock().expect("seen").len() >= 2
    })
    .await;
    let calls = received.lock().expect("seen").clone();
    for r in &calls {
        let gid = r.query["gid"].as_str();
        let (method, body): (&str, &[u8]) = match gid {
            "wf-resume" => ("POST", br#"{"amount":30}"#),
            _ => ("GET", b""),
        };
        assert_eq!(
            (r.method.as_str(), r.body.as_slice()),
            (method, body),
            "{gid}"
        );
        assert_eq!(r.query["trans_type"], "workflow");
        assert_eq!(r.query["branch_id"], "00");
        assert_eq!(r.query["op"], "wf_saga");
        assert_eq!(r.content_type, "application/json");
    }
    for gid in ["wf-resume", "wf-empty"] {
        eventually("final", async || {
            let q: Value = reqwest::get(format!("{}/query?gid={gid}", c.api))
                .await
                .expect("query")
                .json()
                .await
                .expect("json");
            q["transaction"]["status"] == "succeed" && q["transaction"]["result"] == "cmVzdW1lZA=="
        })
        .await;
    }
}

/// A Go client's gRPC side: `workflow.Workflow/Execute` records what came and submits the
/// workflow `succeed` over gRPC, as `workflowServer.Execute` running it to its end does.
#[derive(Clone)]
struct GrpcClient {
    dtm: String,
    received: Arc<Mutex<Vec<Executed>>>,
}

/// One `Execute` as it came: its metadata and its `WorkflowData.Data`.
type Executed = (HashMap<String, String>, Vec<u8>);

#[tonic::async_trait]
impl Workflow for GrpcClient {
    async fn execute(
        &self,
        req: tonic::Request<WorkflowData>,
    ) -> Result<tonic::Response<()>, tonic::Status> {
        let md: HashMap<String, String> = req
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.to_string(), v.to_str().ok()?.to_owned()))
                }
                _ => None,
            })
            .collect();
        let gid = md.get("dtm-gid").cloned().unwrap_or_default();
        self.received
            .lock()
            .expect("received")
            .push((md, req.into_inner().data));
        let mut dtm = DtmClient::connect(format!("http://{}", self.dtm))
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        dtm.submit(go_grpc_request(&gid, "", "", "succeed"))
            .await
            .map(|_| tonic::Response::new(()))
    }
}

/// `dtmgimp.GetDtmRequest(wf.TransBase)` of a Go workflow: Steps is the JSON of a nil slice,
/// `"null"`; submit adds ReqExtra.
fn go_grpc_request(gid: &str, custom: &str, resume: &str, end: &str) -> DtmRequest {
    let mut req = DtmRequest {
        gid: gid.into(),
        trans_type: "workflow".into(),
        trans_options: Some(DtmTransOptions::default()),
        customed_data: custom.into(),
        query_prepared: resume.into(),
        steps: "null".into(),
        ..DtmRequest::default()
    };
    if !end.is_empty() {
        req.req_extra = HashMap::from([
            ("status".into(), end.into()),
            ("rollback_reason".into(), String::new()),
            ("result".into(), B64.encode(b"grpc result")),
        ]);
    }
    req
}

#[tokio::test]
async fn the_go_sdk_grpc_shapes_and_resume() {
    let c = coordinator().await;
    let client = GrpcClient {
        dtm: c.grpc.clone(),
        received: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let resume = format!(
        "{}/workflow.Workflow/Execute",
        listener.local_addr().expect("addr")
    );
    let server = tonic::transport::Server::builder()
        .add_service(WorkflowServer::new(client.clone()))
        .serve_with_incoming(tokio_stream_of(listener));
    tokio::spawn(server);
    let mut dtm = DtmClient::connect(format!("http://{}", c.grpc))
        .await
        .expect("connect");
    let custom = json!({"data": B64.encode(b"\x08\x1e"), "name": "wf_grpc"}).to_string();

    // PrepareWorkflow, a recorded step (Data{status, op} + BusiPayload), Submit with ReqExtra.
    let reply = dtm
        .prepare_workflow(go_grpc_request("wf-g1", &custom, &resume, ""))
        .await
        .expect("prepare")
        .into_inner();
    assert_eq!(reply.transaction.expect("t").status, "prepared");
    assert!(reply.progresses.is_empty());
    dtm.register_branch(DtmBranchRequest {
        gid: "wf-g1".into(),
        trans_type: "workflow".into(),
        branch_id: "01".into(),
        busi_payload: vec![8, 1, 0xff],
        data: HashMap::from([
            ("status".into(), "succeed".into()),
            ("op".into(), "action".into()),
        ]),
        ..DtmBranchRequest::default()
    })
    .await
    .expect("step");
    dtm.submit(go_grpc_request("wf-g1", "", "", "succeed"))
        .await
        .expect("submit");
    // Executing it again: the result is there over gRPC too (Go DTM leaves it empty).
    let reply = dtm
        .prepare_workflow(go_grpc_request("wf-g1", &custom, &resume, ""))
        .await
        .expect("load")
        .into_inner();
    let t = reply.transaction.expect("t");
    assert_eq!(
        (t.status.as_str(), t.result),
        ("succeed", B64.encode(b"grpc result"))
    );
    let p = &reply.progresses[0];
    assert_eq!(
        (
            p.branch_id.as_str(),
            p.op.as_str(),
            p.status.as_str(),
            p.bin_data.as_slice()
        ),
        ("01", "action", "succeed", &[8, 1, 0xff][..])
    );
    // A bad end is InvalidArgument.
    let bad = dtm
        .submit(go_grpc_request("wf-g1", "", "", "ended"))
        .await
        .expect_err("bad status");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // Resume: a workflow whose client died before its submit.
    dtm.prepare_workflow(go_grpc_request("wf-g2", &custom, &resume, ""))
        .await
        .expect("prepare");
    c.clock.advance(Duration::from_secs(2));
    eventually("resumed over gRPC", async || {
        !client.received.lock().expect("received").is_empty()
    })
    .await;
    let (md, data) = client.received.lock().expect("received")[0].clone();
    assert_eq!(data, b"\x08\x1e", "WorkflowData.Data is the input");
    for (k, v) in [
        ("dtm-gid", "wf-g2"),
        ("dtm-trans_type", "workflow"),
        ("dtm-branch_id", "00"),
        ("dtm-op", "wf_grpc"),
    ] {
        assert_eq!(md.get(k).map(String::as_str), Some(v), "{k}: {md:?}");
    }
    eventually("submitted by the resumed client", async || {
        let reply = dtm
            .clone()
            .prepare_workflow(go_grpc_request("wf-g2", &custom, &resume, ""))
            .await
            .expect("load")
            .into_inner();
        reply.transaction.is_some_and(|t| t.status == "succeed")
    })
    .await;
}

/// A listener as tonic's incoming stream.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(s, _)| s);
        Some((accepted, l))
    })
}
