//! `order`: the order service binary. The wiring, in kratos order, is [`order::wire`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = kit::flags::Binary {
        name: "order",
        version: env!("CARGO_PKG_VERSION"),
        about: "The order service: DTM branches and PlaceOrder over HTTP and gRPC",
        default_conf: concat!(env!("CARGO_MANIFEST_DIR"), "/configs"),
    };
    let Some(conf) = kit::flags::start::<order::conf::Bootstrap>(binary).await? else {
        return Ok(()); // --probe answered
    };
    let app = order::wire(&conf).await?.build(&conf.server).await?;
    let result = app.run().await;
    kit::trace::shutdown().await; // export the spans still buffered
    Ok(result?)
}
