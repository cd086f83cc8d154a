//! OTLP export, end to end: a coordinator process with `OTEL_EXPORTER_OTLP_ENDPOINT` set sends
//! its spans to a collector (here a recording one on 127.0.0.1:0): the submit's server span and
//! the round's, in the caller's trace, under the configured service name.

use std::sync::{Arc, Mutex};

use dtmcli::{Dtm, Saga};
use dtmtest::Process;
use dtmtest::script::ScriptServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tracing::Instrument;

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../app/coordinator/configs");
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// A collector that keeps every export.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("collector").push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

// Multi-threaded: the collector must answer while this test waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_exports_its_spans_in_the_callers_trace() {
    dtmtest::init_logs();
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);

    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}/dtm.db", dir.path().display());
    let mut coordinator = Process::start_with(
        env!("CARGO_BIN_EXE_e2e-coordinator"),
        CONF,
        &[
            ("STORE_DRIVER", "sqlite"),
            ("STORE_SOURCE", &store),
            ("HTTP_PORT", "0"),
            ("GRPC_PORT", "0"),
            ("LISTEN_IP", "127.0.0.1"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "dtm-under-test"),
        ],
    );
    let branches = ScriptServer::start().await;
    let caller = kit::trace::span_from(
        tracing::info_span!("caller", trace_id = tracing::field::Empty),
        &format!("00-{TRACE_ID}-b7ad6b7169203331-01"),
    );
    Saga::new(
        &Dtm::http(&format!("{}/api/dtmsvr", coordinator.http)),
        "otlp-saga",
    )
    .add(
        &branches.url("http", "a"),
        &branches.url("http", "a-undo"),
        "{}",
    )
    .wait_result(true)
    .submit()
    .instrument(caller)
    .await
    .expect("saga");
    // SIGTERM: the coordinator flushes what its batch exporter still holds before it exits.
    assert!(coordinator.terminate().success());

    let exports = collector.0.lock().expect("collector").clone();
    let spans: Vec<_> = exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|rs| {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{v:?}"));
            rs.scope_spans
                .iter()
                .flat_map(|ss| &ss.spans)
                .map(move |s| (service.clone(), s))
        })
        .collect();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|(_, s)| hex(&s.trace_id) == TRACE_ID)
        .collect();
    let names: Vec<&str> = in_trace.iter().map(|(_, s)| s.name.as_str()).collect();
    assert!(names.contains(&"/api/dtmsvr/submit"), "{names:?}");
    assert!(names.contains(&"round"), "{names:?}");
    assert!(
        in_trace.iter().all(|(service, _)| service
            .as_deref()
            .is_some_and(|s| s.contains("dtm-under-test"))),
        "{in_trace:?}"
    );
    let round = in_trace
        .iter()
        .find(|(_, s)| s.name == "round")
        .map(|(_, s)| s)
        .expect("round span");
    let gid = round
        .attributes
        .iter()
        .find(|a| a.key == "gid")
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{v:?}"));
    assert!(gid.is_some_and(|g| g.contains("otlp-saga")), "{round:?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
