//! HTTP branch calls: POST with the stored body (GET when it is empty), the context in the query.

use crate::TransType;
use crate::caller::{CallError, CallRequest, Caller, MAX_REPLY_BODY, Reply, http_result};

impl Caller {
    pub(crate) async fn call_http(
        &self,
        url: &str,
        req: &CallRequest<'_>,
    ) -> Result<Reply, CallError> {
        // XA's phase two has no body yet is a POST (DTM's rule).
        let builder = if req.body.is_empty() && req.info.trans_type != TransType::Xa {
            self.http.get(url)
        } else {
            self.http.post(url).body(req.body.to_vec())
        };
        let query = req.query();
        let builder = builder
            .query(&query)
            .header(http::header::CONTENT_TYPE, "application/json");
        let (status, body) = self.send_http(builder, url, req).await?;
        http_result(url, status, body)
    }

    /// Sends an HTTP branch call with the transaction's headers, the caller's trace (retries
    /// included: each call injects) and the timeout, and reads the answer — at most
    /// [`MAX_REPLY_BODY`] of it: a branch's answer must not decide our memory use.
    pub(crate) async fn send_http(
        &self,
        mut builder: reqwest::RequestBuilder,
        url: &str,
        req: &CallRequest<'_>,
    ) -> Result<(u16, String), CallError> {
        let transport = |e: reqwest::Error| CallError::Transport {
            url: url.to_owned(),
            message: kit::errors::chain(&e),
        };
        for (k, v) in req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let mut trace = http::HeaderMap::new();
        kit::trace::inject(&mut trace);
        let mut res = builder
            .headers(trace)
            .timeout(req.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = res.status().as_u16();
        let mut body = Vec::new();
        while body.len() < MAX_REPLY_BODY {
            match res.chunk().await.map_err(transport)? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(MAX_REPLY_BODY);
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
