//! Serving one listener (HTTP/1.1 + HTTP/2, or gRPC's HTTP/2 alone) so that no client can lock
//! the others out.
//!
//! Every connection is tracked with the number of requests it has in flight and since when it
//! has had none. A connection idle for `idle_timeout` is closed — whatever it sends meanwhile
//! that is not a whole request: PING answers, a trickle of header bytes, nothing at all. At most
//! `max_connections` are served at once; when a new one arrives at the cap, the connection idle
//! the longest is closed to make room (gracefully: HTTP/2 says GOAWAY, HTTP/1.1 closes between
//! requests), and only when every connection has a request in flight is the new one refused.
//! So idle or slow clients, however many, cost a fresh client nothing but the eviction of one of
//! them; waiting in the kernel's backlog behind them is what locked clients out.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::ServerConf;

/// How often a closing connection is checked for requests still in flight.
const CLOSING_CHECK: Duration = Duration::from_secs(1);

/// What one listener lets its clients hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections served at once.
    pub(crate) max_connections: usize,
    /// How long a connection may go without a request in flight.
    pub(crate) idle_timeout: Duration,
    /// How long a closing connection may still finish the request it has in flight.
    pub(crate) grace: Duration,
}

/// Serves `router` on `listener` with `builder`'s protocols until `stop`, then closes every
/// connection gracefully and waits for them. Dropping the returned future drops them all.
pub(crate) async fn serve(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let conns = Arc::new(Conns::new(limits.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    let mut last_refusal: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next() => continue,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(conn) = conns.admit() else {
            // Every slot has a request in flight: refusing at once tells the client, where the
            // backlog would only keep it waiting. Logged at most once a second.
            if last_refusal.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(
                    max = limits.max_connections,
                    "every connection is busy: refusing new ones"
                );
                last_refusal = Some(Instant::now());
            }
            continue;
        };
        let service = tracked(router.clone(), conn.clone());
        tasks.spawn(serve_connection(
            stream,
            builder.clone(),
            service,
            Registered(conns.clone(), conn),
            limits,
        ));
    }
    drop(listener);
    conns.close_all();
    while tasks.join_next().await.is_some() {}
}

/// One connection: served until it ends, or until it is asked to close or has been idle for
/// `idle_timeout` — then closed gracefully, with `grace` for a request in flight.
async fn serve_connection<S>(
    stream: TcpStream,
    builder: auto::Builder<TokioExecutor>,
    service: S,
    registered: Registered,
    limits: Limits,
) where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let conn = &registered.1;
    let served = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(served);
    let ended = tokio::select! {
        ended = served.as_mut() => ended,
        () = conn.closing(limits.idle_timeout) => {
            served.as_mut().graceful_shutdown();
            // What is in flight may finish, for at most `grace`; a peer with nothing in flight
            // that does not take part in the close (never answers HTTP/2's closing PING, never
            // hangs up) is dropped within a second, so that it cannot keep its socket.
            let deadline = Instant::now() + limits.grace;
            loop {
                tokio::select! {
                    ended = served.as_mut() => break ended,
                    () = tokio::time::sleep(CLOSING_CHECK) => {
                        if conn.in_flight.load(Ordering::SeqCst) == 0 || Instant::now() >= deadline {
                            break Ok(());
                        }
                    }
                }
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// `router` as one connection's service: each request counts as in flight until its response
/// is ready (its body may still stream; a graceful close waits for that too).
fn tracked(
    router: Router,
    conn: Arc<Conn>,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let busy = conn.busy();
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await;
            drop(busy);
            res
        }
    })
}

/// The connections of one listener.
struct Conns {
    max: usize,
    /// Since when the listener serves: connection times are kept as milliseconds since then.
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    live: HashMap<u64, Arc<Conn>>,
}

/// One served connection.
struct Conn {
    id: u64,
    epoch: Instant,
    in_flight: AtomicUsize,
    /// When its last request ended (or it was accepted), in ms since `epoch`.
    idle_since: AtomicU64,
    close: Notify,
}

impl Conns {
    fn new(max: usize) -> Conns {
        Conns {
            max,
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
        }
    }

    /// Takes a new connection on; at the cap, closes the connection idle the longest to make
    /// room. `None` when every connection has a request in flight.
    fn admit(&self) -> Option<Arc<Conn>> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.live.len() >= self.max {
            let idlest = table
                .live
                .values()
                .filter(|c| c.in_flight.load(Ordering::SeqCst) == 0)
                .min_by_key(|c| c.idle_since.load(Ordering::SeqCst))?
                .id;
            // Out of the table at once: it no longer counts, and finishes closing on its own.
            if let Some(evicted) = table.live.remove(&idlest) {
                evicted.close.notify_one();
            }
        }
        let id = table.next;
        table.next += 1;
        let conn = Arc::new(Conn {
            id,
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(millis(self.epoch)),
            close: Notify::new(),
        });
        table.live.insert(id, conn.clone());
        Some(conn)
    }

    /// Asks every connection to close (a stop).
    fn close_all(&self) {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        for conn in table.live.values() {
            conn.close.notify_one();
        }
    }

    fn remove(&self, id: u64) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.live.remove(&id);
    }
}

impl Conn {
    /// Marks a request in flight until the guard drops.
    fn busy(self: &Arc<Conn>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Completes when the connection is asked to close, or has had no request in flight for
    /// `idle`.
    async fn closing(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let busy = self.in_flight.load(Ordering::SeqCst) > 0;
            let since = self.idle_since.load(Ordering::SeqCst);
            let now = millis(self.epoch);
            if !busy && now.saturating_sub(since) >= idle_ms {
                return;
            }
            // Busy: look again after a whole idle period, when it may be idle.
            let wait = if busy {
                idle
            } else {
                Duration::from_millis(idle_ms - now.saturating_sub(since))
            };
            tokio::select! {
                () = self.close.notified() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A request in flight on a connection.
struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .idle_since
            .store(millis(self.0.epoch), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's place in the table, given up when its task ends (or is dropped).
struct Registered(Arc<Conns>, Arc<Conn>);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.remove(self.1.id);
    }
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The HTTP listener's protocols: HTTP/1.1 and HTTP/2 (h2c) by what the client speaks.
pub(crate) fn http_protocols(conf: &ServerConf) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(conf.idle_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(conf.idle_timeout);
    builder
}

/// The gRPC listener's protocol: HTTP/2 only, as tonic's own server.
pub(crate) fn grpc_protocols(conf: &ServerConf) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http2_only();
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(conf.idle_timeout);
    builder
}

/// What one listener lets its clients hold.
pub(crate) fn limits(conf: &ServerConf) -> Limits {
    Limits {
        max_connections: conf.max_connections,
        idle_timeout: conf.idle_timeout,
        grace: conf.timeout,
    }
}
