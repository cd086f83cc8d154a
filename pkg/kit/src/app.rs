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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Error;
use crate::log::AccessLogLayer;
use crate::metrics::{self, Metrics};
use crate::registry::{Registrar, ServiceInstance, advertised};
use crate::serve::{Limits, serve};

/// `server.http` or `server.grpc` of the Bootstrap config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConf {
    /// Listen address, `host:port` (port 0 picks a free one).
    pub addr: String,
    /// Per-request timeout.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    /// Largest request body (HTTP) or message (gRPC) accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A connection without a request in flight for this long is closed, whatever else it
    /// sends (PING answers, header bytes trickling in); HTTP/1.1 headers must arrive within it.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub idle_timeout: Duration,
    /// Connections served at once. A new one at the cap closes the connection idle the
    /// longest; it is refused only when every one has a request in flight. Keep it below the
    /// process's file descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl ServerConf {
    /// A server on `addr` with the default limits.
    pub fn new(addr: impl Into<String>, timeout: Duration, max_body_bytes: usize) -> ServerConf {
        ServerConf {
            addr: addr.into(),
            timeout,
            max_body_bytes,
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

/// The `server` section of the Bootstrap config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersConf {
    /// HTTP/JSON server.
    pub http: ServerConf,
    /// gRPC server.
    pub grpc: ServerConf,
    /// How long a graceful stop may wait for requests in flight.
    #[serde(
        default = "default_shutdown",
        deserialize_with = "crate::config::duration"
    )]
    pub shutdown_timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown() -> Duration {
    Duration::from_secs(10)
}
fn default_max_body_bytes() -> usize {
    1 << 20
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    512
}

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
}

/// A readiness check, run every interval while the app serves: `Err(why)` turns health
/// NOT_SERVING until it passes again.
pub type HealthCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

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

        stop.await;
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
        Ok(())
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
        })
    }
}

/// `GET /healthz`: 200 while serving, 503 while the health check fails or once a stop has begun.
async fn healthz(serving: Arc<AtomicBool>, unhealthy: Arc<Mutex<Option<String>>>) -> Response {
    if !serving.load(Ordering::SeqCst) {
        return Error::new(503, "NOT_SERVING", "shutting down").into_response();
    }
    match lock(&unhealthy).clone() {
        Some(why) => Error::new(503, "NOT_SERVING", why).into_response(),
        None => axum::Json(serde_json::json!({"status": "SERVING"})).into_response(),
    }
}

/// Runs `check` every `every` and turns health NOT_SERVING / SERVING as its answer changes.
async fn follow_check(
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

/// The HTTP listener's protocols: HTTP/1.1 and HTTP/2 (h2c) by what the client speaks.
fn http_protocols(conf: &ServerConf) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(conf.idle_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(conf.idle_timeout);
    builder
}

/// The gRPC listener's protocol: HTTP/2 only, as tonic's own server.
fn grpc_protocols(conf: &ServerConf) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http2_only();
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(conf.idle_timeout);
    builder
}

/// What one listener lets its clients hold (see [`serve`]).
fn limits(conf: &ServerConf) -> Limits {
    Limits {
        max_connections: conf.max_connections,
        idle_timeout: conf.idle_timeout,
        grace: conf.timeout,
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
