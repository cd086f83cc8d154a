//! Tests that keep an OpenAPI document true to the app that serves it: every documented operation
//! is served, and every documented example, sent to the running app, answers a status the
//! document lists for it with a body of that response's schema.

use serde_json::{Map, Value};

/// A YAML document as JSON values.
pub fn parse(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).expect("the OpenAPI document parses")
}

/// Sends every documented operation to the app at `base` (path variables filled with
/// `path_value`) and asserts each is served: answered by a handler — a 404 or 405 only with a
/// kratos error body (a handler's "not found"), never the router's empty one.
pub async fn assert_served(client: &reqwest::Client, base: &str, yaml: &str, path_value: &str) {
    let doc = parse(yaml);
    let mut served = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for verb in item.as_object().expect("path item").keys() {
            let mut url = format!("{base}{path}");
            while let (Some(a), Some(b)) = (url.find('{'), url.find('}')) {
                url.replace_range(a..=b, path_value);
            }
            let method = reqwest::Method::from_bytes(verb.to_uppercase().as_bytes()).expect("verb");
            let mut req = client.request(method, &url);
            if verb != "get" && verb != "delete" {
                req = req.body("{}");
            }
            let res = req.send().await.expect("send");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let answered = ![404, 405].contains(&status) || body["reason"].is_string();
            assert!(answered, "{verb} {path}: {status}, not routed");
            served += 1;
        }
    }
    assert!(served > 0, "no operation");
}

/// Sends every documented example (an operation's parameter examples and request body example)
/// to the app at `base`; each must answer a status the operation documents (or its `default`),
/// with a body of that response's schema. Returns each example's operationId and status.
pub async fn send_examples(client: &reqwest::Client, base: &str, yaml: &str) -> Vec<(String, u16)> {
    let doc = parse(yaml);
    let mut sent = Vec::new();
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
            let code = res.status().as_u16();
            let status = code.to_string();
            let text = res.text().await.expect("body");
            // Its own status, or the `default` response every other status falls under.
            let listed = &op["responses"][&status];
            let response = if listed.is_null() {
                &op["responses"]["default"]
            } else {
                listed
            };
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
            sent.push((id.to_owned(), code));
        }
    }
    sent
}

/// `v`, or what its `$ref` points at.
pub fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
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
pub fn check(doc: &Value, value: &Value, schema: &Value) -> Result<(), String> {
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
