//! `registry`: service registration and discovery on etcd, in the two layouts DTM users meet:
//! kratos' and go-zero's.
//!
//! - **kratos**: key `/microservices/<name>/<id>`, value a JSON
//!   [`ServiceInstance`](kit::registry::ServiceInstance), registered by our services
//!   (`registry.etcd`), found as `discovery:///<name>`;
//! - **go-zero**: key `<key>/<lease id>`, value `host:port`, registered by the coordinator
//!   (`MicroService.Target`), found as `etcd://<hosts>/<key>`.
//!
//! A registration lives under a lease (15 s by default) renewed every third of it: an instance
//! that dies without deregistering drops out when its lease runs out. [`Resolver`] turns either
//! form into a balanced gRPC [`Channel`](tonic::transport::Channel) that follows the registry
//! (re-read every second).
//!
//! Its parts: [`Conf`] (a service's `registry` config), [`Server`] (a registered server as a URL
//! names it), [`EtcdRegistrar`] (publishing), [`Resolver`] (finding), [`Etcd`] (the client).

#![warn(missing_docs)]

mod conf;
mod etcd;
mod registrar;
mod resolver;
mod server;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kit::registry::RegistryError;

pub use conf::{Conf, split_endpoints};
pub use etcd::Etcd;
pub use registrar::EtcdRegistrar;
pub use resolver::{AddressCheck, Resolver};
pub use server::{Server, split_method};

/// kratos' lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);
/// How often a [`Resolver`] channel re-reads the registry.
pub const REFRESH: Duration = Duration::from_secs(1);

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A target or endpoint that cannot be used.
    #[error("{0}")]
    BadTarget(String),
    /// etcd answered with an error, or could not be reached.
    #[error("etcd: {0}")]
    Etcd(String),
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        Error::Etcd(format!("{:?}: {}", s.code(), s.message()))
    }
}

/// A lock whose holder panicked still guards consistent data here (maps of handles).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// kit's registry error, from ours.
fn registry_error(e: Error) -> RegistryError {
    RegistryError(e.to_string())
}
