//! The coordinator's OpenAPI document (`openapi.yaml`, kept by hand) kept true: every route the
//! routers declare is documented and every documented operation is served; each documented
//! example, sent to a running coordinator, answers a status the document lists for it, with a
//! body of that response's schema; the document is served at `/q/openapi.yaml`.

use std::collections::BTreeSet;

use serde_json::Value;

mod support;

/// The routers' sources, with the prefix their routes are nested under.
const ROUTERS: [(&str, &str); 6] = [
    ("/api/dtmsvr", include_str!("../internal/server/trans.rs")),
    ("/api/dtmsvr", include_str!("../internal/server/topics.rs")),
    ("/api/dtmsvr", include_str!("../internal/server/admin.rs")),
    ("", include_str!("../internal/server/mod.rs")),
    ("", include_str!("../internal/server/page.rs")),
    ("", include_str!("../internal/lib.rs")),
];

/// Pages for people, not API: the admin page.
const NOT_API: [&str; 2] = ["GET /", "GET /admin"];

fn document() -> Value {
    dtmtest::openapi::parse(coordinator::OPENAPI_YAML)
}

/// `VERB /path` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for verb in item.as_object().expect("path item").keys() {
            out.insert(format!("{} {path}", verb.to_uppercase()));
        }
    }
    out
}

/// `VERB /path` of every `.route("<path>", <verb>(…))` in the routers' sources (`any` counts as
/// GET, what the document lists for it; a handler that is not a verb counts as GET).
fn declared() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (prefix, source) in ROUTERS {
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let Some(open) = rest.find('"') else { break };
            let after = &rest[open + 1..];
            let Some(close) = after.find('"') else { break };
            let path = &after[..close];
            let handler = after[close + 1..].trim_start_matches([',', ' ', '\n']);
            let verb = handler.split(['(', ':']).next().unwrap_or_default();
            let verb = match verb {
                "post" | "delete" | "put" | "patch" => verb.to_uppercase(),
                _ => "GET".into(),
            };
            out.insert(format!("{verb} {prefix}{path}"));
        }
    }
    for page in NOT_API {
        assert!(
            out.remove(page),
            "{page} is no longer a route: update NOT_API"
        );
    }
    out
}

#[test]
fn every_declared_route_is_documented_and_every_operation_declared() {
    let (documented, declared) = (documented(&document()), declared());
    assert!(declared.len() >= 20, "{declared:?}");
    assert_eq!(documented, declared);
}

#[tokio::test]
async fn every_example_answers_a_documented_status_with_its_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = support::bootstrap(&format!("sqlite://{}/dtm.db", dir.path().display()));
    let c = support::app(&conf, Default::default()).await;
    let base = format!("http://{}", c.http_addr());
    tokio::spawn(c.run_until(std::future::pending()));
    let client = reqwest::Client::new();

    // The document itself.
    let served = client
        .get(format!("{base}{}", kit::docs::OPENAPI_PATH))
        .send()
        .await
        .expect("document");
    assert_eq!(
        served.text().await.expect("text"),
        coordinator::OPENAPI_YAML
    );

    let sent = dtmtest::openapi::send_examples(&client, &base, coordinator::OPENAPI_YAML)
        .await
        .len();
    assert!(sent >= 15, "only {sent} examples sent");
}
