//! The deployment files stay true to the apps: every Kubernetes ConfigMap is a config its app
//! accepts, and every Deployment opens, probes and has Prometheus scrape the ports that config
//! listens on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// `deploy/kubernetes/<app>.yaml` as its YAML documents.
fn manifests(app: &str) -> Result<Vec<Value>> {
    let path = root().join(format!("deploy/kubernetes/{app}.yaml"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).context(app.to_owned()))
        .collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// Loads the ConfigMap's `config.yaml` with no environment set, as the pod would.
fn config_map<T: serde::de::DeserializeOwned>(docs: &[Value]) -> Result<T> {
    let text = kind(docs, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .context("data.config.yaml")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, text)?;
    Ok(kit::config::load_with(&file, |_| None)?)
}

/// The Deployment's container ports by name, and the port its probes use.
fn deployment_ports(docs: &[Value]) -> (u16, u16, Vec<String>) {
    let container = &kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let port = |name: &str| {
        container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("container port {name}"))
    };
    let probes = ["startupProbe", "readinessProbe", "livenessProbe"]
        .map(|p| {
            format!(
                "{} {}",
                container[p]["httpGet"]["path"], container[p]["httpGet"]["port"]
            )
        })
        .to_vec();
    (port("http"), port("grpc"), probes)
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

const PROBES: [&str; 3] = ["\"/healthz\" \"http\""; 3];

/// Loads `<app>.yaml`'s ConfigMap as `T` and checks the Deployment's ports against `ports(conf)`
/// and its probes against `/healthz` on the `http` port.
fn check<T: serde::de::DeserializeOwned>(app: &str, ports: impl Fn(&T) -> (u16, u16)) -> Result<T> {
    let docs = manifests(app)?;
    let conf: T = config_map(&docs)?;
    let (http, grpc, probes) = deployment_ports(&docs);
    assert_eq!(
        (http, grpc),
        ports(&conf),
        "{app}: container ports vs config"
    );
    assert_eq!(probes, PROBES, "{app}: probes");
    // Prometheus scrapes the http port, at the path the app serves its metrics on.
    let annotations = &kind(&docs, "Deployment")["spec"]["template"]["metadata"]["annotations"];
    let metrics_path = if app == "coordinator" {
        "/api/metrics"
    } else {
        "/metrics"
    };
    assert_eq!(
        (
            annotations["prometheus.io/scrape"].as_str(),
            annotations["prometheus.io/port"].as_str(),
            annotations["prometheus.io/path"].as_str()
        ),
        (
            Some("true"),
            Some(http.to_string().as_str()),
            Some(metrics_path)
        ),
        "{app}: scrape annotations"
    );
    Ok(conf)
}

/// The ports a service's `server` section listens on.
fn server_ports(s: &kit::ServersConf) -> (u16, u16) {
    (port_of(&s.http.addr), port_of(&s.grpc.addr))
}

#[test]
fn stock_manifest_matches_its_config() -> Result<()> {
    check("stock", |c: &stock::conf::Bootstrap| {
        server_ports(&c.server)
    })?;
    Ok(())
}

#[test]
fn order_manifest_matches_its_config() -> Result<()> {
    let conf = check("order", |c: &order::conf::Bootstrap| {
        server_ports(&c.server)
    })?;
    // Branch URLs name the cluster Services, not localhost.
    assert_eq!(conf.dtm.http, "http://coordinator:36789/api/dtmsvr");
    assert_eq!(conf.dtm.services["stock"].grpc, "stock:9001");
    Ok(())
}

#[test]
fn coordinator_manifest_matches_its_config() -> Result<()> {
    check("coordinator", |c: &coordinator::conf::Bootstrap| {
        (c.http_port, c.grpc_port)
    })?;
    Ok(())
}
