//! A scripted HTTP/1.1 server on a raw `TcpListener` (127.0.0.1, port 0) for the provider
//! tests: it records every request and answers each with a script of writes and pauses, so it
//! can misbehave in ways a framework would not allow (dripping, hanging, cutting a chunked body,
//! invalid UTF-8, lying about Content-Length).

#![allow(dead_code)]

use modelwatch::provider::{Api, ClientConfig, ProviderKind};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// One step of an answer.
#[derive(Debug, Clone)]
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Writes the bytes this many times (a huge body without holding it in memory).
    Repeat(Vec<u8>, usize),
}

/// What happens to the connection after the steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Then {
    /// Read the next request on the same connection.
    KeepAlive,
    Close,
    /// Hold the connection open and never answer again.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub steps: Vec<Step>,
    pub then: Then,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// A complete response with Content-Length, kept alive.
pub fn respond(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Reply {
        steps: vec![Step::Write(bytes)],
        then: Then::KeepAlive,
    }
}

pub fn json(status: u16, body: &Value) -> Reply {
    respond(
        status,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// A chunked response: each part written as one chunk after its pause. `complete = false` cuts
/// the connection before the terminating chunk (a disconnect mid-stream).
pub fn chunked(content_type: &str, parts: &[(u64, &[u8])], complete: bool) -> Reply {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut steps = vec![Step::Write(head.into_bytes())];
    for (pause_ms, data) in parts {
        if *pause_ms > 0 {
            steps.push(Step::Sleep(Duration::from_millis(*pause_ms)));
        }
        let mut c = format!("{:x}\r\n", data.len()).into_bytes();
        c.extend_from_slice(data);
        c.extend_from_slice(b"\r\n");
        steps.push(Step::Write(c));
    }
    if complete {
        steps.push(Step::Write(b"0\r\n\r\n".to_vec()));
    }
    Reply {
        steps,
        then: if complete {
            Then::KeepAlive
        } else {
            Then::Close
        },
    }
}

/// Server-sent events, one `data:` event per JSON value (or literal like `[DONE]`).
pub fn sse(events: &[(u64, String)], complete: bool) -> Reply {
    let owned: Vec<(u64, Vec<u8>)> = events
        .iter()
        .map(|(p, e)| (*p, format!("data: {e}\n\n").into_bytes()))
        .collect();
    let parts: Vec<(u64, &[u8])> = owned.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    chunked("text/event-stream", &parts, complete)
}

/// Newline-delimited JSON, one line per value.
pub fn ndjson(lines: &[(u64, Value)], complete: bool) -> Reply {
    let owned: Vec<(u64, Vec<u8>)> = lines
        .iter()
        .map(|(p, v)| (*p, format!("{v}\n").into_bytes()))
        .collect();
    let parts: Vec<(u64, &[u8])> = owned.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    chunked("application/x-ndjson", &parts, complete)
}

pub fn hang() -> Reply {
    Reply {
        steps: vec![],
        then: Then::Hang,
    }
}

pub fn close() -> Reply {
    Reply {
        steps: vec![],
        then: Then::Close,
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The scripted server. The handler gets each request and its 0-based hit number.
pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    pub async fn start(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, conns) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, handler.clone(), reqs.clone()));
            }
        });
        Server {
            addr,
            requests,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, requests: Arc<Mutex<Vec<Recorded>>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let hit = {
            let mut r = requests.lock().unwrap();
            r.push(req.clone());
            r.len() - 1
        };
        let reply = handler(&req, hit);
        for step in reply.steps {
            let ok = match step {
                Step::Write(b) => stream.write_all(&b).await.is_ok(),
                Step::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    true
                }
                Step::Repeat(b, n) => {
                    let mut ok = true;
                    for _ in 0..n {
                        if stream.write_all(&b).await.is_err() {
                            ok = false;
                            break;
                        }
                    }
                    ok
                }
            };
            if !ok {
                return;
            }
        }
        let _ = stream.flush().await;
        match reply.then {
            Then::KeepAlive => continue,
            Then::Close => return,
            Then::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut tmp = [0u8; 4096];
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    buf.drain(..head_end + 4);
    while buf.len() < len {
        let mut tmp = [0u8; 4096];
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

/// A config with short timeouts and fast retries for tests.
pub fn config(kind: ProviderKind, api: Api, base_url: String, model: &str) -> ClientConfig {
    ClientConfig {
        kind,
        api,
        base_url,
        model: model.to_string(),
        connect_timeout: Duration::from_millis(500),
        first_byte_timeout: Duration::from_millis(400),
        total_timeout: Duration::from_millis(800),
        retries: 2,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        max_response_bytes: 1024 * 1024,
        retry_seed: 1,
        ..ClientConfig::default()
    }
}
