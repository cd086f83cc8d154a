//! A server that is not up yet: a loopback port in front of a real server's URL that accepts
//! connections and closes them at once (what a client meets while its database starts), until
//! the test opens it, then forwards every new connection to the real server. Start-up waiting
//! is tested with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::net::{TcpListener, TcpStream};

/// The port; its task stops when this is dropped.
pub struct LateServer {
    url: String,
    refused: Arc<AtomicU32>,
    open: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LateServer {
    /// Binds `127.0.0.1:0` in front of the server `url` names (`scheme://[user@]host:port/…`);
    /// every connection is closed until [`LateServer::open`].
    pub async fn start(url: &str) -> LateServer {
        let (before, host_port, after) = split_url(url);
        let target = std::net::ToSocketAddrs::to_socket_addrs(host_port)
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("{host_port} does not resolve"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (refused, open) = (Arc::default(), Arc::default());
        let task = tokio::spawn(serve(
            listener,
            target,
            Arc::clone(&refused),
            Arc::clone(&open),
        ));
        LateServer {
            url: format!("{before}{addr}{after}"),
            refused,
            open,
            task,
        }
    }

    /// The URL given to [`LateServer::start`], with this port in place of the server's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many connections were closed unserved so far.
    pub fn refused(&self) -> u32 {
        self.refused.load(Ordering::SeqCst)
    }

    /// From now on, forwards new connections to the real server: it is up.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for LateServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    refused: Arc<AtomicU32>,
    open: Arc<AtomicBool>,
) {
    while let Ok((mut client, _)) = listener.accept().await {
        if !open.load(Ordering::SeqCst) {
            refused.fetch_add(1, Ordering::SeqCst);
            continue; // dropped: closed unserved
        }
        tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

/// `scheme://user@host:port/db?x` → (`scheme://user@`, `host:port`, `/db?x`).
fn split_url(url: &str) -> (&str, &str, &str) {
    let authority_at = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_at..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_at = rest[..end].rfind('@').map_or(0, |i| i + 1);
    let (start, end) = (authority_at + host_at, authority_at + end);
    (&url[..start], &url[start..end], &url[end..])
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn a_url_splits_around_its_host_and_port() {
        assert_eq!(
            split_url("postgres://dtm:pw@127.0.0.1:5432/db?x=1"),
            ("postgres://dtm:pw@", "127.0.0.1:5432", "/db?x=1")
        );
        assert_eq!(
            split_url("redis://127.0.0.1:7001"),
            ("redis://", "127.0.0.1:7001", "")
        );
    }
}
