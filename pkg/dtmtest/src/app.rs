//! A service app in a test: its config (the shipped one, servers on `127.0.0.1:0`), its logs,
//! and the app itself running in-process with clients for it.

use std::time::Duration;

use kit::{ServerConf, ServersConf};
use prost_reflect::DescriptorPool;
use tonic::transport::Channel;

use crate::{Target, TestDb};

/// Servers on `127.0.0.1:0`, a 1 KiB body limit (so tests can cross it), short timeouts.
pub fn servers_conf() -> ServersConf {
    servers_conf_with_body(1024)
}

/// The tests' logging: trace context always (propagation is under test too); log lines only
/// when `TEST_LOG` is set, then as text to the test's output. Once per process; later calls do
/// nothing.
pub fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let verbose = std::env::var_os("TEST_LOG").is_some();
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = verbose.then(|| tracing_subscriber::fmt::layer().with_test_writer());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(kit::trace::layer("test"))
        .with(fmt)
        .try_init();
}

/// An app's shipped config — `<manifest_dir>/configs`, every placeholder at its default, the
/// process environment ignored — for a test to change a few fields of (zero2prod's way): tests
/// run the configuration users run, and a new config key needs no test edit.
pub fn shipped_config<T: serde::de::DeserializeOwned>(
    manifest_dir: impl AsRef<std::path::Path>,
) -> T {
    let dir = manifest_dir.as_ref().join("configs");
    kit::config::load_with(&dir, |_| None)
        .unwrap_or_else(|e| panic!("the shipped config in {}: {e}", dir.display()))
}

/// Servers on `127.0.0.1:0` with this body limit.
pub fn servers_conf_with_body(max_body_bytes: usize) -> ServersConf {
    let server = ServerConf::new("127.0.0.1:0", Duration::from_secs(5), max_body_bytes);
    ServersConf {
        http: server.clone(),
        grpc: server,
        shutdown_timeout: Duration::from_secs(1),
    }
}

/// A service app running in-process for a test, and clients for it.
pub struct TestApp {
    /// HTTP base URL, `http://127.0.0.1:port`.
    pub http: String,
    /// gRPC channel.
    pub grpc: Channel,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Its database.
    pub db: TestDb,
    pool: &'static DescriptorPool,
}

impl TestApp {
    /// Builds `app` on `servers` (`127.0.0.1:0`), runs it in the background and connects to it;
    /// `db` is its database, `pool` the descriptors of its protos (`api::descriptor_pool()`).
    pub async fn spawn(
        app: kit::AppBuilder,
        servers: &ServersConf,
        db: TestDb,
        pool: &'static DescriptorPool,
    ) -> TestApp {
        let app = app.build(servers).await.expect("build app");
        let http = format!("http://{}", app.http_addr());
        let grpc = Channel::from_shared(format!("http://{}", app.grpc_addr()))
            .expect("uri")
            .connect_lazy();
        tokio::spawn(app.run_until(std::future::pending()));
        TestApp {
            http,
            grpc,
            client: reqwest::Client::new(),
            db,
            pool,
        }
    }

    /// Where the app listens, for [`crate::call`].
    pub fn target(&self) -> Target<'_> {
        Target {
            client: &self.client,
            http: &self.http,
            grpc: &self.grpc,
            pool: self.pool,
        }
    }
}
