//! [`TransStore`] over Redis (one node or a Redis Cluster), after DTM's layout
//! (docs/dtm-protocol.md, Storage). Every mutation is one Lua script (`lua/*.lua`), so each is
//! atomic like the SQL stores' guarded UPDATEs; every script's keys share one hash tag, so one
//! cluster slot. The keys, per shard `<s>` ([`Layout`]: `{a}` with one shard, `{a:0}`…
//! `{a:15}` with 16):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<s>_g_<gid>` | hash | the global transaction, one field per column |
//! | `<s>_b_<gid>` | list | its branches' fixed part (JSON), in insertion order |
//! | `<s>_bs_<gid>` | hash | `<branch_id>/<op>` → `<status> <update_time> [finish_time]` |
//! | `<s>_u` | sorted set | the shard's unfinished gids by `next_cron_time` (the poller's queue) |
//! | `<s>_all` | sorted set | the shard's gids by id (the `all` query, newest first) |
//! | `<s>_f` | sorted set | the shard's finished gids by expiry time (to prune `<s>_all`) |
//! | `<s>_id` | string | the id counter (one shard; with several, `<p>_id` counts for all) |
//! | `<p>_kv_topics` | hash | msg topics: name → subscribers and version (JSON) |
//! | `<p>_probe` | string | the health probe's write, expiring after a minute |
//!
//! Finished transactions expire after `FinishedDataExpire`; unfinished ones stay until they
//! finish, as SQL rows do.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use kit::time::UnixMs;
use redis::{AsyncCommands, Script};

use super::redis_conn::{RedisConn, WaitReplicas, write, write_cmd};
use super::redis_keys::Layout;

use super::redis_rows::{
    backend, branch_record, branch_state, flag, global_fields, parse_branch, parse_global,
    state_field,
};
use crate::biz::{
    Backlog, Branch, Created, Global, Leased, Progress, ScanPage, ScanQuery, Status, StatusChange,
    StoreError, Topic, TransStore,
};

/// The Redis store.
#[derive(Clone)]
pub struct RedisStore {
    pub(super) conn: RedisConn,
    pub(super) keys: Layout,
    finished_expire_secs: u64,
    pub(super) wait: Option<WaitReplicas>,
    /// Where the next lease starts looking: the shards take turns.
    pub(super) next_shard: Arc<AtomicUsize>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .finish()
    }
}

/// How to reach and lay out a Redis store (the `Store.Redis*` settings).
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// A `redis://` URL; with `cluster`, seed nodes separated by commas.
    pub source: String,
    /// `source` is a Redis Cluster.
    pub cluster: bool,
    /// The key prefix (`{a}`).
    pub prefix: String,
    /// Shards (0: 1 on one node, 16 on a cluster).
    pub shards: u32,
    /// Seconds a finished transaction is kept.
    pub finished_expire_secs: u64,
    /// Replicas that must hold a write before it is answered (`WAIT`), if any.
    pub wait: Option<WaitReplicas>,
}

/// How many finished gids one `create` prunes from `<p>_all` at most (keeps it bounded).
const PRUNE_PER_CREATE: u32 = 10;

/// The shards of a cluster when `Store.RedisShards` is 0: enough for any number of masters a
/// coordinator group would use to get a share each.
const CLUSTER_SHARDS: u32 = 16;

impl RedisStore {
    /// Connects as `options` say.
    pub async fn connect(options: &RedisOptions) -> Result<RedisStore, redis::RedisError> {
        let shards = match (options.shards, options.cluster) {
            (0, true) => CLUSTER_SHARDS,
            (0, false) => 1,
            (n, _) => n,
        };
        let keys = Layout::new(&options.prefix, shards);
        if options.cluster && !keys.tagged() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "a Redis Cluster needs Store.RedisShards > 1 or a Store.RedisPrefix with a hash tag ({a})",
            )));
        }
        Ok(RedisStore {
            conn: RedisConn::connect(&options.source, options.cluster).await?,
            keys,
            finished_expire_secs: options.finished_expire_secs.max(1),
            wait: options.wait,
            next_shard: Arc::default(),
        })
    }

    /// Seconds until a transaction in `status` expires: empty while it is unfinished.
    fn expire_if_final(&self, status: Status) -> String {
        if status.is_final() {
            self.finished_expire_secs.to_string()
        } else {
            String::new()
        }
    }

    /// Runs a script that writes what the API acknowledges (then waits for replicas if asked).
    pub(super) async fn write<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        write(&self.conn, invocation, self.wait).await
    }

    /// Runs a script of the poller's own bookkeeping (leases, schedules): a failover that loses
    /// one only makes a transaction due again sooner, so no replica is waited for.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        write(&self.conn, invocation, None).await
    }
}

