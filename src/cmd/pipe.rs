//! What a command does when its output pipe closes (`modelwatch … | head`): it ends quietly by
//! SIGPIPE, as Unix tools do, instead of panicking or printing an error.
//!
//! Only commands that never open a socket get SIGPIPE's default action for the whole run. A
//! command that talks HTTP, or hosts the simulator in-process (`--sim`, `demo`), keeps the
//! signal ignored: hyper writes with `writev`, which cannot pass `MSG_NOSIGNAL`, so a write to a
//! connection the peer has just reset would kill the process (seen: `canary --sim` ending by
//! SIGPIPE when a stopped canary hung up on a simulator still streaming). There, a write error
//! on stdout or stderr that says the pipe is closed ends the process by SIGPIPE instead: from
//! the panic `println!` raises, or from an error returned up to `main`. The long-running servers
//! (`daemon`, `sim`) keep ignoring it altogether: a closed log pipe must not stop monitoring.

use std::io;

/// EPIPE on Linux and the BSDs.
const EPIPE: i32 = 32;

/// How a command treats a closed output pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedPipe {
    /// No socket in the process: SIGPIPE's default action, for the whole run.
    Signal,
    /// Sockets in the process: SIGPIPE stays ignored; a closed stdout or stderr ends the run by
    /// SIGPIPE when a write to it fails.
    EndOnOutput,
    /// A server: SIGPIPE stays ignored and output errors are not fatal.
    Ignore,
}

impl ClosedPipe {
    /// Applies the choice to this process. Call once, from the main thread, before any other
    /// thread exists.
    pub fn install(self) {
        match self {
            ClosedPipe::Signal => default_sigpipe(),
            ClosedPipe::EndOnOutput => {
                let next = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    // std's `print!`/`eprint!` panic with "failed printing to stdout: <error>".
                    let payload = info.payload();
                    let message = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or("");
                    if message.starts_with("failed printing to std")
                        && message.ends_with(&io::Error::from_raw_os_error(EPIPE).to_string())
                    {
                        end_by_sigpipe();
                    }
                    next(info)
                }));
            }
            ClosedPipe::Ignore => {}
        }
    }
}

/// Whether an error returned to `main` comes from a closed output pipe: a broken-pipe error in
/// its chain while stdout or stderr is a pipe with no reader (not a socket the peer closed).
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    }) && (output_closed(1) || output_closed(2))
}

/// Whether the write end `fd` has lost its reader: poll reports POLLERR on such a pipe.
#[cfg(unix)]
fn output_closed(fd: i32) -> bool {
    #[repr(C)]
    struct PollFd {
        fd: std::ffi::c_int,
        events: std::ffi::c_short,
        revents: std::ffi::c_short,
    }
    unsafe extern "C" {
        fn poll(
            fds: *mut PollFd,
            nfds: std::ffi::c_ulong,
            timeout: std::ffi::c_int,
        ) -> std::ffi::c_int;
    }
    const POLLERR: std::ffi::c_short = 0x008;
    let mut p = PollFd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` for the duration of the call, timeout 0 (no wait).
    let ready = unsafe { poll(&mut p, 1, 0) };
    ready > 0 && p.revents & POLLERR != 0
}

#[cfg(not(unix))]
fn output_closed(_fd: i32) -> bool {
    false
}

#[cfg(unix)]
mod sys {
    unsafe extern "C" {
        pub fn signal(signum: i32, handler: usize) -> usize;
        pub fn raise(signum: i32) -> i32;
    }
    /// SIGPIPE on Linux and the BSDs.
    pub const SIGPIPE: i32 = 13;
    pub const SIG_DFL: usize = 0;
}

/// Restores the default action of SIGPIPE (terminate), which the Rust runtime sets to ignore.
#[cfg(unix)]
fn default_sigpipe() {
    // SAFETY: `signal` from the C library with a valid signal number and SIG_DFL; no handler of
    // ours is replaced.
    unsafe {
        sys::signal(sys::SIGPIPE, sys::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

/// Ends the process by SIGPIPE, as if the failed write had raised it with the default action.
pub fn end_by_sigpipe() -> ! {
    #[cfg(unix)]
    // SAFETY: `signal` and `raise` from the C library with a valid signal number; the default
    // action of SIGPIPE terminates the process.
    unsafe {
        sys::signal(sys::SIGPIPE, sys::SIG_DFL);
        sys::raise(sys::SIGPIPE);
    }
    // The shell's status for a process ended by SIGPIPE, where raising it did not end us.
    std::process::exit(141)
}
