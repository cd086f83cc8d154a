//! `--probe <url>`: ask a running app's `/healthz` whether it serves, and exit 0 or 1.
//!
//! Container healthchecks run a command inside the container. Our runtime image carries no curl
//! (smaller, fewer CVEs), so every binary can probe itself: `stock --probe
//! http://127.0.0.1:8001/healthz`. One plain HTTP/1.0 GET over a socket is all it needs.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a probe did not see `200`.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not `http://host:port/path`.
    #[error("probe URL must look like http://host:port/path, got {0:?}")]
    BadUrl(String),
    /// Connecting, writing or reading failed.
    #[error("probe {url}: {source}")]
    Io {
        /// The probed URL.
        url: String,
        /// What failed.
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("probe {0}: no answer within the timeout")]
    Timeout(String),
    /// An answer other than `200`.
    #[error("probe {url}: {status_line}")]
    NotServing {
        /// The probed URL.
        url: String,
        /// The status line that came back.
        status_line: String,
    },
}

/// GETs `url` and succeeds only on `HTTP/1.x 200`.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let (host, path) = split(url).ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let io = |source| ProbeError::Io {
        url: url.to_owned(),
        source,
    };
    let exchange = async {
        let mut stream = TcpStream::connect(host).await.map_err(io)?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(io)?;
        Ok::<_, ProbeError>(answer)
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout(url.to_owned()))??;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(ProbeError::NotServing {
            url: url.to_owned(),
            status_line: status_line.to_owned(),
        }),
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    (!host.is_empty()).then_some((host, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split("http://127.0.0.1:8001/healthz"),
            Some(("127.0.0.1:8001", "/healthz"))
        );
        assert_eq!(split("http://stock:8001"), Some(("stock:8001", "/")));
        assert_eq!(split("https://stock:8001/healthz"), None);
        assert_eq!(split("http:///healthz"), None);
    }
}
