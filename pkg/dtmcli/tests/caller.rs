//! The branch caller under hostile branches (loopback only): an endless answer is read up to a
//! small cap, and a branch that never answers is given up on at the call's timeout (a registered
//! name without instances: tests/e2e/tests/discovery.rs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dtmcli::DtmResult;
use dtmcli::caller::{CallError, CallRequest, Caller, MAX_REPLY_BODY};
use dtmtest::{branch, eventually};

/// Sets its flag when dropped: the server's body stream was abandoned.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn request<'a>(
    url: &'a str,
    protocol: &'a str,
    info: &'a dtmcli::BranchInfo,
    headers: &'a BTreeMap<String, String>,
    timeout: Duration,
) -> CallRequest<'a> {
    CallRequest {
        url,
        protocol,
        body: b"{}",
        info,
        headers,
        timeout,
        op_name: None,
    }
}

#[tokio::test]
async fn an_endless_http_or_json_rpc_answer_is_read_up_to_the_cap() {
    // 200 with a body of 1 GiB, produced lazily, counting what the socket accepted.
    let sent = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let (s, d) = (sent.clone(), dropped.clone());
    let app = axum::Router::new().route(
        "/huge",
        axum::routing::post(move || {
            let (sent, guard) = (s.clone(), Dropped(d.clone()));
            async move {
                let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
                let stream = futures_util::stream::unfold(0usize, move |n| {
                    let (chunk, sent) = (chunk.clone(), sent.clone());
                    let _keep = &guard;
                    async move {
                        (n < 16 * 1024).then(|| {
                            sent.fetch_add(chunk.len(), Ordering::SeqCst);
                            (Ok::<_, std::io::Error>(chunk), n + 1)
                        })
                    }
                });
                axum::body::Body::from_stream(stream)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/huge", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Plain HTTP, and the same answer to a JSON-RPC call (read through the same cap).
    let (info, headers) = (branch("saga", "action"), BTreeMap::new());
    for (url, protocol) in [
        (url.clone(), "http"),
        (format!("{url}?method=M"), "json-rpc"),
    ] {
        sent.store(0, Ordering::SeqCst);
        dropped.store(false, Ordering::SeqCst);
        let reply = Caller::new()
            .call(&request(
                &url,
                protocol,
                &info,
                &headers,
                Duration::from_secs(30),
            ))
            .await
            .expect("a 200 is SUCCESS");
        assert_eq!(reply.result, DtmResult::Success, "{protocol}");
        eventually("the server's stream is abandoned", async || {
            dropped.load(Ordering::SeqCst)
        })
        .await;
        // What the socket buffers took besides the cap, far from the gigabyte offered.
        let sent = sent.load(Ordering::SeqCst);
        assert!(
            sent < 64 * MAX_REPLY_BODY * 16,
            "{protocol}: {sent} bytes were produced"
        );
    }
}

#[tokio::test]
async fn a_grpc_branch_that_never_answers_times_out() {
    // Accepts connections and says nothing: no HTTP/2 handshake, no answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("{addr}/e2e.Silent/Call");
    let (info, headers) = (branch("saga", "action"), BTreeMap::new());
    let (caller, timeout) = (Caller::new(), Duration::from_millis(300));
    let req = request(&url, "grpc", &info, &headers, timeout);
    let call = caller.call(&req);
    let result = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the call ends by itself");
    // Our deadline or tonic's own (the same timeout travels as grpc-timeout), whichever fires
    // first: either way an error, which the coordinator retries — never a result.
    assert!(
        matches!(
            result,
            Err(CallError::Transport { .. } | CallError::Answer { .. })
        ),
        "{result:?}"
    );
}
