//! Faults from model servers, over real HTTP against scripted misbehaving servers: every failure
//! is classified with the right `ErrorKind`, retries are bounded and only for what is worth
//! retrying, `Retry-After` is honoured (and capped), size caps hold, redirects are not followed,
//! cancellation is prompt, and no error message ever contains a secret.

use crate::provider_common;
use futures_util::future::join_all;
use modelwatch::probe::{GenParams, ProbeInput};
use modelwatch::provider::{
    Api, CancelSignal, ClientConfig, CompletionRequest, ProviderKind, build_client,
};
use modelwatch::sample::{ErrorKind, SampleError};
use provider_common::{
    Recorded, Reply, Server, Step, Then, chunked, close, config, hang, json, ndjson, respond, sse,
};
use serde_json::json;
use std::time::{Duration, Instant};

const KEY: &str = "sk-canary-7f3a9c";
const HEADER_SECRET: &str = "hdr-canary-51b2";

fn secret_config(kind: ProviderKind, base_url: String) -> ClientConfig {
    let mut cfg = config(kind, Api::Chat, base_url, "m");
    cfg.api_key = Some(KEY.into());
    cfg.headers = vec![("X-Api-Key".into(), HEADER_SECRET.into())];
    cfg
}

fn req(stream: bool) -> CompletionRequest {
    CompletionRequest {
        input: ProbeInput::Prompt("hi".into()),
        params: GenParams::default(),
        stream,
    }
}

fn assert_no_secret(e: &SampleError, case: &str) {
    for text in [e.message.clone(), e.to_string(), format!("{e:?}")] {
        assert!(
            !text.contains(KEY) && !text.contains(HEADER_SECRET) && !text.contains("canary"),
            "{case}: secret leaked in {text}"
        );
    }
}

