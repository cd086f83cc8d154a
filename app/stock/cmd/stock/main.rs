//! `stock`: the stock service binary. The wiring, in kratos order, is [`stock::wire`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = kit::flags::Binary {
        name: "stock",
        version: env!("CARGO_PKG_VERSION"),
        about: "The stock service: DTM branches over HTTP and gRPC",
        default_conf: concat!(env!("CARGO_MANIFEST_DIR"), "/configs"),
    };
    let Some(conf) = kit::flags::start::<stock::conf::Bootstrap>(binary).await? else {
        return Ok(()); // --probe answered
    };
    let app = stock::wire(&conf).await?.build(&conf.server).await?;
    let result = app.run().await;
    kit::trace::shutdown().await; // export the spans still buffered
    Ok(result?)
}
