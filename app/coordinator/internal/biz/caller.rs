//! How the coordinator calls branches: the trait `data` implements (HTTP and gRPC), and the
//! check a branch URL passes when a transaction arrives.

use dtmcli::caller::{BranchRequest, CallError, Reply, Target};

use crate::biz::TransError;

/// Calls a branch (HTTP or gRPC, docs/dtm-protocol.md, Calling branches); implemented in `data`.
#[async_trait::async_trait]
pub trait BranchCaller: Send + Sync + 'static {
    /// Calls one branch and reads its answer.
    async fn call(&self, req: &BranchRequest<'_>) -> Result<Reply, CallError>;

    /// Whether `url` names a branch this caller can call (checked when a transaction arrives,
    /// so a URL that can never work is a 400, not retries forever).
    fn check(&self, protocol: &str, url: &str) -> Result<(), CallError> {
        Target::parse(protocol, url).map(drop)
    }
}

/// A branch URL this coordinator can call, or a 400 naming the problem.
pub(crate) fn check_target(
    caller: &dyn BranchCaller,
    protocol: &str,
    url: &str,
) -> Result<(), TransError> {
    caller
        .check(protocol, url)
        .map_err(|e| TransError::BadRequest(e.to_string()))
}
