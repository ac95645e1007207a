//! The Lambda CPU model: each sandbox process in its own cgroup v1 `cpu` group, unthrottled
//! until its first `GET /runtime/invocation/next` (the end of init), then limited to
//! `memory / 1769` of one core per CFS period for the invoke phase. For each memory size and
//! period, function and floor side by side: cold init, the first invocation (and the CPU time
//! it used), warm p50/p99, and the throughput one sandbox sustains back to back. Where the model
//! comes from and what it leaves out: docs/benchmarks.md, "CPU model".

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use std::collections::HashSet;

use cloudbot_emulator::{
    DEMO_ACCESS_TOKEN, DEMO_PUBLIC_ID, DEMO_SECRET_KEY, Emulator, EmulatorOptions, Seed, TestCa,
};

use super::{
    Harness, INVOKE_TIMEOUT, SECRET_ID, Settings, demo_secret, execute_event, expect_job,
    function_env, require_binaries,
};
use crate::BenchError;
use crate::report::{CpuFigures, CpuModel, CpuRow};
use crate::stats::{Summary, ms};
use cloudbot_testkit::cgroup::{Cgroup, Controller};
use cloudbot_testkit::dynamodb::{DynamoDbEndpoint, StoreCalls};
use cloudbot_testkit::emulator::ECHO_BOT;
use cloudbot_testkit::sandbox::Sandbox;
use cloudbot_testkit::secrets::SecretsEndpoint;

/// The function's test-only switch for an extra CA (its home: `cloudbot_trigger::config`; the
/// harness does not link the function's library, and a mismatch fails every CPU-model run).
const TEST_ONLY_EXTRA_CA_VAR: &str = "CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE";

/// Memory size at which Lambda gives a function one full vCPU (AWS documentation).
pub const FULL_VCPU_MB: u32 = 1769;

/// One memory size and CFS period of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuConfig {
    /// Function memory (MB).
    pub memory_mb: u32,
    /// CFS period.
    pub period: Duration,
}

impl CpuConfig {
    /// CPU time allowed per period in the invoke phase: `memory / 1769` of one core.
    pub fn quota(&self) -> Duration {
        self.period * self.memory_mb / FULL_VCPU_MB
    }
}

/// The template's default `FunctionMemorySize`, read from the template's text.
pub fn template_memory(template: &Path) -> Result<u32, BenchError> {
    let text = std::fs::read_to_string(template)
        .map_err(|e| BenchError::msg(format!("{}: {e}", template.display())))?;
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim() != "FunctionMemorySize:");
    lines.next();
    lines
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            BenchError::msg(format!(
                "{}: no FunctionMemorySize default",
                template.display()
            ))
        })
}

/// Table name the keyed subjects are configured with (the stand-ins accept any).
const TABLE: &str = "cloudbot-bench-idempotency";
/// The run ledger's table name with `--cpu-ledger` (on the same stand-in).
const LEDGER_TABLE: &str = "cloudbot-bench-runs";

/// The CPU model's own upstreams, HTTPS as on AWS: an in-process emulator, a Secrets Manager
/// stand-in and two DynamoDB stand-ins (one keeps its connections, one closes each after its
/// answer) serving certificates of a test CA generated for the run, which the function trusts
/// through its test-only switch. (The other scenarios keep plain-HTTP upstreams.)
pub(super) struct TlsUpstreams {
    pub(super) emulator: Emulator,
    secrets: SecretsEndpoint,
    store_alive: DynamoDbEndpoint,
    store_close: DynamoDbEndpoint,
    pub(super) ca: TestCa,
    pub(super) bot_endpoint: String,
    /// The function's environment against these upstreams, without a store.
    pub(super) env: Vec<(String, String)>,
}

