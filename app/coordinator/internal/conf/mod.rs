//! The config schema. Keys keep DTM's names (docs/dtm-protocol.md, Storage) so DTM users feel at
//! home; the shipped file maps each to DTM's environment variable (`STORE_DRIVER`, `HTTP_PORT`,
//! `RETRY_INTERVAL`…). Durations take a bare number of seconds, as DTM's do, or a unit (`500ms`,
//! `2m`).

use std::time::Duration;

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Bootstrap {
    /// Where transactions are kept.
    pub store: Store,
    /// How long the poller sleeps when nothing is due (DTM: 3 s).
    #[serde(deserialize_with = "kit::config::duration")]
    pub trans_cron_interval: Duration,
    /// Default timeout of every transaction type but a saga, which has none unless it asks
    /// (DTM: 35 s).
    #[serde(deserialize_with = "kit::config::duration")]
    pub timeout_to_fail: Duration,
    /// Base retry interval (DTM: 10 s).
    #[serde(deserialize_with = "kit::config::duration")]
    pub retry_interval: Duration,
    /// Cap of the doubling back-off (ours; DTM's back-off is unbounded).
    #[serde(deserialize_with = "kit::config::duration")]
    pub retry_max_interval: Duration,
    /// Default time a branch call may take (DTM: 3 s).
    #[serde(deserialize_with = "kit::config::duration")]
    pub request_timeout: Duration,
    /// The most branch calls one transaction makes at once, e.g. a concurrent saga's ready
    /// actions (ours; DTM calls them all at once).
    #[serde(default = "default_branch_concurrency")]
    pub branch_concurrency: usize,
    /// HTTP API port (DTM: 36789).
    pub http_port: u16,
    /// gRPC API port (DTM: 36790).
    pub grpc_port: u16,
    /// The address both servers listen on (ours; DTM listens on every interface).
    #[serde(default = "default_listen_ip")]
    pub listen_ip: String,
    /// How long one API request may take, a `wait_result` submit included (ours).
    #[serde(
        default = "default_server_timeout",
        deserialize_with = "kit::config::duration"
    )]
    pub server_timeout: Duration,
    /// Largest request body / message accepted, bytes (ours).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A connection (HTTP or gRPC) without a request in flight this long is closed (ours).
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "kit::config::duration"
    )]
    pub idle_timeout: Duration,
    /// Connections served at once per listener; the longest-idle one makes room for a new
    /// one. Keep it below the file descriptor limit (ours).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Limits for a coordinator exposed to clients it does not fully trust (all off by default).
    #[serde(default)]
    pub hardening: Hardening,
    /// Registration in etcd and the registry of `discovery:///` branch URLs.
    #[serde(default)]
    pub micro_service: MicroService,
}

/// `Store`: the transaction store.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Store {
    /// `sqlite`, `postgres`, `mysql` or `redis`.
    pub driver: String,
    /// Connection URL, e.g. `sqlite://data/dtm.db`, `redis://127.0.0.1:6379/0`.
    pub source: String,
    /// Pool size (SQL stores).
    #[serde(default = "default_max_open_conns")]
    pub max_open_conns: u32,
    /// Ours: how long start-up waits for a store server that is not reachable yet (0: one try).
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "kit::config::duration"
    )]
    pub connect_timeout: Duration,
    /// Prefix of every Redis key. DTM's default `{a}` is a hash tag: all keys in one cluster
    /// slot, so one Lua script may touch any of them.
    #[serde(default = "default_redis_prefix")]
    pub redis_prefix: String,
    /// Redis: `Source` is a Redis Cluster (`redis://host:port`, several seed nodes separated by
    /// commas), reached through the redis crate's cluster client.
    #[serde(default)]
    pub redis_cluster: bool,
    /// Redis: how many shards the transactions are spread over, each its own hash tag (0: one
    /// on a single node, 16 on a cluster). Fixed for the life of the data.
    #[serde(default)]
    pub redis_shards: u32,
    /// Redis: answer a write only once this many replicas hold it (`WAIT`; 0: do not wait).
    #[serde(default)]
    pub redis_wait_replicas: u32,
    /// Redis: how long a write waits for `RedisWaitReplicas` before it fails.
    #[serde(
        default = "default_redis_wait_timeout",
        deserialize_with = "kit::config::duration"
    )]
    pub redis_wait_timeout: Duration,
    /// How long Redis keeps a finished transaction (DTM: 1 day); SQL stores keep every row.
    #[serde(
        default = "default_finished_data_expire",
        deserialize_with = "kit::config::duration"
    )]
    pub finished_data_expire: Duration,
    /// SQLite: `normal` (a committed write survives a crash of the coordinator; WAL's fsync at
    /// each checkpoint) or `full` (an fsync at every commit: it survives a power loss too).
    /// PostgreSQL and MySQL follow their servers' own settings.
    #[serde(default)]
    pub synchronous: Synchronous,
}

