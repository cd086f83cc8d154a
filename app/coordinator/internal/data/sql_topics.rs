//! Msg topics over SQL: one `kv` row per topic (`cat` = topics), its subscribers as JSON and a
//! version that every change increments.

use sqlx::Row;

use super::sql_rows::{backend, text};
use super::sql_store::SqlStore;
use crate::biz::{StoreError, Topic};

/// The `kv` category of msg topics (DTM's).
const TOPICS: &str = "topics";

impl SqlStore {
    /// `topic`: the `kv` row of a topic.
    pub(super) async fn read_topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        let row = sqlx::query(&self.q("SELECT v, version FROM kv WHERE cat = ? AND k = ?"))
            .bind(TOPICS)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            let v = text(&r, 0)?;
            Ok(Topic {
                name: name.to_owned(),
                subscribers: serde_json::from_str(&v).map_err(backend)?,
                version: r.try_get(1).map_err(backend)?,
            })
        })
        .transpose()
    }

    /// `put_topic`: a compare-and-set on the version.
    pub(super) async fn write_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        // Topics change seldom: straight on the pool, a compare-and-set on the version.
        let v = serde_json::to_string(&topic.subscribers).map_err(backend)?;
        let done = if topic.version == 0 {
            sqlx::query(&self.q("INSERT INTO kv (cat, k, v, version) VALUES (?, ?, ?, 1)"))
                .bind(TOPICS)
                .bind(&topic.name)
                .bind(&v)
                .execute(&self.pool)
                .await
        } else {
            let sql = "UPDATE kv SET v = ?, version = version + 1 \
                       WHERE cat = ? AND k = ? AND version = ?";
            sqlx::query(&self.q(sql))
                .bind(&v)
                .bind(TOPICS)
                .bind(&topic.name)
                .bind(topic.version)
                .execute(&self.pool)
                .await
        };
        match done {
            Ok(r) => Ok(r.rows_affected() == 1),
            // Created by someone else first.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// `delete_topic`.
    pub(super) async fn remove_topic(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM kv WHERE cat = ? AND k = ?"))
            .bind(TOPICS)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
