//! `cloudbot-bench`: runs every benchmark scenario side by side on this machine and writes
//! BENCHMARKS.md. Exits non-zero only on functional breakage (a process that does not start,
//! an unexpected function error, a lost or duplicated job), never because a figure is slow:
//! a benchmark reports, it does not judge. See docs/benchmarks.md for what each figure means.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudbot_bench::BenchError;
use cloudbot_bench::emulator::EmulatorProcess;
use cloudbot_bench::report::{
    Artifact, ColdInit, Counts, Load, Machine, Report, TlsProvider, TlsStart, Warm, write_report,
};
use cloudbot_bench::sandbox::Sandbox;
use cloudbot_bench::secrets::SecretsEndpoint;
use cloudbot_bench::stats::{Summary, ms};
use serde_json::Value;

/// Secret name the function is configured with; the value is the emulator's demo token pair.
const SECRET_ID: &str = "cloudbot/bench";
/// How long one invocation may take before the harness calls it lost.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Error types the load test may see because it injected them: a 503 answered before any job
/// exists. The function may classify a 503 on execute as `Unavailable` or, conservatively (a 503
/// from a proxy may come after the job started), as `OutcomeUnknown`; both are accepted here,
/// and the job accounting below still proves no job was created for them.
const INJECTED_ERROR_TYPES: [&str; 2] = ["CloudBot.Unavailable", "CloudBot.OutcomeUnknown"];

struct Args {
    bootstrap: PathBuf,
    floor: PathBuf,
    emulator: PathBuf,
    tls_start: PathBuf,
    aws_lc_build: String,
    out: PathBuf,
    work: PathBuf,
    quick: bool,
    only_cold: bool,
    starts: usize,
    warm: usize,
    sandboxes: usize,
    per_sandbox: usize,
    latency: Duration,
    injected_faults: usize,
    artifacts: Vec<Artifact>,
    notices: Vec<String>,
    extra_env: Vec<(String, String)>,
    rustc: String,
    commit: String,
}

const USAGE: &str =
    "usage: cloudbot-bench --bootstrap PATH --floor PATH --emulator PATH [--out BENCHMARKS.md]
  [--work DIR] [--quick] [--only-cold] [--starts N] [--warm N] [--sandboxes N] [--per-sandbox M] [--latency-ms MS]
  [--faults K] [--artifact LABEL=PATH]... [--notice TEXT]... [--env KEY=VALUE]... [--rustc TEXT] [--commit TEXT]
  [--tls-start PATH] [--aws-lc-build TEXT]";

fn parse_args() -> Result<Args, BenchError> {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    let quick = raw.iter().any(|a| a == "--quick");
    let only_cold = raw.iter().any(|a| a == "--only-cold");
    raw.retain(|a| a != "--quick" && a != "--only-cold");
    let mut args = Args {
        bootstrap: PathBuf::from("target/release/cloudbot-trigger"),
        floor: PathBuf::from("target/release/lambda-floor"),
        emulator: PathBuf::from("target/release/cloudbot-emulator"),
        tls_start: PathBuf::from("target/release/tls-start"),
        aws_lc_build: "AWS_LC_SYS_NO_JITTER_ENTROPY unset (jitter entropy on)".to_owned(),
        out: PathBuf::from("BENCHMARKS.md"),
        work: std::env::temp_dir().join(format!("cloudbot-bench-{}", std::process::id())),
        quick,
        only_cold,
        starts: if quick { 3 } else { 20 },
        warm: if quick { 100 } else { 1000 },
        sandboxes: if quick { 2 } else { 4 },
        per_sandbox: if quick { 20 } else { 250 },
        latency: Duration::from_millis(5),
        injected_faults: if quick { 2 } else { 5 },
        artifacts: Vec::new(),
        notices: Vec::new(),
        extra_env: Vec::new(),
        rustc: String::new(),
        commit: String::new(),
    };
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .ok_or_else(|| BenchError::msg(format!("{flag} needs a value\n{USAGE}")))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|_| BenchError::msg(format!("{flag}: not a number: {value}")))
        };
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = PathBuf::from(&value),
            "--floor" => args.floor = PathBuf::from(&value),
            "--emulator" => args.emulator = PathBuf::from(&value),
            "--tls-start" => args.tls_start = PathBuf::from(&value),
            "--aws-lc-build" => args.aws_lc_build = value,
            "--out" => args.out = PathBuf::from(&value),
            "--work" => args.work = PathBuf::from(&value),
            "--starts" => args.starts = num()?.max(1),
            "--warm" => args.warm = num()?.max(1),
            "--sandboxes" => args.sandboxes = num()?.max(1),
            "--per-sandbox" => args.per_sandbox = num()?.max(1),
            "--latency-ms" => args.latency = Duration::from_millis(num()? as u64),
            "--faults" => args.injected_faults = num()?,
            "--artifact" => {
                let (label, path) = value.split_once('=').ok_or_else(|| {
                    BenchError::msg(format!("--artifact LABEL=PATH, got {value}"))
                })?;
                let bytes = std::fs::metadata(path)
                    .map_err(|e| BenchError::msg(format!("artifact {path}: {e}")))?
                    .len();
                args.artifacts.push(Artifact {
                    label: label.to_owned(),
                    path: path.to_owned(),
                    bytes,
                });
            }
            "--notice" => args.notices.push(value),
            "--env" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| BenchError::msg(format!("--env KEY=VALUE, got {value}")))?;
                args.extra_env.push((k.to_owned(), v.to_owned()));
            }
            "--rustc" => args.rustc = value,
            "--commit" => args.commit = value,
            _ => return Err(BenchError::msg(format!("unknown flag {flag}\n{USAGE}"))),
        }
    }
    Ok(args)
}