/// `Store.Synchronous`: when SQLite makes a commit durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// At each WAL checkpoint: a commit survives the process, not the machine.
    #[default]
    Normal,
    /// At every commit (one fsync per group commit).
    Full,
}

impl Store {
    /// `driver` at `source`, everything else at its default.
    pub fn new(driver: &str, source: &str) -> Store {
        Store {
            driver: driver.into(),
            source: source.into(),
            max_open_conns: default_max_open_conns(),
            connect_timeout: default_connect_timeout(),
            redis_prefix: default_redis_prefix(),
            redis_cluster: false,
            redis_shards: 0,
            redis_wait_replicas: 0,
            redis_wait_timeout: default_redis_wait_timeout(),
            finished_data_expire: default_finished_data_expire(),
            synchronous: Synchronous::default(),
        }
    }
}

/// `Hardening` (ours; every default is DTM's behaviour): where branch calls may go, and who may
/// use the admin routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct Hardening {
    /// Follow HTTP redirects of branch calls (DTM does); `false`: a redirect is retried as an
    /// error.
    pub follow_redirects: bool,
    /// Only these networks may be called, comma-separated CIDRs (`10.1.0.0/16, 127.0.0.1`);
    /// empty: any.
    pub branch_networks: String,
    /// Refuse private, link-local (cloud metadata), shared and unspecified addresses.
    pub refuse_private_networks: bool,
    /// When set, `Authorization: Bearer <token>` is required on the admin routes (`query`, `all`,
    /// `forceStop`, `resetCronTime`, `resetNextCronTime`).
    pub api_token: String,
    /// Show `branch_headers` values as `***` in `query` and `all`.
    pub redact_branch_headers: bool,
    /// A PEM file of CA certificates trusted for `https://` branches besides the system's
    /// roots (a private CA); empty: the system's only.
    pub branch_ca_file: String,
}

impl Default for Hardening {
    fn default() -> Self {
        Hardening {
            follow_redirects: true,
            branch_networks: String::new(),
            refuse_private_networks: false,
            api_token: String::new(),
            redact_branch_headers: false,
            branch_ca_file: String::new(),
        }
    }
}

/// `MicroService`: DTM's driver, registry target and the endpoint to publish.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MicroService {
    /// `default`: plain `host:port` gRPC targets, no registry; `dtm-driver-gozero` or
    /// `dtm-driver-kratos`: etcd, as `Target` says.
    pub driver: String,
    /// Registry URL (with a registry driver): `etcd://host:2379/dtmservice`.
    #[serde(default)]
    pub target: String,
    /// The endpoint registered (with a registry driver); default: the gRPC listen address.
    #[serde(default)]
    pub end_point: String,
}

impl Default for MicroService {
    fn default() -> Self {
        MicroService {
            driver: "default".into(),
            target: String::new(),
            end_point: String::new(),
        }
    }
}

impl Bootstrap {
    /// The two servers, on `ListenIp:HttpPort` and `ListenIp:GrpcPort`.
    pub fn servers(&self) -> kit::ServersConf {
        let server = |port: u16| kit::ServerConf {
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            ..kit::ServerConf::new(
                format!("{}:{port}", self.listen_ip),
                self.server_timeout,
                self.max_body_bytes,
            )
        };
        kit::ServersConf {
            http: server(self.http_port),
            grpc: server(self.grpc_port),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

fn default_listen_ip() -> String {
    "0.0.0.0".into()
}
fn default_server_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    512
}
fn default_branch_concurrency() -> usize {
    64
}
fn default_max_body_bytes() -> usize {
    1 << 20
}
fn default_max_open_conns() -> u32 {
    8
}
fn default_redis_prefix() -> String {
    "{a}".into()
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_redis_wait_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_finished_data_expire() -> Duration {
    Duration::from_secs(24 * 3600)
}