/// Everything the client sent, as the server saw it, echoed back: a server that reflects
/// credentials into its error must not make them reach our messages.
fn echo(r: &Recorded) -> String {
    r.headers
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

type Handler = fn(&Recorded, usize) -> Reply;

struct Case {
    name: &'static str,
    handler: Handler,
    stream: bool,
    kind: ErrorKind,
    status: Option<u16>,
    /// Requests the server must see (attempts).
    hits: usize,
}

fn case(
    name: &'static str,
    handler: Handler,
    stream: bool,
    kind: ErrorKind,
    status: Option<u16>,
    hits: usize,
) -> Case {
    Case {
        name,
        handler,
        stream,
        kind,
        status,
        hits,
    }
}

/// Faults that look the same for both providers (retries = 2, so 3 attempts when retried).
fn generic_cases() -> Vec<Case> {
    use ErrorKind::*;
    vec![
        case(
            "accepts and never answers",
            |_, _| hang(),
            false,
            Timeout,
            None,
            3,
        ),
        case(
            "closes without answering",
            |_, _| close(),
            false,
            Connect,
            None,
            3,
        ),
        case(
            "500",
            |_, _| json(500, &json!({"error": "boom"})),
            false,
            HttpStatus,
            Some(500),
            3,
        ),
        case(
            "502",
            |_, _| respond(502, &[], b"<html>Bad Gateway</html>"),
            false,
            HttpStatus,
            Some(502),
            3,
        ),
        case(
            "503",
            |_, _| respond(503, &[], b""),
            false,
            HttpStatus,
            Some(503),
            3,
        ),
        case(
            "429 without Retry-After",
            |_, _| json(429, &json!({"error": "slow down"})),
            false,
            HttpStatus,
            Some(429),
            3,
        ),
        case(
            "400 echoing the credentials",
            |r, _| json(400, &json!({"error": {"message": echo(r)}})),
            false,
            HttpStatus,
            Some(400),
            1,
        ),
        case(
            "404",
            |_, _| {
                json(
                    404,
                    &json!({"error": "model 'm' not found, try pulling it first"}),
                )
            },
            false,
            HttpStatus,
            Some(404),
            1,
        ),
        case(
            "307 to another host",
            |_, _| {
                respond(
                    307,
                    &[("Location", "http://elsewhere.invalid:9/v1/chat/completions")],
                    b"",
                )
            },
            false,
            HttpStatus,
            Some(307),
            1,
        ),
        case(
            "malformed JSON",
            |_, _| {
                respond(
                    200,
                    &[("Content-Type", "application/json")],
                    b"{\"choices\": [tru",
                )
            },
            false,
            MalformedBody,
            None,
            1,
        ),
        case(
            "valid JSON of the wrong shape",
            |_, _| json(200, &json!({"result": "ok", "items": [1, 2]})),
            false,
            MalformedBody,
            None,
            1,
        ),
        case(
            "invalid UTF-8",
            |_, _| {
                respond(
                    200,
                    &[("Content-Type", "application/json")],
                    b"{\"a\":\"\xff\xfe\"}",
                )
            },
            false,
            MalformedBody,
            None,
            1,
        ),
        case(
            "gzip body never asked for",
            |_, _| {
                respond(
                    200,
                    &[
                        ("Content-Type", "application/json"),
                        ("Content-Encoding", "gzip"),
                    ],
                    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xed\xc1\x01\x0d\x00\x00\x00\xc2\xa0",
                )
            },
            false,
            MalformedBody,
            None,
            1,
        ),
        case(
            "disconnect mid-body",
            |_, _| Reply {
                steps: vec![Step::Write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"choices\":".to_vec(),
                )],
                then: Then::Close,
            },
            false,
            MalformedBody,
            None,
            1,
        ),
        case(
            "body drips slower than the total timeout",
            |_, _| {
                let mut steps = vec![Step::Write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
                )];
                for _ in 0..100 {
                    steps.push(Step::Sleep(Duration::from_millis(50)));
                    steps.push(Step::Write(b" ".to_vec()));
                }
                Reply {
                    steps,
                    then: Then::Close,
                }
            },
            false,
            Timeout,
            None,
            1,
        ),
        case(
            "100 MB streamed body",
            |_, _| {
                let mut r = chunked("application/json", &[], false);
                let piece = vec![b'a'; 64 * 1024];
                let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
                c.extend_from_slice(&piece);
                c.extend_from_slice(b"\r\n");
                r.steps.push(Step::Repeat(c, 1600));
                r
            },
            false,
            TooLarge,
            None,
            1,
        ),
        case(
            "100 MB declared body",
            |_, _| Reply {
                steps: vec![Step::Write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n{".to_vec(),
                )],
                then: Then::Hang,
            },
            false,
            TooLarge,
            None,
            1,
        ),
        case(
            "endless response head",
            |_, _| Reply {
                steps: vec![
                    Step::Write(b"HTTP/1.1 200 OK\r\n".to_vec()),
                    Step::Repeat(
                        b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".to_vec(),
                        100_000,
                    ),
                ],
                then: Then::Close,
            },
            false,
            TooLarge,
            None,
            1,
        ),
        case(
            "response head that is not HTTP",
            |_, _| Reply {
                steps: vec![Step::Write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())],
                then: Then::Close,
            },
            false,
            MalformedBody,
            None,
            1,
        ),
    ]
}

fn openai_stream_cases() -> Vec<Case> {
    use ErrorKind::*;
    fn delta(s: &str) -> String {
        json!({"choices":[{"index":0,"delta":{"content":s},"finish_reason":null}]}).to_string()
    }
    vec![
        case(
            "SSE ends without [DONE] or finish_reason",
            |_, _| sse(&[(0, delta("Hel"))], true),
            true,
            MalformedBody,
            None,
            1,
        ),
        case(
            "SSE disconnect mid-stream",
            |_, _| sse(&[(0, delta("Hel")), (20, delta("lo"))], false),
            true,
            MalformedBody,
            None,
            1,
        ),
        case(
            "SSE chunk is not JSON",
            |_, _| sse(&[(0, delta("Hel")), (0, "{oops".into())], true),
            true,
            MalformedBody,
            None,
            1,
        ),
        case(
            "SSE error event echoing the credentials",
            |r, _| {
                let err = json!({"error": {"message": echo(r), "type": "server_error"}});
                sse(&[(0, delta("Hel")), (0, err.to_string())], true)
            },
            true,
            MalformedBody,
            None,
            1,
        ),
        case(
            "SSE invalid UTF-8",
            |_, _| {
                chunked(
                    "text/event-stream",
                    &[(0, b"data: {\"x\":\"\xc3\x28\"}\n\n")],
                    true,
                )
            },
            true,
            MalformedBody,
            None,
            1,
        ),
    ]
}

