//! Publishing instances in etcd under a renewed lease (kit's `Registrar`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kit::registry::{Registrar, RegistryError, ServiceInstance};
use tokio::task::JoinHandle;

use crate::{Error, Etcd, Server, lock, registry_error};

/// Publishes instances in etcd under a lease (implements kit's [`Registrar`]).
pub struct EtcdRegistrar {
    publisher: Arc<Publisher>,
    live: Mutex<HashMap<String, Published>>,
}

/// Where and how entries are written; shared with the renewing tasks.
struct Publisher {
    etcd: Etcd,
    ttl: Duration,
    layout: Layout,
}

enum Layout {
    Kratos,
    GoZero { key: String, value: Option<String> },
}

impl EtcdRegistrar {
    /// kratos layout: `/microservices/<name>/<id>` → the instance as JSON.
    pub fn kratos(endpoints: &[String], ttl: Duration) -> Result<EtcdRegistrar, Error> {
        Self::new(endpoints, ttl, Layout::Kratos)
    }

    /// go-zero layout from a target `etcd://hosts/key`: `<key>/<lease id>` → `value`, or the
    /// instance's gRPC `host:port` when `value` is `None`.
    pub fn gozero(
        target: &str,
        value: Option<String>,
        ttl: Duration,
    ) -> Result<EtcdRegistrar, Error> {
        match Server::parse(target)? {
            Server::GoZero { endpoints, key } => {
                Self::new(&endpoints, ttl, Layout::GoZero { key, value })
            }
            Server::Kratos { .. } => Err(Error::BadTarget(format!(
                "{target:?}: expected etcd://hosts/key"
            ))),
        }
    }

    fn new(endpoints: &[String], ttl: Duration, layout: Layout) -> Result<EtcdRegistrar, Error> {
        Ok(EtcdRegistrar {
            publisher: Arc::new(Publisher {
                etcd: Etcd::connect(endpoints)?,
                ttl,
                layout,
            }),
            live: Mutex::default(),
        })
    }
}

impl Publisher {
    /// The key and value `instance` is published as, under `lease`.
    fn entry(&self, instance: &ServiceInstance, lease: i64) -> Result<(String, Vec<u8>), Error> {
        match &self.layout {
            Layout::Kratos => Ok((
                format!("/microservices/{}/{}", instance.name, instance.id),
                serde_json::to_vec(instance).map_err(|e| Error::BadTarget(e.to_string()))?,
            )),
            Layout::GoZero { key, value } => {
                let value = match value {
                    Some(v) => v.clone(),
                    None => instance
                        .endpoint("grpc")
                        .ok_or_else(|| {
                            Error::BadTarget("the instance has no grpc endpoint".into())
                        })?
                        .to_owned(),
                };
                Ok((format!("{key}/{lease}"), value.into_bytes()))
            }
        }
    }

    /// Grants a lease and puts the instance's entry under it.
    async fn put(&self, instance: &ServiceInstance) -> Result<(i64, String), Error> {
        let lease = self.etcd.grant(self.ttl).await?;
        let (key, value) = self.entry(instance, lease)?;
        self.etcd.put(&key, &value, lease).await?;
        Ok((lease, key))
    }
}

/// Dropped without [`Registrar::deregister`] (the process is going down hard), renewals stop
/// and the entries stay until their leases run out — as if the process had died.
impl Drop for EtcdRegistrar {
    fn drop(&mut self) {
        for published in lock(&self.live).values() {
            published.renew.abort();
        }
    }
}

/// A live registration: its current lease and key, and the task renewing it.
struct Published {
    current: Arc<Mutex<(i64, String)>>,
    renew: JoinHandle<()>,
}

impl Registrar for EtcdRegistrar {
    fn register<'a>(
        &'a self,
        instance: &'a ServiceInstance,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        async move {
            let first = self.publisher.put(instance).await.map_err(registry_error)?;
            let current = Arc::new(Mutex::new(first));
            let renew = tokio::spawn(renew(
                self.publisher.clone(),
                instance.clone(),
                current.clone(),
            ));
            let old = lock(&self.live).insert(instance.id.clone(), Published { current, renew });
            if let Some(old) = old {
                old.renew.abort();
            }
            Ok(())
        }
        .boxed()
    }

    fn deregister<'a>(
        &'a self,
        instance: &'a ServiceInstance,
    ) -> BoxFuture<'a, Result<(), RegistryError>> {
        async move {
            let Some(published) = lock(&self.live).remove(&instance.id) else {
                return Ok(());
            };
            published.renew.abort();
            let (lease, key) = lock(&published.current).clone();
            let etcd = &self.publisher.etcd;
            etcd.delete(&key).await.map_err(registry_error)?;
            etcd.revoke(lease).await.map_err(registry_error)
        }
        .boxed()
    }
}

/// Renews the lease every third of its TTL; when etcd says it is gone (etcd restarted, or this
/// process stalled past the TTL), publishes the instance again under a new one.
async fn renew(reg: Arc<Publisher>, instance: ServiceInstance, current: Arc<Mutex<(i64, String)>>) {
    loop {
        tokio::time::sleep(reg.ttl / 3).await;
        let lease = lock(&current).0;
        match reg.etcd.keep_alive(lease).await {
            Ok(true) => {}
            Ok(false) => match reg.put(&instance).await {
                Ok(again) => {
                    tracing::warn!(name = %instance.name, lease = again.0, "lease lost; registered again");
                    *lock(&current) = again;
                }
                Err(e) => tracing::warn!(name = %instance.name, error = %e, "re-register failed"),
            },
            Err(e) => tracing::warn!(name = %instance.name, error = %e, "lease keep-alive failed"),
        }
    }
}
