//! The Redis store's connection: one node (a reconnecting [`ConnectionManager`]) or a Redis
//! Cluster (the redis crate's cluster client, which sends each command to the master of its
//! key's slot and follows the cluster through a failover), and the optional wait for replicas
//! after a write.
//!
//! Redis replicates asynchronously: a master that dies right after answering a write may take it
//! with it, and the replica promoted in its place never saw it. With `RedisWaitReplicas` = N a
//! write is followed by `WAIT N timeout` on the same connection (one pipeline, so it covers that
//! write and nothing is in between), and the store answers only when N replicas hold it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ScriptInvocation, Value};

use crate::biz::StoreError;

use super::redis_rows::backend;

/// A connection to one Redis node or to a Redis Cluster; cheap to clone (both multiplex).
#[derive(Clone)]
pub enum RedisConn {
    /// One node (or a primary behind a fixed address).
    Node(ConnectionManager),
    /// A cluster, routed by slot.
    Cluster(ClusterConnection),
}

/// `WAIT`'s arguments: how many replicas must hold a write, and for how long to wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitReplicas {
    /// At least this many replicas.
    pub replicas: u32,
    /// At most this long.
    pub timeout: Duration,
}

impl RedisConn {
    /// Connects to `source`: a `redis://` URL, or with `cluster` seed nodes separated by commas.
    pub async fn connect(source: &str, cluster: bool) -> Result<RedisConn, RedisError> {
        if cluster {
            let nodes: Vec<&str> = source.split(',').map(str::trim).collect();
            let client = ClusterClient::builder(nodes).build()?;
            return Ok(RedisConn::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(source)?;
        Ok(RedisConn::Node(ConnectionManager::new(client).await?))
    }
}

/// Runs a write script, then (with `wait`) `WAIT` in the same pipeline; a script Redis has not
/// cached yet is loaded and the pipeline sent again. Fewer replicas than asked is an error: the
/// write is on the master, but a failover may still lose it, so it is not acknowledged.
pub async fn write<T: redis::FromRedisValue>(
    conn: &RedisConn,
    invocation: &ScriptInvocation<'_>,
    wait: Option<WaitReplicas>,
) -> Result<T, StoreError> {
    let mut conn = conn.clone();
    let Some(wait) = wait else {
        return invocation.invoke_async(&mut conn).await.map_err(backend);
    };
    let mut pipe = redis::pipe();
    pipe.invoke_script(invocation);
    with_wait(&mut pipe, wait);
    let reply: Result<(T, u32), RedisError> = pipe.query_async(&mut conn).await;
    let (value, acked) = match reply {
        Err(e) if e.kind() == ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            invocation.load_async(&mut conn).await.map_err(backend)?;
            pipe.query_async(&mut conn).await.map_err(backend)?
        }
        other => other.map_err(backend)?,
    };
    acknowledged(acked, wait)?;
    Ok(value)
}

/// Runs one write command, then `WAIT` as [`write`] does.
pub async fn write_cmd<T: redis::FromRedisValue>(
    conn: &RedisConn,
    cmd: &Cmd,
    wait: Option<WaitReplicas>,
) -> Result<T, StoreError> {
    let mut conn = conn.clone();
    let Some(wait) = wait else {
        return cmd.query_async(&mut conn).await.map_err(backend);
    };
    let mut pipe = redis::pipe();
    pipe.add_command(cmd.clone());
    with_wait(&mut pipe, wait);
    let (value, acked): (T, u32) = pipe.query_async(&mut conn).await.map_err(backend)?;
    acknowledged(acked, wait)?;
    Ok(value)
}

/// Appends `WAIT replicas timeout_ms`: it has no key, so the pipeline goes where its write goes.
fn with_wait(pipe: &mut Pipeline, wait: WaitReplicas) {
    let ms = u64::try_from(wait.timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    pipe.cmd("WAIT").arg(wait.replicas).arg(ms);
}

fn acknowledged(acked: u32, wait: WaitReplicas) -> Result<(), StoreError> {
    if acked < wait.replicas {
        return Err(StoreError::Backend(
            format!(
                "only {acked} of {} replicas acknowledged the write within {:?}",
                wait.replicas, wait.timeout
            )
            .into(),
        ));
    }
    Ok(())
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Node(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Node(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
