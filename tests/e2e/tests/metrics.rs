//! Metrics after real transactions: the coordinator's DTM families at `/api/metrics` (and
//! `/metrics`), the services' request families at `/metrics`. Each test starts its own stack,
//! so the counts are exactly what its transactions produced.

use dtmtest::BOTH;
use e2e::{Stack, Transport};

#[tokio::test]
async fn one_saga_shows_in_dtm_families_and_in_the_services_requests() {
    let s = Stack::start().await;
    for t in BOTH {
        s.placed(t, "MODE_SAGA", "SKU-A", 1, "succeed").await;
    }
    // Two sagas, each one round and two actions (TransOut, TransIn), all SUCCESS.
    let dtm = scrape(&s, &dtm_metrics(&s)).await;
    has_lines(
        &dtm,
        &[
            r#"dtm_transaction_process_total{model="saga",status="ok"} 2"#,
            r#"dtm_transaction_handled_duration_count{model="saga"} 2"#,
            r#"dtm_branch_process_total{model="saga",branchid="01",branchtype="action",status="ok"} 2"#,
            r#"dtm_branch_process_total{model="saga",branchid="02",branchtype="action",status="ok"} 2"#,
            r#"dtm_unfinished_transactions{status="submitted"} 0"#,
            r#"dtm_poller_lag_seconds 0.0"#,
        ],
    );
    // The submits: newGid + submit per saga, one over each API.
    for (kind, api) in [
        ("http", "newgid"),
        ("http", "submit"),
        ("grpc", "newgid"),
        ("grpc", "submit"),
    ] {
        let line =
            format!(r#"dtm_server_process_total{{type="{kind}",api="{api}",status="ok"}} 1"#);
        has_lines(&dtm, &[&line]);
    }
    assert!(dtm.contains("dtm_server_info{version="), "{dtm}");
    // The poller counts its lease requests (nothing was left due: it finds none).
    dtmtest::eventually("the poller's lease requests are counted", async || {
        scrape(&s, &dtm_metrics(&s))
            .await
            .contains(r#"dtm_poller_leases_total{result="empty"}"#)
    })
    .await;
    // kit's path serves the same registry.
    let plain = scrape(
        &s,
        &format!("{}/metrics", s.dtm_http.trim_end_matches("/api/dtmsvr")),
    )
    .await;
    assert!(plain.contains("dtm_transaction_process_total"), "{plain}");

    // Stock served TransOut once per transport, each a 200 / gRPC OK.
    let stock = scrape(&s, &format!("{}/metrics", s.stock.0)).await;
    has_lines(
        &stock,
        &[
            r#"server_requests_code_total{kind="server",operation="/api.stock.v1.Stock/TransOut",code="200",reason=""} 1"#,
            r#"server_requests_code_total{kind="server",operation="/api.stock.v1.Stock/TransOut",code="0",reason=""} 1"#,
            r#"server_requests_seconds_count{kind="server",operation="/api.stock.v1.Stock/TransOut"} 2"#,
            r#"barrier_outcomes_total{op="action",outcome="applied"} 2"#,
        ],
    );
    assert!(
        !stock.contains("dtm_"),
        "stock has only its own families:\n{stock}"
    );
}

#[tokio::test]
async fn a_rolled_back_saga_counts_failed_branches_and_refusals() {
    let s = Stack::start().await;
    s.placed(Transport::Http, "MODE_SAGA", "SKU-B", 6, "failed")
        .await;
    let dtm = scrape(&s, &dtm_metrics(&s)).await;
    has_lines(
        &dtm,
        &[
            r#"dtm_branch_process_total{model="saga",branchid="01",branchtype="action",status="fail"} 1"#,
            r#"dtm_branch_process_total{model="saga",branchid="01",branchtype="compensate",status="ok"} 1"#,
            r#"dtm_transaction_process_total{model="saga",status="ok"} 1"#,
        ],
    );
    // Stock refused with its kratos reason: a 409 with the reason label.
    let stock = scrape(&s, &format!("{}/metrics", s.stock.0)).await;
    assert!(
        stock.lines().any(|l| l.starts_with(
            r#"server_requests_code_total{kind="server",operation="/api.stock.v1.Stock/TransOut",code="409",reason=""#
        ) && l.ends_with(" 1")),
        "{stock}"
    );
    // The refused action left no barrier row: its compensation was a null compensation.
    has_lines(
        &stock,
        &[r#"barrier_outcomes_total{op="compensate",outcome="null_compensation"} 1"#],
    );
}

/// The coordinator's `/api/metrics` (DTM's path).
fn dtm_metrics(s: &Stack) -> String {
    format!("{}/metrics", s.dtm_http.trim_end_matches("/dtmsvr"))
}

/// A scrape: 200, Prometheus' content type, the text.
async fn scrape(s: &Stack, url: &str) -> String {
    let res = s.client.get(url).send().await.expect("scrape");
    assert_eq!(res.status(), 200, "{url}");
    let content_type = res.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    res.text().await.expect("body")
}

/// Every one of `lines` is a whole line of the scrape `text`.
fn has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "no {line:?} in\n{text}");
    }
}
