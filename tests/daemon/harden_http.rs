//! The HTTP port cannot be tied up: a connection cap inside the descriptor budget (the oldest
//! idle connection makes room), a header-read timeout that also ends idle keep-alive
//! connections, a bounded request head, and a token on every endpoint but `/healthz` and
//! `/readyz` when the port is reachable from the network. The last test floods a real daemon
//! running under `ulimit -n 1024` with 1,100 idle and 2,000 slow-header connections.

use crate::daemon_proc;

use daemon_proc::{free_port, runtime, start_piped, total_rounds, wait_until, write_suite};
use modelwatch::config::Secret;
use modelwatch::daemon::state::Shared;
use modelwatch::http::serve::{Limits, serve_with};
use modelwatch::http::{Access, router_with};
use modelwatch::sim::{self, Profile};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Serves the daemon's routes in process under `access` and `limits`; returns the address.
fn serve(rt: &tokio::runtime::Runtime, access: Access, limits: Limits) -> SocketAddr {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _rx) = mpsc::channel(1);
        std::mem::forget(_rx);
        let router = router_with(Arc::new(Shared::default()), tx, access);
        tokio::spawn(serve_with(listener, router, limits, std::future::pending()));
        addr
    })
}

/// Sends `request` on a new connection and returns the status code of the answer (0 if none
/// within 5 s).
fn status_of(addr: SocketAddr, request: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    status_of(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
    )
}

/// Waits until the peer closes `s` (read returns 0 or fails); how long that took.
fn closed_after(mut s: TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn on_a_network_address_everything_but_health_needs_the_token() {
    let rt = runtime(1);
    let exposed = |token: Option<&str>, public_metrics| Access {
        token: token.map(Secret::new),
        exposed: true,
        public_metrics,
    };
    // No token configured: health only.
    let addr = serve(&rt, exposed(None, false), Limits::default());
    assert_eq!(get(addr, "/healthz", None), 200);
    assert_eq!(get(addr, "/readyz", None), 503, "not ready: no round yet");
    for path in [
        "/metrics",
        "/api/v1/status",
        "/",
        "/report?target=t",
        "/nowhere",
    ] {
        assert_eq!(get(addr, path, None), 403, "{path}");
        assert_eq!(get(addr, path, Some(TOKEN)), 403, "{path}");
    }
    // A token: required, and enough.
    let addr = serve(&rt, exposed(Some(TOKEN), false), Limits::default());
    for path in ["/metrics", "/api/v1/status", "/"] {
        assert_eq!(get(addr, path, None), 401, "{path}");
        assert_eq!(
            get(addr, path, Some("wrong-token-0123456789")),
            401,
            "{path}"
        );
        assert_eq!(get(addr, path, Some(TOKEN)), 200, "{path}");
    }
    assert_eq!(get(addr, "/healthz", None), 200);
    // Public metrics by choice; the status API stays closed.
    let addr = serve(&rt, exposed(Some(TOKEN), true), Limits::default());
    assert_eq!(get(addr, "/metrics", None), 200);
    assert_eq!(get(addr, "/api/v1/status", None), 401);
    // Loopback: as before, reading needs no token.
    let addr = serve(&rt, Access::default(), Limits::default());
    assert_eq!(get(addr, "/api/v1/status", None), 200);
    assert!(Access::for_listen("0.0.0.0:9464".parse().unwrap(), None, false).exposed);
    assert!(!Access::for_listen("[::1]:9464".parse().unwrap(), None, false).exposed);
}

#[test]
fn a_network_address_without_a_token_is_a_loud_warning() {
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes");
    write_suite(&probes, "s", ["Hello?".to_string()]);
    let cfg = dir.path().join("modelwatch.toml");
    let target = "[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\nsuites = [\"s\"]\n";
    let check = |server: &str| {
        std::fs::write(
            &cfg,
            format!(
                "probes_dir = {:?}\n[server]\n{server}\n{target}",
                probes.display().to_string()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelwatch"))
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warned = check("listen = \"0.0.0.0:9464\"");
    assert!(
        warned.contains("warning:")
            && warned.contains("not a loopback address")
            && warned.contains("token"),
        "{warned}"
    );
    assert!(!check("listen = \"127.0.0.1:9464\"").contains("loopback"));
    assert!(
        !check(&format!("listen = \"0.0.0.0:9464\"\ntoken = \"{TOKEN}\"")).contains("loopback")
    );
}

#[test]
fn idle_and_slow_connections_are_closed_and_heads_are_bounded() {
    let rt = runtime(1);
    let limits = Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_millis(500),
        max_header_bytes: 16 * 1024,
        max_connection_age: Duration::from_secs(60),
    };
    let addr = serve(&rt, Access::default(), limits);
    // Silent after connecting.
    let idle = TcpStream::connect(addr).unwrap();
    let t = closed_after(idle, Duration::from_secs(5)).expect("an idle connection stays open");
    assert!(t < Duration::from_secs(3), "closed after {t:?}");
    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let t = closed_after(slow, Duration::from_secs(5)).expect("a slow head stays open");
    assert!(t < Duration::from_secs(3), "closed after {t:?}");
    // Idle after a first answer on a keep-alive connection.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = kept.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t = closed_after(kept, Duration::from_secs(5)).expect("an idle keep-alive stays open");
    assert!(t < Duration::from_secs(3), "closed after {t:?}");
    // A head larger than the limit is refused.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // (The refusal may be lost to a reset, as the rest of the head is never read.)
    assert!(matches!(status_of(addr, &big), 431 | 0));
    let fine = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(8 * 1024)
    );
    assert_eq!(status_of(addr, &fine), 200);
}

#[test]
fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let rt = runtime(1);
    let limits = Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let addr = serve(&rt, Access::default(), limits);
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(addr, "/healthz", None), 200);
    let mut held = held.into_iter();
    let first = held.next().unwrap();
    assert!(
        closed_after(first, Duration::from_secs(2)).is_some(),
        "the oldest idle connection was not evicted"
    );
    // The others are still open.
    let second = held.next().unwrap();
    assert!(closed_after(second, Duration::from_millis(300)).is_none());
}

