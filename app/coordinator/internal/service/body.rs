//! The JSON that travels to and from the coordinator's HTTP API (docs/dtm-protocol.md, The
//! coordinator's HTTP API), read the way DTM reads it, so that every SDK's requests are accepted
//! unchanged:
//!
//! - field names match **case-insensitively** (Go's `encoding/json`), underscores matter;
//! - an explicit `null` is the field's zero value (Python and C# send them);
//! - unknown keys are ignored (`subType` from Java, `passthrough_headers`, dtm-php's context…);
//! - `custom_data` is a JSON *string* (`{"concurrent":true,"orders":{"2":[0,1]}}`, `{"delay":5}`),
//!   read by its transaction type's module;
//! - registerBranch bodies are maps of **strings only**.
//!
//! What DTM would accept but cannot be right is refused here with a [`BodyError`] naming the field:
//! an empty or over-long gid, an unknown `trans_type`, steps and payloads of different lengths.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::biz::{MAX_REQUEST_TIMEOUT_SECS, MAX_RETRY_LIMIT, MAX_TIMEOUT_SECS, TransType};

/// The longest gid the stores take (DTM's `varchar(128)`).
pub const MAX_GID_LEN: usize = 128;

/// A request body of prepare / submit / abort / forceStop / resetNextCronTime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TransRequest {
    /// Global transaction id.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub gid: String,
    /// `saga`, `msg`, `tcc`, `xa` or `workflow`.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub trans_type: String,
    /// Saga: `{"action","compensate"}` per step; msg: `{"action"}`.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub steps: Vec<BTreeMap<String, String>>,
    /// One request body per step (JSON text).
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub payloads: Vec<String>,
    /// JSON text: saga concurrency, msg delay.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub custom_data: String,
    /// Msg check-back URL.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub query_prepared: String,
    /// `""`/`http`, `grpc`.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub protocol: String,
    /// Submit/abort answer only once the transaction is processed.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub wait_result: bool,
    /// Seconds after which an unfinished transaction rolls back (0: default).
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub timeout_to_fail: i64,
    /// Seconds each branch call may take (0: default).
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub request_timeout: i64,
    /// Base retry interval in seconds (0: default).
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub retry_interval: i64,
    /// Extra headers / metadata sent with every branch call.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub branch_headers: BTreeMap<String, String>,
    /// Msg: call the branches concurrently.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub concurrent: bool,
    /// Saga: give up after this many retries of one action (0: no limit).
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub retry_limit: i64,
    /// Abort: why.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub rollback_reason: String,
    /// A workflow's submit: `status` (`succeed` or `failed`), `rollback_reason`, `result`.
    #[serde(deserialize_with = "kit::gojson::null_default")]
    pub req_extra: BTreeMap<String, String>,
}

/// A request the coordinator refuses: 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or a field of the wrong type.
    #[error("invalid request body: {0}")]
    Json(String),
    /// A field value the protocol does not allow.
    #[error("{field}: {message}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl From<BodyError> for kit::Error {
    fn from(e: BodyError) -> Self {
        kit::Error::bad_request("INVALID_ARGUMENT", e.to_string())
    }
}

