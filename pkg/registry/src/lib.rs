//! `registry`: service registration and discovery on etcd, in the two layouts DTM users meet:
//! kratos' and go-zero's.
//!
//! - **kratos**: key `/microservices/<name>/<id>`, value a JSON [`ServiceInstance`], registered
//!   by our services (`registry.etcd`), found as `discovery:///<name>`;
//! - **go-zero**: key `<key>/<lease id>`, value `host:port`, registered by the coordinator
//!   (`MicroService.Target`), found as `etcd://<hosts>/<key>`.
//!
//! A registration lives under a lease (15 s by default) renewed every third of it: an instance
//! that dies without deregistering drops out when its lease runs out. [`Resolver`] turns either
//! form into a balanced gRPC [`Channel`] that follows the registry (re-read every second).

#![warn(missing_docs)]

mod etcd;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kit::registry::{Registrar, RegistryError, ServiceInstance};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

pub use etcd::Etcd;

/// kratos' lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);
/// How often a [`Resolver`] channel re-reads the registry.
pub const REFRESH: Duration = Duration::from_secs(1);

/// `registry` in a service's config: where it registers itself (kratos layout).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conf {
    /// etcd endpoints, comma-separated (`127.0.0.1:2379`); empty: not registered.
    #[serde(default)]
    pub etcd: String,
    /// Lease TTL: how long a dead instance stays listed (kratos: 15 s).
    #[serde(default = "default_ttl", deserialize_with = "kit::config::duration")]
    pub ttl: Duration,
    /// Host published when a server listens on every interface (`0.0.0.0`); default: this
    /// machine's outbound address.
    #[serde(default)]
    pub host: String,
}

impl Default for Conf {
    fn default() -> Self {
        Conf {
            etcd: String::new(),
            ttl: DEFAULT_TTL,
            host: String::new(),
        }
    }
}

fn default_ttl() -> Duration {
    DEFAULT_TTL
}

impl Conf {
    /// The registrar this config asks for, if any.
    pub fn registrar(&self) -> Result<Option<Arc<dyn Registrar>>, Error> {
        let endpoints = split_endpoints(&self.etcd);
        if endpoints.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(EtcdRegistrar::kratos(&endpoints, self.ttl)?)))
    }

    /// The resolver of `discovery:///name` URLs in this registry (none without etcd).
    pub fn resolver(&self) -> Result<Resolver, Error> {
        Resolver::new(&split_endpoints(&self.etcd))
    }

    /// The host to publish, if set.
    pub fn host(&self) -> Option<String> {
        Some(self.host.clone()).filter(|h| !h.is_empty())
    }
}

/// `h1:2379,h2:2379` → its endpoints.
pub fn split_endpoints(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

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

/// A registered server, as named in a branch URL or a coordinator address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// `discovery://[<etcd hosts>]/<name>`: kratos layout, in the given cluster or (empty
    /// authority) the resolver's own registry.
    Kratos {
        /// etcd endpoints; empty: the resolver's registry.
        endpoints: Vec<String>,
        /// The service name.
        name: String,
    },
    /// `etcd://<hosts>/<key>`: go-zero layout.
    GoZero {
        /// etcd endpoints (`h1:2379,h2:2379`).
        endpoints: Vec<String>,
        /// The key the instances register under.
        key: String,
    },
}

impl Server {
    /// Parses `discovery:///name`, `discovery://h:p/name` or `etcd://h1,h2/key`.
    pub fn parse(server: &str) -> Result<Server, Error> {
        let bad = |why: &str| Error::BadTarget(format!("{server:?}: {why}"));
        let (scheme, rest) = server
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://hosts/name"))?;
        let (hosts, name) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected scheme://hosts/name"))?;
        if name.is_empty() || name.contains(['/', '?']) {
            return Err(bad("the name is one path segment, without a query"));
        }
        let endpoints = split_endpoints(hosts);
        match scheme {
            "discovery" => Ok(Server::Kratos {
                endpoints,
                name: name.into(),
            }),
            "etcd" if !endpoints.is_empty() => Ok(Server::GoZero {
                endpoints,
                key: name.into(),
            }),
            "etcd" => Err(bad("etcd:// needs hosts")),
            _ => Err(bad("unknown scheme (discovery://, etcd://)")),
        }
    }

