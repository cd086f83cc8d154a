//! The coordinator's OpenAPI document (`openapi.yaml`, kept by hand) kept true: every route the
//! routers declare is documented and every documented operation is served; each documented
//! example, sent to a running coordinator, answers a status the document lists for it, with a
//! body of that response's schema; the document is served at `/q/openapi.yaml`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

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
    serde_saphyr::from_str(coordinator::OPENAPI_YAML).expect("openapi.yaml parses")
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

    let doc = document();
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (verb, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().unwrap_or(path);
            let mut url = format!("{base}{path}");
            let mut query = Vec::new();
            let mut has_example = false;
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (name, example) = (p["name"].as_str().unwrap_or_default(), &p["example"]);
                let value = match example {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                has_example = true;
                match p["in"].as_str() {
                    Some("path") => url = url.replace(&format!("{{{name}}}"), &value),
                    _ => query.push((name.to_owned(), value)),
                }
            }
            let body = &op["requestBody"]["content"]["application/json"]["example"];
            has_example |= !body.is_null();
            let needs_input = !op["requestBody"].is_null()
                || (op["parameters"].as_array().into_iter().flatten())
                    .any(|p| p["required"] == true);
            if needs_input && !has_example {
                continue;
            }
            let method = reqwest::Method::from_bytes(verb.to_uppercase().as_bytes()).expect("verb");
            let mut req = client.request(method, &url).query(&query);
            if !body.is_null() {
                req = req.json(body);
            }
            let res = req.send().await.expect("send");
            let status = res.status().as_u16().to_string();
            let text = res.text().await.expect("body");
            let response = &op["responses"][&status];
            assert!(
                !response.is_null(),
                "{id}: {status} is not documented: {text}"
            );
            let response = resolve(&doc, response);
            if let Some(schema) = response["content"]["application/json"].get("schema") {
                let value: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{id}: {status} is not JSON ({e}): {text}"));
                if let Err(e) = check(&doc, &value, schema) {
                    panic!("{id}: {status} {text}\ndoes not match its schema: {e}");
                }
            }
            sent += 1;
        }
    }
    assert!(sent >= 15, "only {sent} examples sent");
}

/// `v`, or what its `$ref` points at.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => v,
    }
}

/// Whether `value` fits `schema` (the parts of OpenAPI 3.0 the document uses: `$ref`, `allOf`,
/// `nullable`, `type`, `required`, `properties`, `items`, `additionalProperties`, `enum`).
fn check(doc: &Value, value: &Value, schema: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check(doc, value, part)?;
    }
    let fits = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => return Err(format!("type {other} unknown to this check")),
    };
    if !fits {
        return Err(format!("{value} is not a {}", schema["type"]));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{value} is not one of {allowed:?}"));
    }
    if let Value::Object(map) = value {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !map.contains_key(key) {
                return Err(format!("{key} is missing from {value}"));
            }
        }
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_else(Map::new);
        for (key, v) in map {
            let sub = properties
                .get(key)
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
            if let Some(sub) = sub {
                check(doc, v, sub).map_err(|e| format!("{key}: {e}"))?;
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for v in items {
            check(doc, v, item)?;
        }
    }
    Ok(())
}
