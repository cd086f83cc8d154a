//! The API described: the OpenAPI document at `/q/openapi.yaml` is the committed one, every
//! operation it documents is served and every example in it answers as documented (the
//! coordinator is not running here: PlaceOrder's documented answer is then an error).

use crate::helpers::spawn_app;

const DOCUMENT: &str = api::order::v1::OPENAPI_YAML;

#[tokio::test]
async fn the_document_is_served_and_true_to_the_app() {
    let app = spawn_app().await;
    let served = app
        .client
        .get(format!("{}{}", app.http, kit::docs::OPENAPI_PATH))
        .send()
        .await
        .expect("document");
    assert_eq!(served.text().await.expect("text"), DOCUMENT);
    dtmtest::openapi::assert_served(&app.client, &app.http, DOCUMENT, "0123456789abcdef").await;
    let sent = dtmtest::openapi::send_examples(&app.client, &app.http, DOCUMENT)
        .await
        .len();
    assert!(sent >= 4, "{sent} examples");
}
