//! JSON-RPC 2.0 branch calls (protocol `json-rpc`, a URL naming its `method=`).

use crate::DtmResult;
use crate::caller::{CallError, CallRequest, Caller, Reply, http_result, truncate};

/// DTM's JSON-RPC error code for FAILURE.
pub const JSON_RPC_FAILURE: i64 = -32901;
/// DTM's JSON-RPC error code for ONGOING.
pub const JSON_RPC_ONGOING: i64 = -32902;

impl Caller {
    /// DTM's JSON-RPC branch call: POST `{"jsonrpc":"2.0","method":<the URL's method>,"id",
    /// "params":<the payload object with gid, trans_type, branch_id, op added>}`; the answer is
    /// read as HTTP first (409 / 425), then by its JSON-RPC error code: -32901 FAILURE,
    /// -32902 ONGOING, any other error a failed call (retried), none SUCCESS.
    pub(crate) async fn call_json_rpc(
        &self,
        url: &str,
        req: &CallRequest<'_>,
    ) -> Result<Reply, CallError> {
        let method = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "method")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| CallError::BadTarget {
                url: url.to_owned(),
                reason: "a JSON-RPC branch URL names its method: …?method=<name>".into(),
            })?;
        let mut params: serde_json::Map<String, serde_json::Value> = if req.body.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_slice(req.body).map_err(|e| CallError::Transport {
                url: url.to_owned(),
                message: format!("a JSON-RPC payload must be a JSON object: {e}"),
            })?
        };
        let info = req.info;
        for (k, v) in [
            ("gid", info.gid.as_str()),
            ("trans_type", info.trans_type.as_str()),
            ("branch_id", info.branch_id.as_str()),
            ("op", req.op()),
        ] {
            params.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
        }
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "method": method,
            "id": format!("{}-{}-{}", info.gid, info.branch_id, req.op()),
            "params": params,
        });
        let (status, text) = self
            .send_http(self.http.post(url).json(&body), url, req)
            .await?;
        // HTTP first: a 409 or 425 (or an answer that is no DTM result) says it all.
        if DtmResult::from_http(status, &text) != Some(DtmResult::Success) {
            return http_result(url, status, text);
        }
        let answer = |result| Ok(Reply::new(result, text.clone()));
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        match reply["error"]["code"].as_i64() {
            None if reply["error"].is_null() => answer(DtmResult::Success),
            Some(JSON_RPC_FAILURE) => answer(DtmResult::Failure),
            Some(JSON_RPC_ONGOING) => answer(DtmResult::Ongoing),
            _ => Err(CallError::Answer {
                url: url.to_owned(),
                status: format!("JSON-RPC error {}", reply["error"]["code"]),
                body: truncate(text),
            }),
        }
    }
}
