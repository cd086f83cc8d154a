//! `coordinator`: the bundled DTM-compatible transaction manager. HTTP `/api/dtmsvr/*` on
//! `HttpPort` (36789), gRPC `dtmgimp.Dtm` on `GrpcPort` (36790).

/// mimalloc: under load the coordinator allocates per request and per branch call, and glibc's
/// allocator took an eighth of its CPU (docs/coordinator.md, Benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = kit::flags::Binary {
        name: "coordinator",
        version: env!("CARGO_PKG_VERSION"),
        about: "The DTM-compatible coordinator: DTM's API over HTTP and gRPC",
        default_conf: concat!(env!("CARGO_MANIFEST_DIR"), "/configs"),
    };
    let Some(conf) = kit::flags::start::<coordinator::conf::Bootstrap>(binary).await? else {
        return Ok(()); // --probe answered
    };
    let app = coordinator::wire(&conf, Default::default()).await?;
    let result = app.build(&conf.servers()).await?.run().await;
    kit::trace::shutdown().await; // export the spans still buffered
    Ok(result?)
}
