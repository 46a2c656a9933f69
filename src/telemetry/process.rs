//! The standard Prometheus `process_*` readings of this process, from `/proc/self` (Linux; on
//! other systems, or when `/proc` is not mounted, nothing is shown). Parsing is pure and tested
//! on fixed text; reading is bounded.

use std::io::Read;

/// Clock ticks per second of `/proc/self/stat` times: `USER_HZ`, fixed at 100 by the Linux ABI
/// on every architecture modelwatch is built for.
const USER_HZ: f64 = 100.0;
/// Longest `/proc` file read (stat and status are well under 2 KiB).
const MAX_PROC_FILE: u64 = 16 * 1024;
/// Open descriptors counted at most (a runaway leak still renders quickly).
const MAX_FDS: usize = 1 << 20;

/// What `/metrics` shows as `process_*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

impl ProcessStats {
    /// Reads `/proc/self`; `None` when it is not there.
    pub fn read() -> Option<ProcessStats> {
        let status = read_bounded("/proc/self/status")?;
        let stat = read_bounded("/proc/self/stat");
        let limits = read_bounded("/proc/self/limits");
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.take(MAX_FDS).count() as u64);
        Some(ProcessStats {
            resident_memory_bytes: status_kib(&status, "VmRSS:").map(|k| k * 1024),
            virtual_memory_bytes: status_kib(&status, "VmSize:").map(|k| k * 1024),
            threads: status_kib(&status, "Threads:"),
            cpu_seconds: stat.as_deref().and_then(cpu_seconds),
            open_fds,
            max_fds: limits.as_deref().and_then(max_open_files),
        })
    }
}

fn read_bounded(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_PROC_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The number after `key` in `/proc/self/status` (`VmRSS:   1234 kB` → 1234).
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU time from `/proc/self/stat`. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted after its last `)`: utime and stime are
/// fields 14 and 15, the 12th and 13th after it.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_proc_text() {
        let status = "Name:\tmodelwatch\nVmSize:\t  123456 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(20480));
        assert_eq!(status_kib(status, "VmSize:"), Some(123456));
        assert_eq!(status_kib(status, "Threads:"), Some(7));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        // A command name with spaces and a parenthesis does not shift the fields.
        let stat = "42 (model watch) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[test]
    fn this_process_is_read_on_linux() {
        if !std::path::Path::new("/proc/self/status").exists() {
            return;
        }
        let p = ProcessStats::read().unwrap();
        assert!(p.resident_memory_bytes.unwrap() > 1024 * 1024, "{p:?}");
        assert!(p.open_fds.unwrap() >= 3, "{p:?}");
        assert!(p.cpu_seconds.is_some() && p.threads.unwrap() >= 1, "{p:?}");
    }
}