/// The environment Lambda would give the function, plus local endpoints and dummy credentials.
fn function_env(api_base: &str, bot_endpoint: &str, secrets_url: &str) -> Vec<(String, String)> {
    let pairs = [
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            "cloudbot-trigger-bench".to_owned(),
        ),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]bench".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/cloudbot-trigger-bench".to_owned(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("AWS_SESSION_TOKEN", "bench".to_owned()),
        // Never fall back to instance metadata: there is none, and probing it costs seconds.
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url.to_owned()),
        ("AWS_ENDPOINT_URL", secrets_url.to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("CLOUDBOT_SECRET_ID", SECRET_ID.to_owned()),
        ("CLOUDBOT_API_BASE", api_base.to_owned()),
        ("CLOUDBOT_DEFAULT_BOT_ENDPOINT", bot_endpoint.to_owned()),
        ("CLOUDBOT_LANGUAGE", "en".to_owned()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn execute_event(emulator: &EmulatorProcess, n: usize) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "operation": "execute",
            "bot_endpoint": emulator.bot_endpoint(),
            "input": { "message": format!("bench {n}") },
        })
        .to_string(),
    )
}

/// The job id of a successful execute result, or why the answer is not one.
fn job_id_of(body: &[u8]) -> Result<String, BenchError> {
    let v: Value = serde_json::from_slice(body)?;
    if v.get("operation").and_then(Value::as_str) != Some("execute") {
        return Err(BenchError::msg(format!(
            "not an execute result: {}",
            String::from_utf8_lossy(body)
        )));
    }
    v.get("job_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| BenchError::msg("execute result without job_id"))
}

struct Harness {
    args: Args,
    emulator: EmulatorProcess,
    secrets: SecretsEndpoint,
    env: Vec<(String, String)>,
    logs: usize,
}

impl Harness {
    fn log_path(&mut self, what: &str) -> PathBuf {
        self.logs += 1;
        self.args.work.join(format!("{:04}-{what}.log", self.logs))
    }

    async fn spawn(&mut self, bin: &Path, what: &str) -> Result<Sandbox, BenchError> {
        let log = self.log_path(what);
        Sandbox::spawn(bin, &self.env, &log).await
    }

    /// Scenario 1: cold init of function and floor, interleaved so background noise hits both.
    async fn cold_init(&mut self) -> Result<ColdInit, BenchError> {
        let (bootstrap, floor) = (self.args.bootstrap.clone(), self.args.floor.clone());
        let mut function = Vec::new();
        let mut floor_samples = Vec::new();
        let mut function_rss = 0;
        let mut floor_rss = 0;
        for round in 0..self.args.starts {
            for is_floor in [round % 2 == 0, round % 2 != 0] {
                let (bin, what) = if is_floor {
                    (&floor, "floor-cold")
                } else {
                    (&bootstrap, "function-cold")
                };
                let mut sb = self.spawn(bin, what).await?;
                let init = sb.cold_init().await?;
                let rss = sb.peak_rss_kib()?;
                sb.stop().await?;
                if is_floor {
                    floor_samples.push(init);
                    floor_rss = floor_rss.max(rss);
                } else {
                    function.push(init);
                    function_rss = function_rss.max(rss);
                }
            }
        }
        Ok(ColdInit {
            function: Summary::of(&function).ok_or_else(|| BenchError::msg("no starts"))?,
            floor: Summary::of(&floor_samples).ok_or_else(|| BenchError::msg("no starts"))?,
            function_rss_kib: function_rss,
            floor_rss_kib: floor_rss,
        })
    }

    /// Scenario 2/3/5 for the function: first + warm invocations, peak RSS, call counts.
    async fn warm_function(&mut self) -> Result<(Warm, Counts), BenchError> {
        let latency = self.args.latency;
        // Baseline first: the same upstream called straight from a keep-alive hyper client.
        self.emulator.reset().await?;
        self.emulator.set_latency(latency).await?;
        let direct = self
            .emulator
            .direct_execute(self.args.warm.min(200))
            .await?;
        self.emulator.reset().await?;
        self.emulator.set_latency(latency).await?;
        self.secrets.reset();

        let bootstrap = self.args.bootstrap.clone();
        let mut sb = self.spawn(&bootstrap, "function-warm").await?;
        sb.cold_init().await?;
        let mut job_ids = Vec::with_capacity(self.args.warm + 1);
        let first = sb
            .api
            .invoke(execute_event(&self.emulator, 0), INVOKE_TIMEOUT)
            .await?;
        job_ids.push(self.expect_job(&first.result, &sb)?);
        let mut samples = Vec::with_capacity(self.args.warm);
        for n in 1..=self.args.warm {
            let o = sb
                .api
                .invoke(execute_event(&self.emulator, n), INVOKE_TIMEOUT)
                .await?;
            job_ids.push(self.expect_job(&o.result, &sb)?);
            samples.push(o.elapsed());
        }
        let rss = sb.peak_rss_kib()?;
        sb.stop().await?;

        let stats = self.emulator.stats().await?;
        let counts = Counts {
            invocations: self.args.warm + 1,
            secret_fetches: self.secrets.get_secret_value_calls(),
            other_secret_calls: self.secrets.other_calls(),
            api_connections: self.emulator.api_connections().await?,
            connections_accepted_raw: stats.connections_accepted,
            jobs_created: stats.jobs_created,
        };
        check_jobs("warm run", &job_ids, stats.jobs_created, &self.emulator).await?;
        Ok((
            Warm {
                first: first.elapsed(),
                warm: Summary::of(&samples).ok_or_else(|| BenchError::msg("no samples"))?,
                direct: Summary::of(&direct).ok_or_else(|| BenchError::msg("no samples"))?,
                latency,
                peak_rss_kib: rss,
            },
            counts,
        ))
    }

    /// The floor's warm invocations (echo, no upstream) and peak RSS.
    async fn warm_floor(&mut self) -> Result<(Summary, Duration, u64), BenchError> {
        let floor = self.args.floor.clone();
        let mut sb = self.spawn(&floor, "floor-warm").await?;
        sb.cold_init().await?;
        let event =
            Bytes::from_static(b"{\"operation\":\"execute\",\"input\":{\"message\":\"bench\"}}");
        let first = sb.api.invoke(event.clone(), INVOKE_TIMEOUT).await?;
        if first.result.is_err() {
            return Err(BenchError::msg(format!("floor failed: {:?}", first.result)));
        }
        let mut samples = Vec::with_capacity(self.args.warm);
        for _ in 0..self.args.warm {
            let o = sb.api.invoke(event.clone(), INVOKE_TIMEOUT).await?;
            if o.result.is_err() {
                return Err(BenchError::msg(format!("floor failed: {:?}", o.result)));
            }
            samples.push(o.elapsed());
        }
        let rss = sb.peak_rss_kib()?;
        sb.stop().await?;
        Ok((
            Summary::of(&samples).ok_or_else(|| BenchError::msg("no samples"))?,
            first.elapsed(),
            rss,
        ))
    }

    /// Load: N sandboxes side by side × M executes each, with injected 503s before job creation.
    async fn load(&mut self) -> Result<Load, BenchError> {
        self.emulator.reset().await?;
        self.emulator.set_latency(self.args.latency).await?;
        self.secrets.reset();
        let bootstrap = self.args.bootstrap.clone();
        let mut sandboxes = Vec::with_capacity(self.args.sandboxes);
        for _ in 0..self.args.sandboxes {
            let mut sb = self.spawn(&bootstrap, "function-load").await?;
            sb.cold_init().await?;
            sandboxes.push(sb);
        }
        if self.args.injected_faults > 0 {
            // A 503 answered before the emulator creates a job: the function may retry it or
            // report CloudBot.Unavailable, but must never lose or duplicate a job because of it.
            self.emulator
                .set_faults(serde_json::json!([{
                    "fault": "status", "status": 503, "method": "POST",
                    "path_prefix": format!("/{}/bots", cloudbot_bench::emulator::DEMO_PUBLIC_ID),
                    "count": self.args.injected_faults,
                }]))
                .await?;
        }
        let per = self.args.per_sandbox;
        let started = Instant::now();
        let runs = sandboxes.iter().enumerate().map(|(i, sb)| {
            let emulator = &self.emulator;
            async move {
                let mut results = Vec::with_capacity(per);
                for n in 0..per {
                    let o = sb
                        .api
                        .invoke(execute_event(emulator, i * per + n), INVOKE_TIMEOUT)
                        .await?;
                    results.push(o);
                }
                Ok::<_, BenchError>(results)
            }
        });
        let all = join_all(runs).await;
        let wall = started.elapsed();
        let mut job_ids = Vec::new();
        let mut injected = 0usize;
        let mut latencies = Vec::new();
        let mut rss = 0;
        for (sb, results) in sandboxes.iter().zip(all) {
            for o in results? {
                latencies.push(o.elapsed());
                match &o.result {
                    Ok(body) => job_ids.push(job_id_of(body)?),
                    Err(e) if INJECTED_ERROR_TYPES.contains(&e.error_type.as_str()) => {
                        injected += 1
                    }
                    Err(e) => {
                        return Err(BenchError::msg(format!(
                            "load: unexpected function error {}: {}\nlog tail:\n{}",
                            e.error_type,
                            e.body,
                            sb.log_tail()
                        )));
                    }
                }
            }
            rss = rss.max(sb.peak_rss_kib()?);
        }
        for sb in sandboxes {
            sb.stop().await?;
        }
        if injected > self.args.injected_faults {
            return Err(BenchError::msg(format!(
                "load: {injected} errors of the injected types but only {} faults injected",
                self.args.injected_faults
            )));
        }
        let stats = self.emulator.stats().await?;
        check_jobs("load", &job_ids, stats.jobs_created, &self.emulator).await?;
        Ok(Load {
            sandboxes: self.args.sandboxes,
            per_sandbox: per,
            wall,
            succeeded: job_ids.len(),
            injected_faults: self.args.injected_faults,
            injected_errors: injected,
            unexpected_errors: 0,
            jobs_created: stats.jobs_created,
            secret_fetches: self.secrets.get_secret_value_calls(),
            api_connections: self.emulator.api_connections().await?,
            latency: Summary::of(&latencies).ok_or_else(|| BenchError::msg("no samples"))?,
            peak_rss_kib: rss,
        })
    }

    fn expect_job(
        &self,
        result: &Result<Bytes, cloudbot_bench::runtime_api::ErrorReport>,
        sb: &Sandbox,
    ) -> Result<String, BenchError> {
        match result {
            Ok(body) => job_id_of(body),
            Err(e) => Err(BenchError::msg(format!(
                "function error {}: {}\nlog tail:\n{}",
                e.error_type,
                e.body,
                sb.log_tail()
            ))),
        }
    }
}

/// No job lost or created twice: every result's job id is unique, the emulator created exactly
/// as many jobs as there were successful results, and it knows every id the function returned.
async fn check_jobs(
    what: &str,
    job_ids: &[String],
    jobs_created: u64,
    emulator: &EmulatorProcess,
) -> Result<(), BenchError> {
    let unique: HashSet<&String> = job_ids.iter().collect();
    if unique.len() != job_ids.len() {
        return Err(BenchError::msg(format!(
            "{what}: {} job ids returned twice",
            job_ids.len() - unique.len()
        )));
    }
    if jobs_created != job_ids.len() as u64 {
        return Err(BenchError::msg(format!(
            "{what}: emulator created {jobs_created} jobs for {} successful results",
            job_ids.len()
        )));
    }
    let known: HashSet<String> = emulator.job_ids().await?.into_iter().collect();
    if let Some(missing) = job_ids.iter().find(|id| !known.contains(*id)) {
        return Err(BenchError::msg(format!(
            "{what}: job {missing} returned but unknown to the emulator"
        )));
    }
    Ok(())
}

/// Polls futures concurrently on this task (no extra dependency for a join_all).
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<Option<_>> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in handles.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn run(args: Args) -> Result<(), BenchError> {
    std::fs::create_dir_all(&args.work)?;
    for bin in [
        &args.bootstrap,
        &args.floor,
        &args.emulator,
        &args.tls_start,
    ] {
        let needed = !(args.only_cold && (bin == &args.emulator || bin == &args.tls_start));
        if needed && !bin.is_file() {
            return Err(BenchError::msg(format!(
                "{} not found: build it first (scripts/bench.sh does)",
                bin.display()
            )));
        }
    }
    if args.only_cold {
        return only_cold(args).await;
    }
    let emulator = EmulatorProcess::spawn(&args.emulator, &args.work.join("emulator.log")).await?;
    let secret = serde_json::json!({
        "access_token": cloudbot_bench::emulator::DEMO_ACCESS_TOKEN,
        "secret_key": cloudbot_bench::emulator::DEMO_SECRET_KEY,
    })
    .to_string();
    let secrets = SecretsEndpoint::start(SECRET_ID, &secret).await?;
    let mut env = function_env(
        emulator.base_url(),
        &emulator.bot_endpoint(),
        &secrets.url(),
    );
    env.extend(args.extra_env.iter().cloned());
    let mut h = Harness {
        args,
        emulator,
        secrets,
        env,
        logs: 0,
    };
    let t0 = Instant::now();
    eprintln!("cold init: {} starts each", h.args.starts);
    let cold = h.cold_init().await?;
    eprintln!("TLS provider start-up: {} processes each", h.args.starts);
    let tls = tls_start(&h.args).await?;
    eprintln!("warm: 1 + {} invocations (function)", h.args.warm);
    let (warm, counts) = h.warm_function().await?;
    eprintln!("warm: 1 + {} invocations (floor)", h.args.warm);
    let (floor_warm, floor_first, floor_rss) = h.warm_floor().await?;
    eprintln!(
        "load: {} sandboxes x {} invocations",
        h.args.sandboxes, h.args.per_sandbox
    );
    let load = h.load().await?;
    let report = Report {
        machine: Machine::detect(&h.args.rustc, &h.args.commit),
        quick: h.args.quick,
        cold,
        warm,
        floor_warm,
        floor_first,
        floor_peak_rss_kib: floor_rss,
        tls,
        counts,
        load,
        artifacts: h.args.artifacts.clone(),
        notices: h.args.notices.clone(),
        duration: t0.elapsed(),
    };
    write_report(&h.args.out, &report)?;
    eprintln!("wrote {}", h.args.out.display());
    let work = h.args.work.clone();
    h.emulator.stop().await;
    // Logs are only interesting when something failed; keep them then.
    let _ = std::fs::remove_dir_all(work);
    Ok(())
}

/// Runs `tls-start PROVIDER` in fresh processes: the first-use cost of each crypto provider.
async fn tls_start(args: &Args) -> Result<TlsStart, BenchError> {
    let mut providers = Vec::new();
    for provider in ["aws-lc", "ring"] {
        let mut first = Vec::new();
        let mut second = Vec::new();
        for _ in 0..args.starts {
            let out = tokio::process::Command::new(&args.tls_start)
                .arg(provider)
                .env_clear()
                .output()
                .await?;
            let text = String::from_utf8_lossy(&out.stdout);
            let field = |name: &str| {
                text.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name))
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_micros)
            };
            match (
                out.status.success(),
                field("first_us="),
                field("second_us="),
            ) {
                (true, Some(a), Some(b)) => {
                    first.push(a);
                    second.push(b);
                }
                _ => {
                    return Err(BenchError::msg(format!(
                        "tls-start {provider} failed: {}{}",
                        text,
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
            }
        }
        providers.push(TlsProvider {
            name: provider.to_owned(),
            first: Summary::of(&first).ok_or_else(|| BenchError::msg("no samples"))?,
            second: Summary::of(&second).ok_or_else(|| BenchError::msg("no samples"))?,
        });
    }
    Ok(TlsStart {
        aws_lc_build: args.aws_lc_build.clone(),
        providers,
    })
}

/// `--only-cold`: scenario 1 alone (no emulator needed: the function must not call anything
/// before its first poll), printed as a table. Used to try release-profile levers quickly.
async fn only_cold(args: Args) -> Result<(), BenchError> {
    // Nothing listens on port 9 (discard): a function that called its upstream at init would fail.
    let api_base = "http://127.0.0.1:9";
    let secrets = SecretsEndpoint::start(SECRET_ID, "{}").await?;
    let mut env = function_env(
        api_base,
        &format!("{api_base}/demo/bots/echo_bot/jobs"),
        &secrets.url(),
    );
    env.extend(args.extra_env.iter().cloned());
    let starts = args.starts;
    let work = args.work.clone();
    let (bootstrap, floor) = (args.bootstrap.clone(), args.floor.clone());
    let mut rounds = Vec::new();
    let mut logs = 0;
    for round in 0..starts {
        for is_floor in [round % 2 == 0, round % 2 != 0] {
            let bin = if is_floor { &floor } else { &bootstrap };
            logs += 1;
            let mut sb =
                Sandbox::spawn(bin, &env, &work.join(format!("{logs:04}-cold.log"))).await?;
            let init = sb.cold_init().await?;
            let rss = sb.peak_rss_kib()?;
            sb.stop().await?;
            rounds.push((is_floor, init, rss));
        }
    }
    println!(
        "| binary | starts | min ms | median ms | p90 ms | max ms | RSS after init KiB | secret fetches |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (is_floor, path) in [(false, &bootstrap), (true, &floor)] {
        let samples: Vec<Duration> = rounds
            .iter()
            .filter(|r| r.0 == is_floor)
            .map(|r| r.1)
            .collect();
        let rss = rounds
            .iter()
            .filter(|r| r.0 == is_floor)
            .map(|r| r.2)
            .max()
            .unwrap_or_default();
        let x = Summary::of(&samples).ok_or_else(|| BenchError::msg("no starts"))?;
        medians.push(x.p50);
        println!(
            "| {} | {} | {} | {} | {} | {} | {rss} | {} |",
            path.display(),
            x.n,
            ms(x.min),
            ms(x.p50),
            ms(x.p90),
            ms(x.max),
            if is_floor {
                "–".to_owned()
            } else {
                secrets.get_secret_value_calls().to_string()
            }
        );
    }
    println!(
        "\nratio of medians: {:.2}x",
        medians[0].as_secs_f64() / medians[1].as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(work);
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cloudbot-bench: {e}");
            std::process::exit(2);
        }
    };
    let work = args.work.clone();
    // Two workers: the harness's servers must answer promptly while the load test runs
    // several sandboxes; more threads than cores would only add scheduling noise.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudbot-bench: cannot start tokio: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("cloudbot-bench: FAILED: {e}");
        eprintln!("cloudbot-bench: process logs kept in {}", work.display());
        std::process::exit(1);
    }
}
