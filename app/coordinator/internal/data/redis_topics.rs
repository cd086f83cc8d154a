//! Msg topics in the Redis store: one hash under the prefix (`<p>_kv_topics`, one slot), name →
//! subscribers and version as JSON.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::redis_conn::write_cmd;
use super::redis_rows::backend;
use super::redis_store::RedisStore;
use crate::biz::{StoreError, Topic};

/// A KV entry as the Redis store keeps it (a field of `<p>_kv_<cat>`).
#[derive(Serialize, Deserialize)]
struct StoredKv {
    v: String,
    version: i64,
}

impl RedisStore {
    pub(super) async fn get_topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        let stored: Option<String> = self
            .conn
            .clone()
            .hget(self.keys.global("kv_topics"), name)
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

    pub(super) async fn write_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        static SCRIPT: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!("lua/put_kv.lua")));
        let v = serde_json::to_string(&topic.subscribers).map_err(backend)?;
        let mut inv = SCRIPT.prepare_invoke();
        inv.key(self.keys.global("kv_topics"))
            .arg(&topic.name)
            .arg(topic.version)
            .arg(v);
        Ok(self.write::<i64>(&inv).await? == 1)
    }

    pub(super) async fn remove_topic(&self, name: &str) -> Result<bool, StoreError> {
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(self.keys.global("kv_topics")).arg(name);
        let removed: i64 = write_cmd(&self.conn, &hdel, self.wait).await?;
        Ok(removed > 0)
    }
}