#[async_trait::async_trait]
impl TransStore for RedisStore {
    async fn create(&self, g: &Global, branches: &[Branch]) -> Result<Created, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/create.lua")));
        let fields = global_fields(g)?;
        let shard = self.keys.shard_of(&g.gid);
        // With several shards the ids come from one counter in the prefix's own slot (a script
        // cannot reach it), so that they still order the transactions by creation.
        let id = if self.keys.len() > 1 {
            let mut incr = redis::cmd("INCR");
            incr.arg(self.keys.global("id"));
            write_cmd::<i64>(&self.conn, &incr, self.wait)
                .await?
                .to_string()
        } else {
            String::new()
        };
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.keys.key("g", &g.gid))
            .key(self.keys.key("b", &g.gid))
            .key(self.keys.key("bs", &g.gid))
            .key(self.keys.index(shard, "u"))
            .key(self.keys.index(shard, "all"))
            .key(self.keys.index(shard, "id"))
            .key(self.keys.index(shard, "f"))
            .arg(g.create_time.secs())
            .arg(&g.gid)
            .arg(PRUNE_PER_CREATE)
            .arg(id)
            .arg(fields.len() * 2);
        for (name, value) in &fields {
            inv.arg(*name).arg(value);
        }
        inv.arg(self.expire_if_final(g.status));
        for b in branches {
            inv.arg(state_field(&b.branch_id, b.op))
                .arg(branch_state(b.status, b.update_time, b.finish_time))
                .arg(branch_record(b)?);
        }
        if self.write::<i64>(&inv).await? == 1 {
            return Ok(Created::Inserted);
        }
        match self.find(&g.gid).await? {
            Some(existing) => Ok(Created::Exists(Box::new(existing))),
            None => Err(StoreError::Backend(
                format!("gid {} vanished", g.gid).into(),
            )),
        }
    }

    async fn find(&self, gid: &str) -> Result<Option<Global>, StoreError> {
        let map: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(self.keys.key("g", gid))
            .await
            .map_err(backend)?;
        if map.is_empty() {
            return Ok(None);
        }
        parse_global(&map).map(Some)
    }

    async fn branches(&self, gid: &str) -> Result<Vec<Branch>, StoreError> {
        let (records, states): (Vec<String>, HashMap<String, String>) = redis::pipe()
            .lrange(self.keys.key("b", gid), 0, -1)
            .hgetall(self.keys.key("bs", gid))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        records
            .iter()
            .enumerate()
            .map(|(i, record)| parse_branch(gid, i, record, &states))
            .collect()
    }

    async fn change_status(&self, gid: &str, c: &StatusChange<'_>) -> Result<bool, StoreError> {
        self.record(&Progress {
            gid,
            global_status: c.from,
            branches: Vec::new(),
            then: Some(c.clone()),
            now: c.now,
        })
        .await
    }

    async fn add_branches(
        &self,
        gid: &str,
        expected: Status,
        branches: &[Branch],
    ) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/add_branches.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.keys.key("g", gid))
            .key(self.keys.key("b", gid))
            .key(self.keys.key("bs", gid))
            .arg(expected.as_str());
        for b in branches {
            inv.arg(state_field(&b.branch_id, b.op))
                .arg(branch_state(b.status, b.update_time, b.finish_time))
                .arg(branch_record(b)?);
        }
        match self.write::<i64>(&inv).await? {
            1 => Ok(true),
            -1 => Err(StoreError::Duplicate),
            _ => Ok(false),
        }
    }

    async fn record(&self, p: &Progress<'_>) -> Result<bool, StoreError> {
        // One script: the branch results and the status change are written together or not at
        // all, in one round trip.
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/record.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        let shard = self.keys.shard_of(p.gid);
        inv.key(self.keys.key("g", p.gid))
            .key(self.keys.key("b", p.gid))
            .key(self.keys.key("bs", p.gid))
            .key(self.keys.index(shard, "u"))
            .key(self.keys.index(shard, "f"))
            .arg(p.gid)
            .arg(p.global_status.as_str())
            .arg(p.now.0)
            .arg(p.branches.len());
        for &(branch_id, op, status) in &p.branches {
            inv.arg(state_field(branch_id, op))
                .arg(branch_state(status, p.now, Some(p.now)));
        }
        match &p.then {
            Some(c) => inv
                .arg(c.to.as_str())
                .arg(c.now.0)
                .arg(flag(c.rollback_reason.is_some()))
                .arg(c.rollback_reason.unwrap_or_default())
                .arg(flag(matches!(c.to, Status::Aborting | Status::Failed)))
                .arg(self.expire_if_final(c.to))
                .arg(flag(c.result.is_some()))
                .arg(c.result.unwrap_or_default()),
            None => inv
                .arg("")
                .arg("")
                .arg("")
                .arg("")
                .arg("")
                .arg("")
                .arg("")
                .arg(""),
        };
        Ok(self.write::<i64>(&inv).await? == 1)
    }

    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        self.lease(now, lease_until, owner).await
    }

    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next_cron_time: UnixMs,
        next_cron_interval: Option<Duration>,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        self.schedule_next(gid, owner, next_cron_time, next_cron_interval, now)
            .await
    }

    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        self.take_over(gid, owner, lease_until, now).await
    }

    async fn scan(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        self.scan_shards(q).await
    }

    async fn reset_cron_time(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        self.reset_cron_time_shards(after, now, limit).await
    }

    async fn topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        self.get_topic(name).await
    }

    async fn put_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        self.write_topic(topic).await
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_topic(name).await
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.backlog_shards().await
    }

    async fn reset_next_cron_time(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        self.reset_one_due(gid, now).await
    }

    async fn probe(&self) -> Result<(), StoreError> {
        // A write that expires by itself: refused when Redis cannot write (maxmemory with
        // noeviction, a read-only replica, a failed RDB save with stop-writes-on-bgsave-error).
        let () = redis::cmd("SET")
            .arg(self.keys.global("probe"))
            .arg(UnixMs::now().0)
            .arg("PX")
            .arg(60_000)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
