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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection with `status` and a body of `len` bytes, and
    /// keeps the request heads it read.
    async fn server(
        status: &'static str,
        len: usize,
    ) -> (String, tokio::sync::mpsc::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 16 * 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let _ = tx
                    .send(String::from_utf8_lossy(&buf[..n]).to_string())
                    .await;
                let head = format!(
                    "HTTP/1.1 {status}\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&vec![b'x'; len]).await;
            }
        });
        (url, rx)
    }

    fn request(url: &str) -> Request<Bytes> {
        let mut r = Request::builder()
            .method("POST")
            .uri(url)
            .header("authorization", "from the environment")
            .body(Bytes::from_static(b"body"))
            .unwrap();
        r.headers_mut()
            .insert("content-type", "application/x-protobuf".parse().unwrap());
        r
    }

    #[tokio::test]
    async fn headers_win_answers_are_bounded_and_redirects_are_not_followed() {
        let headers = vec![("Authorization".to_string(), Secret::new("Bearer t"))];
        let client = ReqwestClient::new(std::time::Duration::from_secs(5), headers).unwrap();
        assert!(!format!("{client:?}").contains("Bearer"));
        let (url, mut heads) = server("200 OK", 10).await;
        let resp = client.send_bytes(request(&url)).await.unwrap();
        assert_eq!((resp.status().as_u16(), resp.body().len()), (200, 10));
        let head = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.contains("authorization: bearer t"), "{head}");
        assert!(!head.contains("from the environment"), "{head}");
        let (url, _heads) = server("200 OK", MAX_RESPONSE + 1).await;
        let e = client.send_bytes(request(&url)).await.unwrap_err();
        assert!(e.downcast_ref::<ResponseBodyTooLarge>().is_some(), "{e}");
        // A redirect comes back as the answer; nothing follows it.
        let (url, _heads) = server("307 Temporary Redirect", 0).await;
        let resp = client.send_bytes(request(&url)).await.unwrap();
        assert_eq!(resp.status().as_u16(), 307);
    }
}