impl TlsUpstreams {
    pub(super) async fn start(
        settings: &Settings,
        base_env: &[(String, String)],
    ) -> Result<Self, BenchError> {
        let ca = TestCa::generate().map_err(|e| BenchError::msg(format!("test CA: {e}")))?;
        let emulator = Emulator::start_with(EmulatorOptions::new(Seed::demo()).tls(ca.clone()))
            .await
            .map_err(|e| BenchError::msg(format!("TLS emulator: {e}")))?;
        let secrets =
            SecretsEndpoint::start_with(SECRET_ID, &demo_secret(), None, Some(&ca)).await?;
        let store_alive =
            DynamoDbEndpoint::start_with(super::store::STORE_LATENCY, Some(&ca), false).await?;
        let store_close =
            DynamoDbEndpoint::start_with(super::store::STORE_LATENCY, Some(&ca), true).await?;
        let ca_file = settings.work.join("test-ca.pem");
        std::fs::write(&ca_file, ca.ca_pem())?;
        let bot_endpoint = format!(
            "{}/{DEMO_PUBLIC_ID}/bots/{ECHO_BOT}/jobs",
            emulator.base_url()
        );
        let mut env = function_env(&emulator.base_url(), &bot_endpoint, &secrets.url());
        // The run's extra variables, except the plain-HTTP endpoints they may not override.
        for (k, v) in base_env {
            if !env.iter().any(|(name, _)| name == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        env.push((
            TEST_ONLY_EXTRA_CA_VAR.to_owned(),
            ca_file.to_string_lossy().into_owned(),
        ));
        Ok(TlsUpstreams {
            emulator,
            secrets,
            store_alive,
            store_close,
            ca,
            bot_endpoint,
            env,
        })
    }

    /// The environment of a subject: the shared one, plus the idempotency table on `store`
    /// (and the run ledger's with `ledger`).
    fn env_of(&self, store: Option<StoreMode>, ledger: bool) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        if let Some(mode) = store {
            let endpoint = match mode {
                StoreMode::KeepAlive => &self.store_alive,
                StoreMode::Close => &self.store_close,
            };
            env.push(("CLOUDBOT_IDEMPOTENCY_TABLE".to_owned(), TABLE.to_owned()));
            env.push(("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), endpoint.url()));
            if ledger {
                env.push((
                    "CLOUDBOT_RUN_LEDGER_TABLE".to_owned(),
                    LEDGER_TABLE.to_owned(),
                ));
            }
        }
        env
    }

    /// The environment of `subject`: [`Self::env_of`] its store, and the POST floor's token pair.
    fn env_for(&self, subject: &Subject, ledger: bool) -> Vec<(String, String)> {
        let mut env = self.env_of(subject.store(), ledger || subject.ledger);
        if subject.kind == Kind::FloorPost {
            env.push((
                "FLOOR_POST_ACCESS_TOKEN".to_owned(),
                DEMO_ACCESS_TOKEN.to_owned(),
            ));
            env.push((
                "FLOOR_POST_SECRET_KEY".to_owned(),
                DEMO_SECRET_KEY.to_owned(),
            ));
        }
        env
    }

    /// Times `n` executes on one warm keep-alive HTTPS connection.
    async fn direct_execute(&self, n: usize) -> Result<Vec<Duration>, BenchError> {
        let cert = reqwest::Certificate::from_pem(self.ca.ca_pem().as_bytes())
            .map_err(|e| BenchError::msg(format!("test CA: {e}")))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([cert])
            .build()
            .map_err(|e| BenchError::msg(format!("direct client: {e}")))?;
        let body = serde_json::json!({ "input": { "message": "bench" } }).to_string();
        let mut samples = Vec::with_capacity(n);
        // One call first so every timed one reuses the connection.
        for i in 0..=n {
            let start = Instant::now();
            let resp = client
                .post(&self.bot_endpoint)
                .header("content-type", "application/json")
                .header("content-language", "en")
                .header("access-token", DEMO_ACCESS_TOKEN)
                .header("secret-key", DEMO_SECRET_KEY)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| BenchError::msg(format!("direct execute: {}", e.without_url())))?;
            let status = resp.status();
            let _ = resp.bytes().await;
            if !status.is_success() {
                return Err(BenchError::msg(format!("direct execute: HTTP {status}")));
            }
            if i > 0 {
                samples.push(start.elapsed());
            }
        }
        Ok(samples)
    }

    /// No job lost or created twice (as [`super::check_jobs`], on the in-process emulator).
    pub(super) fn check_jobs(&self, job_ids: &[String]) -> Result<(), BenchError> {
        let unique: HashSet<&String> = job_ids.iter().collect();
        let known: HashSet<String> = self.emulator.jobs().into_iter().map(|j| j.job_id).collect();
        let created = self.emulator.stats().jobs_created;
        if unique.len() != job_ids.len()
            || created != job_ids.len() as u64
            || job_ids.iter().any(|id| !known.contains(id))
        {
            return Err(BenchError::msg(format!(
                "cpu model: {} results, {} distinct, {created} jobs created",
                job_ids.len(),
                unique.len()
            )));
        }
        Ok(())
    }
}

/// What one sandbox measured.
struct Run {
    cold_init: Duration,
    /// CPU time of the process up to its first poll (init, unthrottled).
    init_cpu: Duration,
    first: Duration,
    /// Time the group was throttled during the first invocation.
    first_throttled: Duration,
    first_cpu: Duration,
    warm: Vec<Duration>,
    warm_cpu: Vec<Duration>,
    throughput: f64,
    throttled_periods: u64,
    /// What a keyed subject's store answered during this run (init's warm-up included).
    store_calls: StoreCalls,
    /// Events of this run: first, warm and back to back.
    events: usize,
}

/// The event every invocation of `floor` gets (echo, no upstream).
fn floor_event() -> Bytes {
    Bytes::from_static(b"{\"operation\":\"execute\",\"input\":{\"message\":\"bench\"}}")
}

/// Which DynamoDB stand-in a keyed subject's idempotency table is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Keeps its connections (as DynamoDB does).
    KeepAlive,
    /// Closes every connection after its answer.
    Close,
}

/// What a subject is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The floor: an echo event, no upstream.
    Floor,
    /// The POST floor (`floor-post`): the plain execute's event, forwarded as one HTTPS POST.
    FloorPost,
    /// A plain execute (no idempotency key, no table).
    Plain,
    /// An execute with its own `idempotency_key`, the table on a stand-in: claim, POST, complete.
    Keyed(StoreMode),
}

