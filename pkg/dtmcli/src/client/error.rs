//! Why a call to the coordinator (or a try branch) did not succeed.

use crate::caller::CallError;

/// Why a call to the coordinator (or a try branch) did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// FAILURE: the coordinator refused (409 / Aborted), or a try answered FAILURE; for a
    /// `wait_result` submit, the transaction rolled back.
    #[error("FAILURE: {0}")]
    Failure(String),
    /// ONGOING: not final yet (425 / FailedPrecondition).
    #[error("ONGOING: {0}")]
    Ongoing(String),
    /// The coordinator answered with an error that is no DTM result (a 4xx/5xx, a gRPC status).
    #[error("the coordinator answered {status}: {message}")]
    Answer {
        /// HTTP status or gRPC code.
        status: String,
        /// Its body or status message.
        message: String,
    },
    /// The call did not complete: a bad address, no connection, no answer in time, an
    /// unreadable reply, a try branch that could not be called, a payload that did not encode.
    #[error("{context}")]
    Call {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ClientError {
    pub(crate) fn call(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ClientError {
        ClientError::Call {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        ClientError::call("calling a branch", e)
    }
}
