//! Where calls may go. A coordinator that takes transactions from clients it does not fully trust
//! restricts its caller (DTM calls any URL and follows redirects, which stays the default):
//!
//! - an [`AddressCheck`] refuses addresses — checked where they are known: a literal IP when the
//!   URL is checked (a 400 at submit), a host name when it is resolved for a call (no connection
//!   is made to a refused address), every redirect's target, every registered instance;
//! - `follow_redirects: false`: a 3xx is an answer without a DTM result, so the call is retried,
//!   and the transaction's headers never reach another origin;
//! - extra CA certificates for `https://` branches behind a private CA.
//!
//! Which addresses to refuse is the coordinator's policy, not the SDK's.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::caller::{Caller, Target};

/// Why an address may not be called (`Some(reason)`), or `None` if it may.
pub type AddressCheck = Arc<dyn Fn(IpAddr) -> Option<String> + Send + Sync>;

/// Where a [`Caller`] may call; the default: anywhere, following redirects.
#[derive(Clone)]
pub struct Reach {
    /// Refuses addresses; `None`: none is refused.
    pub check: Option<AddressCheck>,
    /// Follow HTTP redirects (DTM does), up to 10 hops.
    pub follow_redirects: bool,
    /// PEM certificates trusted for `https://` branches besides the system's roots; empty: the
    /// system's only.
    pub extra_roots_pem: Vec<u8>,
}

impl Default for Reach {
    fn default() -> Self {
        Reach {
            check: None,
            follow_redirects: true,
            extra_roots_pem: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reach")
            .field("check", &self.check.is_some())
            .field("follow_redirects", &self.follow_redirects)
            .field("extra_roots_pem", &self.extra_roots_pem.len())
            .finish()
    }
}

impl Reach {
    /// Why `ip` may not be called, or `None` if it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<String> {
        self.check.as_ref().and_then(|check| check(ip))
    }

    /// [`Reach::refuses`] for a host as written in a URL, when it is a literal address (a name
    /// is checked once resolved).
    pub fn refuses_host(&self, host: &str) -> Option<String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        IpAddr::from_str(host).ok().and_then(|ip| self.refuses(ip))
    }

    /// Whether `pem` holds at least one certificate (for [`Reach::extra_roots_pem`]).
    pub fn check_roots(pem: &[u8]) -> Result<(), String> {
        match reqwest::Certificate::from_pem_bundle(pem) {
            Ok(certs) if !certs.is_empty() => Ok(()),
            Ok(_) => Err("no certificate in it".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The HTTP client that keeps to this reach: refused addresses dropped at resolution,
    /// redirects checked or not followed, the extra roots trusted.
    pub(crate) fn http_client(self: &Arc<Reach>) -> reqwest::Client {
        let reach = self.clone();
        crate::http_client::build(move |mut http| {
            if reach.check.is_some() {
                http = http.dns_resolver(Arc::new(CheckedDns(reach.clone())));
            }
            if !reach.extra_roots_pem.is_empty() {
                // Checked where the reach was made (the coordinator's config); unreadable here
                // means the system's roots only.
                match reqwest::Certificate::from_pem_bundle(&reach.extra_roots_pem) {
                    Ok(certs) => http = http.tls_certs_merge(certs),
                    Err(e) => tracing::warn!(error = %e, "branch CA certificates ignored"),
                }
            }
            http.redirect(redirects(&reach))
        })
    }
}

impl Caller {
    /// Why the reach refuses the literal address `url` names, if it does.
    pub(crate) fn refused_literal(&self, protocol: &str, url: &str) -> Option<String> {
        self.reach.check.as_ref()?;
        match Target::parse(protocol, url).ok()? {
            Target::Http(url) | Target::JsonRpc(url) => {
                let url = reqwest::Url::parse(url).ok()?;
                self.reach.refuses_host(url.host_str()?)
            }
            Target::Grpc { authority, .. } => {
                let authority = http::uri::Authority::from_str(authority).ok()?;
                self.reach.refuses_host(authority.host())
            }
            Target::Empty | Target::Registry { .. } => None,
        }
    }

    /// With an address check, a gRPC host name is resolved and every address checked before
    /// any connection is made.
    pub(crate) async fn check_grpc_host(&self, authority: &str) -> Result<(), String> {
        if self.reach.check.is_none() {
            return Ok(());
        }
        let addrs = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("resolving {authority}: {e}"))?;
        for addr in addrs {
            if let Some(why) = self.reach.refuses(addr.ip()) {
                return Err(format!("refused by the branch policy: {why}"));
            }
        }
        Ok(())
    }
}

/// Where redirects may go: nowhere, or (as DTM) up to 10 hops to addresses `reach` allows.
fn redirects(reach: &Arc<Reach>) -> reqwest::redirect::Policy {
    if !reach.follow_redirects {
        return reqwest::redirect::Policy::none();
    }
    let r = reach.clone();
    reqwest::redirect::Policy::custom(move |attempt| {
        let refused = attempt.url().host_str().and_then(|h| r.refuses_host(h));
        match refused {
            Some(why) => attempt.error(why),
            None if attempt.previous().len() >= 10 => attempt.error("too many redirects"),
            None => attempt.follow(),
        }
    })
}

/// A DNS resolver that drops the addresses the reach refuses, so that no connection is ever
/// made to them (a host name that resolves only to refused addresses fails to resolve).
struct CheckedDns(Arc<Reach>);

impl reqwest::dns::Resolve for CheckedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| reach.refuses(a.ip()).is_none())
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host}: every address is refused by the branch policy").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
