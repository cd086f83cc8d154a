//! The application: one HTTP and one gRPC listener serving the same service, health, reflection,
//! access logs, and a graceful stop.
//!
//! Lifecycle (as kratos `app.Run`): [`AppBuilder::build`] binds both listeners (port 0 allowed; the
//! bound addresses are readable), [`App::run`] serves until SIGTERM/SIGINT. On stop, health turns
//! NOT_SERVING first (gRPC health and `/healthz`), then both servers stop accepting and let the
//! requests in flight finish, for at most `shutdown_timeout`. Each listener bounds what its clients
//! can hold (`max_connections`, `idle_timeout`; see `serve.rs`). With a [`Registrar`], the app is
//! published once both listeners are bound and withdrawn before anything else on stop. With a
//! [`HealthCheck`] (e.g. "can the store still write?"), health follows its answer while serving:
//! NOT_SERVING while it fails, SERVING again once it passes. What an app serves, and the
//! middleware both transports share, are assembled in `app_builder.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

pub use crate::app_builder::AppBuilder;
pub use crate::health::HealthCheck;
use crate::health::follow_check;
use crate::registry::{Registrar, ServiceInstance};
use crate::serve::{grpc_protocols, http_protocols, limits, serve};
pub use crate::server_conf::{ServerConf, ServersConf};

/// Why the application could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// Registering in the service registry failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// A background worker ended or panicked while the app served: the app stopped.
    #[error("worker {name} {why}: the app stopped")]
    Worker {
        /// The worker's name.
        name: &'static str,
        /// `ended` or `panicked: …`.
        why: String,
    },
}

/// A background task the app runs while it serves, or a last step it runs once it has stopped.
pub(crate) type Task = (&'static str, Pin<Box<dyn Future<Output = ()> + Send>>);

/// A bound application, ready to [`run`](App::run); [`AppBuilder::build`] fills it in.
pub struct App {
    pub(crate) name: &'static str,
    pub(crate) conf: ServersConf,
    pub(crate) http: (TcpListener, Router),
    pub(crate) grpc: (TcpListener, Router),
    pub(crate) health: HealthReporter,
    pub(crate) services: Vec<&'static str>,
    pub(crate) serving: Arc<AtomicBool>,
    /// Why the health check fails, if it does.
    pub(crate) unhealthy: Arc<Mutex<Option<String>>>,
    pub(crate) check: Option<(Duration, HealthCheck)>,
    pub(crate) registrar: Option<(Arc<dyn Registrar>, ServiceInstance)>,
    pub(crate) workers: Vec<Task>,
    pub(crate) on_stop: Vec<Task>,
}

impl App {
    /// Starts describing an application called `name`.
    pub fn builder(name: &'static str) -> AppBuilder {
        AppBuilder::new(name)
    }

    /// The address the HTTP server listens on.
    pub fn http_addr(&self) -> SocketAddr {
        local_addr(&self.http.0)
    }

    /// The address the gRPC server listens on.
    pub fn grpc_addr(&self) -> SocketAddr {
        local_addr(&self.grpc.0)
    }

    /// Serves until SIGTERM or SIGINT, then stops gracefully.
    pub async fn run(self) -> Result<(), AppError> {
        self.run_until(shutdown_signal()).await
    }

    /// What the registrar publishes: a fresh id, the app's name, `http://` and `grpc://` endpoints.
    pub fn instance(&self) -> Option<&ServiceInstance> {
        self.registrar.as_ref().map(|(_, instance)| instance)
    }

    /// Serves until `stop` completes, then stops gracefully.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), AppError> {
        // The listeners are bound, so connections queue from here on: publish now, and refuse
        // to start unregistered.
        if let Some((registrar, instance)) = &self.registrar {
            registrar.register(instance).await?;
            tracing::info!(app = self.name, id = %instance.id, endpoints = ?instance.endpoints, "registered");
        }
        let (tx, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        for name in &self.services {
            self.health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        tracing::info!(app = self.name, http = %self.http_addr(), grpc = %self.grpc_addr(), "serving");
        let checker = self.check.clone().map(|(every, check)| {
            tokio::spawn(follow_check(
                self.name,
                every,
                check,
                self.health.clone(),
                self.services.clone(),
                self.unhealthy.clone(),
            ))
        });

        let (http_listener, http_router) = self.http;
        let http = tokio::spawn(serve(
            http_listener,
            http_protocols(&self.conf.http),
            http_router,
            limits(&self.conf.http),
            stopped(rx.clone()),
        ));
        let (grpc_listener, grpc_router) = self.grpc;
        let grpc = tokio::spawn(serve(
            grpc_listener,
            grpc_protocols(&self.conf.grpc),
            grpc_router,
            limits(&self.conf.grpc),
            stopped(rx),
        ));

        let mut workers = tokio::task::JoinSet::new();
        let mut names = std::collections::HashMap::new();
        for (name, task) in self.workers {
            names.insert(workers.spawn(task).id(), name);
        }
        let failed = tokio::select! {
            () = stop => None,
            Some(ended) = workers.join_next_with_id() => Some(worker_failed(&names, ended)),
        };
        if let Some(e) = &failed {
            tracing::error!(app = self.name, error = %e, "stopping");
        }
        if let Some((registrar, instance)) = &self.registrar {
            match registrar.deregister(instance).await {
                Ok(()) => tracing::info!(app = self.name, id = %instance.id, "deregistered"),
                // The lease ends it anyway; stopping must go on.
                Err(e) => tracing::warn!(app = self.name, error = %e, "deregister failed"),
            }
        }
        if let Some(checker) = checker {
            checker.abort();
        }
        tracing::info!(
            app = self.name,
            "stopping: health NOT_SERVING, draining requests"
        );
        self.serving.store(false, Ordering::SeqCst);
        for name in self.services.iter().chain(std::iter::once(&"")) {
            self.health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        let _ = tx.send(true);

        workers.abort_all();
        let (http_abort, grpc_abort) = (http.abort_handle(), grpc.abort_handle());
        match tokio::time::timeout(self.conf.shutdown_timeout, async {
            (http.await, grpc.await)
        })
        .await
        {
            Ok(_) => tracing::info!(app = self.name, "stopped"),
            Err(_) => {
                tracing::warn!(
                    app = self.name,
                    "requests still in flight after the shutdown timeout; dropping them"
                );
                http_abort.abort();
                grpc_abort.abort();
            }
        }
        for (name, step) in self.on_stop {
            tracing::info!(app = self.name, step = name, "stopping");
            step.await;
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The error of a worker that ended: returned, or panicked (with the panic's message).
fn worker_failed(
    names: &std::collections::HashMap<tokio::task::Id, &'static str>,
    ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) -> AppError {
    let (id, why) = match ended {
        Ok((id, ())) => (id, "ended".to_owned()),
        Err(e) => {
            let id = e.id();
            let why = match e.try_into_panic() {
                Ok(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    format!("panicked: {message}")
                }
                Err(_) => "was cancelled".to_owned(),
            };
            (id, why)
        }
    };
    AppError::Worker {
        name: names.get(&id).copied().unwrap_or("?"),
        why,
    }
}

/// The address a listener is bound to (`0.0.0.0:0` should the OS not say).
pub(crate) fn local_addr(l: &TcpListener) -> SocketAddr {
    l.local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
