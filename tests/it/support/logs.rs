//! Capturing the tracing output of one test as JSON lines, robust against the other tests that
//! run at the same time in this binary.
//!
//! The capture is a thread-local default subscriber, so a test that uses it must run on a
//! current-thread runtime (plain `#[tokio::test]`): then every task it spawns (HTTP connections,
//! the emulator) logs on the same thread.
//!
//! Why the extra dispatcher: tracing-core caches each callsite's interest globally when the
//! callsite is first hit. While exactly one dispatcher exists, that interest is computed from the
//! *current thread's* default only; a callsite first hit on another test's thread (which has no
//! subscriber) is then cached as "never", and our subscriber would miss its events for the rest
//! of the run. With a second live dispatcher tracing-core asks every dispatcher and caches
//! "sometimes", i.e. it asks the current thread's subscriber at each event.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cloudbot_trigger::telemetry::{self, LogFormat};
use lambda_runtime::tracing::subscriber;
use lambda_runtime::tracing::subscriber::filter::EnvFilter;
use serde_json::Value;
use tracing::Dispatch;
use tracing::level_filters::LevelFilter;
use tracing::subscriber::DefaultGuard;

/// A subscriber installed as this thread's default, with the helper dispatcher that keeps
/// callsite interest from being cached as "never" (see the module docs). Dropping it uninstalls.
pub struct Scoped {
    // Field order is drop order: uninstall before the helper dispatcher goes away.
    _guard: DefaultGuard,
    _second: Dispatch,
}

/// Install `subscriber` as this thread's default for as long as the returned value lives.
pub fn set_scoped<S>(subscriber: S) -> Scoped
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    // Created before our subscriber is installed: from then on there are always two.
    let second = Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let guard = tracing::subscriber::set_default(subscriber);
    // Recompute interests cached as "never" before the capture started.
    tracing::callsite::rebuild_interest_cache();
    Scoped {
        _guard: guard,
        _second: second,
    }
}

/// JSON log lines written by this thread's subscriber while the capture lives.
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _scoped: Scoped,
}

/// Start capturing this thread's events (and their spans: current span and span list) as JSON,
/// up to `level`.
pub fn capture_json(level: LevelFilter) -> CapturedLogs {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Writer(buffer.clone());
    let collector = subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(level)
        .with_writer(move || writer.clone())
        .finish();
    CapturedLogs {
        buffer,
        _scoped: set_scoped(collector),
    }
}

/// Start capturing this thread's events through the function's own subscriber
/// ([`telemetry::subscriber`], JSON, the runtime cap included), with `directives` as
/// `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG` would give them.
pub fn capture_function_logs(directives: &str) -> CapturedLogs {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Writer(buffer.clone());
    let collector = telemetry::subscriber(LogFormat::Json, EnvFilter::new(directives), move || {
        writer.clone()
    });
    CapturedLogs {
        buffer,
        _scoped: set_scoped(collector),
    }
}

impl CapturedLogs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.buffer.lock().unwrap().clone()).unwrap()
    }

    /// The captured lines, each parsed as JSON (a line that is not JSON fails the test).
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON log line"))
            .collect()
    }
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
