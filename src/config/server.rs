//! `[server]`: the daemon's HTTP endpoint: where it listens, its bearer token, its connection
//! cap and whether `/metrics` is public on a non-loopback address. See `docs/daemon.md`.

use super::Secret;
use crate::diag::fields::{Fields, Reader};
use std::net::SocketAddr;

pub(super) const SERVER_KEYS: &[&str] = &["listen", "token", "max_connections", "public_metrics"];

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Address of the HTTP endpoint (/metrics, /healthz, status API).
    pub listen: SocketAddr,
    /// Bearer token required by state-changing endpoints (`POST /api/v1/silence`), and by every
    /// endpoint but `/healthz` and `/readyz` on a non-loopback address; without one they are
    /// refused.
    pub token: Option<Secret>,
    /// Connections served at once (further cut to a quarter of the descriptor limit).
    pub max_connections: usize,
    /// `/metrics` needs no token on a non-loopback address.
    pub public_metrics: bool,
}

/// Connections served at once unless `[server] max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            public_metrics: false,
        }
    }
}

impl Server {
    /// A warning when the endpoint is reachable from the network without a token.
    pub fn exposure_warning(&self) -> Option<String> {
        if self.listen.ip().is_loopback() || self.token.is_some() {
            return None;
        }
        let metrics = if self.public_metrics {
            "only /healthz, /readyz and /metrics are served"
        } else {
            "only /healthz and /readyz are served"
        };
        Some(format!(
            "[server] listen = \"{}\" is not a loopback address and no [server] token is set: \
             {metrics}; the status API would expose models, digests, pins and alert evidence. \
             Set token = \"${{MODELWATCH_TOKEN}}\" (Prometheus: `authorization: {{credentials: ...}}`) \
             or listen on 127.0.0.1",
            self.listen
        ))
    }
}

pub(super) fn read_server(r: &mut Reader, top: &Fields) -> Option<Server> {
    let mut server = Server::default();
    let Some(v) = top.get("server") else {
        return Some(server);
    };
    let f = r.table_value(v, "[server]", SERVER_KEYS)?;
    if let Some(l) = r.string(&f, "listen") {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => server.listen = a,
            Err(_) => r.error_help(
                l.span(),
                format!(
                    "invalid `listen` address `{}`: expected IP:PORT",
                    l.get_ref()
                ),
                "e.g. \"127.0.0.1:9464\" (loopback) or \"[::1]:9464\"; use port 0 for any free port",
            ),
        }
    }
    server.token = read_token(r, &f);
    if let Some(n) = r.uint(&f, "max_connections", 8, 65_536) {
        server.max_connections = *n.get_ref() as usize;
    }
    if let Some(b) = r.bool(&f, "public_metrics") {
        server.public_metrics = *b.get_ref();
    }
    Some(server)
}

/// `[server] token`: the bearer token of state-changing endpoints.
fn read_token(r: &mut Reader, f: &Fields) -> Option<Secret> {
    let t = r.string(f, "token")?;
    if t.get_ref().trim().len() < 16 {
        r.error_help(
            t.span(),
            "`token` in [server] is too short: expected at least 16 characters",
            "generate one with `openssl rand -hex 32` and pass it as \"${MODELWATCH_TOKEN}\"",
        );
        return None;
    }
    Some(Secret::new(t.into_inner()))
}
