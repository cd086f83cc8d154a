//! Finding registered instances and keeping balanced gRPC channels to them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use kit::registry::ServiceInstance;

use crate::{Error, Etcd, REFRESH, Server, lock};

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
