//! What an app does at start-up before it serves: take the open-file limit it is allowed
//! ([`raise_open_files`]), and wait for what it needs (its database, the coordinator's store)
//! when that comes up after the app ([`wait_for`]): the usual order in docker-compose and
//! Kubernetes, where every part starts at once.
//!
//! Exiting instead and letting the orchestrator restart the app is not enough: Docker marks a
//! container that exited `unhealthy`, and docker-compose then refuses to start whatever
//! `depends_on` it with `condition: service_healthy`, although the restarted app would have been
//! fine a second later.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The first pause between two attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Runs `attempt` until it succeeds, fails with an error `transient` does not accept (a bad URL,
/// a refused password: answered at once), or `patience` has passed since the first attempt (the
/// last error is answered). Each transient failure is logged with `what` and the pause before
/// the next attempt. A `patience` of zero makes one attempt.
pub async fn wait_for<T, E, F, Fut>(
    what: &str,
    patience: Duration,
    transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + patience;
    let mut pause = FIRST_PAUSE;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !transient(&error) || left.is_zero() {
            return Err(error);
        }
        let pause_now = pause.min(left);
        tracing::warn!(what, error = %error, retry_in = ?pause_now, "not reachable yet; waiting");
        tokio::time::sleep(pause_now).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Raises the soft limit of open files to the hard one, as Go's runtime does for every Go
/// program (so DTM has it): each connection is a file, and a soft limit of 1024 (newer Docker's
/// default) is below what the two listeners' `max_connections` allow. Answers the limit now.
pub fn raise_open_files() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// An attempt that fails transiently `fails` times, then succeeds; counts its calls.
    fn flaky(
        fails: u32,
        calls: &AtomicU32,
    ) -> impl FnMut() -> std::future::Ready<Result<u32, String>> {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(if n < fails {
                Err(format!("down {n}"))
            } else {
                Ok(n)
            })
        }
    }

    #[tokio::test]
    async fn a_transient_failure_is_tried_again_until_it_passes() {
        let calls = AtomicU32::new(0);
        let got = wait_for("db", Duration::from_secs(60), |_| true, flaky(2, &calls)).await;
        assert_eq!(got, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_error_that_is_not_transient_is_answered_at_once() {
        let calls = AtomicU32::new(0);
        let got = wait_for("db", Duration::from_secs(60), |_| false, flaky(5, &calls)).await;
        assert_eq!(got, Err("down 0".to_string()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn past_its_patience_the_last_error_is_answered() {
        let calls = AtomicU32::new(0);
        let patience = Duration::from_millis(250);
        let got = wait_for("db", patience, |_| true, flaky(u32::MAX, &calls)).await;
        let n = calls.load(Ordering::SeqCst);
        // Tried again within its patience (three attempts when the pauses are exact: 100 ms, then
        // the 150 left), then gave up with the last attempt's error.
        assert!(n >= 2, "{n} attempts");
        assert_eq!(got, Err(format!("down {}", n - 1)));
    }

    #[tokio::test]
    async fn no_patience_is_one_attempt() {
        let calls = AtomicU32::new(0);
        let got = wait_for("db", Duration::ZERO, |_| true, flaky(1, &calls)).await;
        assert_eq!(got, Err("down 0".to_string()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
