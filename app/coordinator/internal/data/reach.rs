//! Where the coordinator's branch calls may go: `Hardening` for a coordinator that takes
//! transactions from clients it does not fully trust. Off by default (DTM calls any URL and
//! follows redirects):
//!
//! - `BranchNetworks`: only these networks (CIDRs; empty: any);
//! - `RefusePrivateNetworks`: never private (RFC 1918, `fc00::/7`), link-local (`169.254/16`,
//!   where cloud metadata services live, `fe80::/10`), shared (`100.64/10`) or unspecified
//!   addresses — loopback stays allowed, for sidecars;
//! - `FollowRedirects: false` and `BranchCaFile`, passed on as they are.
//!
//! The SDK's caller enforces what this decides ([`Reach`]).

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use dtmcli::caller::Reach;

use crate::conf::Hardening;

/// The caller's reach as `Hardening` describes it; an error names the bad key.
pub fn reach(h: &Hardening) -> Result<Reach, String> {
    let networks = Networks {
        allow: parse_networks(&h.branch_networks)
            .map_err(|e| format!("Hardening.BranchNetworks: {e}"))?,
        refuse_private: h.refuse_private_networks,
    };
    Ok(networks.reach(h.follow_redirects, roots(&h.branch_ca_file)?))
}

/// The PEM of `BranchCaFile` (empty: none), checked to hold certificates.
fn roots(file: &str) -> Result<Vec<u8>, String> {
    if file.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |e: &dyn std::fmt::Display| format!("Hardening.BranchCaFile {file:?}: {e}");
    let pem = std::fs::read(file).map_err(|e| bad(&e))?;
    Reach::check_roots(&pem).map_err(|e| bad(&e))?;
    Ok(pem)
}

/// Which addresses branches may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks {
    /// Only these networks; empty: any.
    pub allow: Vec<Network>,
    /// Refuse private, link-local, shared and unspecified addresses.
    pub refuse_private: bool,
}

impl Networks {
    /// Why `ip` may not be called, or `None` if it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        if self.refuse_private && is_private(ip) {
            return Some(format!("{ip} is a private or link-local address"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(ip)) {
            return Some(format!("{ip} is outside the allowed branch networks"));
        }
        None
    }

    /// The caller's reach: these networks (no check at all when they allow everything).
    pub fn reach(self, follow_redirects: bool, extra_roots_pem: Vec<u8>) -> Reach {
        let checks = !self.allow.is_empty() || self.refuse_private;
        let check: Option<dtmcli::caller::AddressCheck> =
            checks.then(|| Arc::new(move |ip| self.refuses(ip)) as _);
        Reach {
            check,
            follow_redirects,
            extra_roots_pem,
        }
    }
}

/// An IP network, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), 32, self.prefix)
                    == masked(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (all of its bits).
    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = canonical(IpAddr::from_str(addr).map_err(|e| format!("{s:?}: {e}"))?);
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {bits}"))?,
            None => bits,
        };
        Ok(Network { addr, prefix })
    }
}

/// Parses a comma-separated list of networks (empty text: none).
pub fn parse_networks(list: &str) -> Result<Vec<Network>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Network::from_str)
        .collect()
}

/// The top `prefix` bits of a `bits`-bit address.
fn masked(addr: u128, bits: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        addr >> (bits - prefix)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn networks_contain_their_addresses() {
        let n: Network = "127.0.0.1/32".parse().expect("net");
        assert!(n.contains(ip("127.0.0.1")));
        assert!(!n.contains(ip("127.0.0.2")));
        assert!(n.contains(ip("::ffff:127.0.0.1")));
        let n: Network = "10.0.0.0/8".parse().expect("net");
        assert!(n.contains(ip("10.200.1.1")) && !n.contains(ip("11.0.0.1")));
        let n: Network = "fe80::/10".parse().expect("net");
        assert!(n.contains(ip("fe80::1")) && !n.contains(ip("::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<Network>()
                .expect("any")
                .contains(ip("8.8.8.8"))
        );
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("nonsense".parse::<Network>().is_err());
        assert_eq!(parse_networks(" 127.0.0.1, ::1 ").expect("list").len(), 2);
    }

    #[test]
    fn private_and_link_local_are_refused_loopback_is_not() {
        let p = Networks {
            allow: Vec::new(),
            refuse_private: true,
        };
        for refused in [
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(p.refuses(ip(refused)).is_some(), "{refused}");
        }
        for allowed in ["127.0.0.1", "::1", "8.8.8.8"] {
            assert!(p.refuses(ip(allowed)).is_none(), "{allowed}");
        }
        let reach = p.reach(true, Vec::new());
        assert!(reach.refuses_host("[fe80::1]").is_some());
        assert!(reach.refuses_host("stock.internal").is_none());
    }
}
