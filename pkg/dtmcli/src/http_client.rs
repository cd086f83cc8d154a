//! The HTTP client of the SDK (branch calls, the coordinator's HTTP API).
//!
//! reqwest with rustls loads the system's CA certificates when a client is built, and fails on
//! a system without any (a bare container image); `reqwest::Client::new()` would panic there.
//! Plain `http://` needs no certificate, so such a system gets a client that trusts no
//! certificate at all — every `https://` call fails its handshake, loudly — instead of a crash.

/// A client from `configure(reqwest::Client::builder())`, or, where the system's certificates
/// cannot be loaded, the same configuration trusting none (with a warning).
pub fn build(
    configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    match configure(reqwest::Client::builder()).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "HTTP client: no CA certificates could be loaded; https:// calls will fail"
            );
            without_roots(configure(reqwest::Client::builder()))
        }
    }
}

/// `builder` trusting no certificate: it reads nothing from the system, so only a broken TLS
/// build could make it fail, and then the client without any option is the last resort.
fn without_roots(builder: reqwest::ClientBuilder) -> reqwest::Client {
    let empty = Vec::<reqwest::Certificate>::new;
    builder
        .tls_certs_only(empty())
        .build()
        .or_else(|_| reqwest::Client::builder().tls_certs_only(empty()).build())
        .expect("a client that loads no certificate builds with rustls compiled in")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_without_roots_still_builds() {
        let _client = without_roots(reqwest::Client::builder());
        let _default = build(|b| b);
    }
}
