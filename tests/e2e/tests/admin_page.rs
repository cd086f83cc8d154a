//! The coordinator's admin page in a real browser (headless Chromium over WebDriver): the list
//! shows a transaction that just ran, filtering by gid prefix finds one, a transaction's page shows
//! its branch rows and statuses, and force-stopping an unfinished one turns it `failed`. A
//! screenshot of each page is kept under `target/browser/`.

use dtmcli::Saga;
use dtmtest::browser::Browser;
use dtmtest::script::Reply;
use e2e::{Stack, Transport, gid};

#[tokio::test]
async fn the_admin_page_lists_opens_and_force_stops_transactions() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = Stack::start().await;
    let t = Transport::Http;
    // One that succeeded, one that stays unfinished: its action answers ONGOING and the
    // coordinator's clock does not move, so no retry comes.
    let done = gid("page-done");
    Saga::new(&s.dtm(t), &done)
        .add(
            &s.script_url(t, "page-ok"),
            &s.script_url(t, "page-ok-undo"),
            "{}",
        )
        .wait_result(true)
        .submit()
        .await
        .expect("saga");
    s.script.plan("page-stuck", &[Reply::Ongoing; 5]);
    let stuck = gid("page-stuck");
    Saga::new(&s.dtm(t), &stuck)
        .add(
            &s.script_url(t, "page-stuck"),
            &s.script_url(t, "page-stuck-undo"),
            "{}",
        )
        .submit()
        .await
        .expect("saga");
    s.wait_until("the stuck action was called", || {
        !s.script.calls("page-stuck").is_empty()
    })
    .await;

    let page = format!("{}/admin", s.dtm_http.trim_end_matches("/api/dtmsvr"));
    browser.goto(&page).await;
    let row = |gid: &str| format!(r#"#rows tr[data-gid="{gid}"]"#);
    browser
        .wait_text(&row(&done), "the list shows the saga", |t| {
            t.contains("succeed")
        })
        .await;
    browser
        .wait_text(&row(&stuck), "the list shows the unfinished saga", |t| {
            t.contains("submitted")
        })
        .await;
    browser
        .screenshot(&dtmtest::browser::shot("list.png"))
        .await;

    // Open the finished one from the list: its branch rows and statuses.
    browser.click(&row(&done)).await;
    browser
        .wait_text("#detail-status", "the saga's status", |t| t == "succeed")
        .await;
    let branches = browser
        .wait_text("#branches", "its branches", |t| !t.is_empty())
        .await;
    assert_eq!(browser.count("#branches tr").await, 2, "{branches}");
    let action = browser
        .text(r#"#branches tr[data-branch="01/action"]"#)
        .await
        .unwrap_or_default();
    assert!(action.contains("succeed"), "{action}");
    let compensate = browser
        .text(r#"#branches tr[data-branch="01/compensate"]"#)
        .await
        .unwrap_or_default();
    assert!(compensate.contains("prepared"), "{compensate}");
    assert!(
        browser
            .text("#timeline")
            .await
            .unwrap_or_default()
            .contains("01 action → succeed")
    );
    browser
        .screenshot(&dtmtest::browser::shot("transaction.png"))
        .await;

    // Back to the list, filtered by gid prefix: only the unfinished one is left; open it.
    browser.click(r##"a[href="#/"]"##).await;
    browser.fill("#f-gid", "page-stuck").await;
    browser.click("#search").await;
    browser
        .wait_text("#rows", "the filter keeps one row", |t| {
            t.contains(&stuck) && !t.contains(&done)
        })
        .await;
    assert_eq!(browser.count("#rows tr").await, 1);
    browser.click(&row(&stuck)).await;
    browser
        .wait_text("#detail-status", "the stuck saga's status", |t| {
            t == "submitted"
        })
        .await;

    // Force-stop it through the page, confirming the dialog.
    browser.click("#force-stop").await;
    browser.accept_dialog().await;
    browser
        .wait_text("#detail-status", "force-stopped", |t| t == "failed")
        .await;
    browser
        .screenshot(&dtmtest::browser::shot("force-stopped.png"))
        .await;
    assert_eq!(s.status(&stuck).await, "failed");
    browser.quit().await;
}
