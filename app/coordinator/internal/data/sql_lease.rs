//! The schedule over SQL: the poller's lease of a due transaction, its renewal and take-over,
//! and the writes that make transactions due now. The lease is `owner` + `next_cron_time` on
//! the `trans_global` row (docs/dtm-protocol.md, Storage).
//!
//! Several coordinators lease from one database at once. PostgreSQL picks the earliest due row
//! *that no one else is leasing* (`FOR UPDATE SKIP LOCKED`), so concurrent pollers take
//! different rows instead of racing for the same one. MySQL and SQLite pick, then take with a
//! compare-and-set, and a poller that lost the race looks again at once. (On MySQL,
//! `SKIP LOCKED` measured slower: sorting the due rows by time locks every one of them, so the
//! other pollers found nothing due — docs/operations.md, Scaling out.)

use std::time::Duration;

use sqlx::Row;

use super::sql_rows::{backend, global};
use super::sql_store::{GLOBAL_COLUMNS, SqlStore, UNFINISHED};
use super::writer::{Arg, Write, WriteOutcome};
use crate::biz::{Leased, StoreError};
use dtmcli::Dialect;
use kit::time::{UnixMs, millis};

/// How many of the earliest due rows a compare-and-set lease chooses from.
const PICK_AMONG: usize = 8;

impl SqlStore {
    /// `lease_due`: a due transaction (the earliest; on MySQL and SQLite one of the earliest
    /// few), leased to `owner` until `lease_until`.
    pub(super) async fn lease(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        match self.dialect {
            Dialect::Postgres => self.lease_postgres(now, lease_until, owner).await,
            Dialect::MySql | Dialect::Sqlite => {
                self.lease_pick_then_take(now, lease_until, owner).await
            }
        }
    }

    /// One statement: the subquery locks the earliest due row no one else holds, the update
    /// takes it and returns it. It bypasses the group-commit writer: a lease is one row.
    async fn lease_postgres(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        let sql = format!(
            "UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ? \
             WHERE id = (SELECT id FROM trans_global WHERE {UNFINISHED} AND next_cron_time <= ? \
             ORDER BY next_cron_time LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {GLOBAL_COLUMNS}"
        );
        let row = sqlx::query(&self.q(&sql))
            .bind(owner)
            .bind(lease_until.0)
            .bind(now.0)
            .bind(now.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(r) => Leased::Taken(Box::new(global(&r)?)),
            None => Leased::NothingDue,
        })
    }

    /// Pick a candidate, then take it with a guarded update through the writer: of several
    /// pollers racing for it, exactly one sees one affected row, and the others look again.
    async fn lease_pick_then_take(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        // One of the earliest few at random: pollers of several instances then mostly choose
        // different rows (all choosing the earliest, they collided on nearly every lease).
        let sql = format!(
            "SELECT id FROM trans_global WHERE {UNFINISHED} AND next_cron_time <= ? \
             ORDER BY next_cron_time LIMIT {PICK_AMONG}"
        );
        let rows = sqlx::query(&self.q(&sql))
            .bind(now.0)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = rows.get(random_below(rows.len())) else {
            return Ok(Leased::NothingDue);
        };
        let id: i64 = row.try_get(0).map_err(backend)?;
        let sql = format!(
            "UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ? \
             WHERE id = ? AND {UNFINISHED} AND next_cron_time <= ?"
        );
        let args = vec![
            Arg::Text(owner.to_owned()),
            Arg::Int(lease_until.0),
            Arg::Int(now.0),
            Arg::Int(id),
            Arg::Int(now.0),
        ];
        if !self.cas(&sql, args).await? {
            return Ok(Leased::Raced);
        }
        self.leased_row(id).await
    }

    /// The row just leased (`Raced` should it be gone, which nothing here does).
    async fn leased_row(&self, id: i64) -> Result<Leased, StoreError> {
        let sql = format!("SELECT {GLOBAL_COLUMNS} FROM trans_global WHERE id = ?");
        let row = sqlx::query(&self.q(&sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(match row {
            Some(r) => Leased::Taken(Box::new(global(&r)?)),
            None => Leased::Raced,
        })
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
        let sql = format!(
            "UPDATE trans_global SET next_cron_time = ?, \
             next_cron_interval = COALESCE(?, next_cron_interval), update_time = ? \
             WHERE gid = ? AND owner = ? AND {UNFINISHED}"
        );
        let args = vec![
            Arg::Int(next_cron_time.0),
            Arg::OptInt(next_cron_interval.map(millis)),
            Arg::Int(now.0),
            Arg::Text(gid.to_owned()),
            Arg::Text(owner.to_owned()),
        ];
        self.cas(&sql, args).await
    }

    /// `take_lease`: the lease to `owner`, whoever held it.
    pub(super) async fn take_over(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ? \
             WHERE gid = ? AND {UNFINISHED}"
        );
        let args = vec![
            Arg::Text(owner.to_owned()),
            Arg::Int(lease_until.0),
            Arg::Int(now.0),
            Arg::Text(gid.to_owned()),
        ];
        self.cas(&sql, args).await
    }

    /// `reset_cron_time`: up to `limit` unfinished transactions due after `after` become due
    /// `now`.
    pub(super) async fn reset_due(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        let pick = format!(
            "SELECT id FROM trans_global WHERE {UNFINISHED} AND next_cron_time > ? \
             ORDER BY id LIMIT ?"
        );
        let ids: Vec<i64> = sqlx::query(&self.q(&pick))
            .bind(after.0)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let has_remaining = ids.len() > limit as usize;
        let sql = format!(
            "UPDATE trans_global SET next_cron_time = ?, update_time = ? \
             WHERE id = ? AND {UNFINISHED} AND next_cron_time > ?"
        );
        let stmts = ids
            .iter()
            .take(limit as usize)
            .map(|&id| {
                let args = vec![
                    Arg::Int(now.0),
                    Arg::Int(now.0),
                    Arg::Int(id),
                    Arg::Int(after.0),
                ];
                self.stmt(&sql, args)
            })
            .collect();
        let count = match self
            .writer
            .write(Write {
                stmts,
                isolated: false,
            })
            .await?
        {
            WriteOutcome::Applied(n) => n,
            WriteOutcome::Unmatched => 0,
        };
        Ok((count, has_remaining))
    }

    /// `reset_next_cron_time`: one unfinished transaction due `now`.
    pub(super) async fn reset_one_due(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE trans_global SET next_cron_time = ?, update_time = ? WHERE gid = ? AND {UNFINISHED}"
        );
        let args = vec![Arg::Int(now.0), Arg::Int(now.0), Arg::Text(gid.to_owned())];
        self.cas(&sql, args).await
    }
}

/// A random index below `n` (0 when `n` is 0), from a v4 UUID's random bits: the coordinator
/// makes its owner ids that way already, so no random-number crate for one choice.
fn random_below(n: usize) -> usize {
    let r = uuid::Uuid::new_v4().as_u128() % n.max(1) as u128;
    usize::try_from(r).unwrap_or(0)
}
