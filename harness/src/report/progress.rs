//! Progress while a run goes: a live counter on a terminal, one plain
//! line per case when stderr is not a terminal or `CI` is set.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use super::matrix::cell;
use crate::run::RunEvent;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A counter rewritten in place; failures get their own line.
    Live,
    /// One line per finished case.
    Lines,
}

impl Style {
    /// Live on an interactive terminal, lines in CI and in logs.
    pub fn detect() -> Style {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if std::io::stderr().is_terminal() && !ci {
            Style::Live
        } else {
            Style::Lines
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    done: usize,
    failed: usize,
}

/// Renders [`RunEvent`]s to stderr.
pub struct Progress {
    style: Style,
    counts: Mutex<Counts>,
}

impl Progress {
    pub fn new(style: Style) -> Progress {
        Progress {
            style,
            counts: Mutex::new(Counts::default()),
        }
    }

    pub fn event(&self, event: RunEvent<'_>) {
        let mut counts = self.counts.lock().expect("progress poisoned");
        let mut err = std::io::stderr().lock();
        match event {
            RunEvent::Starting {
                run_id,
                mta,
                images,
            } => {
                let _ = writeln!(
                    err,
                    "tlsharness: run {run_id}: starting {} ({})",
                    mta.title(),
                    images.join(", ")
                );
            }
            RunEvent::Ready {
                mta,
                version,
                cases,
                startup,
            } => {
                counts.total = cases;
                let _ = writeln!(
                    err,
                    "tlsharness: {} {version} ready in {:.1}s; running {cases} cases",
                    mta.title(),
                    startup.as_secs_f64()
                );
            }
            RunEvent::CaseDone(c) => {
                counts.done += 1;
                if !c.passed {
                    counts.failed += 1;
                }
                let line = format!(
                    "  {:4} {}/{}  {}",
                    if c.passed {
                        "ok"
                    } else if c.is_inconclusive() {
                        "INCONCLUSIVE"
                    } else {
                        "FAIL"
                    },
                    c.scenario,
                    c.level,
                    cell(c)
                );
                match self.style {
                    Style::Lines => {
                        let _ = writeln!(err, "{line}");
                    }
                    Style::Live => {
                        // Clear the counter; keep failures on screen.
                        let _ = write!(err, "\r\x1b[2K");
                        if !c.passed {
                            let _ = writeln!(err, "{line}");
                        }
                        if counts.done < counts.total {
                            let _ = write!(
                                err,
                                "  [{}/{}] {} not passed so far",
                                counts.done, counts.total, counts.failed
                            );
                        }
                    }
                }
            }
        }
        let _ = err.flush();
    }
}
