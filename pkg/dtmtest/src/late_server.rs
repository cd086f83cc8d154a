//! A server that is not up yet: a loopback port that accepts connections and closes them at once
//! (what a client meets while its database starts), until the test opens it to the real server,
//! then forwards every new connection there. Start-up waiting is tested with it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};

/// The port; its task stops when this is dropped.
pub struct LateServer {
    addr: SocketAddr,
    refused: Arc<AtomicU32>,
    target: Arc<Mutex<Option<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LateServer {
    /// Binds `127.0.0.1:0`; every connection is closed until [`LateServer::open_to`].
    pub async fn start() -> LateServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let refused = Arc::new(AtomicU32::new(0));
        let target = Arc::new(Mutex::new(None::<SocketAddr>));
        let task = tokio::spawn(serve(listener, refused.clone(), target.clone()));
        LateServer {
            addr,
            refused,
            target,
            task,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections were closed unserved so far.
    pub fn refused(&self) -> u32 {
        self.refused.load(Ordering::SeqCst)
    }

    /// From now on, forwards new connections to `target`: the server is up.
    pub fn open_to(&self, target: SocketAddr) {
        *self.target.lock().unwrap_or_else(PoisonError::into_inner) = Some(target);
    }
}

impl Drop for LateServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    refused: Arc<AtomicU32>,
    target: Arc<Mutex<Option<SocketAddr>>>,
) {
    while let Ok((mut client, _)) = listener.accept().await {
        let to = *target.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(to) = to else {
            refused.fetch_add(1, Ordering::SeqCst);
            continue; // dropped: closed unserved
        };
        tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