/// One binary under the model, started in turn with the others.
struct Subject {
    label: String,
    bin: PathBuf,
    kind: Kind,
    /// A keyed subject also keeps the run ledger on its store (or every keyed subject does,
    /// with `--cpu-ledger`).
    ledger: bool,
}

impl Subject {
    fn store(&self) -> Option<StoreMode> {
        match self.kind {
            Kind::Keyed(mode) => Some(mode),
            _ => None,
        }
    }
}

/// Every subject's runs for one configuration.
struct Rounds {
    config: CpuConfig,
    runs: Vec<Vec<Run>>,
}

impl Harness {
    /// The upstreams, their direct baseline, and `starts` rounds of every subject for every
    /// configuration. Each round starts the subjects in a rotated order, so machine noise and
    /// the position in a round hit every subject alike.
    async fn cpu_rounds(
        &mut self,
        configs: &[CpuConfig],
        subjects: &[Subject],
    ) -> Result<(Summary, Vec<Rounds>), BenchError> {
        let up = TlsUpstreams::start(&self.settings, &self.env).await?;
        up.emulator.set_latency(self.settings.latency);
        // The upstream's own service time, as the leanest client sees it (a warm keep-alive
        // HTTPS connection): what the budget subtracts from the first invocation.
        let direct = up.direct_execute(50).await?;
        let direct = Summary::of(&direct).ok_or_else(|| BenchError::msg("no samples"))?;
        up.emulator.reset();
        up.emulator.set_latency(self.settings.latency);
        up.secrets.reset();
        up.store_alive.reset();
        up.store_close.reset();
        let mut job_ids = Vec::new();
        let mut all = Vec::with_capacity(configs.len());
        for config in configs {
            eprintln!(
                "cpu model: {} MB, period {} ms: {} starts each",
                config.memory_mb,
                config.period.as_millis(),
                self.settings.cpu_starts
            );
            let mut runs: Vec<Vec<Run>> = subjects.iter().map(|_| Vec::new()).collect();
            for start in 0..self.settings.cpu_starts {
                for k in 0..subjects.len() {
                    let i = (start + k) % subjects.len();
                    let run = self
                        .cpu_run(&up, *config, &subjects[i], &mut job_ids)
                        .await?;
                    runs[i].push(run);
                }
            }
            all.push(Rounds {
                config: *config,
                runs,
            });
        }
        up.check_jobs(&job_ids)?;
        // Every keyed execute claimed and completed its record: 1 PutItem + 1 UpdateItem each
        // (+ 1 UpdateItem of the run ledger with `--cpu-ledger`);
        // every keyed start read at most once during init (the DynamoDB warm-up; a variant
        // without it, weighed side by side, reads none).
        for (mode, store) in [
            (StoreMode::KeepAlive, &up.store_alive),
            (StoreMode::Close, &up.store_close),
        ] {
            let calls = store.calls();
            let per_start = (1 + self.settings.cpu_warm + self.settings.cpu_burst) as u64;
            let starts = keyed_starts(&all, subjects, mode, |_| true);
            let executes = starts * per_start;
            // With the ledger, each started run is also one ledger UpdateItem.
            let ledger_starts = keyed_starts(&all, subjects, mode, |s| {
                s.ledger || self.settings.cpu_ledger
            });
            let updates = executes + ledger_starts * per_start;
            if calls.put_item != executes
                || calls.update_item != updates
                || calls.get_item > starts
                || calls.other != 0
            {
                return Err(BenchError::msg(format!(
                    "cpu model: {starts} keyed starts and {executes} keyed executes on the \
                     {mode:?} store made {calls:?}"
                )));
            }
        }
        Ok((direct, all))
    }

