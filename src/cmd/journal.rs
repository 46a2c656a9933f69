//! Log lines the journal files at their own priority: when stderr is the journal (systemd sets
//! `JOURNAL_STREAM=<dev>:<ino>` of the stream it connects, which must be stderr's own, not one
//! inherited through a redirection), each line starts with `<N>`, the syslog priority of its
//! level (error 3, warning 4, info 6, debug and trace 7). journald strips the prefix and files
//! the line at that priority, so `journalctl -p warning` finds the warnings and errors, for
//! human and JSON logs alike.

use std::io::Write;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The syslog priority of a `tracing` level.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Whether stderr is the journal stream named by `journal_stream` (`JOURNAL_STREAM`).
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = journal_stream.and_then(|v| v.trim().split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Writes each line of what it is given with the `<N>` prefix in front.
pub struct Prefixed<W: Write> {
    inner: W,
    prefix: [u8; 3],
    at_line_start: bool,
}

impl<W: Write> Prefixed<W> {
    pub fn new(inner: W, level: &Level) -> Prefixed<W> {
        Prefixed {
            inner,
            prefix: [b'<', b'0' + priority(level), b'>'],
            at_line_start: true,
        }
    }
}

impl<W: Write> Write for Prefixed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One buffer per call, so a line and its prefix reach the stream in one write.
        let mut out = Vec::with_capacity(buf.len() + 8);
        for &b in buf {
            if self.at_line_start {
                out.extend_from_slice(&self.prefix);
            }
            out.push(b);
            self.at_line_start = b == b'\n';
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// stderr, with the priority prefix when `journal` is set.
#[derive(Debug, Clone, Copy)]
pub struct Stderr {
    pub journal: bool,
}

/// What one event is written to.
pub enum StderrWriter {
    Plain(std::io::Stderr),
    Journal(Prefixed<std::io::Stderr>),
}

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            StderrWriter::Plain(w) => w.write(buf),
            StderrWriter::Journal(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            StderrWriter::Plain(w) => w.flush(),
            StderrWriter::Journal(w) => w.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = StderrWriter;

    fn make_writer(&'a self) -> StderrWriter {
        StderrWriter::Plain(std::io::stderr())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> StderrWriter {
        if self.journal {
            StderrWriter::Journal(Prefixed::new(std::io::stderr(), meta.level()))
        } else {
            StderrWriter::Plain(std::io::stderr())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(level: Level, chunks: &[&str]) -> String {
        let mut w = Prefixed::new(Vec::new(), &level);
        for c in chunks {
            w.write_all(c.as_bytes()).unwrap();
        }
        String::from_utf8(w.inner).unwrap()
    }

    #[test]
    fn every_line_carries_its_level_priority() {
        assert_eq!(prefixed(Level::ERROR, &["boom\n"]), "<3>boom\n");
        assert_eq!(prefixed(Level::WARN, &["careful\n"]), "<4>careful\n");
        assert_eq!(prefixed(Level::INFO, &["{\"a\":1}\n"]), "<6>{\"a\":1}\n");
        assert_eq!(prefixed(Level::DEBUG, &["d\n"]), "<7>d\n");
        assert_eq!(prefixed(Level::TRACE, &["t\n"]), "<7>t\n");
        // A multi-line message: every line, however the text is split into writes.
        assert_eq!(
            prefixed(Level::WARN, &["one\ntw", "o\n", "three\n"]),
            "<4>one\n<4>two\n<4>three\n"
        );
    }

    #[test]
    fn only_a_matching_journal_stream_turns_the_prefix_on() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        for v in [None, Some(""), Some("x:y"), Some("1"), Some("0:0")] {
            assert!(!stderr_is_journal(v), "{v:?}");
        }
        // stderr's own device and inode: whatever the test harness made stderr, it matches.
        let fd = std::io::stderr().as_fd().try_clone_to_owned().unwrap();
        let m = std::fs::File::from(fd).metadata().unwrap();
        let own = format!("{}:{}", m.dev(), m.ino());
        assert!(stderr_is_journal(Some(&own)), "{own}");
        let other = format!("{}:{}", m.dev(), m.ino() + 1);
        assert!(!stderr_is_journal(Some(&other)));
    }
}