    /// The key prefix its instances live under.
    fn prefix(&self) -> String {
        match self {
            Server::Kratos { name, .. } => format!("/microservices/{name}/"),
            Server::GoZero { key, .. } => format!("{key}/"),
        }
    }
}

/// Splits a branch URL with a registry scheme the way DTM's go-zero and kratos drivers do
/// (docs/dtm-protocol.md, Registry URLs): server = `scheme://hosts/<first path segment>`, method =
/// the rest. `discovery:///stock/api.stock.v1.Stock/TransOut` → (`discovery:///stock`,
/// `/api.stock.v1.Stock/TransOut`). `None` when the URL has no `scheme://`.
pub fn split_method(url: &str) -> Option<(&str, &str)> {
    let after_scheme = url.find("://")? + 3;
    let name_start = after_scheme + url[after_scheme..].find('/')? + 1;
    let method_start = name_start + url[name_start..].find('/')?;
    Some(url.split_at(method_start))
}

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

/// Finds registered instances and keeps balanced gRPC channels to them. Cheap to clone.
///
/// A channel's refresh task ends, and the channel is forgotten, once nobody has asked for it for
/// [`Resolver::with_idle`] (5 minutes by default). A resolver made with
/// [`Resolver::restricted`] resolves only through the etcd clusters it was given, so that URLs
/// from untrusted input cannot make it poll arbitrary hosts.
#[derive(Clone)]
pub struct Resolver {
    /// The registry of `discovery:///name` (no hosts in the URL).
    discovery: Option<Etcd>,
    /// The endpoints `discovery:///` resolves through.
    discovery_endpoints: Vec<String>,
    /// `Some`: the only etcd endpoints a URL may name.
    allowed: Option<HashSet<String>>,
    idle: Duration,
    /// Which instance addresses may be called (a branch network policy); none: any.
    check: Option<AddressCheck>,
    clients: Arc<Mutex<HashMap<Vec<String>, Etcd>>>,
    channels: Arc<Mutex<HashMap<String, Followed>>>,
}

/// Why an instance's address may not be called (`Some(reason)`), or `None` if it may.
pub type AddressCheck = Arc<dyn Fn(std::net::IpAddr) -> Option<String> + Send + Sync>;

/// A channel and when it was last handed out.
#[derive(Clone)]
struct Followed {
    channel: Channel,
    last_used: Arc<Mutex<tokio::time::Instant>>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            discovery: None,
            discovery_endpoints: Vec::new(),
            allowed: None,
            idle: Duration::from_secs(300),
            check: None,
            clients: Arc::default(),
            channels: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("discovery", &self.discovery.is_some())
            .finish()
    }
}

impl Resolver {
    /// A resolver whose `discovery:///name` looks in the etcd cluster at `endpoints` (empty:
    /// no such registry; `etcd://` and `discovery://hosts/` URLs name their own).
    pub fn new(endpoints: &[String]) -> Result<Resolver, Error> {
        Ok(Resolver {
            discovery: if endpoints.is_empty() {
                None
            } else {
                Some(Etcd::connect(endpoints)?)
            },
            discovery_endpoints: endpoints.to_vec(),
            ..Resolver::default()
        })
    }

    /// A resolver that looks only in the etcd cluster at `endpoints` (none: no registry at all):
    /// `discovery:///name`, and `etcd://` / `discovery://` URLs whose hosts are among them.
    pub fn restricted(endpoints: &[String]) -> Result<Resolver, Error> {
        let mut r = Resolver::new(endpoints)?;
        r.allowed = Some(endpoints.iter().cloned().collect());
        Ok(r)
    }

    /// Ends a channel's refresh task once nobody has asked for the channel for `idle`.
    pub fn with_idle(mut self, idle: Duration) -> Resolver {
        self.idle = idle;
        self
    }

