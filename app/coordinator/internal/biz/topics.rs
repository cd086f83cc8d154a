//! Topics (DTM's `topics.go`): a msg action `topic://<name>` is sent to every URL subscribed to
//! the topic when the msg arrives. Subscribers are kept in the store, one versioned record per
//! topic, so that every instance sharing the store sees them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::biz::caller::check_target;
use crate::biz::{
    BranchCaller, NewTrans, Op, Subscriber, Topic, TransError, TransStore, TransType,
};

/// A msg action naming a topic: `topic://<name>`.
pub(crate) const TOPIC_PREFIX: &str = "topic://";

/// The topic operations (DTM's `subscribe`, `unsubscribe`, `deleteTopic`). Cheap to clone.
#[derive(Clone)]
pub struct TopicUsecase {
    store: Arc<dyn TransStore>,
    caller: Arc<dyn BranchCaller>,
}

impl TopicUsecase {
    /// Topics kept in `store`; a subscriber's URL must be one `caller` can call.
    pub fn new(store: Arc<dyn TransStore>, caller: Arc<dyn BranchCaller>) -> TopicUsecase {
        TopicUsecase { store, caller }
    }

    /// `subscribe`: `url` receives every msg sent to `topic` (DTM: the topic is created by its
    /// first subscriber; the same URL twice is refused).
    pub async fn subscribe(&self, topic: &str, url: &str, remark: &str) -> Result<(), TransError> {
        if topic.is_empty() || url.is_empty() {
            return Err(TransError::BadRequest("topic and url are required".into()));
        }
        // A subscriber is called with the protocol of each msg: its URL must be callable.
        check_target(&*self.caller, "grpc", url)?;
        self.change_topic(topic, |subscribers| {
            if subscribers.iter().any(|s| s.url == url) {
                return Err(TransError::BadRequest(format!(
                    "{url} already subscribes to {topic}"
                )));
            }
            subscribers.push(Subscriber {
                url: url.to_owned(),
                remark: remark.to_owned(),
            });
            Ok(())
        })
        .await
    }

    /// `unsubscribe`: `url` no longer receives `topic`.
    pub async fn unsubscribe(&self, topic: &str, url: &str) -> Result<(), TransError> {
        if topic.is_empty() || url.is_empty() {
            return Err(TransError::BadRequest("topic and url are required".into()));
        }
        self.change_topic(topic, |subscribers| {
            let before = subscribers.len();
            subscribers.retain(|s| s.url != url);
            if subscribers.len() == before {
                return Err(TransError::NotFound(format!(
                    "{url} does not subscribe to {topic}"
                )));
            }
            Ok(())
        })
        .await
    }

    /// `deleteTopic`.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransError> {
        if self.store.delete_topic(topic).await? {
            Ok(())
        } else {
            Err(TransError::NotFound(format!("no topic {topic}")))
        }
    }

    /// Applies `change` to a topic's subscribers and writes them back, compare-and-set on the
    /// topic's version (another instance may be changing it too): read, change, write, again
    /// if it moved meanwhile.
    async fn change_topic(
        &self,
        name: &str,
        change: impl Fn(&mut Vec<Subscriber>) -> Result<(), TransError>,
    ) -> Result<(), TransError> {
        for _ in 0..16 {
            let mut topic = self.store.topic(name).await?.unwrap_or_else(|| Topic {
                name: name.to_owned(),
                ..Topic::default()
            });
            change(&mut topic.subscribers)?;
            if self.store.put_topic(&topic).await? {
                return Ok(());
            }
        }
        Err(TransError::Ongoing(format!(
            "topic {name} keeps changing; try again"
        )))
    }
}

/// The subscribers of every `topic://<name>` a msg's actions name, read now.
pub(crate) async fn subscribers(
    store: &dyn TransStore,
    t: &NewTrans,
) -> Result<BTreeMap<String, Vec<String>>, TransError> {
    let mut topics = BTreeMap::new();
    if t.trans_type != Some(TransType::Msg) {
        return Ok(topics);
    }
    for step in &t.steps {
        let action = step.get(Op::Action.as_str()).map_or("", String::as_str);
        if let Some(name) = action.strip_prefix(TOPIC_PREFIX) {
            let urls = match store.topic(name).await? {
                Some(topic) => topic.subscribers.into_iter().map(|s| s.url).collect(),
                None => Vec::new(),
            };
            topics.insert(name.to_owned(), urls);
        }
    }
    Ok(topics)
}