    /// Runs the model for every configuration, against HTTPS upstreams of its own.
    pub(super) async fn cpu_model(
        &mut self,
        configs: &[CpuConfig],
    ) -> Result<CpuModel, BenchError> {
        let subjects = [
            Subject {
                label: "function".to_owned(),
                bin: self.settings.bootstrap.clone(),
                kind: Kind::Plain,
                ledger: false,
            },
            Subject {
                label: "floor".to_owned(),
                bin: self.settings.floor.clone(),
                kind: Kind::Floor,
                ledger: false,
            },
            Subject {
                label: "function keyed, store keeps connections".to_owned(),
                bin: self.settings.bootstrap.clone(),
                kind: Kind::Keyed(StoreMode::KeepAlive),
                ledger: false,
            },
            Subject {
                label: "function keyed, store closes connections".to_owned(),
                bin: self.settings.bootstrap.clone(),
                kind: Kind::Keyed(StoreMode::Close),
                ledger: false,
            },
            Subject {
                label: "POST floor".to_owned(),
                bin: self.settings.floor_post.clone(),
                kind: Kind::FloorPost,
                ledger: false,
            },
            Subject {
                label: "function keyed with the run ledger, store keeps connections".to_owned(),
                bin: self.settings.bootstrap.clone(),
                kind: Kind::Keyed(StoreMode::KeepAlive),
                ledger: true,
            },
        ];
        let (direct, all) = self.cpu_rounds(configs, &subjects).await?;
        let follow = self.follow_paths(configs).await?;
        let mut rows = Vec::with_capacity(all.len());
        for rounds in all {
            rows.push(CpuRow {
                memory_mb: rounds.config.memory_mb,
                period: rounds.config.period,
                quota: rounds.config.quota(),
                template_default: self.settings.template_memory == Some(rounds.config.memory_mb),
                function: figures(&rounds.runs[0])?,
                floor: figures(&rounds.runs[1])?,
                keyed_alive: figures(&rounds.runs[2])?,
                keyed_close: figures(&rounds.runs[3])?,
                floor_post: figures(&rounds.runs[4])?,
                keyed_ledger: figures(&rounds.runs[5])?,
            });
        }
        Ok(CpuModel {
            rows,
            direct,
            latency: self.settings.latency,
            store_latency: super::store::STORE_LATENCY,
            starts: self.settings.cpu_starts,
            warm: self.settings.cpu_warm,
            burst: self.settings.cpu_burst,
            follow,
        })
    }

