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
//! NOT_SERVING while it fails, SERVING again once it passes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Error;
pub use crate::health::HealthCheck;
use crate::health::{follow_check, healthz};
use crate::log::AccessLogLayer;
use crate::metrics::{self, Metrics};
use crate::registry::{Registrar, ServiceInstance, advertised};
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
type Task = (&'static str, Pin<Box<dyn Future<Output = ()> + Send>>);

/// Collects what the app serves; [`AppBuilder::build`] binds the listeners.
#[must_use = "an app builder serves nothing until it is built and run"]
pub struct AppBuilder {
    name: &'static str,
    http: Router,
    grpc: RoutesBuilder,
    services: Vec<&'static str>,
    descriptors: Vec<&'static [u8]>,
    listeners: Option<(TcpListener, TcpListener)>,
    registrar: Option<(Arc<dyn Registrar>, Option<String>)>,
    check: Option<(Duration, HealthCheck)>,
    metrics: Metrics,
    workers: Vec<Task>,
    on_stop: Vec<Task>,
}

/// A bound application, ready to [`run`](App::run).
pub struct App {
    name: &'static str,
    conf: ServersConf,
    http: (TcpListener, Router),
    grpc: (TcpListener, Router),
    health: HealthReporter,
    services: Vec<&'static str>,
    serving: Arc<AtomicBool>,
    /// Why the health check fails, if it does.
    unhealthy: Arc<Mutex<Option<String>>>,
    check: Option<(Duration, HealthCheck)>,
    registrar: Option<(Arc<dyn Registrar>, ServiceInstance)>,
    workers: Vec<Task>,
    on_stop: Vec<Task>,
}

impl App {
    /// Starts describing an application called `name`.
    pub fn builder(name: &'static str) -> AppBuilder {
        AppBuilder {
            name,
            http: Router::new(),
            grpc: RoutesBuilder::default(),
            services: Vec::new(),
            descriptors: Vec::new(),
            listeners: None,
            registrar: None,
            check: None,
            metrics: Metrics::new(),
            workers: Vec::new(),
            on_stop: Vec::new(),
        }
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

impl AppBuilder {
    /// Serves `router` (usually generated from the proto's HTTP annotations) over HTTP.
    pub fn http(mut self, router: Router) -> Self {
        self.http = self.http.merge(router);
        self
    }

    /// Serves a generated tonic server over gRPC and reports its health.
    pub fn grpc<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        self.grpc.add_service(svc);
        self.services.push(S::NAME);
        self
    }

    /// Registers an encoded `FileDescriptorSet` with gRPC reflection (so grpcurl can list).
    pub fn reflection(mut self, file_descriptor_set: &'static [u8]) -> Self {
        self.descriptors.push(file_descriptor_set);
        self
    }

    /// Serves on listeners bound already (HTTP, gRPC) instead of the configured addresses: for
    /// an app that must know its own address before it is built (e.g. to give it to DTM as a
    /// branch URL) while listening on port 0 in tests.
    pub fn listeners(mut self, http: TcpListener, grpc: TcpListener) -> Self {
        self.listeners = Some((http, grpc));
        self
    }

    /// Publishes the app through `registrar` (if any) while it serves (kratos'
    /// `kratos.Registrar`); `host` replaces an unspecified listen address (`0.0.0.0`) in the
    /// published endpoints.
    pub fn registrar(
        mut self,
        registrar: Option<Arc<dyn Registrar>>,
        host: Option<String>,
    ) -> Self {
        self.registrar = registrar.map(|r| (r, host));
        self
    }

    /// Counts requests in `metrics` and serves them at `GET /metrics` (by default the app gets
    /// a registry of its own holding only the request families).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs `task` in the background while the app serves (kratos' `transport.Server`): started
    /// once the listeners serve, dropped when the app stops. A worker is meant to run until then:
    /// if it ends or panics on its own, the app stops as on a signal and `run` returns
    /// [`AppError::Worker`], so that whoever supervises the process restarts it rather than
    /// leave it serving without its worker.
    pub fn worker(
        mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.workers.push((name, Box::pin(task)));
        self
    }

    /// Runs `step` once the app has stopped — servers drained, workers dropped — whether it
    /// stopped on a signal or because a worker failed (mini-redis' `DbDropGuard`): closing a
    /// store, flushing what it buffered. Steps run in the order they were added.
    pub fn on_stop(
        mut self,
        name: &'static str,
        step: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.on_stop.push((name, Box::pin(step)));
        self
    }

    /// Runs `check` every `every` while the app serves; health (gRPC and `/healthz`) is
    /// NOT_SERVING while it fails.
    pub fn health_check(mut self, every: Duration, check: HealthCheck) -> Self {
        self.check = Some((every, check));
        self
    }

    /// Binds both listeners and assembles the middleware.
    pub async fn build(self, conf: &ServersConf) -> Result<App, AppError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut grpc = self.grpc;
        grpc.add_service(health_service);
        if !self.descriptors.is_empty() {
            // Advertise what this server serves, not every service of the descriptor sets.
            let health = tonic_health::pb::FILE_DESCRIPTOR_SET;
            let names = self.services.iter().copied().chain([
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]);
            let mut v1 = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(health);
            let mut v1alpha = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(health);
            for fds in &self.descriptors {
                v1 = v1.register_encoded_file_descriptor_set(fds);
                v1alpha = v1alpha.register_encoded_file_descriptor_set(fds);
            }
            for name in names {
                v1 = v1.with_service_name(name);
                v1alpha = v1alpha.with_service_name(name);
            }
            grpc.add_service(v1.build_v1()?);
            grpc.add_service(v1alpha.build_v1alpha()?);
        }

        let serving = Arc::new(AtomicBool::new(true));
        let timeout = conf.http.timeout;
        let unhealthy = Arc::new(Mutex::new(None));
        let (flag, why) = (serving.clone(), unhealthy.clone());
        let http = self
            .http
            .route("/metrics", metrics::handler(self.metrics.clone()))
            .route(
                "/healthz",
                axum::routing::get(move || healthz(flag.clone(), why.clone())),
            )
            .fallback(|| async { Error::new(404, "NOT_FOUND", "no route for this path") })
            .method_not_allowed_fallback(|| async {
                Error::new(405, "METHOD_NOT_ALLOWED", "method not allowed on this path")
            })
            .layer(axum::middleware::from_fn(move |req, next| {
                crate::timeout::http(timeout, req, next)
            }))
            .layer(DefaultBodyLimit::max(conf.http.max_body_bytes))
            .layer(AccessLogLayer::new("http", self.metrics.clone()));
        let grpc_timeout = conf.grpc.timeout;
        let grpc = grpc
            .routes()
            .into_axum_router()
            .layer(axum::middleware::from_fn(move |req, next| {
                crate::timeout::grpc(grpc_timeout, req, next)
            }))
            .layer(AccessLogLayer::new("grpc", self.metrics.clone()));

        let (http_listener, grpc_listener) = match self.listeners {
            Some(bound) => bound,
            None => (bind(&conf.http.addr).await?, bind(&conf.grpc.addr).await?),
        };
        let registrar = self.registrar.map(|(registrar, host)| {
            let host = host.as_deref();
            let http = advertised(local_addr(&http_listener), host);
            let grpc = advertised(local_addr(&grpc_listener), host);
            let instance = ServiceInstance {
                id: uuid::Uuid::new_v4().to_string(),
                name: self.name.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                metadata: Default::default(),
                endpoints: vec![format!("http://{http}"), format!("grpc://{grpc}")],
            };
            (registrar, instance)
        });
        Ok(App {
            name: self.name,
            conf: conf.clone(),
            registrar,
            http: (http_listener, http),
            grpc: (grpc_listener, grpc),
            health,
            services: self.services,
            serving,
            unhealthy,
            check: self.check,
            workers: self.workers,
            on_stop: self.on_stop,
        })
    }
}

async fn bind(addr: &str) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

fn local_addr(l: &TcpListener) -> SocketAddr {
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
