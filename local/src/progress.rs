//! The demo's progress: a bar on a terminal, a plain line every few seconds (and at the end)
//! when output goes to a file or a CI log, nothing when switched off. Rates are whole numbers.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Seconds between plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One stage's progress; clones share it.
#[derive(Clone)]
pub enum Progress {
    Bar(ProgressBar),
    Plain(Arc<Plain>),
    Hidden,
}

/// The state of a plain progress line.
pub struct Plain {
    what: String,
    len: u64,
    pos: AtomicU64,
    started: Instant,
    last: Mutex<Instant>,
}

fn rate(n: u64, secs: f64) -> String {
    format!("{:.0}/s", n as f64 / secs.max(1e-9))
}

impl Progress {
    /// Progress over `len` items of `what`: a bar when stderr is a terminal, plain lines
    /// otherwise, nothing when `show` is false.
    pub fn new(show: bool, len: u64, what: &str) -> Progress {
        if !show {
            return Progress::Hidden;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Plain(Arc::new(Plain {
                what: what.to_string(),
                len,
                pos: AtomicU64::new(0),
                started: Instant::now(),
                last: Mutex::new(Instant::now()),
            }));
        }
        let pb = ProgressBar::new(len);
        pb.set_style(
            ProgressStyle::with_template("  {prefix:<22} [{bar:32}] {pos:>7}/{len:<7} {rate:>10}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate(s.pos(), s.elapsed().as_secs_f64()));
                })
                .progress_chars("=> "),
        );
        pb.set_prefix(what.to_string());
        Progress::Bar(pb)
    }

    /// `n` more items done.
    pub fn inc(&self, n: u64) {
        match self {
            Progress::Bar(pb) => pb.inc(n),
            Progress::Plain(p) => {
                let pos = p.pos.fetch_add(n, Ordering::Relaxed) + n;
                let due = p.last.lock().map(|mut last| {
                    let due = last.elapsed() >= PLAIN_EVERY;
                    if due {
                        *last = Instant::now();
                    }
                    due
                });
                if due.unwrap_or(false) {
                    p.line(pos, "");
                }
            }
            Progress::Hidden => {}
        }
    }

    /// The stage is over.
    pub fn finish(&self) {
        match self {
            Progress::Bar(pb) => pb.finish(),
            Progress::Plain(p) => p.line(p.pos.load(Ordering::Relaxed), " done"),
            Progress::Hidden => {}
        }
    }
}

impl Plain {
    fn line(&self, pos: u64, end: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "  {:<22} {pos}/{} in {secs:.1} s, {}{end}",
            self.what,
            self.len,
            rate(pos, secs)
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_are_whole_numbers() {
        assert_eq!(super::rate(9505, 2.0), "4752/s");
        assert_eq!(super::rate(3, 0.0), "3000000000/s");
    }
}