    /// One sandbox under the model: spawn, init unthrottled, throttle, first, warm, burst.
    async fn cpu_run(
        &mut self,
        up: &TlsUpstreams,
        config: CpuConfig,
        subject: &Subject,
        job_ids: &mut Vec<String>,
    ) -> Result<Run, BenchError> {
        let what = match subject.kind {
            Kind::Floor => "floor-cpu",
            Kind::FloorPost => "floor-post-cpu",
            Kind::Plain => "function-cpu",
            Kind::Keyed(StoreMode::KeepAlive) => "keyed-alive-cpu",
            Kind::Keyed(StoreMode::Close) => "keyed-close-cpu",
        };
        let store = match subject.store() {
            Some(StoreMode::KeepAlive) => Some(&up.store_alive),
            Some(StoreMode::Close) => Some(&up.store_close),
            None => None,
        };
        // Runs are sequential, so the stand-in's counts across one run are this run's calls.
        let calls_before = store.map(DynamoDbEndpoint::calls).unwrap_or_default();
        let group = Cgroup::create(Controller::Cpu)?;
        let log = self.log_path(what);
        let env = up.env_for(subject, self.settings.cpu_ledger);
        let mut sb = Sandbox::spawn(&subject.bin, &env, &log).await?;
        let pid = sb
            .pid()
            .ok_or_else(|| BenchError::msg("bootstrap exited at once"))?;
        // Joined before it can reach its first poll; the new group has no quota yet.
        group.add(pid)?;
        let cold_init = sb.cold_init().await?;
        // Parked in its first poll: everything so far is init.
        let init_cpu = sb.cpu_time()?;
        group.set_cpu_quota(config.quota(), config.period)?;
        let mut sandbox = Throttled {
            sb,
            kind: subject.kind,
            endpoint: &up.bot_endpoint,
            n: job_ids.len() + 1_000_000 * usize::from(subject.kind == Kind::Floor),
        };
        let throttled_before = group.throttled().map_or(Duration::ZERO, |(_, t)| t);
        let (first, first_cpu) = sandbox.timed(job_ids).await?;
        // Throttled time inside the first invocation: a stall a cold caller waits through.
        let first_throttled = group
            .throttled()
            .map_or(Duration::ZERO, |(_, t)| t.saturating_sub(throttled_before));
        let mut warm = Vec::with_capacity(self.settings.cpu_warm);
        let mut warm_cpu = Vec::with_capacity(self.settings.cpu_warm);
        for _ in 0..self.settings.cpu_warm {
            // Measured as the first one, so the two compare: their difference is first-use work.
            let (took, cpu) = sandbox.timed(job_ids).await?;
            warm.push(took);
            warm_cpu.push(cpu);
        }
        let throughput = sandbox.burst(self.settings.cpu_burst, job_ids).await?;
        let throttled_periods = group.throttled().map_or(0, |(periods, _)| periods);
        sandbox.sb.stop().await?;
        drop(group);
        let calls_after = store.map(DynamoDbEndpoint::calls).unwrap_or_default();
        let store_calls = StoreCalls {
            put_item: calls_after.put_item - calls_before.put_item,
            update_item: calls_after.update_item - calls_before.update_item,
            get_item: calls_after.get_item - calls_before.get_item,
            other: calls_after.other - calls_before.other,
        };
        Ok(Run {
            cold_init,
            init_cpu,
            first,
            first_throttled,
            first_cpu,
            warm,
            warm_cpu,
            throughput,
            throttled_periods,
            store_calls,
            events: 1 + self.settings.cpu_warm + self.settings.cpu_burst,
        })
    }
}

/// A sandbox under the model after its cold start, and the events it is sent.
struct Throttled<'a> {
    sb: Sandbox,
    kind: Kind,
    endpoint: &'a str,
    /// The last event's number (each execute has its own input).
    n: usize,
}

