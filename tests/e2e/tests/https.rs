//! https branches: a coordinator calls a branch served over TLS with a certificate made at test
//! time, trusting it through `Hardening.BranchCaFile`; without that file the same call fails
//! the TLS handshake and the saga does not go through.

use std::sync::{Arc, Mutex};

use dtmcli::{ClientError, Dtm, Saga};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A branch over TLS on 127.0.0.1:0 answering SUCCESS and counting the requests that reached it;
/// its certificate's PEM (self-signed, for 127.0.0.1).
async fn tls_branch(calls: Arc<Mutex<Vec<String>>>) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    let cert_pem = certified.cert.pem();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let tls = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = axum::Router::new().route(
        "/branch",
        axum::routing::post(move |uri: axum::http::Uri| {
            let calls = calls.clone();
            async move {
                calls.lock().expect("calls").push(uri.to_string());
                axum::Json(serde_json::json!({"dtm_result": "SUCCESS"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}/branch", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, cert_pem)
}

/// A coordinator on a fresh SQLite store, trusting `ca_file` for https branches if given.
async fn coordinator(dir: &tempfile::TempDir, name: &str, ca_file: &str) -> Dtm {
    let store = coordinator::conf::Store::new(
        "sqlite",
        &format!("sqlite://{}/{name}.db", dir.path().display()),
    );
    let mut conf = e2e::coordinator_conf(store);
    conf.hardening.branch_ca_file = ca_file.to_owned();
    let c = e2e::coordinator_app(&conf, Default::default()).await;
    let http = format!("http://{}/api/dtmsvr", c.http_addr());
    tokio::spawn(c.run_until(std::future::pending()));
    Dtm::http(&http)
}

#[tokio::test]
async fn https_branches_are_called_with_the_configured_ca_and_refused_without_it() {
    dtmtest::init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (url, cert_pem) = tls_branch(calls.clone()).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &cert_pem).expect("ca file");

    let trusting = coordinator(&dir, "trusting", &ca_file.display().to_string()).await;
    Saga::new(&trusting, "https-ok")
        .add(&url, "", "{}")
        .wait_result(true)
        .submit()
        .await
        .expect("the saga over https succeeds");
    let seen = calls.lock().expect("calls").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("gid=https-ok"), "{seen:?}");

    // The system's roots do not know this certificate: the handshake fails, the call is an
    // error (retried later), and the saga is not finished.
    let plain = coordinator(&dir, "plain", "").await;
    let r = Saga::new(&plain, "https-untrusted")
        .add(&url, "", "{}")
        .wait_result(true)
        .submit()
        .await;
    assert!(matches!(r, Err(ClientError::Ongoing(_))), "{r:?}");
    assert_eq!(
        calls.lock().expect("calls").len(),
        1,
        "no request got through"
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_config_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("empty.pem");
    std::fs::write(&file, "not a certificate").expect("write");
    let hardening = coordinator::conf::Hardening {
        branch_ca_file: file.display().to_string(),
        ..Default::default()
    };
    let err = coordinator::data::reach::reach(&hardening).expect_err("no certificate");
    assert!(err.contains("BranchCaFile"), "{err}");
    let missing = coordinator::conf::Hardening {
        branch_ca_file: dir.path().join("missing.pem").display().to_string(),
        ..Default::default()
    };
    assert!(coordinator::data::reach::reach(&missing).is_err());
}
