//! `store-cpu`: where the idempotency store's CPU goes, call by call. The function's own store
//! adapter (`DynamoDbStore`, its `claim` and `update` as a keyed execute makes them) on the
//! function's own DynamoDB client configuration (`cloudbot_trigger::sdk`), against the HTTPS
//! DynamoDB stand-in of the test platform running on another thread, on a current-thread tokio
//! runtime as in the function. CPU time is the calling thread's (`CLOCK_THREAD_CPUTIME_ID`), so
//! the stand-in's work is not in it; the loopback TCP stack's work done in the sender's context
//! is, as it is in the function's figure.
//!
//! An interceptor on every phase hook of the SDK's orchestrator splits each call: set-up before
//! the first hook (operation runtime plugins, config bag), serialisation, retry strategy,
//! identity + endpoint resolution, SigV4 signing, transmit (HTTP client, TLS, socket I/O),
//! deserialisation, attempt and execution wrap-up. Variants, side by side in one run: the SDK
//! path with the store keeping its connections and closing them (by phase), the SDK path without
//! the phase marks, and the lean call path (`cloudbot_trigger::table`, issue 24) on the same
//! client configuration, learned from the init's warm-up read as in the function (whole calls
//! only: an interceptor on the client would keep it on the SDK path). A benchmark: it prints
//! figures and asserts nothing about them. Method: docs/benchmarks.md, "Where the keyed
//! execute's CPU goes" and "A lean DynamoDB call path".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use clap::Parser;
use cloudbot_emulator::TestCa;
use cloudbot_testkit::dynamodb::DynamoDbEndpoint;
use cloudbot_trigger::idempotency::{
    ClaimWrite, Expected, Fingerprint, NewClaim, RecordKey, State, Store, Update, UpdateWrite,
};
use cloudbot_trigger::sdk::{StoreWarmUp, warm_up_dynamodb};
use cloudbot_trigger::table::{DynamoDbStore, KEY_ATTRIBUTE};

