//! [`Saga`]: Go's `trans_saga.go`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ClientError, Dtm, Trans, TransOp, json_payload, option_setters};
use crate::TransType;

/// A saga: steps of `action` + `compensate`, run in order (or concurrently) by the coordinator,
/// compensated in reverse when an action answers FAILURE.
#[must_use = "a saga does nothing until it is submitted"]
pub struct Saga {
    dtm: Dtm,
    t: Trans,
    concurrent: bool,
    orders: BTreeMap<usize, Vec<usize>>,
}

option_setters!(Saga);

impl Saga {
    /// A saga with this gid.
    pub fn new(dtm: &Dtm, gid: &str) -> Saga {
        Saga {
            dtm: dtm.clone(),
            t: Trans::new(dtm, gid, TransType::Saga),
            concurrent: false,
            orders: BTreeMap::new(),
        }
    }

    /// Adds a step; both branches get `payload`, already encoded (JSON text for HTTP
    /// branches, protobuf bytes for gRPC ones).
    pub fn add(mut self, action: &str, compensate: &str, payload: impl Into<Vec<u8>>) -> Saga {
        self.push(action, compensate, Ok(payload.into()));
        self
    }

    /// Adds a step whose branches get `payload` as JSON (HTTP branches).
    pub fn add_json(mut self, action: &str, compensate: &str, payload: &impl Serialize) -> Saga {
        self.push(action, compensate, json_payload(payload));
        self
    }

    /// Adds a step whose branches get `payload` as protobuf (gRPC branches).
    pub fn add_proto(
        mut self,
        action: &str,
        compensate: &str,
        payload: &impl prost::Message,
    ) -> Saga {
        self.push(action, compensate, Ok(payload.encode_to_vec()));
        self
    }

    fn push(&mut self, action: &str, compensate: &str, payload: Result<Vec<u8>, String>) {
        self.t
            .push(&[("action", action), ("compensate", compensate)], payload);
    }

    /// Runs the actions concurrently (except as [`Saga::add_branch_order`] says).
    pub fn enable_concurrent(mut self) -> Saga {
        self.concurrent = true;
        self
    }

    /// Step `step` (0-based) starts only after the steps `after` succeeded.
    pub fn add_branch_order(mut self, step: usize, after: Vec<usize>) -> Saga {
        self.orders.insert(step, after);
        self
    }

    /// Submits the saga. With [`Saga::wait_result`], `Ok` means it succeeded and
    /// [`ClientError::Failure`] that it rolled back.
    pub async fn submit(mut self) -> Result<(), ClientError> {
        if self.concurrent || !self.orders.is_empty() {
            let orders: BTreeMap<String, &Vec<usize>> = self
                .orders
                .iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            self.t.custom_data =
                serde_json::json!({"concurrent": self.concurrent, "orders": orders}).to_string();
        }
        self.dtm.trans(TransOp::Submit, &self.t).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn dtm() -> Dtm {
        Dtm::http("http://127.0.0.1:1/api/dtmsvr")
    }

    #[test]
    fn typed_payloads_are_encoded_for_their_transport() {
        let s = Saga::new(&dtm(), "g")
            .add_json(
                "http://a/1",
                "http://a/2",
                &serde_json::json!({"sku": "x", "n": 1}),
            )
            .add_proto(
                "h:1/p.S/A",
                "h:1/p.S/B",
                &crate::proto::DtmGidReply { gid: "x".into() },
            )
            .add("http://c/1", "", "raw");
        assert_eq!(s.t.payloads[0], br#"{"n":1,"sku":"x"}"#);
        assert_eq!(s.t.payloads[1], [10, 1, b'x']);
        assert_eq!(s.t.payloads[2], b"raw");
        assert_eq!(s.t.steps[2]["action"], "http://c/1");
        assert!(s.t.invalid.is_none());
    }

    #[test]
    fn option_setters_chain_into_the_options() {
        let s = Saga::new(&dtm(), "g")
            .wait_result(true)
            .timeout_to_fail(60)
            .request_timeout(5)
            .retry_interval(2)
            .retry_limit(3)
            .branch_header("x-user", "7");
        let want = Options {
            wait_result: true,
            timeout_to_fail: 60,
            request_timeout: 5,
            retry_interval: 2,
            retry_limit: 3,
            branch_headers: [("x-user".to_owned(), "7".to_owned())].into(),
            ..Options::default()
        };
        assert_eq!(s.t.options, want);
    }

    #[tokio::test]
    async fn a_payload_that_does_not_encode_fails_the_submit_before_any_call() {
        // A map with non-string keys has no JSON form.
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = Saga::new(&dtm(), "g")
            .add_json("http://a/1", "http://a/2", &bad)
            .submit()
            .await
            .expect_err("an unencodable payload");
        let ClientError::Call { context, source } = &err else {
            panic!("{err:?}");
        };
        assert!(context.contains("did not encode"), "{context}");
        assert!(source.to_string().contains("JSON payload"), "{source}");
    }
}
