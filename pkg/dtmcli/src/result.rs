//! SUCCESS, FAILURE, ONGOING: what a branch answers, and how each travels. This is the one
//! place that says which HTTP status a result is; the gRPC code then comes from kit's one
//! HTTP ↔ gRPC table (409 ↔ Aborted, 425 ↔ FailedPrecondition).
//!
//! | result  | HTTP | gRPC               | meaning for the coordinator                 |
//! |---------|------|--------------------|---------------------------------------------|
//! | SUCCESS | 200  | OK                 | done                                        |
//! | FAILURE | 409  | Aborted            | refusal: roll back (from actions, tries)    |
//! | ONGOING | 425  | FailedPrecondition | not yet: ask again later, no back-off       |
//! | other   | any  | any other          | error: retry with back-off                  |

use tonic::Code;

use crate::BranchInfo;

/// The three results of a branch (docs/dtm-protocol.md, Results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmResult {
    /// Done.
    Success,
    /// Business refusal; the global transaction rolls back.
    Failure,
    /// In progress; the coordinator asks again.
    Ongoing,
}

impl DtmResult {
    /// `SUCCESS`, `FAILURE` or `ONGOING`: the word DTM puts in `dtm_result` and error reasons.
    pub const fn as_str(self) -> &'static str {
        match self {
            DtmResult::Success => "SUCCESS",
            DtmResult::Failure => "FAILURE",
            DtmResult::Ongoing => "ONGOING",
        }
    }

    /// The HTTP status of this result.
    pub const fn http_status(self) -> u16 {
        match self {
            DtmResult::Success => 200,
            DtmResult::Failure => 409,
            DtmResult::Ongoing => 425,
        }
    }

    /// The gRPC code of this result.
    pub fn grpc_code(self) -> Code {
        kit::errors::grpc_code(self.http_status())
    }

    /// How the coordinator reads an HTTP branch answer (docs/dtm-protocol.md, Calling branches; in
    /// this order): ONGOING if 425 or the body says so, FAILURE if 409 or the body says so, SUCCESS
    /// on 200, else `None` (an error: retry). Body sniffing keeps pre-1.10 branches (`200
    /// {"dtm_result":"FAILURE"}`) working.
    pub fn from_http(status: u16, body: &str) -> Option<DtmResult> {
        [DtmResult::Ongoing, DtmResult::Failure, DtmResult::Success]
            .into_iter()
            .find(|r| {
                status == r.http_status() || (*r != DtmResult::Success && body.contains(r.as_str()))
            })
    }

    /// How the coordinator reads a gRPC branch answer (docs/dtm-protocol.md, Calling branches);
    /// `None` is an error (retry). `Aborted` with the message exactly `ONGOING` is the pre-1.10
    /// spelling of ONGOING.
    pub fn from_grpc(code: Code, message: &str) -> Option<DtmResult> {
        if code == Code::Aborted && message == DtmResult::Ongoing.as_str() {
            return Some(DtmResult::Ongoing);
        }
        [DtmResult::Success, DtmResult::Failure, DtmResult::Ongoing]
            .into_iter()
            .find(|r| r.grpc_code() == code)
    }
}

/// A branch's answer other than SUCCESS. Compensations, confirms and cancels never answer FAILURE:
/// the coordinator would retry them forever (docs/dtm-protocol.md, Results); they return errors
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchError {
    /// Business refusal: roll the global transaction back. `cause` is a domain reason
    /// (e.g. `INSUFFICIENT_STOCK`), carried in the error's metadata.
    #[error("{message}")]
    Failure {
        /// Why, for people.
        message: String,
        /// Why, for machines.
        cause: String,
    },
    /// Not decided yet: ask again later.
    #[error("{0}")]
    Ongoing(String),
}

impl From<BranchError> for kit::Error {
    fn from(e: BranchError) -> Self {
        match e {
            BranchError::Failure { message, cause } => {
                let r = DtmResult::Failure;
                kit::Error::new(r.http_status(), r.as_str(), message).with_metadata("cause", cause)
            }
            BranchError::Ongoing(message) => {
                let r = DtmResult::Ongoing;
                kit::Error::new(r.http_status(), r.as_str(), message)
            }
        }
    }
}

