//! [`TransStore`] over Redis, after DTM's layout (docs/dtm-protocol.md, Storage). Every key starts
//! with the prefix (`{a}` by default: a hash tag, so all keys share one cluster slot and one Lua
//! script may touch any of them). Every mutation is one Lua script (`lua/*.lua`), so each is atomic
//! like the SQL stores' guarded UPDATEs.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<p>_g_<gid>` | hash | the global transaction, one field per column |
//! | `<p>_b_<gid>` | list | its branches' fixed part (JSON), in insertion order |
//! | `<p>_bs_<gid>` | hash | `<branch_id>/<op>` → `<status> <update_time> [finish_time]` |
//! | `<p>_u` | sorted set | unfinished gids by `next_cron_time` (the poller's queue) |
//! | `<p>_all` | sorted set | every gid by id (the `all` query, newest first) |
//! | `<p>_f` | sorted set | finished gids by expiry time (to prune `<p>_all`) |
//! | `<p>_id` | string | the id counter |
//! | `<p>_kv_topics` | hash | msg topics: name → subscribers and version (JSON) |
//! | `<p>_probe` | string | the health probe's write, expiring after a minute |
//!
//! Finished transactions expire after `FinishedDataExpire`; unfinished ones stay until they
//! finish, as SQL rows do.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use kit::time::{UnixMs, millis};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::redis_rows::{
    backend, branch_record, branch_state, flag, global_fields, parse_branch, parse_global,
    state_field,
};
use crate::biz::{
    Backlog, Branch, Created, Global, Progress, ScanPage, ScanQuery, Status, StatusChange,
    StoreError, Topic, TransStore,
};

/// The Redis store.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    finished_expire_secs: u64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A KV entry as the Redis store keeps it (a field of `<p>_kv_<cat>`).
#[derive(Serialize, Deserialize)]
struct StoredKv {
    v: String,
    version: i64,
}

