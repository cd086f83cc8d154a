//! A Redis Cluster of a test's own — 3 masters, 3 replicas, on free loopback ports — for tests
//! that kill its nodes (the shared one of deploy/ci/servers.sh must stay whole for the others).
//! It needs `redis-server` and `redis-cli` (Debian's redis-server and redis-tools): without them
//! it is a printed skip, or a failure with `CI=true`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::eventually_within;

/// The cluster; its processes are killed on drop.
pub struct OwnCluster {
    nodes: Vec<(u16, Child)>,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    /// Starts 6 nodes, joins them into 3 masters with a replica each and waits until every slot
    /// is served and every replica is in sync; `None` (a printed skip) without the binaries.
    pub async fn start() -> Option<OwnCluster> {
        let have = |bin: &str| {
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !(have("redis-server") && have("redis-cli")) {
            return crate::missing(
                "a Redis Cluster of the test's own: redis-server and redis-cli are not installed \
                 (deploy/ci/servers.sh installs them)",
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes = (free_ports(6).into_iter())
            .map(|port| (port, node(dir.path(), port)))
            .collect();
        let cluster = OwnCluster { nodes, _dir: dir };
        for (port, _) in &cluster.nodes {
            let port = *port;
            eventually_within("a node answers", Duration::from_secs(10), async || {
                cli(port, &["ping"]).is_some_and(|r| r.trim() == "PONG")
            })
            .await;
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_healthy().await;
        let ports: Vec<u16> = cluster.nodes.iter().map(|(p, _)| *p).collect();
        cluster.wait_replicas(&ports).await;
        Some(cluster)
    }

    /// Starts the node on `port` again, as an operator would after a crash: it reads its
    /// `nodes.conf` and rejoins, as a replica of whichever master took its place.
    pub async fn restart(&mut self, port: u16) {
        let dir = self._dir.path().to_owned();
        let (_, child) = (self.nodes.iter_mut())
            .find(|(p, _)| *p == port)
            .expect("a node of this cluster");
        *child = node(&dir, port);
        let ports: Vec<u16> = self.nodes.iter().map(|(p, _)| *p).collect();
        self.wait_healthy().await;
        self.wait_replicas(&ports).await;
    }

    /// Waits until 3 of `ports` are replicas in sync with their masters, and the masters see
    /// them online.
    async fn wait_replicas(&self, ports: &[u16]) {
        eventually_within("3 replicas in sync", Duration::from_secs(30), async || {
            let synced = ports.iter().filter(|p| {
                cli(**p, &["info", "replication"]).is_some_and(|i| {
                    i.contains("role:slave") && i.contains("master_link_status:up")
                })
            });
            // …and each master sees its replica online (it streams writes to it).
            let online = ports.iter().filter(|p| {
                cli(**p, &["info", "replication"])
                    .is_some_and(|i| i.contains("role:master") && i.contains("state=online"))
            });
            synced.count() == 3 && online.count() == 3
        })
        .await;
    }

    /// `redis://…` of every node, separated by commas (`Store.Source` of a cluster).
    pub fn url(&self) -> String {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|(p, _)| format!("redis://127.0.0.1:{p}"))
            .collect();
        urls.join(",")
    }

    /// The ports of the masters now serving slots.
    pub fn masters(&self) -> Vec<u16> {
        let alive = self
            .nodes
            .iter()
            .map(|(p, _)| *p)
            .find(|p| cli(*p, &["ping"]).is_some());
        let nodes = alive
            .and_then(|p| cli(p, &["cluster", "nodes"]))
            .unwrap_or_default();
        nodes
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let flags = f.get(2)?;
                let serving = flags.split(',').any(|x| x == "master")
                    && !flags.contains("fail")
                    && f.len() > 8;
                let port = f.get(1)?.split('@').next()?.rsplit(':').next()?;
                serving.then(|| port.parse().ok()).flatten()
            })
            .collect()
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let (_, child) = self
            .nodes
            .iter_mut()
            .find(|(p, _)| *p == port)
            .expect("a node of this cluster");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Waits until the cluster serves every slot with three masters.
    pub async fn wait_healthy(&self) {
        let first = self.nodes.iter().map(|(p, _)| *p).collect::<Vec<_>>();
        eventually_within(
            "the cluster serves every slot with 3 masters",
            Duration::from_secs(30),
            async || {
                let ok = first.iter().any(|p| {
                    cli(*p, &["cluster", "info"]).is_some_and(|i| i.contains("cluster_state:ok"))
                });
                ok && self.masters().len() == 3
            },
        )
        .await;
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A cluster node on `port`, its files in `dir/<port>`; no persistence but `nodes.conf`.
fn node(dir: &std::path::Path, port: u16) -> Child {
    let node_dir = dir.join(port.to_string());
    std::fs::create_dir_all(&node_dir).expect("node dir");
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
        .args(["--save", "", "--appendonly", "no", "--logfile", "redis.log"])
        .arg("--dir")
        .arg(&node_dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server")
}

/// `redis-cli -p port args…`'s output, if it ran.
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        .filter(|s| !s.starts_with("Could not connect"))
}

/// `n` ports whose cluster bus port (+10000) is free too, both below Linux's ephemeral range
/// (32768+) so that no outgoing connection takes one meanwhile.
/// One cursor per process, so that two clusters of one test binary never pick the same ports.
fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: std::sync::Mutex<u16> = std::sync::Mutex::new(0);
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut next = NEXT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *next == 0 {
        *next = 12_000 + (std::process::id() % 8_000) as u16;
    }
    let mut out = Vec::new();
    while out.len() < n {
        *next = if *next >= 22_000 { 12_000 } else { *next + 1 };
        if free(*next) && free(*next + 10_000) {
            out.push(*next);
        }
    }
    out
}
