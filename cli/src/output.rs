//! How results reach the operator: text (coloured only when stdout is a terminal), one JSON
//! document with `--json`, and a live status line (spinner with elapsed time) only when stdout
//! is a terminal and not in `--json` mode, so pipes and scripts get plain, stable output.
//!
//! Colour is decided by `anstream` (stdout a terminal, honouring `NO_COLOR` and
//! `CLICOLOR_FORCE`); the live line by [`std::io::IsTerminal`] on stdout.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use cloudbot_trigger::cloudbot::JobStatus;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Bold, for headings and ids.
pub const BOLD: Style = Style::new().bold();
/// Dimmed, for labels.
pub const DIM: Style = Style::new().dimmed();
/// BOT ids.
pub const ID: Style = AnsiColor::Cyan.on_default();

/// The style of a job status word.
pub fn status_style(status: JobStatus) -> Style {
    match status {
        JobStatus::Succeeded => AnsiColor::Green.on_default().bold(),
        JobStatus::Error => AnsiColor::Red.on_default().bold(),
        JobStatus::Executing => AnsiColor::Yellow.on_default(),
        JobStatus::Unknown(_) => AnsiColor::Magenta.on_default(),
    }
}

/// The output mode of this process.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    live: bool,
}

impl Output {
    /// Text or JSON; the live line only when stdout is a terminal and the output is text.
    pub fn new(json: bool) -> Output {
        Output {
            json,
            live: !json && std::io::stdout().is_terminal(),
        }
    }

    /// True with `--json`.
    pub fn is_json(self) -> bool {
        self.json
    }

    /// True when a live status line is drawn (stdout is a terminal, text mode).
    pub fn is_live(self) -> bool {
        self.live
    }

    /// Text output (styles are stripped when stdout is not a terminal).
    pub fn text(self) -> anstream::AutoStream<std::io::StdoutLock<'static>> {
        anstream::AutoStream::auto(std::io::stdout().lock())
    }

    /// Prints `value` as one pretty JSON document on stdout.
    pub fn json<T: Serialize>(self, value: &T) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    }

    /// A spinner with elapsed time, drawn on stdout; hidden unless [`Output::is_live`].
    pub fn progress(self, message: impl Into<Cow<'static, str>>) -> Progress {
        let bar = if self.live {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(message);
        Progress(bar)
    }
}

/// A live status line; cleared when finished or dropped.
pub struct Progress(ProgressBar);

impl Progress {
    /// Replaces the message.
    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        self.0.set_message(message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
