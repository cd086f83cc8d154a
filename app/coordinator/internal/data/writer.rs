//! Group commit: one writer per SQL store takes the writes waiting in its channel, runs them as
//! one database transaction, and answers each caller only after that transaction committed.
//!
//! Many transactions share one commit, so the cost of a commit (and of the write lock SQLite
//! hands from connection to connection) is paid once per batch instead of once per statement,
//! and a 2xx still means the rows are stored. A write that fails on its own (a duplicate key, a
//! value the database refuses) must not fail the others of its batch:
//!
//! - a write that may fail by itself ([`Write::isolated`]) runs inside a savepoint, and its
//!   failure rolls back only that savepoint;
//! - any other failure inside a batch rolls the whole batch back, and each of its writes is then
//!   run again in a transaction of its own, so that the failure reaches only its owner;
//! - a failed COMMIT fails every write of the batch: none of them is stored.
//!
//! After a failed transaction the connection is dropped, never reused: a connection whose
//! COMMIT failed may be in any state (SQLite rolls back by itself on a full disk). The
//! connections themselves are in `write_conn`.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::write_conn::{DbError, WriteConn};
use crate::biz::StoreError;
use crate::metrics::StoreMetrics;

/// The most writes in one batch: a bound on how long one transaction holds the write lock.
pub const MAX_BATCH: usize = 256;

/// How many writes may wait for the writer before callers wait to hand theirs in.
const QUEUE: usize = 4096;

/// One write: statements run in order, in one transaction.
#[derive(Debug, Default)]
pub struct Write {
    /// The statements.
    pub stmts: Vec<Stmt>,
    /// Runs inside a savepoint of its own: it may fail without the rest of its batch (an
    /// insert that may meet a duplicate key).
    pub isolated: bool,
}

/// One statement with its arguments.
#[derive(Debug)]
pub struct Stmt {
    /// SQL in the store's dialect.
    pub sql: String,
    /// The arguments, in placeholder order.
    pub args: Vec<Arg>,
    /// When it changes no row, the write stops here and reports [`WriteOutcome::Unmatched`]: the
    /// compare-and-set guard of a write. A guard comes before the statements it protects.
    pub guard: bool,
}

/// A statement argument.
#[derive(Debug, Clone)]
pub enum Arg {
    /// An integer.
    Int(i64),
    /// An integer or NULL.
    OptInt(Option<i64>),
    /// Text.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// Bytes.
    Blob(Vec<u8>),
}

/// What a committed write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every statement ran; the rows they changed, in total.
    Applied(u64),
    /// A guard changed no row; the statements after it did not run.
    Unmatched,
}

/// The handle of a writer. Cheap to clone; the writer stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Pending>,
    /// Set by [`Writer::stop`]: the writers finish what is queued and let go of their
    /// connections (a pool closes only once every connection is back).
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

type Pending = (Write, oneshot::Sender<Result<WriteOutcome, StoreError>>);

/// The queue's receiving end, shared by the writers (each holds it while taking a batch).
type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>;

impl Writer {
    /// Several writers, one connection each, taking batches from one queue: while one waits
    /// for its commit (a server's fsync), the next takes the writes that arrived meanwhile, and
    /// the server flushes their commits together. Only for servers: SQLite has one writer at a
    /// time anyway.
    pub fn spawn_many(conns: Vec<impl WriteConn>, metrics: StoreMetrics) -> Writer {
        let (writer, rx, stopped) = Writer::new();
        for conn in conns {
            tokio::spawn(run(conn, rx.clone(), metrics.clone(), stopped.clone()));
        }
        writer
    }

    /// A writer on a thread of its own (SQLite: its statements run on the calling thread, so
    /// a batch costs one wake-up of that thread, not one per statement).
    pub fn thread(
        name: &str,
        conn: impl WriteConn,
        metrics: StoreMetrics,
    ) -> std::io::Result<Writer> {
        let (writer, rx, stopped) = Writer::new();
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || rt.block_on(run(conn, rx, metrics, stopped)))?;
        Ok(writer)
    }

    /// A handle, and what its writers read: the queue and the stop flag.
    fn new() -> (Writer, Queue, tokio::sync::watch::Receiver<bool>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = Writer {
            queue,
            stop: Arc::new(stop),
        };
        (writer, Arc::new(tokio::sync::Mutex::new(rx)), stopped)
    }

    /// Stops the writers once the queue is empty; later writes fail. For shutdown.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Hands `write` to the writer and waits until the transaction holding it has committed
    /// (or failed).
    pub async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        let (done, outcome) = oneshot::channel();
        let stopped = || StoreError::Backend("the store's writer has stopped".into());
        self.queue
            .send((write, done))
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// A writer: batches whatever is waiting (up to [`MAX_BATCH`]), runs it, answers. Several
/// writers may share the queue; each holds it only while taking a batch.
async fn run(
    mut conn: impl WriteConn,
    rx: Queue,
    metrics: StoreMetrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let taken = {
            // Biased: while stopping, what is already queued is still written; then the writer
            // ends (and drops its connection).
            let mut rx = tokio::select! {
                biased;
                rx = rx.lock() => rx,
                _ = stop.wait_for(|s| *s) => return,
            };
            tokio::select! {
                biased;
                n = rx.recv_many(&mut batch, MAX_BATCH) => n,
                _ = stop.wait_for(|s| *s) => 0,
            }
        };
        if taken == 0 {
            return;
        }
        let (writes, start) = (batch.len(), std::time::Instant::now());
        answer(&mut conn, &mut batch).await;
        metrics.batch(writes, start.elapsed());
    }
}

