//! systemd notifications (`sd_notify`) without a library: one datagram per message to the
//! unix socket named by `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`).
//! Without the variable every call is a no-op.

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

    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }
    pub fn reloading(&self) {
        self.notify("RELOADING=1");
    }
    pub fn stopping(&self) {
        self.notify("STOPPING=1");
    }
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }
    pub fn watchdog_ping(&self) {
        self.notify("WATCHDOG=1");
    }
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
}
