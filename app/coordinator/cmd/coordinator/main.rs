//! `coordinator`: the bundled DTM-compatible transaction manager. HTTP `/api/dtmsvr/*` on
//! `HttpPort` (36789), gRPC `dtmgimp.Dtm` on `GrpcPort` (36790).

use coordinator::biz::Clock;

/// mimalloc: under load the coordinator allocates per request and per branch call, and glibc's
/// allocator took an eighth of its CPU (docs/coordinator.md, Benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = kit::flags::Binary {
        name: "coordinator",
        version: env!("CARGO_PKG_VERSION"),
        about: "The DTM-compatible coordinator: saga, msg, tcc and xa over HTTP and gRPC",
        default_conf: concat!(env!("CARGO_MANIFEST_DIR"), "/configs"),
    };
    let Some(conf) = kit::flags::start::<coordinator::conf::Bootstrap>(binary).await? else {
        return Ok(()); // --probe answered
    };
    let c = coordinator::wire(&conf, Clock::default()).await?;
    let result = c.app.run().await;
    // SQLite: the data into the database file itself, so that the file alone is a backup.
    if let Err(e) = c.usecase.close().await {
        tracing::warn!(error = %e, "closing the store");
    }
    kit::trace::shutdown().await; // export the spans still buffered
    Ok(result?)
}
