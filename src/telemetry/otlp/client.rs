//! The HTTP client the OpenTelemetry exporters post with: the project's reqwest client (rustls,
//! no redirects, the configured timeout), so the SDK brings no second HTTP or TLS stack, with
//! the signal's headers set on every request (they win over the `OTEL_EXPORTER_OTLP_*HEADERS`
//! the exporter reads itself, as `[telemetry.otlp]` documents) and a bounded response read.

use crate::config::Secret;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response, ResponseBodyTooLarge};

/// Longest collector answer read (an OTLP answer is a few bytes, a partial-success message a
/// few hundred).
const MAX_RESPONSE: usize = 256 * 1024;

/// One signal's client: where it posts is in the request; what it adds is here.
pub struct ReqwestClient {
    client: reqwest::Client,
    headers: Vec<(String, Secret)>,
}

impl std::fmt::Debug for ReqwestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ReqwestClient")
            .field("headers", &names)
            .finish()
    }
}

impl ReqwestClient {
    /// A client with `timeout` per request (the whole exchange).
    pub fn new(
        timeout: std::time::Duration,
        headers: Vec<(String, Secret)>,
    ) -> Result<ReqwestClient, String> {
        let client = crate::provider::http::outbound_client()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
        Ok(ReqwestClient { client, headers })
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let mut request = reqwest::Request::try_from(request)?;
        for (k, v) in &self.headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())?;
            let mut value = http::HeaderValue::from_str(v.expose())?;
            value.set_sensitive(true);
            request.headers_mut().insert(name, value);
        }
        let mut resp = self
            .client
            .execute(request)
            .await
            .map_err(|e| e.without_url())?;
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.without_url())? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(Box::new(ResponseBodyTooLarge::new()));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = Response::builder().status(status).body(Bytes::from(body))?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}
