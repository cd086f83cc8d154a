//! `registry` in a service's config: where it registers itself.

use std::sync::Arc;
use std::time::Duration;

use kit::registry::Registrar;
use serde::Deserialize;

use crate::{DEFAULT_TTL, Error, EtcdRegistrar, Resolver};

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
