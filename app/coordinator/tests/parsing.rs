//! Property: whatever JSON a client sends to prepare / submit / abort / registerBranch, the
//! coordinator answers with a refusal (bad request, or DTM FAILURE for a state it cannot take) or
//! accepts it — it never panics, and a refused submit stores nothing.
//!
//! Bodies are generated around DTM's field names (the interesting part of the input space), with
//! values of every JSON type, including out-of-range numbers and hostile strings.

use std::sync::Arc;

use coordinator::biz::{Clock, TopicUsecase, TransError, TransUsecase, Unobserved};
use coordinator::service::body::{TransRequest, register_branch_from_json};
use coordinator::service::{DtmService, Payloads};
use proptest::prelude::*;
use serde_json::{Map, Value};
use support::{Branches, policy};

mod support;

/// Keys DTM's SDKs send, plus a few they do not.
const KEYS: &[&str] = &[
    "gid",
    "trans_type",
    "steps",
    "payloads",
    "custom_data",
    "query_prepared",
    "protocol",
    "wait_result",
    "timeout_to_fail",
    "request_timeout",
    "retry_interval",
    "retry_limit",
    "branch_headers",
    "concurrent",
    "rollback_reason",
    "branch_id",
    "confirm",
    "cancel",
    "data",
    "op",
    "GID",
    "Steps",
    "unknown",
];

/// Strings worth trying: valid words, URLs (loopback or unparsable; never called — the branches
/// are scripted in-process), and hostile text.
const WORDS: &[&str] = &[
    "",
    "saga",
    "msg",
    "tcc",
    "xa",
    "workflow",
    "http",
    "grpc",
    "json-rpc",
    "g1",
    "x\u{0}y",
    "äpfel",
    "http://127.0.0.1:1/a",
    "127.0.0.1:1/a.B/C",
    "etcd://127.0.0.2:2379/k/a.B/C",
    "discovery:///s/a.B/C",
    "topic://t",
    "ftp://x",
    "{\"concurrent\":true,\"orders\":{\"1\":[0]}}",
    "{\"delay\":5}",
    "{\"orders\":{\"0\":[0]}}",
    "null",
    "\n;\r",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(3),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(Value::from),
        "[a-z0-9:/._-]{0,40}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                proptest::sample::select(&["action", "compensate", "data", "1", "x"][..])
                    .prop_map(str::to_owned),
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: some of DTM's keys with arbitrary values.
fn body() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(proptest::sample::select(KEYS), value(), 0..10).prop_map(|m| {
        Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

fn service() -> (
    DtmService,
    TransUsecase,
    tempfile::TempDir,
    tokio::runtime::Runtime,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (store, dir) = rt.block_on(support::sqlite_store());
    let caller = Arc::new(Branches::default());
    let topics = TopicUsecase::new(store.clone(), caller.clone());
    let uc = TransUsecase::new(
        store,
        caller,
        policy(),
        Clock::default(),
        Arc::new(Unobserved),
    );
    (DtmService::new(uc.clone(), topics), uc, dir, rt)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn any_json_is_refused_or_accepted_never_a_panic(body in body(), route in 0..4u8) {
        thread_local! {
            static SVC: (DtmService, TransUsecase, tempfile::TempDir, tokio::runtime::Runtime) = service();
        }
        let bytes = serde_json::to_vec(&body).expect("json");
        SVC.with(|(svc, uc, _, rt)| {
            let outcome = rt.block_on(async {
                if route == 3 {
                    let fields = match register_branch_from_json(&bytes) {
                        Ok(f) => f,
                        Err(_) => return Ok(()),
                    };
                    return svc.register_branch(&fields, Vec::new()).await;
                }
                let t = match TransRequest::from_json(&bytes) {
                    Ok(t) => t,
                    Err(_) => return Ok(()),
                };
                let gid = t.gid.clone();
                let existed = uc.query(&gid).await.ok().flatten().is_some();
                let result = match route {
                    0 => svc.submit(t, Payloads::Json).await,
                    1 => svc.prepare(t, Payloads::Json).await,
                    _ => svc.abort(t, Payloads::Json).await,
                };
                // A refused submit or prepare stores nothing (unless the gid existed before).
                if route < 2 && !existed && matches!(result, Err(TransError::BadRequest(_))) {
                    let stored = uc.query(&gid).await.ok().flatten();
                    assert!(stored.is_none(), "refused {gid:?} but stored it");
                }
                result
            });
            // Storage must never be what fails: bad input is caught before it.
            prop_assert!(!matches!(outcome, Err(TransError::Store(_))), "{body}: {outcome:?}");
            Ok(())
        })?;
    }
}
