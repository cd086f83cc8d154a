//! `order`: the order service binary. Wiring in kratos order: data → repo → usecase → service →
//! servers → app.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use kit::App;
use order::biz::OrderUsecase;
use order::conf::Bootstrap;
use order::data::{Data, DtmTransactions, OrderRepoImpl};
use order::server::{new_grpc_server, new_http_server};
use order::service::OrderService;

/// Command-line flags (Go-style `-conf` works too).
#[derive(Debug, Parser)]
#[command(
    name = "order",
    version,
    about = "The order service: DTM branches and PlaceOrder over HTTP and gRPC"
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

    let data = Data::new(&conf.data.database).await?;
    let repo = OrderRepoImpl::new(data);
    let tx = DtmTransactions::new(&conf.dtm, conf.registry.resolver()?)?;
    let uc = OrderUsecase::new(repo, tx, conf.order.max_quantity);
    let svc = Arc::new(OrderService::new(uc));
    let app = App::builder("order")
        .http(new_http_server(svc.clone()))
        .grpc(new_grpc_server(&conf.server, svc))
        .reflection(api::FILE_DESCRIPTOR_SET)
        .registrar(conf.registry.registrar()?, conf.registry.host())
        .build(&conf.server)
        .await?;
    app.run().await?;
    Ok(())
}
