//! A small etcd v3 client: the KV and Lease calls a registry needs, over tonic with the vendored
//! protos (`third_party/etcd`). Cheap to clone; connects lazily, balancing over the endpoints.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::Error;

#[allow(missing_docs, clippy::all)]
mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;

/// How long one etcd call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to an etcd cluster.
#[derive(Clone, Debug)]
pub struct Etcd {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
}

impl Etcd {
    /// A client of the cluster at `endpoints` (`host:port`, or with `http://`).
    pub fn connect(endpoints: &[String]) -> Result<Etcd, Error> {
        if endpoints.is_empty() {
            return Err(Error::BadTarget("no etcd endpoints".into()));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| {
                let url = if e.contains("://") {
                    e.clone()
                } else {
                    format!("http://{e}")
                };
                Endpoint::from_shared(url)
                    .map(|e| e.connect_timeout(CALL_TIMEOUT).timeout(CALL_TIMEOUT))
                    .map_err(|err| Error::BadTarget(format!("etcd endpoint {e:?}: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channel = Channel::balance_list(endpoints.into_iter());
        Ok(Etcd {
            kv: KvClient::new(channel.clone()),
            lease: LeaseClient::new(channel),
        })
    }

    /// Every key starting with `prefix`, with its value.
    pub async fn prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let res = self
            .kv
            .clone()
            .range(pb::RangeRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: prefix_end(prefix.as_bytes()),
                limit: 0,
            })
            .await?;
        Ok(res
            .into_inner()
            .kvs
            .into_iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
            .collect())
    }

    /// Sets `key` to `value`, attached to `lease` (0: none).
    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<(), Error> {
        self.kv
            .clone()
            .put(pb::PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.to_vec(),
                lease,
            })
            .await?;
        Ok(())
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.kv
            .clone()
            .delete_range(pb::DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
                range_end: Vec::new(),
            })
            .await?;
        Ok(())
    }

    /// A new lease of `ttl` (whole seconds, at least 1); its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, Error> {
        let res = self
            .lease
            .clone()
            .lease_grant(pb::LeaseGrantRequest {
                ttl: ttl.as_secs().max(1) as i64,
                id: 0,
            })
            .await?
            .into_inner();
        if !res.error.is_empty() {
            return Err(Error::Etcd(res.error));
        }
        Ok(res.id)
    }

    /// Renews lease `id` once; `false` if it is gone (expired or revoked).
    pub async fn keep_alive(&self, id: i64) -> Result<bool, Error> {
        // One request on the bidirectional stream, one answer: simple, and enough at TTL/3.
        let request = tokio_stream::iter([pb::LeaseKeepAliveRequest { id }]);
        let mut answers = self
            .lease
            .clone()
            .lease_keep_alive(request)
            .await?
            .into_inner();
        match answers.message().await? {
            Some(answer) => Ok(answer.ttl > 0),
            None => Err(Error::Etcd("keep-alive stream closed".into())),
        }
    }

    /// Ends lease `id` and deletes its keys.
    pub async fn revoke(&self, id: i64) -> Result<(), Error> {
        self.lease
            .clone()
            .lease_revoke(pb::LeaseRevokeRequest { id })
            .await?;
        Ok(())
    }
}

/// The end of etcd's range for "every key starting with `prefix`": the prefix with its last byte
/// incremented (bytes 0xff are dropped first).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(
            prefix_end(b"/microservices/stock/"),
            b"/microservices/stock0"
        );
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