/// A business refusal (`refusal`: its reason, message and own code), answered by the rule DTM
/// needs: to a branch call that may refuse ([`BranchInfo::may_refuse`]) it is FAILURE (409 /
/// Aborted, the reason as `cause`: roll back); to any other branch call it is a 503 /
/// Unavailable with the same reason, which the coordinator retries until the branch can apply;
/// to a call that is not a branch (`None`: a user's request) it is `refusal` as it is.
pub fn refuse(info: Option<&BranchInfo>, refusal: kit::Error) -> kit::Error {
    match info {
        Some(info) if info.may_refuse() => BranchError::Failure {
            message: refusal.message,
            cause: refusal.reason,
        }
        .into(),
        Some(_) => kit::Error::new(503, refusal.reason, refusal.message),
        None => refusal,
    }
}

impl From<BranchError> for tonic::Status {
    fn from(e: BranchError) -> Self {
        kit::Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_read_in_dtm_order() {
        assert_eq!(DtmResult::from_http(200, "{}"), Some(DtmResult::Success));
        assert_eq!(DtmResult::from_http(409, "{}"), Some(DtmResult::Failure));
        assert_eq!(DtmResult::from_http(425, "{}"), Some(DtmResult::Ongoing));
        assert_eq!(
            DtmResult::from_http(200, r#"{"dtm_result":"FAILURE"}"#),
            Some(DtmResult::Failure)
        );
        assert_eq!(
            DtmResult::from_http(409, r#"{"reason":"ONGOING"}"#),
            Some(DtmResult::Ongoing)
        );
        assert_eq!(DtmResult::from_http(500, "boom"), None);
        assert_eq!(DtmResult::from_http(400, "bad"), None);
    }

    #[test]
    fn grpc_answers() {
        assert_eq!(DtmResult::from_grpc(Code::Ok, ""), Some(DtmResult::Success));
        assert_eq!(
            DtmResult::from_grpc(Code::Aborted, "no"),
            Some(DtmResult::Failure)
        );
        assert_eq!(
            DtmResult::from_grpc(Code::Aborted, "ONGOING"),
            Some(DtmResult::Ongoing)
        );
        assert_eq!(
            DtmResult::from_grpc(Code::FailedPrecondition, ""),
            Some(DtmResult::Ongoing)
        );
        assert_eq!(DtmResult::from_grpc(Code::Unavailable, ""), None);
    }

    #[test]
    fn refusals_follow_the_branch_context() {
        let call = |trans_type: &str, op: &str| BranchInfo {
            gid: "g".into(),
            trans_type: crate::TransType::parse(trans_type).unwrap(),
            branch_id: "01".into(),
            op: crate::Op::parse(op).unwrap(),
            dtm: String::new(),
            phase2_url: String::new(),
        };
        let no = || kit::Error::new(409, "INSUFFICIENT_STOCK", "not enough");
        for (trans_type, op) in [
            ("saga", "action"),
            ("tcc", "try"),
            ("msg", "msg"),
            ("xa", "action"),
            ("workflow", "action"),
        ] {
            let e = refuse(Some(&call(trans_type, op)), no());
            assert_eq!(
                (
                    e.code,
                    e.reason.as_str(),
                    e.metadata.get("cause").map(String::as_str)
                ),
                (409, "FAILURE", Some("INSUFFICIENT_STOCK")),
                "{trans_type} {op}"
            );
        }
        // A msg action (same op as a saga action) and every phase two are retried instead.
        for (trans_type, op) in [
            ("saga", "compensate"),
            ("tcc", "confirm"),
            ("tcc", "cancel"),
            ("xa", "commit"),
            ("xa", "rollback"),
            ("msg", "action"),
            ("workflow", "rollback"),
            ("workflow", "commit"),
        ] {
            let e = refuse(Some(&call(trans_type, op)), no());
            assert_eq!(
                (e.code, e.reason.as_str()),
                (503, "INSUFFICIENT_STOCK"),
                "{trans_type} {op}"
            );
        }
        assert_eq!(refuse(None, no()).code, 409);
    }

    #[test]
    fn branch_errors_become_the_table_codes() {
        let f: tonic::Status = BranchError::Failure {
            message: "no".into(),
            cause: "X".into(),
        }
        .into();
        assert_eq!(f.code(), Code::Aborted);
        let o = kit::Error::from(BranchError::Ongoing("later".into()));
        assert_eq!((o.code, o.reason.as_str()), (425, "ONGOING"));
    }
}
