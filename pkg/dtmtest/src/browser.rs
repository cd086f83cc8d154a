//! A headless Chromium driven over WebDriver (W3C protocol, spoken with reqwest: a handful of
//! JSON calls), for tests of a page in a real browser. `CHROMEDRIVER` names the driver
//! (`/usr/bin/chromedriver` from Debian's `chromium-driver`; `deploy/ci/browser.sh` installs
//! it); `CHROMIUM` the browser (default `/usr/bin/chromium`). Outside CI a missing
//! `CHROMEDRIVER` skips the test with a printed reason; with `CI=true` it fails.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// The key of an element reference in WebDriver replies.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; [`Browser::quit`] ends it (dropping it kills the driver).
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: std::process::Child,
}

impl Browser {
    /// Starts the driver on a free loopback port and opens a headless session, or `None`
    /// (skipped) when `CHROMEDRIVER` is unset outside CI.
    pub async fn start() -> Option<Browser> {
        let driver_path = match std::env::var("CHROMEDRIVER") {
            Ok(path) if !path.is_empty() => path,
            _ => {
                return crate::missing(
                    "a browser test: CHROMEDRIVER is not set (deploy/ci/browser.sh installs chromium)",
                );
            }
        };
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // A process group of its own: the browsers it starts are in it too, so a test that
        // fails (and drops this) takes them all down, not only the driver.
        let driver = std::process::Command::new(&driver_path)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {driver_path}: {e}"));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        crate::eventually("chromedriver answers /status", async || {
            let status = http.get(format!("{base}/status")).send().await;
            match status {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"],
            },
        }}});
        let reply: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session reply");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_owned();
        Some(Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver,
        })
    }

    /// One WebDriver command; its `value`, or the driver's error.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if method == reqwest::Method::POST {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let ok = res.status().is_success();
        let v: Value = res.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!("{path}: {}", v["value"]))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.command(reqwest::Method::POST, path, body).await
    }

    async fn element(&self, css: &str) -> Result<String, String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{css}: {v}"))
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .await
            .expect("navigate");
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let id = self.element(css).await.ok()?;
        let v = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{id}/text"),
                Value::Null,
            )
            .await
            .ok()?;
        v.as_str().map(str::to_owned)
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0)
    }

    /// Waits (10 s at most) until the text of `css` satisfies `want`; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
        let mut last = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            last = self.text(css).await;
            if last.as_deref().is_some_and(&want) {
                return last.unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: {css} never matched (last text {last:?})");
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await.expect("element to click");
        self.post(&format!("/element/{id}/click"), json!({}))
            .await
            .expect("click");
    }

    /// Replaces the value of the input `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await.expect("input");
        self.post(&format!("/element/{id}/clear"), json!({}))
            .await
            .expect("clear");
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await
            .expect("type");
    }

    /// Accepts the open `confirm()` dialog (waiting for it, 10 s at most).
    pub async fn accept_dialog(&self) {
        crate::eventually("a dialog to accept", async || {
            self.post("/alert/accept", json!({})).await.is_ok()
        })
        .await;
    }

    /// Saves a PNG screenshot at `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let v = self
            .command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await
            .expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Ends the session (closing the browser) and stops the driver.
    pub async fn quit(self) {
        let _ = self.command(reqwest::Method::DELETE, "", Value::Null).await;
        // Dropping it ends the driver and whatever the session left behind.
    }
}

impl Drop for Browser {
    /// Kills the driver's process group: the driver and every browser process it started.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status();
        let _ = self.driver.wait();
    }
}

/// Where a test keeps a screenshot: `target/browser/<name>` (the workspace's target directory,
/// or `CARGO_TARGET_DIR`).
pub fn shot(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")),
        std::path::PathBuf::from,
    );
    target.join("browser").join(name)
}