/// How many finished gids one `create` prunes from `<p>_all` at most (keeps it bounded).
const PRUNE_PER_CREATE: u32 = 10;

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`); keys start with `prefix`; finished
    /// transactions expire after `finished_expire_secs`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        finished_expire_secs: u64,
    ) -> Result<RedisStore, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(RedisStore {
            conn,
            prefix: prefix.into(),
            finished_expire_secs: finished_expire_secs.max(1),
        })
    }

    fn key(&self, kind: &str, gid: &str) -> String {
        format!("{}_{kind}_{gid}", self.prefix)
    }

    fn index(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// Seconds until a transaction in `status` expires: empty while it is unfinished.
    fn expire_if_final(&self, status: Status) -> String {
        if status.is_final() {
            self.finished_expire_secs.to_string()
        } else {
            String::new()
        }
    }

    /// Runs a script, mapping failures to [`StoreError::Backend`].
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)
    }
}

#[async_trait::async_trait]
impl TransStore for RedisStore {
    async fn create(&self, g: &Global, branches: &[Branch]) -> Result<Created, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/create.lua")));
        let fields = global_fields(g)?;
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.key("g", &g.gid))
            .key(self.key("b", &g.gid))
            .key(self.key("bs", &g.gid))
            .key(self.index("u"))
            .key(self.index("all"))
            .key(self.index("id"))
            .key(self.index("f"))
            .arg(g.create_time.secs())
            .arg(&g.gid)
            .arg(PRUNE_PER_CREATE)
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
        if self.run::<i64>(&inv).await? == 1 {
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
            .hgetall(self.key("g", gid))
            .await
            .map_err(backend)?;
        if map.is_empty() {
            return Ok(None);
        }
        parse_global(&map).map(Some)
    }

    async fn branches(&self, gid: &str) -> Result<Vec<Branch>, StoreError> {
        let (records, states): (Vec<String>, HashMap<String, String>) = redis::pipe()
            .lrange(self.key("b", gid), 0, -1)
            .hgetall(self.key("bs", gid))
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
        inv.key(self.key("g", gid))
            .key(self.key("b", gid))
            .key(self.key("bs", gid))
            .arg(expected.as_str());
        for b in branches {
            inv.arg(state_field(&b.branch_id, b.op))
                .arg(branch_state(b.status, b.update_time, b.finish_time))
                .arg(branch_record(b)?);
        }
        match self.run::<i64>(&inv).await? {
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
        inv.key(self.key("g", p.gid))
            .key(self.key("b", p.gid))
            .key(self.key("bs", p.gid))
            .key(self.index("u"))
            .key(self.index("f"))
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
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Option<Global>, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/lease_due.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.index("u"))
            .arg(now.0)
            .arg(lease_until.0)
            .arg(owner)
            .arg(&self.prefix);
        match self.run::<Option<String>>(&inv).await? {
            Some(gid) => self.find(&gid).await,
            None => Ok(None),
        }
    }

    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next_cron_time: UnixMs,
        next_cron_interval: Option<Duration>,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/schedule.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.key("g", gid))
            .key(self.index("u"))
            .arg(gid)
            .arg(owner)
            .arg(next_cron_time.0)
            .arg(
                next_cron_interval
                    .map(|i| millis(i).to_string())
                    .unwrap_or_default(),
            )
            .arg(now.0);
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/take_lease.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.key("g", gid))
            .key(self.index("u"))
            .arg(gid)
            .arg(owner)
            .arg(lease_until.0)
            .arg(now.0);
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn scan(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        let keep = |g: &Global| {
            q.gid_prefix.as_deref().is_none_or(|p| g.gid.starts_with(p))
                && q.status.as_deref().is_none_or(|s| s == g.status.as_str())
                && q.trans_type
                    .as_deref()
                    .is_none_or(|t| t == g.trans_type.as_str())
                && q.create_time_start.is_none_or(|t| g.create_time >= t)
                && q.create_time_end.is_none_or(|t| g.create_time <= t)
        };
        if let Some(gid) = &q.gid {
            let transactions = self.find(gid).await?.into_iter().filter(keep).collect();
            return Ok(ScanPage {
                transactions,
                next_position: String::new(),
            });
        }
        let limit = q.limit as usize;
        let mut below = match q.position.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => format!(
                "({}",
                p.parse::<i64>()
                    .map_err(|_| StoreError::Backend(format!("bad position {p:?}").into()))?
            ),
            None => "+inf".into(),
        };
        // Walk the id index newest first, in batches, until the page is full.
        let mut transactions = Vec::new();
        loop {
            // gid → id pairs: the ids say where the next batch starts, with no extra query.
            let batch: Vec<(String, i64)> = self
                .conn
                .clone()
                .zrevrangebyscore_limit_withscores(self.index("all"), &below, "-inf", 0, 100)
                .await
                .map_err(backend)?;
            let Some((_, last_id)) = batch.last() else {
                break;
            };
            let mut pipe = redis::pipe();
            for (gid, _) in &batch {
                pipe.hgetall(self.key("g", gid));
            }
            let maps: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.conn.clone())
                .await
                .map_err(backend)?;
            // An expired transaction (empty map) is skipped; `create` prunes its index entry.
            for map in maps.iter().filter(|m| !m.is_empty()) {
                let g = parse_global(map)?;
                if keep(&g) && transactions.len() < limit {
                    transactions.push(g);
                }
            }
            if transactions.len() == limit {
                break;
            }
            below = format!("({last_id}");
        }
        Ok(ScanPage::new(transactions, q.limit))
    }

    async fn reset_cron_time(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/reset_cron_time.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.index("u"))
            .arg(after.0)
            .arg(now.0)
            .arg(limit)
            .arg(&self.prefix);
        let (count, more): (u64, i64) = self.run(&inv).await?;
        Ok((count, more == 1))
    }

    async fn topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        let stored: Option<String> = self
            .conn
            .clone()
            .hget(self.index("kv_topics"), name)
            .await
            .map_err(backend)?;
        stored
            .map(|json| {
                let kv: StoredKv = serde_json::from_str(&json).map_err(backend)?;
                Ok(Topic {
                    name: name.to_owned(),
                    subscribers: serde_json::from_str(&kv.v).map_err(backend)?,
                    version: kv.version,
                })
            })
            .transpose()
    }

    async fn put_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/put_kv.lua")));
        let v = serde_json::to_string(&topic.subscribers).map_err(backend)?;
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.index("kv_topics"))
            .arg(&topic.name)
            .arg(topic.version)
            .arg(v);
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, StoreError> {
        let removed: i64 = self
            .conn
            .clone()
            .hdel(self.index("kv_topics"), name)
            .await
            .map_err(backend)?;
        Ok(removed > 0)
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/backlog.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.index("u")).arg(&self.prefix);
        let reply: Vec<String> = self.run(&inv).await?;
        let bad = || StoreError::Backend(format!("backlog reply {reply:?}").into());
        let mut backlog = Backlog::default();
        let mut fields = reply.iter();
        if let Some(earliest) = fields.next().filter(|e| !e.is_empty()) {
            // Sorted-set scores come back as doubles' text; the times stored are integers.
            let ms: f64 = earliest.parse().map_err(|_| bad())?;
            backlog.earliest_due = Some(UnixMs(ms as i64));
        }
        while let (Some(status), Some(count)) = (fields.next(), fields.next()) {
            let status = Status::parse(status).ok_or_else(bad)?;
            backlog
                .unfinished
                .push((status, count.parse().map_err(|_| bad())?));
        }
        Ok(backlog)
    }

    async fn reset_next_cron_time(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/reset_next_cron_time.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.key("g", gid))
            .key(self.index("u"))
            .arg(gid)
            .arg(now.0);
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    async fn probe(&self) -> Result<(), StoreError> {
        // A write that expires by itself: refused when Redis cannot write (maxmemory with
        // noeviction, a read-only replica, a failed RDB save with stop-writes-on-bgsave-error).
        let () = redis::cmd("SET")
            .arg(self.index("probe"))
            .arg(UnixMs::now().0)
            .arg("PX")
            .arg(60_000)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(())
    }
}
