//! The schedule over Redis: the poller's lease of a due transaction, its renewal and take-over,
//! and making one due now — each one Lua script on the transaction's shard. The lease is
//! `owner` + `next_cron_time` in the transaction's hash, mirrored in its shard's `<s>_u` queue.
//! A script picks and takes a gid in one step, so pollers of several coordinators never race.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kit::time::{UnixMs, millis};
use redis::Script;

use super::redis_store::RedisStore;
use crate::biz::{Leased, StoreError, TransStore};

impl RedisStore {
    /// `lease_due`: the earliest due gid of each shard in turn, picked and taken by one script.
    pub(super) async fn lease(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        // The script picks and takes in one step: two coordinators never race for one gid.
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/lease_due.lua")));
        // Every shard in turn, starting one further each time: no shard waits behind another.
        let n = self.keys.len();
        let start = self.next_shard.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let shard = (start + i) % n;
            let mut inv = SCRIPT.prepare_invoke();
            inv.key(self.keys.index(shard, "u"))
                .arg(now.0)
                .arg(lease_until.0)
                .arg(owner)
                .arg(self.keys.shard_prefix(shard));
            if let Some(gid) = self.run::<Option<String>>(&inv).await? {
                return Ok(match self.find(&gid).await? {
                    Some(g) => Leased::Taken(Box::new(g)),
                    // Pruned meanwhile (its keys expire once final): look again.
                    None => Leased::Raced,
                });
            }
        }
        Ok(Leased::NothingDue)
    }

    /// `schedule`: the next visit, while `owner` holds the lease.
    pub(super) async fn schedule_next(
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
        inv.key(self.keys.key("g", gid))
            .key(self.keys.index(self.keys.shard_of(gid), "u"))
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

    /// `take_lease`: the lease to `owner`, whoever held it.
    pub(super) async fn take_over(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/take_lease.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.keys.key("g", gid))
            .key(self.keys.index(self.keys.shard_of(gid), "u"))
            .arg(gid)
            .arg(owner)
            .arg(lease_until.0)
            .arg(now.0);
        Ok(self.run::<i64>(&inv).await? == 1)
    }

    /// `reset_next_cron_time`: one unfinished transaction due `now`.
    pub(super) async fn reset_one_due(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/reset_next_cron_time.lua")));
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.keys.key("g", gid))
            .key(self.keys.index(self.keys.shard_of(gid), "u"))
            .arg(gid)
            .arg(now.0);
        Ok(self.write::<i64>(&inv).await? == 1)
    }
}