    /// Calls only instances whose every address `check` allows: a registered host name is
    /// resolved, checked, and dialled at the checked address; a refused instance is left out
    /// (and logged), as if it were not registered.
    pub fn with_address_check(mut self, check: AddressCheck) -> Resolver {
        self.check = Some(check);
        self
    }

    /// Whether `discovery:///name` (no hosts) has a registry to look in.
    pub fn has_discovery(&self) -> bool {
        self.discovery.is_some()
    }

    /// Whether this resolver may look `server` up: always, unless it is
    /// [`restricted`](Resolver::restricted) and `server` names other etcd hosts.
    pub fn permits(&self, server: &str) -> Result<(), Error> {
        self.permits_parsed(server, &Server::parse(server)?)
    }

    fn permits_parsed(&self, server: &str, parsed: &Server) -> Result<(), Error> {
        let (Some(allowed), Server::Kratos { endpoints, .. } | Server::GoZero { endpoints, .. }) =
            (&self.allowed, parsed)
        else {
            return Ok(());
        };
        match endpoints.iter().find(|e| !allowed.contains(*e)) {
            Some(e) => Err(Error::BadTarget(format!(
                "{server:?}: etcd at {e} is not this coordinator's registry \
                 (MicroService.Target: {:?})",
                self.discovery_endpoints
            ))),
            None => Ok(()),
        }
    }

    /// How many channels are followed now (each one re-reads the registry every second).
    pub fn followed(&self) -> usize {
        lock(&self.channels).len()
    }

    /// The gRPC `host:port` of every instance `server` names, now.
    pub async fn addresses(&self, server: &str) -> Result<Vec<String>, Error> {
        let server = Server::parse(server)?;
        addresses(&self.etcd(&server)?, &server).await
    }

    /// A channel balancing over `server`'s instances as they come and go (lazily connected;
    /// calls wait while there is none, so give them a timeout).
    pub fn channel(&self, server: &str) -> Result<Channel, Error> {
        // One lock for the lookup and the insert: two first calls must not make two channels.
        let mut channels = lock(&self.channels);
        if let Some(f) = channels.get(server) {
            *lock(&f.last_used) = tokio::time::Instant::now();
            return Ok(f.channel.clone());
        }
        let parsed = Server::parse(server)?;
        self.permits_parsed(server, &parsed)?;
        let etcd = self.etcd(&parsed)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::BadTarget(format!("{server:?}: resolving needs a tokio runtime"))
        })?;
        let (channel, changes) = Channel::balance_channel(16);
        let followed = Followed {
            channel: channel.clone(),
            last_used: Arc::new(Mutex::new(tokio::time::Instant::now())),
        };
        let forget = {
            let (channels, server, last_used) = (
                self.channels.clone(),
                server.to_owned(),
                followed.last_used.clone(),
            );
            let idle = self.idle;
            // Polled by the refresh task: once idle, forget the channel and stop.
            move || {
                let mut channels = lock(&channels);
                let unused = lock(&last_used).elapsed() >= idle;
                if unused
                    && channels
                        .get(&server)
                        .is_some_and(|f| Arc::ptr_eq(&f.last_used, &last_used))
                {
                    channels.remove(&server);
                }
                unused
            }
        };
        runtime.spawn(follow(etcd, parsed, changes, forget, self.check.clone()));
        channels.insert(server.to_owned(), followed);
        Ok(channel)
    }

    /// The client of the cluster `server` lives in.
    fn etcd(&self, server: &Server) -> Result<Etcd, Error> {
        let endpoints = match server {
            Server::Kratos { endpoints, .. } | Server::GoZero { endpoints, .. } => endpoints,
        };
        if endpoints.is_empty() {
            return self.discovery.clone().ok_or_else(|| {
                Error::BadTarget(
                    "discovery:/// needs a registry (registry.etcd / MicroService.Target)".into(),
                )
            });
        }
        let mut clients = lock(&self.clients);
        if let Some(c) = clients.get(endpoints) {
            return Ok(c.clone());
        }
        let client = Etcd::connect(endpoints)?;
        clients.insert(endpoints.clone(), client.clone());
        Ok(client)
    }
}

