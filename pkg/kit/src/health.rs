//! Health as the app reports it: gRPC `grpc.health.v1.Health` and `GET /healthz`, SERVING while
//! the app serves and its readiness check (if any) passes, NOT_SERVING from the moment a stop
//! begins or while the check fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Error;

/// A readiness check, run every interval while the app serves: `Err(why)` turns health
/// NOT_SERVING until it passes again.
pub type HealthCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// `GET /healthz`: 200 while serving, 503 while the health check fails or once a stop has begun.
pub(crate) async fn healthz(
    serving: Arc<AtomicBool>,
    unhealthy: Arc<Mutex<Option<String>>>,
) -> Response {
    if !serving.load(Ordering::SeqCst) {
        return Error::new(503, "NOT_SERVING", "shutting down").into_response();
    }
    match lock(&unhealthy).clone() {
        Some(why) => Error::new(503, "NOT_SERVING", why).into_response(),
        None => axum::Json(serde_json::json!({"status": "SERVING"})).into_response(),
    }
}

/// Runs `check` every `every` and turns health NOT_SERVING / SERVING as its answer changes.
pub(crate) async fn follow_check(
    app: &'static str,
    every: Duration,
    check: HealthCheck,
    health: HealthReporter,
    services: Vec<&'static str>,
    unhealthy: Arc<Mutex<Option<String>>>,
) {
    loop {
        tokio::time::sleep(every).await;
        let now = check().await.err();
        let before = std::mem::replace(&mut *lock(&unhealthy), now.clone());
        if before.is_some() == now.is_some() {
            continue;
        }
        let status = match &now {
            Some(why) => {
                tracing::error!(app, %why, "health check failed: NOT_SERVING");
                ServingStatus::NotServing
            }
            None => {
                tracing::info!(app, "health check passes again: SERVING");
                ServingStatus::Serving
            }
        };
        for name in services.iter().chain(std::iter::once(&"")) {
            health.set_service_status(*name, status).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
