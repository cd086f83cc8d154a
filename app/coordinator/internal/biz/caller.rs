//! How the coordinator calls branches: the trait `data` implements (HTTP, JSON-RPC and gRPC).

use dtmcli::caller::{CallError, CallRequest, Reply, Target};

/// Calls a branch (docs/dtm-protocol.md, Calling branches); implemented in `data`.
#[async_trait::async_trait]
pub trait BranchCaller: Send + Sync + 'static {
    /// Calls one branch and reads its answer.
    async fn call(&self, req: &CallRequest<'_>) -> Result<Reply, CallError>;

    /// Whether `url` names a branch this caller can call (checked when a transaction arrives,
    /// so a URL that can never work is a 400, not retries forever).
    fn check(&self, protocol: &str, url: &str) -> Result<(), CallError> {
        Target::parse(protocol, url).map(drop)
    }
}

/// A branch URL `caller` can call, or a 400 naming the problem (checked when a transaction, a
/// branch or a subscriber arrives, so that a URL that can never work is not retried forever).
pub(crate) fn check_target(
    caller: &dyn BranchCaller,
    protocol: &str,
    url: &str,
) -> Result<(), crate::biz::TransError> {
    caller
        .check(protocol, url)
        .map_err(|e| crate::biz::TransError::BadRequest(e.to_string()))
}
