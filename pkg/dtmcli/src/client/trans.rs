//! What the SDK sends for prepare, submit and abort, shared by the builders.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::TransType;
use crate::client::{Dtm, Options};
use crate::proto::{DtmRequest, DtmTransOptions};

/// The three calls that move a transaction, by their HTTP path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TransOp {
    Prepare,
    Submit,
    Abort,
}

impl TransOp {
    pub(crate) fn path(self) -> &'static str {
        match self {
            TransOp::Prepare => "prepare",
            TransOp::Submit => "submit",
            TransOp::Abort => "abort",
        }
    }
}

/// What the SDK sends for prepare/submit/abort (docs/dtm-protocol.md, The coordinator's HTTP
/// API / The gRPC API), shared by the three builders.
#[derive(Debug, Clone)]
pub(crate) struct Trans {
    pub(crate) gid: String,
    pub(crate) trans_type: TransType,
    pub(crate) protocol: &'static str,
    pub(crate) steps: Vec<BTreeMap<String, String>>,
    pub(crate) payloads: Vec<Vec<u8>>,
    pub(crate) custom_data: String,
    pub(crate) query_prepared: String,
    pub(crate) options: Options,
    pub(crate) rollback_reason: String,
    /// The first payload that did not encode: reported by the next call instead of a panic in
    /// the middle of a builder chain.
    pub(crate) invalid: Option<String>,
}

impl Trans {
    pub(crate) fn new(dtm: &Dtm, gid: &str, trans_type: TransType) -> Trans {
        Trans {
            gid: gid.to_owned(),
            trans_type,
            protocol: dtm.protocol(),
            steps: Vec::new(),
            payloads: Vec::new(),
            custom_data: String::new(),
            query_prepared: String::new(),
            options: Options::default(),
            rollback_reason: String::new(),
            invalid: None,
        }
    }

    /// Adds a step's branch URLs and its payload (or remembers why the payload is missing).
    pub(crate) fn push(&mut self, branches: &[(&str, &str)], payload: Result<Vec<u8>, String>) {
        self.steps.push(
            branches
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        match payload {
            Ok(p) => self.payloads.push(p),
            Err(e) => {
                self.payloads.push(Vec::new());
                self.invalid.get_or_insert(e);
            }
        }
    }

    /// The HTTP body, as the Go SDK spells it (payloads are JSON text).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.options).unwrap_or_default();
        let fields = serde_json::json!({
            "gid": self.gid,
            "trans_type": self.trans_type.as_str(),
            "protocol": self.protocol,
            "steps": self.steps,
            "payloads": self.payloads.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>(),
            "custom_data": self.custom_data,
            "query_prepared": self.query_prepared,
            "rollback_reason": self.rollback_reason,
        });
        if let (Some(v), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
            v.extend(f);
        }
        v
    }

    /// The gRPC request (payloads are protobuf bytes, steps JSON text).
    pub(crate) fn to_grpc(&self) -> DtmRequest {
        let o = &self.options;
        DtmRequest {
            gid: self.gid.clone(),
            trans_type: self.trans_type.as_str().to_owned(),
            trans_options: Some(DtmTransOptions {
                wait_result: o.wait_result,
                timeout_to_fail: o.timeout_to_fail,
                retry_interval: o.retry_interval,
                branch_headers: o.branch_headers.clone().into_iter().collect(),
                request_timeout: o.request_timeout,
                retry_limit: o.retry_limit,
            }),
            customed_data: self.custom_data.clone(),
            bin_payloads: self.payloads.clone(),
            query_prepared: self.query_prepared.clone(),
            steps: serde_json::to_string(&self.steps).unwrap_or_default(),
            req_extra: Default::default(),
            rollback_reason: self.rollback_reason.clone(),
        }
    }
}

/// A value as a JSON payload (the body of an HTTP branch).
pub(crate) fn json_payload(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("JSON payload: {e}"))
}