/// The soft descriptor limit of this process (the flood needs ~3,200 descriptors).
fn own_soft_nofile() -> u64 {
    modelwatch::http::serve::soft_nofile().unwrap_or(u64::MAX)
}

/// VmRSS of `pid` in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flood_of_idle_and_slow_connections_leaves_health_and_rounds_alone() {
    if own_soft_nofile() < 4000 {
        assert!(
            std::env::var_os("CI").is_none(),
            "the flood needs `ulimit -n 4000` in the test process"
        );
        eprintln!("skipped: the test process may open fewer than 4000 descriptors");
        return;
    }
    let rt = runtime(1);
    let mut profile = Profile::builtin("healthy").unwrap();
    profile.latency_scale = 0.0;
    let sim = rt.block_on(async { sim::spawn_on_free_port(profile, 3).unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes");
    write_suite(
        &probes,
        "s",
        ["Explain ports.".to_string(), "Name a colour.".to_string()],
    );
    let port = free_port();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "probes_dir = {:?}\n[storage]\npath = {:?}\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"{}\"\nmodel = \"sim-7b\"\n\
             suites = [\"s\"]\nsamples = 1\ninterval = \"10s\"\njitter = \"0s\"\n",
            probes.display().to_string(),
            dir.path().join("m.db").display().to_string(),
            sim.base_url()
        ),
    )
    .unwrap();
    // The daemon under systemd's default soft limit.
    let launcher = dir.path().join("launch.sh");
    std::fs::write(
        &launcher,
        format!(
            "#!/bin/sh\nulimit -n 1024\nexec {:?} \"$@\"\n",
            env!("CARGO_BIN_EXE_modelwatch")
        ),
    )
    .unwrap();
    let (mut child, log) = start_piped_with(&launcher, &cfg);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let status = |rt: &tokio::runtime::Runtime| daemon_proc::get(rt, port, "/api/v1/status").1;
    wait_until("a first round", 30, || total_rounds(&status(&rt)) >= 1);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );
    let rss_before = rss_kb(child.id());

    // 1,100 idle connections and 2,000 that send 300 KB of an unfinished head.
    let mut held = Vec::new();
    let mut refused = 0;
    // A server that stops accepting makes every further connect wait for its timeout: after
    // 50 such failures the flood is as large as it will get.
    for _ in 0..1100 {
        if refused >= 50 {
            break;
        }
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => held.push(s),
            Err(_) => refused += 1,
        }
    }
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
        "a".repeat(300 * 1024)
    );
    for _ in 0..2000 {
        if refused >= 50 {
            break;
        }
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_nonblocking(true).unwrap();
                let _ = s.write(head.as_bytes());
                held.push(s);
            }
            Err(_) => refused += 1,
        }
    }
    let rounds_at_flood = total_rounds(&status(&rt));
    let mut max_rss = rss_kb(child.id());
    let mut health_ms = Vec::new();
    let flood_end = Instant::now() + Duration::from_secs(32);
    while Instant::now() < flood_end {
        let t = Instant::now();
        assert_eq!(
            get(addr, "/healthz", None),
            200,
            "/healthz during the flood"
        );
        health_ms.push(t.elapsed().as_millis());
        max_rss = max_rss.max(rss_kb(child.id()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let rounds_after = total_rounds(&status(&rt));
    max_rss = max_rss.max(rss_kb(child.id()));
    drop(held);
    health_ms.sort_unstable();
    eprintln!(
        "flood: {} connections refused by the kernel; /healthz median {} ms, max {} ms; \
         rounds {rounds_at_flood} → {rounds_after}; VmRSS {rss_before} kB before, max {max_rss} kB",
        refused,
        health_ms[health_ms.len() / 2],
        health_ms[health_ms.len() - 1]
    );
    let _ = child.kill();
    let _ = child.wait();
    let log = log.lock().unwrap().clone();
    assert!(
        rounds_after >= rounds_at_flood + 2,
        "rounds stalled during the flood: {rounds_at_flood} → {rounds_after}\n{log}"
    );
    assert!(max_rss <= 64 * 1024, "VmRSS {max_rss} kB > 64 MB");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("cannot accept"), "{log}");
}

/// [`start_piped`] through `launcher` (a shell script that sets limits, then execs the
/// binary).
fn start_piped_with(
    launcher: &std::path::Path,
    cfg: &std::path::Path,
) -> (std::process::Child, Arc<std::sync::Mutex<String>>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = start_piped;
    let mut child = std::process::Command::new(launcher)
        .args(["daemon", "--config"])
        .arg(cfg)
        .env("RUST_LOG", "modelwatch=info")
        .env("NO_COLOR", "1")
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (child, log)
}
