//! The hardening options, exercised with loopback addresses only (127.0.0.1 allowed, 127.0.0.2
//! denied): a denied branch is refused before any connection is made, redirects can be refused,
//! the admin routes can require a token, and `branch_headers` can be hidden from `query`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coordinator::conf::{Bootstrap, Hardening};
use dtmtest::script::ScriptServer;
use serde_json::{Value, json};

mod support;

/// A coordinator with `hardening` on a temp SQLite store; its HTTP base URL.
async fn coordinator(hardening: Hardening) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = Bootstrap {
        hardening,
        ..support::bootstrap(&format!("sqlite://{}/dtm.db", dir.path().display()))
    };
    let c = support::app(&conf, Default::default()).await;
    let http = format!("http://{}", c.http_addr());
    tokio::spawn(c.run_until(std::future::pending()));
    (http, dir)
}

/// A listener on `ip` that counts the connections it accepts (each gets a bare 200).
async fn counting(ip: &str) -> (String, Arc<AtomicUsize>) {
    use tokio::io::AsyncWriteExt;
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let n = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
            let _ = s.write_all(ok).await;
        }
    });
    (format!("http://{addr}"), accepted)
}

async fn post(url: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("send");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("send");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

fn saga(gid: &str, action: &str) -> Value {
    json!({
        "gid": gid, "trans_type": "saga", "wait_result": true,
        "steps": [{"action": action, "compensate": ""}], "payloads": ["{}"],
    })
}

#[tokio::test]
async fn a_denied_branch_is_refused_before_any_connection() {
    let (dtm, _dir) = coordinator(Hardening {
        branch_networks: "127.0.0.1/32".into(),
        ..Hardening::default()
    })
    .await;
    let (denied, accepted) = counting("127.0.0.2").await;
    // A literal denied address: 400 at submit, nothing stored.
    let (code, v) = post(
        &format!("{dtm}/api/dtmsvr/submit"),
        saga("literal", &format!("{denied}/x")),
        None,
    )
    .await;
    assert_eq!(code, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("branch policy"),
        "{v}"
    );
    let (_, q) = get(&format!("{dtm}/api/dtmsvr/query?gid=literal"), None).await;
    assert_eq!(q["transaction"], Value::Null);
    // The same over gRPC (`host:port/pkg.Svc/Method`).
    let mut grpc = saga(
        "literal-grpc",
        &format!("{}/e2e.Script/a", denied.trim_start_matches("http://")),
    );
    grpc["protocol"] = json!("grpc");
    let (code, v) = post(&format!("{dtm}/api/dtmsvr/submit"), grpc, None).await;
    assert_eq!(code, 400, "{v}");
    // An allowed address is called as usual.
    let script = ScriptServer::start().await;
    let (code, v) = post(
        &format!("{dtm}/api/dtmsvr/submit"),
        saga("allowed", &script.url("http", "a")),
        None,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_host_name_resolving_to_a_denied_address_is_never_connected() {
    // Only 127.0.0.2 allowed; `localhost` resolves to 127.0.0.1 (and ::1): both refused.
    let (dtm, _dir) = coordinator(Hardening {
        branch_networks: "127.0.0.2/32".into(),
        ..Hardening::default()
    })
    .await;
    let (target, accepted) = counting("127.0.0.1").await;
    let url = target.replace("127.0.0.1", "localhost");
    let (code, v) = post(
        &format!("{dtm}/api/dtmsvr/submit"),
        saga("by-name", &format!("{url}/x")),
        None,
    )
    .await;
    // Accepted (a name is checked when it is resolved), then the call fails: not final yet.
    assert_eq!(code, 425, "{v}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a connection to a refused address"
    );
}

/// A branch that redirects every call to `to`.
async fn redirecting(to: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", to)],
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/from")
}

#[tokio::test]
async fn redirects_are_followed_only_where_allowed() {
    let script = ScriptServer::start().await;
    // Default (DTM's behaviour): followed.
    let (dtm, _d1) = coordinator(Hardening::default()).await;
    let from = redirecting(script.url("http", "followed")).await;
    let (code, v) = post(
        &format!("{dtm}/api/dtmsvr/submit"),
        saga("follow", &from),
        None,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(script.successes("followed"), 1);
    // Refused: the redirect is an answer without a DTM result, retried; its target is not called.
    let (dtm, _d2) = coordinator(Hardening {
        follow_redirects: false,
        ..Hardening::default()
    })
    .await;
    let from = redirecting(script.url("http", "not-followed")).await;
    let (code, v) = post(
        &format!("{dtm}/api/dtmsvr/submit"),
        saga("no-follow", &from),
        None,
    )
    .await;
    assert_eq!(code, 425, "{v}");
    assert!(script.calls("not-followed").is_empty());
    // Followed, but not out of the allowed networks.
    let (dtm, _d3) = coordinator(Hardening {
        branch_networks: "127.0.0.1/32".into(),
        ..Hardening::default()
    })
    .await;
    let (denied, accepted) = counting("127.0.0.2").await;
    let from = redirecting(format!("{denied}/x")).await;
    let (code, v) = post(
        &format!("{dtm}/api/dtmsvr/submit"),
        saga("out", &from),
        None,
    )
    .await;
    assert_eq!(code, 425, "{v}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn admin_routes_need_the_token_and_headers_can_be_redacted() {
    let script = ScriptServer::start().await;
    let (dtm, _dir) = coordinator(Hardening {
        api_token: "s3cret".into(),
        redact_branch_headers: true,
        ..Hardening::default()
    })
    .await;
    let mut body = saga("guarded", &script.url("http", "a"));
    body["branch_headers"] = json!({"authorization": "Bearer downstream"});
    // Clients' routes need no token (DTM's SDKs send none).
    let (code, v) = post(&format!("{dtm}/api/dtmsvr/submit"), body, None).await;
    assert_eq!(code, 200, "{v}");
    let query = format!("{dtm}/api/dtmsvr/query?gid=guarded");
    for token in [None, Some("wrong")] {
        let (code, v) = get(&query, token).await;
        assert_eq!(
            (code, v["reason"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{v}"
        );
        let (code, _) = post(
            &format!("{dtm}/api/dtmsvr/forceStop"),
            json!({"gid": "guarded"}),
            token,
        )
        .await;
        assert_eq!(code, 401);
    }
    let (code, v) = get(&query, Some("s3cret")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["transaction"]["branch_headers"]["authorization"], "***");
    assert!(!v.to_string().contains("downstream"), "{v}");
    // The branch itself got the real header.
    let calls = script.calls("a");
    assert_eq!(
        calls[0].headers.get("authorization").map(String::as_str),
        Some("Bearer downstream")
    );
}