impl TransRequest {
    /// Reads a body as DTM does (see the module docs). The gid is kept as sent: DTM silently
    /// drops `\n`, `\r` and `;` from it, so the client's gid no longer found its transaction;
    /// here a new gid with one of them is refused ([`validate_new_gid`]).
    pub fn from_json(body: &[u8]) -> Result<TransRequest, BodyError> {
        kit::gojson::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))
    }

    /// Checks what every route needs: a gid of 1 to 128 characters and a supported trans_type.
    pub fn validate(&self) -> Result<(), BodyError> {
        validate_new_gid(&self.gid)?;
        match TransType::parse(&self.trans_type) {
            Some(_) => {}
            None => {
                let known: Vec<&str> = TransType::ALL.iter().map(|t| t.as_str()).collect();
                let message = format!(
                    "unknown trans_type {:?} ({})",
                    self.trans_type,
                    known.join(", ")
                );
                return Err(field("trans_type", message));
            }
        }
        if !self.steps.is_empty()
            && !self.payloads.is_empty()
            && self.steps.len() != self.payloads.len()
        {
            return Err(field(
                "payloads",
                format!(
                    "{} payloads for {} steps",
                    self.payloads.len(),
                    self.steps.len()
                ),
            ));
        }
        for (name, v, max) in [
            ("timeout_to_fail", self.timeout_to_fail, MAX_TIMEOUT_SECS),
            (
                "request_timeout",
                self.request_timeout,
                MAX_REQUEST_TIMEOUT_SECS,
            ),
            ("retry_interval", self.retry_interval, MAX_TIMEOUT_SECS),
            ("retry_limit", self.retry_limit, MAX_RETRY_LIMIT),
        ] {
            if !(0..=max).contains(&v) {
                return Err(field(name, format!("must be 0 to {max}, got {v}")));
            }
        }
        // Sent with every branch call: one that cannot travel as a header would fail them all.
        for (name, value) in &self.branch_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(field(
                    "branch_headers",
                    format!("{name:?} is not a valid header"),
                ));
            }
        }
        Ok(())
    }
}

/// A registerBranch body: a flat map of strings (`gid, trans_type, branch_id, data, confirm,
/// cancel, …`). A value of any other JSON type is refused, as DTM's binding does.
pub fn register_branch_from_json(body: &[u8]) -> Result<BTreeMap<String, String>, BodyError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let Value::Object(map) = v else {
        return Err(BodyError::Json("expected a JSON object".into()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                out.insert(k.to_lowercase(), s);
            }
            Value::Null => {}
            other => {
                return Err(field(
                    "registerBranch",
                    format!("{k} must be a string, got {other}"),
                ));
            }
        }
    }
    validate_gid(out.get("gid").map_or("", String::as_str))?;
    Ok(out)
}

/// A gid of 1 to 128 characters.
pub fn validate_gid(gid: &str) -> Result<(), BodyError> {
    if gid.is_empty() {
        return Err(field("gid", "is required".into()));
    }
    if gid.chars().count() > MAX_GID_LEN {
        return Err(field(
            "gid",
            format!("longer than {MAX_GID_LEN} characters"),
        ));
    }
    Ok(())
}

/// A gid a new transaction may have: [`validate_gid`], and only visible ASCII, because every
/// branch call carries it as gRPC metadata (and in a URL query), where control characters and
/// non-ASCII text cannot travel — such a transaction could never be driven. Lookups (`query`,
/// `forceStop`) take any gid: a lookup of one that cannot exist simply finds nothing.
pub fn validate_new_gid(gid: &str) -> Result<(), BodyError> {
    validate_gid(gid)?;
    if let Some(c) = gid.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(field(
            "gid",
            format!("{c:?} is not allowed: visible ASCII only (it travels as gRPC metadata)"),
        ));
    }
    if gid.contains(';') {
        // DTM strips it (with `\n` and `\r`) from every gid it reads; refused rather than changed.
        return Err(field("gid", "';' is not allowed".into()));
    }
    Ok(())
}

