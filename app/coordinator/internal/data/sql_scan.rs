//! The SQL store's reads over many rows: a page of `all` by the filters given, newest first, and
//! the backlog the metrics show.

use kit::time::UnixMs;
use sqlx::Row;

use super::sql_rows::{backend, global, text};
use super::sql_store::{GLOBAL_COLUMNS, SqlStore, UNFINISHED};
use crate::biz::{Backlog, ScanPage, ScanQuery, Status, StoreError};

impl SqlStore {
    /// A page of `all`: the filters as SQL, newest first, `position` the last id seen.
    pub(super) async fn scan_page(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        enum Arg<'a> {
            Int(i64),
            Text(&'a str),
        }
        let mut sql = format!("SELECT {GLOBAL_COLUMNS} FROM trans_global WHERE 1 = 1");
        let like;
        let mut args = Vec::new();
        if let Some(p) = q.position.as_deref().filter(|p| !p.is_empty()) {
            let id: i64 = p
                .parse()
                .map_err(|_| StoreError::Backend(format!("bad position {p:?}").into()))?;
            sql.push_str(" AND id < ?");
            args.push(Arg::Int(id));
        }
        for (column, value) in [
            ("gid", &q.gid),
            ("status", &q.status),
            ("trans_type", &q.trans_type),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(Arg::Text(v));
            }
        }
        if let Some(prefix) = &q.gid_prefix {
            // `!` escapes LIKE's wildcards: one escape character every dialect takes as is.
            sql.push_str(" AND gid LIKE ? ESCAPE '!'");
            let escaped: String = prefix
                .chars()
                .flat_map(|c| match c {
                    '!' | '%' | '_' => vec!['!', c],
                    c => vec![c],
                })
                .collect();
            like = format!("{escaped}%");
            args.push(Arg::Text(&like));
        }
        if let Some(t) = q.create_time_start {
            sql.push_str(" AND create_time >= ?");
            args.push(Arg::Int(t.0));
        }
        if let Some(t) = q.create_time_end {
            sql.push_str(" AND create_time <= ?");
            args.push(Arg::Int(t.0));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Arg::Int(i64::from(q.limit)));
        let sql = self.q(&sql);
        let mut query = sqlx::query(&sql);
        for a in args {
            query = match a {
                Arg::Int(i) => query.bind(i),
                Arg::Text(s) => query.bind(s),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(backend)?;
        let transactions = rows.iter().map(global).collect::<Result<Vec<_>, _>>()?;
        Ok(ScanPage::new(transactions, q.limit))
    }

    /// `backlog`: unfinished transactions by status, and the earliest due among them.
    pub(super) async fn count_backlog(&self) -> Result<Backlog, StoreError> {
        let sql = format!(
            "SELECT status, COUNT(*), MIN(next_cron_time) FROM trans_global \
             WHERE {UNFINISHED} GROUP BY status"
        );
        let rows = sqlx::query(&self.q(&sql))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut backlog = Backlog::default();
        for r in &rows {
            let status = text(r, 0)?;
            let status = Status::parse(&status)
                .ok_or_else(|| StoreError::Backend(format!("unknown status {status:?}").into()))?;
            let count: i64 = r.try_get(1).map_err(backend)?;
            let earliest = UnixMs(r.try_get(2).map_err(backend)?);
            backlog
                .unfinished
                .push((status, u64::try_from(count).unwrap_or(0)));
            backlog.earliest_due = Some(backlog.earliest_due.map_or(earliest, |e| e.min(earliest)));
        }
        Ok(backlog)
    }
}