/// Runs the batch and answers each waiter.
async fn answer(conn: &mut impl WriteConn, batch: &mut Vec<Pending>) {
    let (writes, waiters): (Vec<Write>, Vec<_>) = batch.drain(..).unzip();
    let outcomes = run_batch(conn, &writes).await;
    for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
        // The caller may have given up (a client hung up); the write stands regardless.
        let _ = waiter.send(outcome);
    }
}

/// Runs a batch; one outcome per write.
async fn run_batch(
    conn: &mut impl WriteConn,
    writes: &[Write],
) -> Vec<Result<WriteOutcome, StoreError>> {
    if let [one] = writes {
        return vec![run_alone(conn, one).await];
    }
    match try_batch(conn, writes).await {
        Ok(outcomes) => outcomes,
        Err(Abort::Commit(e)) => {
            tracing::warn!(error = %e.message, writes = writes.len(), "store: a batch failed to commit");
            writes.iter().map(|_| Err(e.clone().into())).collect()
        }
        Err(Abort::Replay(e)) => {
            tracing::debug!(error = %e.message, "store: batch rolled back; its writes run one by one");
            let mut outcomes = Vec::with_capacity(writes.len());
            for w in writes {
                outcomes.push(run_alone(conn, w).await);
            }
            outcomes
        }
    }
}

/// Why a batch did not commit.
enum Abort {
    /// A write failed outside a savepoint: rolled back, to be run one by one.
    Replay(DbError),
    /// The COMMIT failed: nothing of the batch is stored.
    Commit(DbError),
}

async fn try_batch(
    conn: &mut impl WriteConn,
    writes: &[Write],
) -> Result<Vec<Result<WriteOutcome, StoreError>>, Abort> {
    let begin = conn.begin();
    // Nothing written into a deleted file (beyond a batch that races the deletion).
    conn.durable().map_err(|e| broken(conn, Abort::Commit(e)))?;
    conn.raw(begin)
        .await
        .map_err(|e| broken(conn, Abort::Replay(e)))?;
    let mut outcomes = Vec::with_capacity(writes.len());
    for w in writes {
        if !w.isolated {
            let outcome = statements(conn, w).await;
            outcomes.push(Ok(outcome.map_err(|e| broken(conn, Abort::Replay(e)))?));
            continue;
        }
        conn.raw("SAVEPOINT w")
            .await
            .map_err(|e| broken(conn, Abort::Replay(e)))?;
        match statements(conn, w).await {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(e) => {
                // Undo this write only; if even that fails, the batch starts over one by one.
                conn.raw("ROLLBACK TO SAVEPOINT w")
                    .await
                    .map_err(|e| broken(conn, Abort::Replay(e)))?;
                outcomes.push(Err(e.into()));
            }
        }
        conn.raw("RELEASE SAVEPOINT w")
            .await
            .map_err(|e| broken(conn, Abort::Replay(e)))?;
    }
    conn.raw("COMMIT")
        .await
        .map_err(|e| broken(conn, Abort::Commit(e)))?;
    conn.durable().map_err(|e| broken(conn, Abort::Commit(e)))?;
    Ok(outcomes)
}

/// One write in a transaction of its own.
async fn run_alone(conn: &mut impl WriteConn, w: &Write) -> Result<WriteOutcome, StoreError> {
    let begin = conn.begin();
    let done = async {
        conn.durable()?;
        conn.raw(begin).await?;
        let outcome = statements(conn, w).await?;
        conn.raw("COMMIT").await?;
        conn.durable()?;
        Ok::<_, DbError>(outcome)
    }
    .await;
    done.map_err(|e| {
        conn.reset();
        e.into()
    })
}

async fn statements(conn: &mut impl WriteConn, w: &Write) -> Result<WriteOutcome, DbError> {
    let mut total = 0;
    for stmt in &w.stmts {
        let changed = conn.execute(stmt).await?;
        if stmt.guard && changed == 0 {
            return Ok(WriteOutcome::Unmatched);
        }
        total += changed;
    }
    Ok(WriteOutcome::Applied(total))
}

/// A failure inside a transaction: the connection is dropped (which rolls back what it had
/// open) and never reused; the next write opens a new one.
fn broken<C: WriteConn>(conn: &mut C, abort: Abort) -> Abort {
    conn.reset();
    abort
}