#[derive(Parser)]
#[command(about = "CPU per idempotency-store call of the function's DynamoDB adapter, by phase")]
struct Cli {
    /// Keyed executes (one claim + one completion each) measured per variant.
    #[arg(long, default_value_t = 500)]
    executes: usize,
    /// Executes before the measured ones (connector, connection, TLS session, first use).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Thread CPU time at each orchestrator hook of the current call.
#[derive(Debug, Default, Clone)]
struct Marks(Arc<Mutex<Vec<(&'static str, Duration)>>>);

impl Marks {
    fn mark(&self, hook: &'static str) {
        let now = thread_cpu();
        self.0.lock().expect("marks").push((hook, now));
    }
    fn take(&self) -> Vec<(&'static str, Duration)> {
        std::mem::take(&mut *self.0.lock().expect("marks"))
    }
}

macro_rules! hooks {
    ($($hook:ident: $ctx:ident, rc;)* $(@no_rc $hook2:ident: $ctx2:ident;)*) => {
        $(
            fn $hook(
                &self,
                _context: &$ctx<'_>,
                _rc: &RuntimeComponents,
                _cfg: &mut ConfigBag,
            ) -> Result<(), BoxError> {
                self.0.mark(stringify!($hook));
                Ok(())
            }
        )*
        $(
            fn $hook2(&self, _context: &$ctx2<'_>, _cfg: &mut ConfigBag) -> Result<(), BoxError> {
                self.0.mark(stringify!($hook2));
                Ok(())
            }
        )*
    };
}

#[derive(Debug)]
struct PhaseTimer(Marks);

impl Intercept for PhaseTimer {
    fn name(&self) -> &'static str {
        "PhaseTimer"
    }
    hooks! {
        read_before_serialization: BeforeSerializationInterceptorContextRef, rc;
        read_after_serialization: BeforeTransmitInterceptorContextRef, rc;
        read_before_attempt: BeforeTransmitInterceptorContextRef, rc;
        read_before_signing: BeforeTransmitInterceptorContextRef, rc;
        read_after_signing: BeforeTransmitInterceptorContextRef, rc;
        read_before_transmit: BeforeTransmitInterceptorContextRef, rc;
        read_after_transmit: BeforeDeserializationInterceptorContextRef, rc;
        read_before_deserialization: BeforeDeserializationInterceptorContextRef, rc;
        read_after_deserialization: AfterDeserializationInterceptorContextRef, rc;
        read_after_attempt: FinalizerInterceptorContextRef, rc;
        read_after_execution: FinalizerInterceptorContextRef, rc;
        @no_rc read_before_execution: BeforeSerializationInterceptorContextRef;
    }
}

/// The phase between two consecutive hooks, named for the work the orchestrator does there.
fn phase(from: &str, to: &str) -> &'static str {
    match (from, to) {
        ("start", "read_before_execution") => "1 request built, operation config and plugins",
        ("read_before_execution", "read_before_serialization") => "2 before serialisation",
        ("read_before_serialization", "read_after_serialization") => "3 serialisation (JSON)",
        ("read_after_serialization", "read_before_attempt") => "4 retry strategy, attempt set-up",
        ("read_before_attempt", "read_before_signing") => "5 identity + endpoint resolution",
        ("read_before_signing", "read_after_signing") => "6 SigV4 signing",
        ("read_after_signing", "read_before_transmit") => "7 before transmit",
        ("read_before_transmit", "read_after_transmit") => "8 transmit (HTTP client, TLS, socket)",
        ("read_after_transmit", "read_before_deserialization") => "9 after transmit",
        ("read_before_deserialization", "read_after_deserialization") => {
            "10 body read + deserialisation"
        }
        ("read_after_deserialization", "read_after_attempt") => "11 retry classification",
        ("read_after_attempt", "read_after_execution") => "12 after attempt",
        ("read_after_execution", "end") => "13 output to the adapter's result",
        _ => "other (a retry or an unexpected order)",
    }
}

struct Variant {
    label: &'static str,
    close: bool,
    /// The lean call path (no phase marks: whole calls only).
    lean: bool,
    /// Phase marks on the SDK path (an interceptor on every hook).
    phases: bool,
}

/// Per phase, the CPU of every call (claims and completions apart).
type Phases = BTreeMap<(&'static str, &'static str), Vec<Duration>>;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    // The SDK's standard environment, set before any thread exists.
    // SAFETY: single-threaded at this point (no runtime, no stand-in started yet).
    unsafe {
        for (k, v) in [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK000000"),
            ("AWS_SECRET_ACCESS_KEY", "bench-secret-key-not-real"),
            ("AWS_SESSION_TOKEN", "bench-session-token"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(k, v);
        }
    }
    let ca = TestCa::generate()?;
    // The stand-ins on a runtime of their own, on other threads: their CPU is not measured.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let latency = Duration::from_millis(1);
    let alive = servers.block_on(DynamoDbEndpoint::start_with(latency, Some(&ca), false))?;
    let close = servers.block_on(DynamoDbEndpoint::start_with(latency, Some(&ca), true))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let variants = [
        Variant {
            label: "SDK path, store keeps connections (by phase)",
            close: false,
            lean: false,
            phases: true,
        },
        Variant {
            label: "SDK path, store closes every connection (by phase)",
            close: true,
            lean: false,
            phases: true,
        },
        Variant {
            label: "SDK path, store keeps connections (no phase marks)",
            close: false,
            lean: false,
            phases: false,
        },
        Variant {
            label: "lean path, store keeps connections",
            close: false,
            lean: true,
            phases: false,
        },
        Variant {
            label: "lean path, store closes every connection",
            close: true,
            lean: true,
            phases: false,
        },
    ];
    let mut summary = Vec::new();
    println!(
        "store-cpu: {} keyed executes per variant after {} unmeasured, thread CPU time, medians in µs\n",
        cli.executes, cli.warmup
    );
    for v in &variants {
        let url = if v.close { close.url() } else { alive.url() };
        let marks = Marks::default();
        let store = rt.block_on(async {
            let sdk = cloudbot_trigger::sdk::aws_config(
                Duration::from_secs(60),
                Some(ca.ca_pem().as_bytes()),
            )
            .await?;
            let mut config = cloudbot_trigger::sdk::dynamodb_config(&sdk).endpoint_url(url);
            if v.phases {
                config = config.interceptor(PhaseTimer(marks.clone()));
            }
            let client = aws_sdk_dynamodb::Client::from_conf(config.build());
            let table = "bench-table".to_owned();
            let store = if v.lean {
                DynamoDbStore::new(client, table)
            } else {
                DynamoDbStore::sdk_only(client, table)
            };
            // The init's warm-up, as in the function: on the lean path the call it learns from.
            let warm = warm_up_dynamodb(&store, KEY_ATTRIBUTE, Duration::from_secs(5)).await;
            if warm != StoreWarmUp::Answered || store.is_lean() != v.lean {
                return Err(
                    format!("{}: warm-up {warm:?}, lean {}", v.label, store.is_lean()).into(),
                );
            }
            Ok::<_, Box<dyn std::error::Error>>(store)
        })?;
        let mut phases = Phases::new();
        let mut totals = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..cli.warmup + cli.executes {
            let measured = n >= cli.warmup;
            let (claim, update) = rt.block_on(keyed_execute(&store, &marks, n))?;
            if measured {
                totals.0.push(claim.0);
                totals.1.push(update.0);
                totals.2.push(claim.0 + update.0);
                for (op, marks) in [("claim", claim.1), ("complete", update.1)] {
                    for w in marks.windows(2) {
                        phases
                            .entry((op, phase(w[0].0, w[1].0)))
                            .or_default()
                            .push(w[1].1.saturating_sub(w[0].1));
                    }
                }
            } else {
                marks.take();
            }
        }
        println!("## {}\n", v.label);
        println!("| phase | claim (PutItem) µs | completion (UpdateItem) µs |");
        println!("|---|---|---|");
        let names: std::collections::BTreeSet<&str> = phases.keys().map(|(_, p)| *p).collect();
        let mut names: Vec<&str> = names.into_iter().collect();
        names.sort_by_key(|n| n.split(' ').next().and_then(|d| d.parse::<u32>().ok()));
        // Without phase marks there is only the whole call.
        for name in names.into_iter().filter(|_| v.phases) {
            let mut cell = |op| {
                phases
                    .get_mut(&(op, name))
                    .map_or("–".to_owned(), |v| us(median(v)))
            };
            let (c, u) = (cell("claim"), cell("complete"));
            println!("| {name} | {c} | {u} |");
        }
        println!(
            "| **whole call** | **{}** | **{}** |",
            us(median(&mut totals.0)),
            us(median(&mut totals.1))
        );
        let (c, u, both) = (
            median(&mut totals.0),
            median(&mut totals.1),
            median(&mut totals.2),
        );
        println!(
            "\nclaim + completion per keyed execute: median {} µs\n",
            us(both)
        );
        summary.push((v.label, c, u, both));
    }
    println!("## side by side (medians, µs of the calling thread's CPU)\n");
    println!("| variant | claim (PutItem) | completion (UpdateItem) | claim + completion |");
    println!("|---|---|---|---|");
    for (label, c, u, both) in &summary {
        println!("| {label} | {} | {} | {} |", us(*c), us(*u), us(*both));
    }
    println!();
    let calls = alive.calls();
    let closed = close.calls();
    println!(
        "stand-in calls: keeps {} PutItem / {} UpdateItem / {} GetItem, closes {} / {} / {}",
        calls.put_item,
        calls.update_item,
        calls.get_item,
        closed.put_item,
        closed.update_item,
        closed.get_item
    );
    Ok(())
}

type Timed = (Duration, Vec<(&'static str, Duration)>);

/// One keyed execute's store calls, as the guard makes them: a claim, then the completion.
async fn keyed_execute(
    store: &DynamoDbStore,
    marks: &Marks,
    n: usize,
) -> Result<(Timed, Timed), Box<dyn std::error::Error>> {
    let key = RecordKey::request(&format!("bench-{n:08}"))?;
    let fingerprint = Fingerprint::from_stored("ab".repeat(32));
    let now_ms = 1_800_000_000_000;
    let claim = NewClaim {
        key: &key,
        owner: "00000000-0000-4000-8000-000000000000",
        fingerprint: &fingerprint,
        bot_endpoint: "https://api.c-bot.pro/v1/abcdef/bots/echo/jobs",
        request_id: "11111111-2222-4333-8444-555555555555",
        now_ms,
        in_flight_until_ms: now_ms + 60_000,
        expires_at_ms: now_ms + 86_400_000,
    };
    let start = thread_cpu();
    marks.take();
    let won = store.claim(&claim).await?;
    let end = thread_cpu();
    let claim_marks = with_ends(marks.take(), start, end);
    if !matches!(won, ClaimWrite::Won) {
        return Err("the stand-in refused a claim".into());
    }
    let result = r#"{"operation":"execute","job_id":"j-0001","status":"queued","job_reference_endpoint":"https://api.c-bot.pro/v1/abcdef/jobs/j-0001"}"#;
    let update = Update::Complete {
        result,
        job_reference_endpoint: "https://api.c-bot.pro/v1/abcdef/jobs/j-0001",
    };
    let expected = Expected {
        owner: claim.owner,
        state: State::InProgress,
    };
    let start2 = thread_cpu();
    let written = store.update(&key, expected, &update, now_ms + 40).await?;
    let end2 = thread_cpu();
    let update_marks = with_ends(marks.take(), start2, end2);
    if !matches!(written, UpdateWrite::Written) {
        return Err("the stand-in refused a completion".into());
    }
    Ok(((end - start, claim_marks), (end2 - start2, update_marks)))
}

fn with_ends(
    mut marks: Vec<(&'static str, Duration)>,
    start: Duration,
    end: Duration,
) -> Vec<(&'static str, Duration)> {
    marks.insert(0, ("start", start));
    marks.push(("end", end));
    marks
}
