//! `coordinator`: the bundled DTM-compatible transaction manager. HTTP `/api/dtmsvr/*` on
//! `HttpPort` (36789), gRPC `dtmgimp.Dtm` on `GrpcPort` (36790).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use coordinator::biz::Clock;
use coordinator::conf::Bootstrap;

/// mimalloc: under load the coordinator allocates per request and per branch call, and glibc's
/// allocator took an eighth of its CPU (docs/coordinator.md, Benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line flags (Go-style `-conf` works too).
#[derive(Debug, Parser)]
#[command(
    name = "coordinator",
    version,
    about = "The DTM-compatible coordinator: saga, msg and tcc over HTTP and gRPC"
)]
struct Flags {
    /// Config file or directory.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))]
    conf: PathBuf,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Exit 0 if this URL (a running app's /healthz) answers 200, else 1: the container
    /// healthcheck, as the image has no curl.
    #[arg(long, value_name = "URL")]
    probe: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse_from(kit::flags::args());
    if let Some(url) = &flags.probe {
        kit::probe::probe(url, std::time::Duration::from_secs(3)).await?;
        return Ok(());
    }
    kit::log::init(flags.log_json);
    let conf: Bootstrap = kit::config::load(&flags.conf)
        .with_context(|| format!("loading {}", flags.conf.display()))?;
    let c = coordinator::wire(&conf, Clock::default()).await?;
    // The poller picks up whatever is unfinished, including what a previous run left.
    let poller = c.usecase.spawn_poller();
    let result = c.app.run().await;
    poller.abort();
    result?;
    Ok(())
}
