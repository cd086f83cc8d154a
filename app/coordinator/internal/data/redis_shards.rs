//! What the Redis store does over every shard ([`Layout`](super::redis_keys::Layout)): the
//! `all` query (the shards' id indexes merged newest first), the backlog (summed), and moving
//! due times (shard after shard up to the limit).

use std::collections::HashMap;
use std::sync::LazyLock;

use kit::time::UnixMs;
use redis::{AsyncCommands, Script};

use super::redis_rows::{backend, parse_global};
use super::redis_store::RedisStore;
use crate::biz::{Backlog, Global, ScanPage, ScanQuery, Status, StoreError, TransStore};

impl RedisStore {
    pub(super) async fn scan_shards(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
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
        // Walk the id indexes newest first, in batches, until the page is full.
        let mut transactions = Vec::new();
        loop {
            let batch = self.newest_below(&below, 100).await?;
            let Some((_, _, last_id)) = batch.last() else {
                break;
            };
            // One pipeline per shard: a cluster pipeline stays in one slot.
            let mut maps: HashMap<&str, HashMap<String, String>> = HashMap::new();
            for shard in 0..self.keys.len() {
                let gids: Vec<&str> = (batch.iter())
                    .filter(|(s, _, _)| *s == shard)
                    .map(|(_, gid, _)| gid.as_str())
                    .collect();
                if gids.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for gid in &gids {
                    pipe.hgetall(self.keys.key("g", gid));
                }
                let got: Vec<HashMap<String, String>> = pipe
                    .query_async(&mut self.conn.clone())
                    .await
                    .map_err(backend)?;
                maps.extend(gids.into_iter().zip(got));
            }
            // An expired transaction (empty map) is skipped; `create` prunes its index entry.
            for (_, gid, _) in &batch {
                let Some(map) = maps.get(gid.as_str()).filter(|m| !m.is_empty()) else {
                    continue;
                };
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

    /// The `count` newest transactions with an id below `below` (a score bound: `(42`, `+inf`)
    /// over every shard, newest first, as (shard, gid, id): each shard's `count` newest, merged
    /// (the ids come from one counter, so they compare across shards).
    async fn newest_below(
        &self,
        below: &str,
        count: isize,
    ) -> Result<Vec<(usize, String, i64)>, StoreError> {
        let mut all = Vec::new();
        for shard in 0..self.keys.len() {
            let batch: Vec<(String, i64)> = self
                .conn
                .clone()
                .zrevrangebyscore_limit_withscores(
                    self.keys.index(shard, "all"),
                    below,
                    "-inf",
                    0,
                    count,
                )
                .await
                .map_err(backend)?;
            all.extend(batch.into_iter().map(|(gid, id)| (shard, gid, id)));
        }
        all.sort_by_key(|b| std::cmp::Reverse(b.2));
        all.truncate(usize::try_from(count).unwrap_or(0));
        Ok(all)
    }

    pub(super) async fn backlog_shards(&self) -> Result<Backlog, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/backlog.lua")));
        let mut backlog = Backlog::default();
        let mut counts: Vec<(Status, u64)> = Vec::new();
        for shard in 0..self.keys.len() {
            let mut inv = SCRIPT.prepare_invoke();
            inv.key(self.keys.index(shard, "u"))
                .arg(self.keys.shard_prefix(shard));
            let reply: Vec<String> = self.run(&inv).await?;
            let bad = || StoreError::Backend(format!("backlog reply {reply:?}").into());
            let mut fields = reply.iter();
            if let Some(earliest) = fields.next().filter(|e| !e.is_empty()) {
                // Sorted-set scores come back as doubles' text; the times stored are integers.
                let ms: f64 = earliest.parse().map_err(|_| bad())?;
                let due = UnixMs(ms as i64);
                backlog.earliest_due = Some(backlog.earliest_due.map_or(due, |e| e.min(due)));
            }
            while let (Some(status), Some(count)) = (fields.next(), fields.next()) {
                let status = Status::parse(status).ok_or_else(bad)?;
                let count: u64 = count.parse().map_err(|_| bad())?;
                match counts.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, n)) => *n += count,
                    None => counts.push((status, count)),
                }
            }
        }
        backlog.unfinished = counts;
        Ok(backlog)
    }

    pub(super) async fn reset_cron_time_shards(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/reset_cron_time.lua")));
        let mut count = 0;
        for shard in 0..self.keys.len() {
            let left = u64::from(limit).saturating_sub(count);
            if left == 0 {
                // Stopped before this shard: say there may be more.
                return Ok((count, true));
            }
            let mut inv = SCRIPT.prepare_invoke();
            inv.key(self.keys.index(shard, "u"))
                .arg(after.0)
                .arg(now.0)
                .arg(left)
                .arg(self.keys.shard_prefix(shard));
            let (n, more): (u64, i64) = self.write(&inv).await?;
            count += n;
            if more == 1 {
                return Ok((count, true));
            }
        }
        Ok((count, false))
    }
}
