//! The API described: the OpenAPI document at `/q/openapi.yaml` is the committed one, every
//! operation it documents is served and every example in it answers as documented; the Swagger UI
//! page at `/q/docs` works offline and, in a
//! headless Chromium, "Try it out" on a read operation shows its 200 body (a screenshot is kept
//! under `target/browser/`).

use dtmtest::browser::Browser;

use crate::helpers::{SKU, spawn_app};

const DOCUMENT: &str = api::stock::v1::OPENAPI_YAML;

#[tokio::test]
async fn the_document_and_its_page_are_served() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}{}", app.http, kit::docs::OPENAPI_PATH))
        .send()
        .await
        .expect("document");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/yaml");
    assert_eq!(res.text().await.expect("text"), DOCUMENT);
    let page = app
        .client
        .get(format!("{}{}", app.http, kit::docs::DOCS_PATH))
        .send()
        .await
        .expect("page");
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui-bundle.js") && html.contains(kit::docs::OPENAPI_PATH));
    // Its assets come from the binary.
    let js = app
        .client
        .get(format!(
            "{}{}/swagger-ui-bundle.js",
            app.http,
            kit::docs::DOCS_PATH
        ))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.expect("bytes").len() > 100_000);
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_example_answers_as_documented() {
    let app = spawn_app().await;
    dtmtest::openapi::assert_served(&app.client, &app.http, DOCUMENT, SKU).await;
    let sent = dtmtest::openapi::send_examples(&app.client, &app.http, DOCUMENT)
        .await
        .len();
    assert!(sent >= 2, "{sent} examples");
}

#[tokio::test]
async fn try_it_out_on_the_page_shows_a_read() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    browser
        .goto(&format!("{}{}", app.http, kit::docs::DOCS_PATH))
        .await;
    let operation = "#operations-Stock-Stock_GetStock";
    browser
        .wait_text(operation, "the page lists GetStock", |t| {
            t.contains("/api/stock/v1/stocks/{sku}")
        })
        .await;
    // Each click renders the next part of the operation: wait for it before the next.
    browser
        .click(&format!("{operation} .opblock-summary"))
        .await;
    let try_out = format!("{operation} .try-out__btn");
    browser
        .wait_text(&try_out, "Try it out", |t| t.contains("Try it out"))
        .await;
    browser.click(&try_out).await;
    let execute = format!("{operation} .execute");
    browser
        .wait_text(&execute, "Execute", |t| t.contains("Execute"))
        .await;
    browser
        .fill(&format!("{operation} input[placeholder=\"sku\"]"), SKU)
        .await;
    browser.click(&execute).await;
    let body = browser
        .wait_text(
            &format!("{operation} .live-responses-table tbody .response-col_description"),
            "the call's answer",
            |t| t.contains(SKU),
        )
        .await;
    assert!(body.contains("available"), "{body}");
    let status = browser
        .text(&format!(
            "{operation} .live-responses-table tbody .response-col_status"
        ))
        .await
        .unwrap_or_default();
    assert!(status.contains("200"), "{status}");
    browser
        .screenshot(&dtmtest::browser::shot("stock-docs.png"))
        .await;
    browser.quit().await;
}
