//! A small reverse proxy in front of one model server, as an API gateway serves a model under
//! an alias: every request is forwarded as is, except that what would say which model answers
//! is hidden — `/props` answers 404, and `system_fingerprint` and the llama.cpp `meta` block
//! (parameter count, file size, vocabulary) are removed from every JSON answer, also from each
//! event of a stream. Redirects are not followed; request and answer bodies are bounded.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest request or answer body forwarded.
const MAX_BODY: usize = 8 << 20;

struct Upstream {
    base: String,
    client: reqwest::Client,
    /// Requests for `/props` refused.
    hidden: AtomicUsize,
}

/// A running gateway on a free loopback port, stopped on drop.
pub struct Gateway {
    pub port: u16,
    upstream: Arc<Upstream>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    /// Starts a gateway forwarding to `upstream` (a base URL such as `http://127.0.0.1:8080`).
    pub fn start(upstream: &str) -> Gateway {
        let upstream = Arc::new(Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            hidden: AtomicUsize::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&upstream);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("gateway runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("gateway listener");
                let app = Router::new().fallback(forward).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("gateway serves");
            });
        });
        Gateway {
            port,
            upstream,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many `/props` requests the gateway refused.
    pub fn props_hidden(&self) -> usize {
        self.upstream.hidden.load(Ordering::SeqCst)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn forward(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/props" {
        up.hidden.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = up
        .client
        .request(parts.method, format!("{}{path}", up.base))
        .body(body);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let mut answer = match request.send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let mut raw = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) if raw.len() + chunk.len() <= MAX_BODY => raw.extend_from_slice(&chunk),
            Ok(Some(_)) => {
                return (StatusCode::BAD_GATEWAY, "upstream answer too large").into_response();
            }
            Ok(None) => break,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let scrubbed = if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) {
        scrub(&mut v);
        v.to_string()
    } else {
        // A stream of server-sent events: each `data:` line is one JSON chunk.
        text.split_inclusive('\n')
            .map(|line| scrub_event(line).unwrap_or_else(|| line.to_string()))
            .collect()
    };
    let mut out = Response::builder().status(status);
    if let Some(ct) = content_type {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    out.body(Body::from(scrubbed))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn scrub_event(line: &str) -> Option<String> {
    let data = line.strip_prefix("data:")?.trim();
    let mut v: serde_json::Value = serde_json::from_str(data).ok()?;
    scrub(&mut v);
    let end = if line.ends_with('\n') { "\n" } else { "" };
    Some(format!("data: {v}{end}"))
}

/// Removes the fields that identify the model, at any depth.
fn scrub(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.remove("system_fingerprint");
            map.remove("meta");
            map.values_mut().for_each(scrub);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}
