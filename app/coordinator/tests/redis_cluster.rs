//! The Redis store on a real Redis Cluster (`TEST_REDIS_CLUSTER_URL`; deploy/ci/servers.sh starts
//! 3 masters with a replica each): transactions spread over every master, no script crosses a
//! slot (the cluster refuses one that does), and a write waits for its replica when asked. The
//! conformance suite (tests/store.rs) runs on the cluster too.

mod support;

use anyhow::{Context, Result};
use coordinator::biz::{Branch, Global, Status, TransStore, TransType};
use coordinator::conf::Store;
use coordinator::data::open_store;
use kit::time::UnixMs;
use std::sync::Arc;
use std::time::Duration;

/// A store on the test cluster with `setup` applied to its config.
async fn cluster_store(
    setup: impl FnOnce(&mut Store),
) -> Result<Option<(Arc<dyn TransStore>, dtmtest::TestRedis)>> {
    let Some(cluster) = dtmtest::redis_cluster() else {
        return Ok(None);
    };
    let mut conf = Store {
        redis_prefix: cluster.prefix.clone(),
        redis_cluster: true,
        ..Store::new("redis", &cluster.url)
    };
    setup(&mut conf);
    Ok(Some((
        open_store(&conf, Default::default()).await?,
        cluster,
    )))
}

/// A submitted two-branch saga named `gid`.
fn saga(gid: &str) -> (Global, Vec<Branch>) {
    let g = support::global(gid, TransType::Saga, Status::Submitted, 1_000, 1_000);
    let branches = support::saga_branches(gid, 1_000);
    (g, branches)
}

/// The masters of the cluster `seeds` belongs to, as `host:port`.
async fn masters(seeds: &str) -> Result<Vec<String>> {
    let first = seeds.split(',').next().context("a seed")?;
    let mut conn = redis::Client::open(first)?
        .get_multiplexed_async_connection()
        .await?;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await?;
    Ok(nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let master = fields.get(2)?.split(',').any(|f| f == "master");
            let serving = fields.len() > 8; // a master without slots serves nothing
            let addr = fields.get(1)?.split('@').next()?;
            (master && serving).then(|| addr.to_owned())
        })
        .collect())
}

#[tokio::test]
async fn the_keys_of_1000_transactions_spread_over_every_master() -> Result<()> {
    let Some((store, cluster)) = cluster_store(|_| {}).await? else {
        return Ok(());
    };
    for i in 0..1000 {
        let (g, branches) = saga(&format!("spread-{i}"));
        store.create(&g, &branches).await?;
    }
    let masters = masters(&cluster.url).await?;
    assert_eq!(masters.len(), 3, "{masters:?}");
    let mut split = Vec::new();
    for addr in &masters {
        let mut conn = redis::Client::open(format!("redis://{addr}"))?
            .get_multiplexed_async_connection()
            .await?;
        let mut cursor = 0u64;
        let mut globals = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{{{}:*}}_g_*", cluster.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            globals += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        split.push((addr.clone(), globals));
    }
    println!("1,000 transactions over the masters: {split:?}");
    assert_eq!(
        split.iter().map(|(_, n)| n).sum::<usize>(),
        1000,
        "{split:?}"
    );
    assert!(split.iter().all(|(_, n)| *n >= 100), "{split:?}");
    // The poller finds them on every shard.
    let due = store
        .lease_due(UnixMs(i64::MAX / 2), UnixMs(i64::MAX / 2), "me")
        .await?;
    assert!(due.taken().is_some());
    Ok(())
}

/// Redis refuses a script whose keys lie in two slots: what keeps every script of the store
/// atomic on a cluster (each of them names keys of one hash tag only).
#[tokio::test]
async fn the_cluster_refuses_a_script_over_two_slots() -> Result<()> {
    let Some(cluster) = dtmtest::redis_cluster() else {
        return Ok(());
    };
    let nodes: Vec<&str> = cluster.url.split(',').collect();
    let mut conn = redis::cluster::ClusterClient::new(nodes)?
        .get_async_connection()
        .await?;
    let script = redis::Script::new("redis.call('SET', KEYS[1], 1); redis.call('SET', KEYS[2], 1)");
    let p = &cluster.prefix;
    let one_slot: redis::RedisResult<()> = script
        .key(format!("{{{p}:0}}_x"))
        .key(format!("{{{p}:0}}_y"))
        .invoke_async(&mut conn)
        .await;
    one_slot.context("one slot is fine")?;
    let two_slots: redis::RedisResult<()> = script
        .key(format!("{{{p}:0}}_x"))
        .key(format!("{{{p}:1}}_y"))
        .invoke_async(&mut conn)
        .await;
    let err = two_slots.expect_err("two slots are refused");
    // Redis' own CROSSSLOT answer ("Keys in request don't hash to the same slot").
    assert_eq!(
        err.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_write_is_answered_once_its_replica_holds_it_and_refused_when_none_can() -> Result<()> {
    let Some((store, _cluster)) = cluster_store(|c| c.redis_wait_replicas = 1).await? else {
        return Ok(());
    };
    let (g, branches) = saga("waited");
    store.create(&g, &branches).await?;
    assert!(store.find("waited").await?.is_some());

    // Each master has one replica: two can never acknowledge.
    let Some((store, _cluster)) = cluster_store(|c| {
        c.redis_wait_replicas = 2;
        c.redis_wait_timeout = Duration::from_millis(100);
    })
    .await?
    else {
        return Ok(());
    };
    let (g, branches) = saga("unacknowledged");
    let err = store
        .create(&g, &branches)
        .await
        .expect_err("not enough replicas");
    assert!(err.to_string().contains("1 of 2 replicas"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_cluster_with_one_untagged_shard_is_refused_at_start() -> Result<()> {
    let Some(cluster) = dtmtest::redis_cluster() else {
        return Ok(());
    };
    let conf = Store {
        redis_prefix: cluster.prefix.clone(),
        redis_cluster: true,
        redis_shards: 1,
        ..Store::new("redis", &cluster.url)
    };
    let Err(err) = open_store(&conf, Default::default()).await else {
        panic!("a cluster with one untagged shard was accepted");
    };
    assert!(err.to_string().contains("hash tag"), "{err}");
    Ok(())
}
