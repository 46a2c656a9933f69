//! A tiny progress display on stderr: a redrawn bar on a terminal, a plain line every tenth of
//! the way otherwise (logs and CI keep readable output).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest time between two redraws of the bar.
const REDRAW: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

/// Progress of `total` steps, shared by the tasks doing them.
pub struct Progress {
    label: String,
    total: usize,
    tty: bool,
    state: Mutex<State>,
}

struct State {
    last_draw: Option<Instant>,
    /// Tenths already printed in plain mode.
    tenths: usize,
    done: usize,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new(label: impl Into<String>, total: usize) -> Progress {
        Progress::with_mode(label, total, std::io::stderr().is_terminal())
    }

    pub fn with_mode(label: impl Into<String>, total: usize, tty: bool) -> Progress {
        Progress {
            label: label.into(),
            total,
            tty,
            state: Mutex::new(State {
                last_draw: None,
                tenths: 0,
                done: 0,
            }),
        }
    }

    /// `done` steps of `total` are finished (calls may arrive out of order; the highest wins).
    pub fn update(&self, done: usize) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.done = s.done.max(done);
        let done = s.done;
        if self.tty {
            let now = Instant::now();
            if s.last_draw.is_some_and(|t| now - t < REDRAW) && done < self.total {
                return;
            }
            s.last_draw = Some(now);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}", bar_line(&self.label, done, self.total));
            let _ = err.flush();
        } else {
            let tenths = (done * 10).checked_div(self.total).unwrap_or(10).min(10);
            if tenths > s.tenths {
                s.tenths = tenths;
                eprintln!("{}", plain_line(&self.label, done, self.total));
            }
        }
    }

    /// Ends the display with a closing note (the bar's line is finished on a terminal).
    pub fn finish(&self, note: &str) {
        if self.tty {
            eprintln!();
        }
        if !note.is_empty() {
            eprintln!("{}: {note}", self.label);
        }
    }
}

/// `label [#########.............] 45/100  45%`
pub fn bar_line(label: &str, done: usize, total: usize) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    let filled = (frac * WIDTH as f64).round() as usize;
    format!(
        "{label} [{}{}] {done}/{total} {:>3.0}%",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        frac * 100.0
    )
}

/// `label: 45/100 (45%)`
pub fn plain_line(label: &str, done: usize, total: usize) -> String {
    let pct = (done * 100).checked_div(total).unwrap_or(100);
    format!("{label}: {done}/{total} ({pct}%)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_in_proportion() {
        assert_eq!(
            bar_line("rec", 0, 10),
            format!("rec [{}] 0/10   0%", ".".repeat(30))
        );
        assert_eq!(
            bar_line("rec", 5, 10),
            format!("rec [{}{}] 5/10  50%", "#".repeat(15), ".".repeat(15))
        );
        assert_eq!(
            bar_line("rec", 12, 10),
            format!("rec [{}] 12/10 100%", "#".repeat(30))
        );
        assert_eq!(
            bar_line("x", 0, 0),
            format!("x [{}] 0/0 100%", "#".repeat(30))
        );
        assert_eq!(plain_line("rec", 3, 12), "rec: 3/12 (25%)");
        assert_eq!(plain_line("rec", 0, 0), "rec: 0/0 (100%)");
    }

    #[test]
    fn plain_mode_prints_once_per_tenth() {
        let p = Progress::with_mode("t", 100, false);
        for d in [1, 5, 10, 11, 19, 20, 100, 50] {
            p.update(d);
        }
        let s = p.state.lock().unwrap();
        assert_eq!((s.tenths, s.done), (10, 100));
    }
}
