//! The config as the app reads it: the shipped one starts, and a missing branch service is
//! named by its key.

use dtmtest::sqlite;

use crate::helpers::for_tests;

#[tokio::test]
async fn a_service_missing_from_dtm_services_stops_the_start_naming_its_key() {
    let db = sqlite().await;
    let mut conf = for_tests(&db);
    assert!(
        order::wire(&conf).await.is_ok(),
        "the shipped config starts"
    );
    conf.dtm.services.remove("stock");
    let err = order::wire(&conf).await.err().expect("refused");
    assert!(
        err.to_string().contains("dtm.services.stock: missing"),
        "{err}"
    );
}
