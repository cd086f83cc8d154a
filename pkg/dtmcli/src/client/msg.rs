//! [`Msg`]: Go's `trans_msg.go`.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use super::{ClientError, Dtm, Trans, TransOp, json_payload, option_setters};
use crate::caller::CallRequest;
use crate::{BranchInfo, DtmResult, Op, TransType};

/// A two-phase message: the coordinator calls every action (in order, or concurrently) until
/// each succeeds; it never rolls back once submitted.
#[must_use = "a msg does nothing until it is prepared and submitted"]
pub struct Msg {
    dtm: Dtm,
    t: Trans,
}

option_setters!(Msg);

impl Msg {
    /// A message with this gid.
    pub fn new(dtm: &Dtm, gid: &str) -> Msg {
        Msg {
            dtm: dtm.clone(),
            t: Trans::new(dtm, gid, TransType::Msg),
        }
    }

    /// Adds an action branch and its payload, already encoded.
    pub fn add(mut self, action: &str, payload: impl Into<Vec<u8>>) -> Msg {
        self.t.push(&[("action", action)], Ok(payload.into()));
        self
    }

    /// Adds an action branch whose payload is `payload` as JSON (HTTP branches).
    pub fn add_json(mut self, action: &str, payload: &impl Serialize) -> Msg {
        self.t.push(&[("action", action)], json_payload(payload));
        self
    }

    /// Adds an action branch whose payload is `payload` as protobuf (gRPC branches).
    pub fn add_proto(mut self, action: &str, payload: &impl prost::Message) -> Msg {
        self.t
            .push(&[("action", action)], Ok(payload.encode_to_vec()));
        self
    }

    /// Calls the actions concurrently instead of in order.
    pub fn enable_concurrent(mut self) -> Msg {
        self.t.options.concurrent = true;
        self
    }

    /// Delays the branches by `seconds` after submit.
    pub fn delay(mut self, seconds: i64) -> Msg {
        self.t.custom_data = serde_json::json!({ "delay": seconds }).to_string();
        self
    }

    /// The gid.
    pub fn gid(&self) -> &str {
        &self.t.gid
    }

    /// Phase one: the coordinator stores the message; if it is neither submitted nor aborted
    /// before its timeout, it asks `query_prepared` whether the local transaction committed.
    pub async fn prepare(&mut self, query_prepared: &str) -> Result<(), ClientError> {
        self.t.query_prepared = query_prepared.to_owned();
        self.dtm.trans(TransOp::Prepare, &self.t).await
    }

    /// Sends the message (prepared or not).
    pub async fn submit(&self) -> Result<(), ClientError> {
        self.dtm.trans(TransOp::Submit, &self.t).await
    }

    /// Drops a prepared message.
    pub async fn abort(&self) -> Result<(), ClientError> {
        self.dtm.trans(TransOp::Abort, &self.t).await
    }

    /// The barrier context of the local transaction (`branch_id 00`, `op msg`).
    pub fn local_branch(&self) -> BranchInfo {
        BranchInfo {
            gid: self.t.gid.clone(),
            trans_type: TransType::Msg,
            branch_id: "00".into(),
            op: Op::Msg,
            dtm: self.dtm.address().to_owned(),
            phase2_url: String::new(),
        }
    }

    /// DTM's `DoAndSubmit`: prepare; run `busi` (which must write its changes and the barrier
    /// of [`Msg::local_branch`] in one local transaction); then submit if it committed, abort if
    /// it did not. When `busi` fails, whether its transaction committed is asked of
    /// `query_prepared` (a commit whose reply was lost still gets its message); if even that is
    /// unclear, the coordinator's own check-back settles it later.
    ///
    /// Returns `busi`'s result, or the error that kept the message from being settled.
    pub async fn do_and_submit<T, E, F, Fut>(
        mut self,
        query_prepared: &str,
        busi: F,
    ) -> Result<T, DoAndSubmitError<E>>
    where
        F: FnOnce(BranchInfo) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.prepare(query_prepared)
            .await
            .map_err(DoAndSubmitError::Dtm)?;
        let local = self.local_branch();
        match busi(local.clone()).await {
            Ok(v) => {
                self.submit().await.map_err(DoAndSubmitError::Dtm)?;
                Ok(v)
            }
            Err(e) => {
                let checked = self.check_back(query_prepared, local).await;
                match checked {
                    Some(DtmResult::Failure) => {
                        self.abort().await.map_err(DoAndSubmitError::Dtm)?;
                    }
                    Some(DtmResult::Success) => {
                        self.submit().await.map_err(DoAndSubmitError::Dtm)?;
                    }
                    // Undecided: the coordinator asks again after the timeout.
                    Some(DtmResult::Ongoing) | None => {}
                }
                Err(DoAndSubmitError::Busi(e))
            }
        }
    }

    /// Asks `query_prepared` what became of the local transaction, as the coordinator would.
    async fn check_back(&self, query_prepared: &str, local: BranchInfo) -> Option<DtmResult> {
        let headers = BTreeMap::new();
        let request = CallRequest {
            url: query_prepared,
            protocol: self.t.protocol,
            body: &[],
            info: &BranchInfo {
                dtm: String::new(),
                ..local
            },
            headers: &headers,
            timeout: self.dtm.timeout,
            op_name: None,
        };
        self.dtm.caller.call(&request).await.ok().map(|r| r.result)
    }
}

/// Why [`Msg::do_and_submit`] did not return the business result.
#[derive(Debug, thiserror::Error)]
pub enum DoAndSubmitError<E> {
    /// The local business failed (the message was aborted, or will be by the check-back).
    #[error("local transaction: {0}")]
    Busi(E),
    /// The coordinator could not be told.
    #[error("dtm: {0}")]
    Dtm(ClientError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_options_and_delay_land_in_the_request() {
        let dtm = Dtm::http("http://127.0.0.1:1/api/dtmsvr");
        let m = Msg::new(&dtm, "g")
            .add_json("http://a/in", &serde_json::json!({"n": 1}))
            .add("http://b/in", "{}")
            .enable_concurrent()
            .wait_result(true)
            .delay(5);
        let body = m.t.to_json();
        assert_eq!(
            body["steps"],
            serde_json::json!([{"action": "http://a/in"}, {"action": "http://b/in"}])
        );
        assert_eq!(body["payloads"], serde_json::json!([r#"{"n":1}"#, "{}"]));
        assert_eq!(body["concurrent"], true);
        assert_eq!(body["wait_result"], true);
        assert_eq!(body["custom_data"], r#"{"delay":5}"#);
        assert_eq!(m.local_branch().branch_id, "00");
    }
}