impl Throttled<'_> {
    fn event(&mut self) -> Bytes {
        self.n += 1;
        match self.kind {
            Kind::Floor => floor_event(),
            Kind::Plain | Kind::FloorPost => execute_event(self.endpoint, self.n),
            Kind::Keyed(_) => keyed_event(self.endpoint, self.n),
        }
    }

    /// One invocation: its latency and its CPU time, which includes the work after its answer,
    /// up to the next poll.
    async fn timed(
        &mut self,
        job_ids: &mut Vec<String>,
    ) -> Result<(Duration, Duration), BenchError> {
        let polls = self.sb.api.polls();
        let cpu_before = self.sb.cpu_time()?;
        let event = self.event();
        let o = self.sb.api.invoke(event, INVOKE_TIMEOUT).await?;
        record(&o.result, &self.sb, self.kind, job_ids)?;
        self.sb.api.polled(polls + 1).await;
        Ok((o.elapsed(), self.sb.cpu_time()?.saturating_sub(cpu_before)))
    }

    /// `count` events back to back: every event queued at once, so the sandbox never waits for
    /// the harness; a stall between an answer and the next poll shows in the wall time, not in
    /// latencies. Returns the throughput (events per second).
    async fn burst(&mut self, count: usize, job_ids: &mut Vec<String>) -> Result<f64, BenchError> {
        let queued = (0..count)
            .map(|_| {
                let event = self.event();
                self.sb.api.submit(event)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut started: Option<Instant> = None;
        let mut ended = Instant::now();
        for q in queued {
            let o = q.answer(INVOKE_TIMEOUT).await?;
            record(&o.result, &self.sb, self.kind, job_ids)?;
            started = Some(started.map_or(o.handed_out, |s| s.min(o.handed_out)));
            ended = o.received;
        }
        let wall = started.map_or(Duration::ZERO, |s| ended.saturating_duration_since(s));
        Ok(count as f64 / wall.as_secs_f64().max(1e-9))
    }
}

/// Checks one answer: the floor's must be an echo, the function's and the POST floor's a new
/// job (kept for the final accounting).
fn record(
    result: &Result<Bytes, cloudbot_testkit::runtime_api::ErrorReport>,
    sb: &Sandbox,
    kind: Kind,
    job_ids: &mut Vec<String>,
) -> Result<(), BenchError> {
    match kind {
        Kind::Floor => match result {
            Ok(_) => Ok(()),
            Err(e) => Err(BenchError::msg(format!("floor failed: {e:?}"))),
        },
        Kind::FloorPost => {
            job_ids.push(upstream_job_id(result)?);
            Ok(())
        }
        Kind::Plain | Kind::Keyed(_) => {
            job_ids.push(expect_job(result, sb)?);
            Ok(())
        }
    }
}

/// The job id of the POST floor's answer: the emulator's own execute answer, forwarded.
fn upstream_job_id(
    result: &Result<Bytes, cloudbot_testkit::runtime_api::ErrorReport>,
) -> Result<String, BenchError> {
    let body = result
        .as_ref()
        .map_err(|e| BenchError::msg(format!("POST floor failed: {e:?}")))?;
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("job_id")?.as_str().map(str::to_owned))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            BenchError::msg(format!(
                "POST floor: no job_id in {}",
                String::from_utf8_lossy(body)
            ))
        })
}

/// The `n`-th keyed execute of the model: its own `idempotency_key`, so it claims a new record.
fn keyed_event(bot_endpoint: &str, n: usize) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "operation": "execute",
            "idempotency_key": format!("bench-cpu-{n}"),
            "bot_endpoint": bot_endpoint,
            "input": { "message": format!("bench keyed {n}") },
        })
        .to_string(),
    )
}

/// Keyed starts (sandboxes) of the subjects on `mode`'s store that `which` selects, over every
/// configuration.
fn keyed_starts(
    all: &[Rounds],
    subjects: &[Subject],
    mode: StoreMode,
    which: impl Fn(&Subject) -> bool,
) -> u64 {
    let runs: usize = all
        .iter()
        .map(|r| {
            subjects
                .iter()
                .zip(&r.runs)
                .filter(|(s, _)| s.kind == Kind::Keyed(mode) && which(s))
                .map(|(_, runs)| runs.len())
                .sum::<usize>()
        })
        .sum();
    runs as u64
}

fn figures(runs: &[Run]) -> Result<CpuFigures, BenchError> {
    let no = || BenchError::msg("no cpu-model runs");
    let of = |f: &dyn Fn(&Run) -> Duration| {
        Summary::of(&runs.iter().map(f).collect::<Vec<_>>()).ok_or_else(no)
    };
    let warm: Vec<Duration> = runs.iter().flat_map(|r| r.warm.iter().copied()).collect();
    let warm_cpu: Vec<Duration> = runs
        .iter()
        .flat_map(|r| r.warm_cpu.iter().copied())
        .collect();
    let mut throughput: Vec<f64> = runs.iter().map(|r| r.throughput).collect();
    throughput.sort_by(f64::total_cmp);
    Ok(CpuFigures {
        cold_init: of(&|r| r.cold_init)?,
        first: of(&|r| r.first)?,
        cold_total: of(&|r| r.cold_init + r.first)?,
        init_cpu: of(&|r| r.init_cpu)?,
        cold_cpu: of(&|r| r.init_cpu + r.first_cpu)?,
        first_cpu: of(&|r| r.first_cpu)?,
        first_throttled: of(&|r| r.first_throttled)?,
        first_stalled: runs
            .iter()
            .filter(|r| r.first_throttled > Duration::ZERO)
            .count(),
        warm: Summary::of(&warm).ok_or_else(no)?,
        warm_cpu: Summary::of(&warm_cpu).ok_or_else(no)?,
        throughput: throughput
            .get(throughput.len() / 2)
            .copied()
            .unwrap_or_default(),
        throttled_periods: runs.iter().map(|r| r.throttled_periods).sum(),
        store_calls: runs
            .iter()
            .fold(StoreCalls::default(), |sum, r| StoreCalls {
                put_item: sum.put_item + r.store_calls.put_item,
                update_item: sum.update_item + r.store_calls.update_item,
                get_item: sum.get_item + r.store_calls.get_item,
                other: sum.other + r.store_calls.other,
            }),
        starts: runs.len(),
        events: runs.iter().map(|r| r.events).sum(),
    })
}