/// The gRPC `host:port` of `server`'s instances in `etcd`.
async fn addresses(etcd: &Etcd, server: &Server) -> Result<Vec<String>, Error> {
    let entries = etcd.prefix(&server.prefix()).await?;
    let mut out: Vec<String> = entries
        .into_iter()
        .filter_map(|(key, value)| match server {
            Server::GoZero { .. } => String::from_utf8(value).ok(),
            Server::Kratos { .. } => match serde_json::from_slice::<ServiceInstance>(&value) {
                Ok(instance) => instance.endpoint("grpc").map(str::to_owned),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "not a service instance; skipped");
                    None
                }
            },
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Feeds a balanced channel with `server`'s instances every [`REFRESH`], until the channel is
/// dropped or `idle` says nobody uses it. On an etcd error the last known instances stay (as
/// grpc-go's resolvers do).
async fn follow(
    etcd: Etcd,
    server: Server,
    changes: tokio::sync::mpsc::Sender<Change<String, Endpoint>>,
    idle: impl Fn() -> bool,
    check: Option<AddressCheck>,
) {
    let mut known = HashSet::new();
    while !changes.is_closed() && !idle() {
        match addresses(&etcd, &server).await {
            Ok(now) => {
                let now: HashSet<String> = now.into_iter().collect();
                for gone in known.difference(&now) {
                    let _ = changes.send(Change::Remove(gone.clone())).await;
                }
                for new in now.difference(&known) {
                    let dial = match &check {
                        None => new.clone(),
                        Some(check) => match checked(new, check).await {
                            Ok(addr) => addr,
                            Err(why) => {
                                tracing::warn!(address = %new, %why, "registered instance refused");
                                continue;
                            }
                        },
                    };
                    match Endpoint::from_shared(format!("http://{dial}")) {
                        Ok(e) => {
                            let e = e.connect_timeout(Duration::from_secs(3)).tcp_nodelay(true);
                            let _ = changes.send(Change::Insert(new.clone(), e)).await;
                        }
                        Err(e) => tracing::warn!(address = %new, error = %e, "bad address"),
                    }
                }
                known = now;
            }
            Err(e) => {
                tracing::warn!(?server, error = %e, "resolving failed; keeping the last instances")
            }
        }
        tokio::time::sleep(REFRESH).await;
    }
}

/// `host:port` resolved and every address checked; the first one, to dial (so that a later
/// answer of the name server cannot swap in an address nobody checked).
async fn checked(address: &str, check: &AddressCheck) -> Result<String, String> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|e| e.to_string())?
        .collect();
    if let Some(why) = addrs.iter().find_map(|a| check(a.ip())) {
        return Err(why);
    }
    addrs
        .first()
        .map(|a| a.to_string())
        .ok_or_else(|| "no address".to_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn registry_error(e: Error) -> RegistryError {
    RegistryError(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_urls_split_like_dtm_drivers() {
        assert_eq!(
            split_method("discovery:///stock/api.stock.v1.Stock/TransOut"),
            Some(("discovery:///stock", "/api.stock.v1.Stock/TransOut"))
        );
        assert_eq!(
            split_method("etcd://127.0.0.1:2379/stock.rpc/api.stock.v1.Stock/TransOut"),
            Some((
                "etcd://127.0.0.1:2379/stock.rpc",
                "/api.stock.v1.Stock/TransOut"
            ))
        );
        assert_eq!(split_method("localhost:9001/a.B/C"), None);
        assert_eq!(split_method("etcd://h/key"), None);
    }

    #[test]
    fn servers_parse_in_both_layouts() {
        assert_eq!(
            Server::parse("discovery:///stock").ok(),
            Some(Server::Kratos {
                endpoints: vec![],
                name: "stock".into()
            })
        );
        assert_eq!(
            Server::parse("etcd://h1:2379,h2:2379/dtmservice").ok(),
            Some(Server::GoZero {
                endpoints: vec!["h1:2379".into(), "h2:2379".into()],
                key: "dtmservice".into()
            })
        );
        for bad in [
            "etcd:///key",
            "etcd://h/",
            "consul://h/x",
            "discovery:///a/b",
            "stock",
        ] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
    }
}