fn ollama_stream_cases() -> Vec<Case> {
    use ErrorKind::*;
    fn line(s: &str) -> serde_json::Value {
        json!({"message":{"role":"assistant","content":s},"done":false})
    }
    vec![
        case(
            "NDJSON ends without done",
            |_, _| ndjson(&[(0, line("Hel"))], true),
            true,
            MalformedBody,
            None,
            1,
        ),
        case(
            "NDJSON disconnect mid-stream",
            |_, _| ndjson(&[(0, line("Hel")), (20, line("lo"))], false),
            true,
            MalformedBody,
            None,
            1,
        ),
        case(
            "NDJSON error line echoing the credentials",
            |r, _| ndjson(&[(0, line("Hel")), (0, json!({ "error": echo(r) }))], true),
            true,
            MalformedBody,
            None,
            1,
        ),
    ]
}

async fn run_case(kind: ProviderKind, c: Case, trial: usize) {
    let label = format!("{} / {} / trial {trial}", kind.as_str(), c.name);
    let server = Server::start(c.handler).await;
    let client = build_client(secret_config(kind, server.url())).unwrap();
    let started = Instant::now();
    let e = client.complete(&req(c.stream)).await.expect_err(&label);
    assert_eq!(e.kind, c.kind, "{label}: {e}");
    assert_eq!(e.status, c.status, "{label}: {e}");
    assert_eq!(e.attempts as usize, c.hits, "{label}: attempts");
    assert_eq!(server.hits(), c.hits, "{label}: server hits");
    assert!(e.latency_ms > 0.0, "{label}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{label}: took {:?}",
        started.elapsed()
    );
    assert_no_secret(&e, &label);
    // Every request carried the credentials, so the redaction above was really tested.
    for r in server.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.header("x-api-key"), Some(HEADER_SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_fault_is_classified_bounded_and_free_of_secrets() {
    const TRIALS: usize = 2;
    let mut runs = Vec::new();
    for trial in 0..TRIALS {
        for kind in [ProviderKind::OpenAi, ProviderKind::Ollama] {
            for c in generic_cases() {
                runs.push(run_case(kind, c, trial));
            }
        }
        for c in openai_stream_cases() {
            runs.push(run_case(ProviderKind::OpenAi, c, trial));
        }
        for c in ollama_stream_cases() {
            runs.push(run_case(ProviderKind::Ollama, c, trial));
        }
    }
    join_all(runs).await;
}

/// A streamed answer whose line never ends and whose bytes never pause: the deadline is checked
/// before each read, so the request ends at its total timeout even though every read finds
/// data ready (both APIs; the size cap is set far above what arrives in that time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_at_full_speed_ends_at_the_total_timeout() {
    fn endless(_: &Recorded, _: usize) -> Reply {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        let start = b"data: {\"choices\":[{\"delta\":{\"content\":\"";
        let chunk = |data: &[u8]| {
            let mut c = format!("{:x}\r\n", data.len()).into_bytes();
            c.extend_from_slice(data);
            c.extend_from_slice(b"\r\n");
            c
        };
        Reply {
            steps: vec![
                Step::Write(head.as_bytes().to_vec()),
                Step::Write(chunk(start)),
                Step::Repeat(chunk(&[b'a'; 4096]), 4_000_000),
            ],
            then: Then::Close,
        }
    }
    for kind in [ProviderKind::OpenAi, ProviderKind::Ollama] {
        let server = provider_common::Server::start(endless).await;
        let mut cfg = config(kind, Api::Chat, server.url(), "m");
        cfg.total_timeout = Duration::from_millis(1500);
        cfg.max_response_bytes = 1 << 40;
        cfg.retries = 0;
        let client = build_client(cfg).unwrap();
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(60), client.complete(&req(true)))
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: still reading after 60 s"));
        let e = answer.expect_err("an endless line is no answer");
        assert_eq!(e.kind, ErrorKind::Timeout, "{kind:?}: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{kind:?}: ended after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn refused_connections_and_unresolvable_hosts_are_connect_errors_retried_a_bounded_number_of_times()
 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for (url, label) in [
        (format!("http://{addr}"), "refused"),
        ("http://modelwatch-test.invalid:11434".to_string(), "dns"),
    ] {
        let client = build_client(secret_config(ProviderKind::OpenAi, url)).unwrap();
        let e = client.complete(&req(false)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Connect, "{label}: {e}");
        assert_eq!(e.attempts, 3, "{label}");
        assert_eq!(e.status, None);
        assert_no_secret(&e, label);
    }
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped_by_backoff_max() {
    fn limited(seconds: &'static str) -> impl Fn(&Recorded, usize) -> Reply {
        move |_, hit| {
            if hit == 0 {
                respond(429, &[("Retry-After", seconds)], b"")
            } else {
                json(
                    200,
                    &json!({"choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}]}),
                )
            }
        }
    }
    let server = Server::start(limited("1")).await;
    let mut cfg = secret_config(ProviderKind::OpenAi, server.url());
    cfg.backoff_max = Duration::from_secs(5);
    let started = Instant::now();
    let c = build_client(cfg)
        .unwrap()
        .complete(&req(false))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!((c.text.as_str(), c.attempts), ("ok", 2));
    assert!(
        waited >= Duration::from_millis(1000),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_millis(2500), "waited {waited:?}");

    let server = Server::start(limited("30")).await;
    let mut cfg = secret_config(ProviderKind::OpenAi, server.url());
    cfg.backoff_max = Duration::from_millis(100);
    let started = Instant::now();
    let c = build_client(cfg)
        .unwrap()
        .complete(&req(false))
        .await
        .unwrap();
    assert_eq!(c.attempts, 2);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cap ignored: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retries_follow_the_configured_count_and_zero_means_one_attempt() {
    let server = Server::start(|_, _| respond(503, &[], b"")).await;
    for retries in [0u32, 1, 4] {
        let mut cfg = secret_config(ProviderKind::Ollama, server.url());
        cfg.retries = retries;
        let before = server.hits();
        let e = build_client(cfg)
            .unwrap()
            .complete(&req(false))
            .await
            .unwrap_err();
        assert_eq!(e.attempts, retries + 1);
        assert_eq!(server.hits() - before, retries as usize + 1);
        if retries > 0 {
            assert!(
                e.message
                    .contains(&format!("after {} attempts", retries + 1)),
                "{e}"
            );
        }
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_credentials_never_reach_the_other_host() {
    let other = Server::start(|_, _| json(200, &json!({"choices":[]}))).await;
    let location = format!("http://localhost:{}/v1/chat/completions", other.addr.port());
    let server =
        Server::start(move |_, _| respond(307, &[("Location", location.as_str())], b"")).await;
    let e = build_client(secret_config(ProviderKind::OpenAi, server.url()))
        .unwrap()
        .complete(&req(false))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::HttpStatus, Some(307)));
    assert!(e.message.contains("redirects are not followed"), "{e}");
    assert!(
        e.message
            .contains(&format!("localhost:{}", other.addr.port())),
        "{e}"
    );
    assert_eq!(other.hits(), 0, "the other host was contacted");
    assert_no_secret(&e, "redirect");
}

#[tokio::test]
async fn cancellation_ends_a_hanging_request_and_a_backoff_wait_promptly() {
    let hanging = Server::start(|_, _| hang()).await;
    let waiting = Server::start(|_, _| respond(503, &[("Retry-After", "10")], b"")).await;
    for (server, during) in [(&hanging, "request"), (&waiting, "backoff")] {
        let (trigger, signal) = CancelSignal::pair();
        let mut cfg = secret_config(ProviderKind::OpenAi, server.url());
        cfg.first_byte_timeout = Duration::from_secs(10);
        cfg.total_timeout = Duration::from_secs(10);
        cfg.backoff_max = Duration::from_secs(10);
        cfg.cancel = Some(signal);
        let client = build_client(cfg).unwrap();
        let started = Instant::now();
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            trigger.cancel();
        };
        let request = req(false);
        let (result, ()) = tokio::join!(client.complete(&request), cancel);
        let e = result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled, "{during}: {e}");
        assert_eq!(e.attempts, 1, "{during}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{during}: {:?}",
            started.elapsed()
        );
        if during == "backoff" {
            assert!(e.message.contains("waiting to retry"), "{e}");
        }
    }
}

#[tokio::test]
async fn fingerprint_failures_are_classified_too() {
    let server = Server::start(|r, _| match r.path.as_str() {
        "/v1/models" => respond(200, &[], b"<html>login</html>"),
        _ => json(503, &json!({"error": "loading"})),
    })
    .await;
    let e = build_client(secret_config(ProviderKind::OpenAi, server.url()))
        .unwrap()
        .fingerprint()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedBody, "{e}");
    let e = build_client(secret_config(ProviderKind::Ollama, server.url()))
        .unwrap()
        .fingerprint()
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status, e.attempts),
        (ErrorKind::HttpStatus, Some(503), 3)
    );
    assert!(e.message.contains("loading"), "{e}");
}

#[test]
fn bad_configurations_are_rejected_with_what_to_fix() {
    let ok = ClientConfig {
        model: "m".into(),
        ..ClientConfig::default()
    };
    let check = |cfg: ClientConfig, needle: &str| {
        let e = build_client(cfg).err().expect("rejected").to_string();
        assert!(e.contains(needle), "{e}");
        assert!(!e.contains("canary"), "{e}");
    };
    check(
        ClientConfig {
            base_url: "ftp://h".into(),
            ..ok.clone()
        },
        "not http or https",
    );
    check(
        ClientConfig {
            base_url: "nope".into(),
            ..ok.clone()
        },
        "base_url",
    );
    check(
        ClientConfig {
            model: " ".into(),
            ..ok.clone()
        },
        "model is empty",
    );
    check(
        ClientConfig {
            total_timeout: Duration::ZERO,
            ..ok.clone()
        },
        "total_timeout must be greater than zero",
    );
    check(
        ClientConfig {
            headers: vec![("Bad Name".into(), "canary".into())],
            ..ok.clone()
        },
        "\"Bad Name\"",
    );
    check(
        ClientConfig {
            headers: vec![("X-Ok".into(), "canary\nInjected: 1".into())],
            ..ok.clone()
        },
        "\"X-Ok\"",
    );
    check(
        ClientConfig {
            api_key: Some("canary\r\nX: y".into()),
            ..ok.clone()
        },
        "api_key",
    );
    assert!(build_client(ok).is_ok());
}

#[test]
fn debug_output_of_configs_and_clients_hides_credentials() {
    let mut cfg = secret_config(
        ProviderKind::OpenAi,
        "http://user:pw-canary-99@127.0.0.1:9/v1".into(),
    );
    cfg.model = "m".into();
    let shown = format!("{cfg:?}");
    assert!(
        shown.contains("[redacted]") && shown.contains("X-Api-Key"),
        "{shown}"
    );
    assert!(!shown.contains("canary"), "{shown}");
    let client = modelwatch::provider::openai::OpenAiClient::new(cfg.clone()).unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains("127.0.0.1:9"), "{shown}");
    assert!(!shown.contains("canary"), "{shown}");
    let client = modelwatch::provider::ollama::OllamaClient::new(cfg).unwrap();
    assert!(!format!("{client:?}").contains("canary"));
}