fn field(field: &'static str, message: String) -> BodyError {
    BodyError::Field { field, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> TransRequest {
        let t = TransRequest::from_json(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        t.validate().unwrap_or_else(|e| panic!("{body}: {e}"));
        t
    }

    #[test]
    fn go_sdk_saga() {
        let t = parse(
            r#"{"gid":"g1","trans_type":"saga","protocol":"","concurrent":false,
               "steps":[{"action":"http://b/TransOut","compensate":"http://b/TransOutRevert"}],
               "payloads":["{\"amount\":30}"],"wait_result":true,
               "custom_data":"{\"concurrent\":true,\"orders\":{\"0\":[]}}"}"#,
        );
        assert_eq!(t.steps[0]["compensate"], "http://b/TransOutRevert");
        assert!(t.wait_result);
    }

    #[test]
    fn python_and_csharp_nulls_and_java_extras() {
        let t = parse(
            r#"{"gid":"g2","trans_type":"msg","custom_data":null,"query_prepared":null,"protocol":null,
               "branch_headers":null,"steps":null,"payloads":null,"rollback_reason":null,
               "subType":"msg","passthrough_headers":[],"request_timeout":8,"retry_count":0}"#,
        );
        assert_eq!(
            (t.custom_data.as_str(), t.steps.len(), t.request_timeout),
            ("", 0, 8)
        );
    }

    #[test]
    fn dtm_php_context_keys_and_null_orders() {
        let t = parse(
            r#"{"gid":"g3","trans_type":"saga","dtm":"http://d","branch_id":"","op":"","barrier_id":0,
               "sub_branch_id":0,"bin_payloads":[],"phase2_url":"",
               "steps":[{"action":"a","compensate":"c"},{"action":"a2","compensate":"c2"}],
               "payloads":["{}","{}"],"custom_data":"{\"orders\":null}"}"#,
        );
        assert_eq!(t.steps.len(), 2);
    }

    #[test]
    fn field_names_match_case_insensitively_like_go() {
        let t = parse(r#"{"GID":"g4","Trans_Type":"tcc","transType":"ignored"}"#);
        assert_eq!((t.gid.as_str(), t.trans_type.as_str()), ("g4", "tcc"));
    }

    #[test]
    fn a_gid_is_kept_as_sent_and_one_dtm_would_shorten_is_refused() {
        for gid in ["a;b", "a\nb", "a\rb"] {
            let body = serde_json::json!({"gid": gid, "trans_type": "saga"}).to_string();
            let t = TransRequest::from_json(body.as_bytes()).expect("parsed");
            assert_eq!(t.gid, gid, "kept as sent");
            assert!(validate_new_gid(&t.gid).is_err(), "{gid:?} refused");
        }
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let err = |body: &str| match TransRequest::from_json(body.as_bytes()) {
            Ok(t) => t.validate().expect_err(body).to_string(),
            Err(e) => e.to_string(),
        };
        assert!(err("{not json").contains("invalid request body"));
        assert!(err(r#"["a"]"#).contains("JSON object"));
        assert!(
            err(r#"{"gid":"g","trans_type":"saga","wait_result":"yes"}"#)
                .contains("invalid request body")
        );
        assert!(err(r#"{"trans_type":"saga"}"#).starts_with("gid"));
        assert!(
            err(&format!(
                r#"{{"gid":"{}","trans_type":"saga"}}"#,
                "x".repeat(129)
            ))
            .contains("longer than 128")
        );
        assert!(err(r#"{"gid":"g","trans_type":"sagas"}"#).contains("unknown trans_type"));
        assert!(
            err(r#"{"gid":"g","trans_type":"saga","steps":[{"action":"a"}],"payloads":["",""]}"#)
                .contains("2 payloads for 1 steps")
        );
        assert!(
            err(r#"{"gid":"g","trans_type":"saga","timeout_to_fail":-1}"#)
                .starts_with("timeout_to_fail")
        );
    }

    #[test]
    fn register_branch_takes_strings_only() {
        let m = register_branch_from_json(
            br#"{"gid":"g1","trans_type":"tcc","branch_id":"01","data":"{\"amount\":30}",
                "confirm":"http://b/c","cancel":"http://b/x","status":"prepared","try":"http://b/t"}"#,
        )
        .unwrap();
        assert_eq!(
            (m["branch_id"].as_str(), m["cancel"].as_str()),
            ("01", "http://b/x")
        );
        let e = register_branch_from_json(br#"{"gid":"g1","trans_type":"tcc","branch_id":1}"#)
            .unwrap_err();
        assert!(e.to_string().contains("branch_id must be a string"), "{e}");
        assert!(register_branch_from_json(br#"{"trans_type":"tcc"}"#).is_err());
    }
}
