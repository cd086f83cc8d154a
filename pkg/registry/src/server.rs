//! A registered server as a URL names it, in kratos' layout or go-zero's.

use crate::{Error, split_endpoints};

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
    pub(crate) fn prefix(&self) -> String {
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
