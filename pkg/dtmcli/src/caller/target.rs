//! Where a branch URL points, by DTM's rules.

use std::str::FromStr;

use crate::caller::CallError;

/// Where a branch URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// Nothing to call: an empty URL succeeds at once (DTM's rule).
    Empty,
    /// An HTTP URL.
    Http(&'a str),
    /// A JSON-RPC 2.0 method over HTTP: protocol `json-rpc` and a URL with `method=` in its
    /// query (DTM's rule).
    JsonRpc(&'a str),
    /// A gRPC server and the full method name (`/pkg.Svc/Method`).
    Grpc {
        /// `host:port`.
        authority: &'a str,
        /// `/pkg.Svc/Method`.
        method: &'a str,
    },
    /// A registered gRPC server and the full method name.
    Registry {
        /// `discovery:///name` or `etcd://hosts/key`.
        server: &'a str,
        /// `/pkg.Svc/Method`.
        method: &'a str,
    },
}

impl<'a> Target<'a> {
    /// DTM's selection (docs/dtm-protocol.md, Calling branches): HTTP when the protocol is `http`
    /// (or empty) or the URL has an `http(s)://` scheme; otherwise gRPC,
    /// `host:port/pkg.Svc/Method`, cut at the first `/`.
    pub fn parse(protocol: &str, url: &'a str) -> Result<Target<'a>, CallError> {
        let bad = |reason: &str| CallError::BadTarget {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.is_empty() {
            return Ok(Target::Empty);
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            if protocol == "json-rpc" && url.contains("method") {
                return Ok(Target::JsonRpc(url));
            }
            return Ok(Target::Http(url));
        }
        if protocol != "grpc" {
            return Err(bad("an HTTP branch URL starts with http:// or https://"));
        }
        const SHAPE: &str = "a gRPC branch URL is host:port/pkg.Service/Method, \
            discovery:///name/pkg.Service/Method or etcd://hosts/key/pkg.Service/Method";
        if url.contains("://") {
            return match registry_target(url) {
                Some((server, method)) if is_grpc_method(method) => {
                    Ok(Target::Registry { server, method })
                }
                _ => Err(bad(SHAPE)),
            };
        }
        let Some(slash) = url.find('/') else {
            return Err(bad(SHAPE));
        };
        let (authority, method) = url.split_at(slash);
        if authority.is_empty() || !is_grpc_method(method) {
            return Err(bad(SHAPE));
        }
        Ok(Target::Grpc { authority, method })
    }
}

/// A registry URL's server and method: `discovery:///name` or `etcd://hosts/key`, then
/// `/pkg.Svc/Method`. Without the `registry` feature there are none.
#[cfg(feature = "registry")]
fn registry_target(url: &str) -> Option<(&str, &str)> {
    registry::split_method(url).filter(|(server, _)| registry::Server::parse(server).is_ok())
}

#[cfg(not(feature = "registry"))]
fn registry_target(_: &str) -> Option<(&str, &str)> {
    None
}

/// `/pkg.Service/Method`.
fn is_grpc_method(method: &str) -> bool {
    method.len() > 1
        && method.starts_with('/')
        && method[1..].split('/').count() == 2
        && !method[1..].split('/').any(str::is_empty)
        && http::uri::PathAndQuery::from_str(method).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_dtm_selection() {
        assert_eq!(Target::parse("", ""), Ok(Target::Empty));
        // JSON-RPC: protocol json-rpc and a method in the URL; otherwise plain HTTP.
        assert_eq!(
            Target::parse("json-rpc", "http://h/rpc?method=TransOut"),
            Ok(Target::JsonRpc("http://h/rpc?method=TransOut"))
        );
        assert_eq!(
            Target::parse("json-rpc", "http://h/plain"),
            Ok(Target::Http("http://h/plain"))
        );
        assert_eq!(
            Target::parse("http", "http://h/rpc?method=TransOut"),
            Ok(Target::Http("http://h/rpc?method=TransOut"))
        );
        assert_eq!(
            Target::parse("grpc", "http://b/x"),
            Ok(Target::Http("http://b/x"))
        );
        assert_eq!(
            Target::parse("grpc", "localhost:9001/api.stock.v1.Stock/TransOut"),
            Ok(Target::Grpc {
                authority: "localhost:9001",
                method: "/api.stock.v1.Stock/TransOut"
            })
        );
        assert!(Target::parse("http", "localhost:9001/a.B/C").is_err());
        assert_eq!(
            Target::parse("grpc", "discovery:///stock/api.stock.v1.Stock/TransOut"),
            Ok(Target::Registry {
                server: "discovery:///stock",
                method: "/api.stock.v1.Stock/TransOut"
            })
        );
        assert_eq!(
            Target::parse("grpc", "etcd://h:2379/k/a.B/C"),
            Ok(Target::Registry {
                server: "etcd://h:2379/k",
                method: "/a.B/C"
            })
        );
        assert!(Target::parse("grpc", "consul://h/k/a.B/C").is_err());
        assert!(Target::parse("grpc", "etcd://h/k/a.B").is_err());
        assert!(Target::parse("grpc", "localhost:9001//a.B").is_err());
        assert!(Target::parse("grpc", "localhost:9001").is_err());
        assert!(Target::parse("grpc", "localhost:9001/a.B").is_err());
    }
}
