//! [`AppBuilder`]: what an app serves — routers, gRPC services, reflection, workers, stop steps,
//! a health check, a registrar — and [`AppBuilder::build`], which binds the listeners and wraps
//! both transports in the middleware every app shares (access log, metrics, timeouts, body
//! limit, kratos-style 404/405).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

use crate::Error;
use crate::app::{App, AppError, Task, local_addr};
use crate::health::{HealthCheck, healthz};
use crate::log::AccessLogLayer;
use crate::metrics::{self, Metrics};
use crate::registry::{Registrar, ServiceInstance, advertised};
use crate::server_conf::ServersConf;

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

impl AppBuilder {
    /// An empty builder for an app called `name` ([`App::builder`]).
    pub(crate) fn new(name: &'static str) -> AppBuilder {
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