/// `--only-cpu`: the CPU model alone, printed as a table (no report), for the function, the
/// floor and every `--variant` side by side; each round starts them in a rotated order. The
/// quickest way to weigh a lever on the throttled cold path against the shipped build.
pub async fn only_cpu(
    settings: Settings,
    variants: Vec<(String, PathBuf)>,
) -> Result<(), BenchError> {
    let mut bins = vec![
        &settings.bootstrap,
        &settings.floor,
        &settings.floor_post,
        &settings.emulator,
    ];
    bins.extend(variants.iter().map(|(_, bin)| bin));
    require_binaries(&bins.iter().map(|b| b.as_path()).collect::<Vec<_>>())?;
    let configs = settings.cpu_configs.clone();
    let mut subjects = vec![
        Subject {
            label: settings.bootstrap.display().to_string(),
            bin: settings.bootstrap.clone(),
            kind: Kind::Plain,
            ledger: false,
        },
        Subject {
            label: settings.floor.display().to_string(),
            bin: settings.floor.clone(),
            kind: Kind::Floor,
            ledger: false,
        },
        Subject {
            label: settings.floor_post.display().to_string(),
            bin: settings.floor_post.clone(),
            kind: Kind::FloorPost,
            ledger: false,
        },
    ];
    let keyed = settings.cpu_keyed.clone();
    subjects.extend(variants.into_iter().map(|(label, bin)| Subject {
        label,
        bin,
        kind: Kind::Plain,
        ledger: false,
    }));
    // Every plain subject again, keyed, on each store asked for (`--cpu-keyed`).
    let plain: Vec<(String, PathBuf)> = subjects
        .iter()
        .filter(|s| s.kind == Kind::Plain)
        .map(|s| (s.label.clone(), s.bin.clone()))
        .collect();
    for mode in keyed {
        for (label, bin) in &plain {
            subjects.push(Subject {
                label: format!("{label} keyed ({mode:?})"),
                bin: bin.clone(),
                kind: Kind::Keyed(mode),
                ledger: false,
            });
        }
    }
    let mut h = Harness::start(settings).await?;
    let (direct, all) = h.cpu_rounds(&configs, &subjects).await?;
    println!(
        "direct execute on a warm HTTPS connection: p50 {} ms; medians of {} starts\n",
        ms(direct.p50),
        h.settings.cpu_starts
    );
    println!(
        "| binary | memory MB | period ms | cold init ms | first invocation ms | init + first ms | init CPU ms | first CPU ms (min) | init + first CPU ms | warm CPU p50 ms | throttled periods (sum) | warm p50 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for rounds in &all {
        for (subject, runs) in subjects.iter().zip(&rounds.runs) {
            let f = figures(runs)?;
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
                subject.label,
                rounds.config.memory_mb,
                rounds.config.period.as_millis(),
                ms(f.cold_init.p50),
                ms(f.first.p50),
                ms(f.cold_total.p50),
                ms(f.init_cpu.p50),
                ms(f.first_cpu.p50),
                ms(f.first_cpu.min),
                ms(f.cold_cpu.p50),
                ms(f.warm_cpu.p50),
                f.throttled_periods,
                ms(f.warm.p50),
            );
        }
    }
    h.finish().await;
    Ok(())
}
