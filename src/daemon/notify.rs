//! systemd notifications (`sd_notify`): one datagram per message to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`). Without the variable every
//! call is a no-op.
//!
//! The states and the `CLOCK_MONOTONIC` reading come from the `sd-notify` crate; the datagram
//! is sent here, non-blocking (its `notify` blocks on a full queue and reads the environment on
//! every call, and tests need a socket of their own).
//!
//! A reload is `RELOADING=1` with `MONOTONIC_USEC=` in one message, then `READY=1` once the new
//! configuration is applied (or rejected), as `Type=notify-reload` (systemd ≥ 253) requires;
//! long start-up work (opening and checking the store) is announced with
//! `EXTEND_TIMEOUT_USEC=`, so a large store does not hit `TimeoutStartSec=`.

use sd_notify::NotifyState;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends state changes to the service manager.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` (ignored when `WATCHDOG_PID` names another
    /// process).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_ok)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// A notifier writing to `socket` (tests).
    pub fn with_socket(socket: impl Into<String>, watchdog: Option<Duration>) -> Notifier {
        Notifier {
            socket: Some(socket.into()),
            watchdog,
        }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// The watchdog timeout systemd expects pings within, when enabled.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message such as `READY=1\nSTATUS=watching 2 targets`. Failures are logged
    /// once at debug level: a missing service manager must never stop the daemon.
    pub fn notify(&self, message: &str) {
        let Some(path) = &self.socket else {
            return;
        };
        if let Err(e) = send(path, message) {
            tracing::debug!(error = %e, socket = %path, "sd_notify failed");
        }
    }

    /// Sends `states` as one message.
    pub fn send_states(&self, states: &[NotifyState<'_>]) {
        if self.enabled() {
            self.notify(&message(states));
        }
    }

    pub fn ready(&self, status: &str) {
        self.send_states(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC=` systemd matches against the reload request.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send_states(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading the configuration"),
            ]),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read CLOCK_MONOTONIC for sd_notify");
                self.send_states(&[NotifyState::Reloading]);
            }
        }
    }

    /// Asks for `more` time from now for the start-up work named in `status`.
    pub fn extend_timeout(&self, more: Duration, status: &str) {
        let usec = u32::try_from(more.as_micros()).unwrap_or(u32::MAX);
        self.send_states(&[
            NotifyState::ExtendTimeoutUsec(usec),
            NotifyState::Status(status),
        ]);
    }

    pub fn stopping(&self) {
        self.send_states(&[NotifyState::Stopping]);
    }
    pub fn status(&self, status: &str) {
        self.send_states(&[NotifyState::Status(status)]);
    }
    pub fn watchdog_ping(&self) {
        self.send_states(&[NotifyState::Watchdog]);
    }
}

/// The lines of one message.
fn message(states: &[NotifyState<'_>]) -> String {
    states
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn send(path: &str, message: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    // Never block the scheduler on a full receive queue: drop the message instead.
    sock.set_nonblocking(true)?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        sock.send_to(message.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::with_socket(path.to_str().unwrap(), None);
        n.ready("ok");
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("modelwatch-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::with_socket(format!("@{name}"), None).watchdog_ping();
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        // No socket: nothing happens, nothing fails.
        Notifier::default().stopping();
    }

    #[test]
    fn reloads_carry_the_monotonic_clock_and_start_up_asks_for_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::with_socket(path.to_str().unwrap(), None);
        let mono = || match NotifyState::monotonic_usec_now().unwrap() {
            NotifyState::MonotonicUsec(u) => u,
            _ => unreachable!(),
        };
        let before = mono();
        n.reloading();
        let after = mono();
        let mut buf = [0u8; 256];
        let len = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "RELOADING=1", "{msg}");
        let usec: i128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{msg}"))
            .parse()
            .unwrap();
        assert!(before <= usec && usec <= after, "{before} {usec} {after}");

        n.extend_timeout(Duration::from_secs(90), "opening the store");
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..len],
            b"EXTEND_TIMEOUT_USEC=90000000\nSTATUS=opening the store"
        );
        // Past what the field holds: the longest it can ask for.
        n.extend_timeout(Duration::from_secs(1 << 40), "x");
        let len = rx.recv(&mut buf).unwrap();
        assert!(
            std::str::from_utf8(&buf[..len])
                .unwrap()
                .starts_with(&format!("EXTEND_TIMEOUT_USEC={}\n", u32::MAX))
        );
    }
}
