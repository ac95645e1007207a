//! Issue 22's figure under the CPU model: whole runs, start to end, on both follow paths, driven
//! through the real bootstrap. Per configuration and start, three sandboxes (each in its own
//! throttled group, as `cpu.rs`): *plain* (no store: execute, polls, the poll that sees the
//! end), *polled* (the template's default stores, the idempotency table and the run ledger:
//! the same steps keyed) and *callback* (the same stores plus callbacks: an execute with a task
//! token, then Cloud BOT's callback delivered to the callback route, which tells Step Functions).
//! The stores are one DynamoDB stand-in that keeps items (reads return what was written,
//! conditions evaluated: `cloudbot_testkit::dynamodb_items`), counted per table; Step Functions
//! is a counting stand-in. Each invocation's CPU is timed as the CPU model's warm invocations
//! (event handed out → next poll). The counts are compared with the one list of expected calls
//! (`cloudbot_testkit::run_calls`) in the report.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::cpu::{CpuConfig, TlsUpstreams};
use super::{Harness, INVOKE_TIMEOUT, expect_job};
use crate::BenchError;
use crate::report::{FollowPath, FollowRow};
use crate::stats::Summary;
use cloudbot_testkit::cgroup::{Cgroup, Controller};
use cloudbot_testkit::dynamodb::{DynamoDbEndpoint, StoreCalls};
use cloudbot_testkit::runtime_api::Outcome;
use cloudbot_testkit::sandbox::Sandbox;
use cloudbot_testkit::step_functions::StepFunctionsEndpoint;

/// The idempotency table (also the callback records') and the run ledger, with the partition
/// keys the template gives them (`record_key`, `run`).
const TABLE: &str = "cloudbot-bench-idempotency";
const TABLE_KEY: &str = "record_key";
const LEDGER_TABLE: &str = "cloudbot-bench-runs";
const LEDGER_KEY: &str = "run";
/// Polls per polled run while its job runs (the demo `echo_bot` runs 2 s, so every one of them
/// finds it executing; the harness checks that each did).
pub const POLLS_PER_RUN: u64 = 2;
/// The callback base the function announces; the emulator's own deliveries to it fail (nothing
/// listens on port 9) and the harness delivers each callback itself, once, after the job ended.
const CALLBACK_BASE: &str = "http://127.0.0.1:9/callbacks";
/// The API Gateway (HTTP API) sample the callback delivery is built from.
const APIGW_SAMPLE: &str = include_str!("../../../events/apigw-v2-execute.json");

/// Which run a sandbox makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Plain,
    Polled,
    Callback,
}

/// One sandbox of one start, and what it measured.
struct Follower {
    path: Path,
    sb: Sandbox,
    group: Cgroup,
    samples: Samples,
}

/// What one sandbox measured.
#[derive(Default)]
struct Samples {
    execute: Vec<Duration>,
    poll: Vec<Duration>,
    end: Vec<Duration>,
    /// Per run: its job id and reference endpoint, and its steps' CPU summed.
    runs: Vec<(String, String, Duration)>,
}

impl Follower {
    /// One invocation and its CPU time up to the next poll (as `cpu.rs` times warm ones).
    async fn timed(&mut self, event: Value) -> Result<(Outcome, Duration), BenchError> {
        let polls = self.sb.api.polls();
        let before = self.sb.cpu_time()?;
        let o = self
            .sb
            .api
            .invoke(Bytes::from(event.to_string()), INVOKE_TIMEOUT)
            .await?;
        self.sb.api.polled(polls + 1).await;
        let cpu = self.sb.cpu_time()?.saturating_sub(before);
        Ok((o, cpu))
    }

    fn answer(&self, o: &Outcome) -> Result<Value, BenchError> {
        match &o.result {
            Ok(body) => Ok(serde_json::from_slice(body)?),
            Err(e) => Err(BenchError::msg(format!(
                "{:?} run: function error {}: {}\nlog tail:\n{}",
                self.path,
                e.error_type,
                e.body,
                self.sb.log_tail()
            ))),
        }
    }
}

/// The execute that starts run `n` of `path`.
fn start_event(path: Path, bot_endpoint: &str, n: usize) -> Value {
    let request = json!({
        "operation": "execute",
        "bot_endpoint": bot_endpoint,
        "input": { "message": format!("bench run {n}") },
    });
    match path {
        Path::Plain => request,
        Path::Polled => {
            let mut keyed = request;
            keyed["idempotency_key"] = json!(format!("bench-polled-{n}"));
            keyed
        }
        // The state machine's callback envelope (statemachine/, `.waitForTaskToken`).
        Path::Callback => json!({
            "idempotency_key": format!("bench-callback-{n}"),
            "task_token": format!("bench-task-token-{n}"),
            "request": request,
        }),
    }
}

fn refer_event(endpoint: &str) -> Value {
    json!({ "operation": "refer_job", "job_reference_endpoint": endpoint })
}

/// Cloud BOT's callback for `job_id` at `callback_endpoint`, as API Gateway hands it over.
fn delivery_event(callback_endpoint: &str, job_id: &str) -> Result<Value, BenchError> {
    let id = callback_endpoint
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| BenchError::msg(format!("no callback id in {callback_endpoint}")))?;
    let mut event: Value = serde_json::from_str(APIGW_SAMPLE)?;
    let path = format!("/callbacks/{id}");
    event["routeKey"] = json!("ANY /{proxy+}");
    event["pathParameters"] = json!({ "proxy": path.trim_start_matches('/') });
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!("POST");
    event["requestContext"]["http"]["path"] = json!(path);
    event["body"] = json!(json!({ "job_id": job_id, "status": 0 }).to_string());
    event["isBase64Encoded"] = json!(false);
    Ok(event)
}

/// The follow paths' own upstreams: the CPU model's HTTPS ones, a DynamoDB stand-in that keeps
/// items and a Step Functions stand-in.
struct FollowUpstreams {
    up: TlsUpstreams,
    store: DynamoDbEndpoint,
    tasks: StepFunctionsEndpoint,
}

impl FollowUpstreams {
    fn env(&self, path: Path) -> Vec<(String, String)> {
        let mut env = self.up.env.clone();
        let mut add = |k: &str, v: String| env.push((k.to_owned(), v));
        if path != Path::Plain {
            add("CLOUDBOT_IDEMPOTENCY_TABLE", TABLE.to_owned());
            add("CLOUDBOT_RUN_LEDGER_TABLE", LEDGER_TABLE.to_owned());
            add("AWS_ENDPOINT_URL_DYNAMODB", self.store.url());
        }
        if path == Path::Callback {
            add("CLOUDBOT_CALLBACK_BASE_URL", CALLBACK_BASE.to_owned());
            add("CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "true".to_owned());
            add("AWS_ENDPOINT_URL_SFN", self.tasks.url());
        }
        env
    }
}

impl Harness {
    /// Every configuration's row, on upstreams of their own; no job lost or created twice.
    pub(super) async fn follow_paths(
        &mut self,
        configs: &[CpuConfig],
    ) -> Result<Vec<FollowRow>, BenchError> {
        let f = self.follow_upstreams().await?;
        let runs = self.settings.follow_runs;
        let mut job_ids = Vec::new();
        let mut rows = Vec::with_capacity(configs.len());
        for config in configs {
            eprintln!(
                "follow paths: {} MB, period {} ms: {} starts, {runs} runs per path each",
                config.memory_mb,
                config.period.as_millis(),
                self.settings.cpu_starts
            );
            rows.push(self.follow_row(&f, *config, runs, &mut job_ids).await?);
        }
        f.up.check_jobs(&job_ids)?;
        Ok(rows)
    }

    /// The follow paths' upstreams (started once for every configuration).
    async fn follow_upstreams(&self) -> Result<FollowUpstreams, BenchError> {
        let up = TlsUpstreams::start(&self.settings, &self.env).await?;
        up.emulator.set_latency(self.settings.latency);
        let store = DynamoDbEndpoint::start_keeping(
            super::store::STORE_LATENCY,
            Some(&up.ca),
            &[(TABLE, TABLE_KEY), (LEDGER_TABLE, LEDGER_KEY)],
        )
        .await?;
        let tasks = StepFunctionsEndpoint::start(Some(&up.ca)).await?;
        Ok(FollowUpstreams { up, store, tasks })
    }

    /// Every start of one configuration: `runs` runs per path and start.
    async fn follow_row(
        &mut self,
        f: &FollowUpstreams,
        config: CpuConfig,
        runs: usize,
        job_ids: &mut Vec<String>,
    ) -> Result<FollowRow, BenchError> {
        let paths = [Path::Plain, Path::Polled, Path::Callback];
        let mut done: Vec<Vec<Samples>> = paths.iter().map(|_| Vec::new()).collect();
        let mut calls = [(StoreCalls::default(), StoreCalls::default()); 3];
        let mut told = [0u64; 3];
        // Keys and task tokens never repeat over the rows (the store keeps every record, so a
        // repeated key would be a replay): every run so far has its job id in `job_ids`.
        let mut n = job_ids.len();
        for _ in 0..self.settings.cpu_starts {
            let mut followers = Vec::with_capacity(paths.len());
            for path in paths {
                let group = Cgroup::create(Controller::Cpu)?;
                let log = self.log_path(&format!("follow-{path:?}").to_lowercase());
                let mut sb = Sandbox::spawn(&self.settings.bootstrap, &f.env(path), &log).await?;
                let pid = sb
                    .pid()
                    .ok_or_else(|| BenchError::msg("bootstrap exited at once"))?;
                group.add(pid)?;
                sb.cold_init().await?;
                group.set_cpu_quota(config.quota(), config.period)?;
                let mut follower = Follower {
                    path,
                    sb,
                    group,
                    samples: Samples::default(),
                };
                // One plain execute first, untimed, so no timed step pays a first use.
                let (o, _) = follower
                    .timed(start_event(Path::Plain, &f.up.bot_endpoint, 0))
                    .await?;
                job_ids.push(expect_job(&o.result, &follower.sb)?);
                followers.push(follower);
            }
            // The sandboxes take turns, so the counts between two snapshots are one sandbox's
            // timed steps (the warm-up executes and init's reads come before them).
            for (i, follower) in followers.iter_mut().enumerate() {
                let snapshot = (f.store.calls_of(TABLE), f.store.calls_of(LEDGER_TABLE));
                let told_now = f.tasks.tasks_told();
                for _ in 0..runs {
                    n += 1;
                    let (o, cpu) = follower
                        .timed(start_event(follower.path, &f.up.bot_endpoint, n))
                        .await?;
                    let job_id = expect_job(&o.result, &follower.sb)?;
                    let answer = follower.answer(&o)?;
                    let endpoint = answer["job_reference_endpoint"]
                        .as_str()
                        .ok_or_else(|| BenchError::msg(format!("no endpoint in {answer}")))?
                        .to_owned();
                    job_ids.push(job_id.clone());
                    follower.samples.execute.push(cpu);
                    follower.samples.runs.push((job_id, endpoint, cpu));
                }
                if follower.path != Path::Callback {
                    for r in 0..runs {
                        for _ in 0..POLLS_PER_RUN {
                            let endpoint = follower.samples.runs[r].1.clone();
                            let (o, cpu) = follower.timed(refer_event(&endpoint)).await?;
                            let answer = follower.answer(&o)?;
                            if answer["status"] != "executing" {
                                return Err(BenchError::msg(format!(
                                    "a poll while the job runs found {answer}: the runs took \
                                     longer than the BOT (fewer runs per start: --follow-runs)"
                                )));
                            }
                            follower.samples.poll.push(cpu);
                            follower.samples.runs[r].2 += cpu;
                        }
                    }
                }
                let after = (f.store.calls_of(TABLE), f.store.calls_of(LEDGER_TABLE));
                calls[i].0 = add(calls[i].0, diff(after.0, snapshot.0));
                calls[i].1 = add(calls[i].1, diff(after.1, snapshot.1));
                told[i] += f.tasks.tasks_told() - told_now;
            }
            // Every job ends (the demo BOT's fixed run time); then what learns each end.
            let deadline = Instant::now() + Duration::from_secs(30);
            let ids: Vec<String> = followers
                .iter()
                .flat_map(|fo| fo.samples.runs.iter().map(|r| r.0.clone()))
                .collect();
            while ids
                .iter()
                .any(|id| f.up.emulator.job(id).is_none_or(|j| j.status == 2))
            {
                if Instant::now() > deadline {
                    return Err(BenchError::msg("follow paths: a job did not end in 30 s"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for (i, follower) in followers.iter_mut().enumerate() {
                let snapshot = (f.store.calls_of(TABLE), f.store.calls_of(LEDGER_TABLE));
                let told_now = f.tasks.tasks_told();
                for r in 0..runs {
                    let (job_id, endpoint) = (
                        follower.samples.runs[r].0.clone(),
                        follower.samples.runs[r].1.clone(),
                    );
                    let event = match follower.path {
                        Path::Callback => {
                            let job = f.up.emulator.job(&job_id).ok_or_else(|| {
                                BenchError::msg(format!("job {job_id} unknown to the emulator"))
                            })?;
                            let callback = job.callback_endpoint.ok_or_else(|| {
                                BenchError::msg(format!("job {job_id} has no callback endpoint"))
                            })?;
                            delivery_event(&callback, &job_id)?
                        }
                        _ => refer_event(&endpoint),
                    };
                    let (o, cpu) = follower.timed(event).await?;
                    let answer = follower.answer(&o)?;
                    let ended = match follower.path {
                        Path::Callback => answer["statusCode"] == 200,
                        _ => answer["status"].as_str().is_some_and(|s| s != "executing"),
                    };
                    if !ended {
                        return Err(BenchError::msg(format!(
                            "{:?} run: the end was not learned: {answer}",
                            follower.path
                        )));
                    }
                    follower.samples.end.push(cpu);
                    follower.samples.runs[r].2 += cpu;
                }
                let after = (f.store.calls_of(TABLE), f.store.calls_of(LEDGER_TABLE));
                calls[i].0 = add(calls[i].0, diff(after.0, snapshot.0));
                calls[i].1 = add(calls[i].1, diff(after.1, snapshot.1));
                told[i] += f.tasks.tasks_told() - told_now;
            }
            for (i, follower) in followers.into_iter().enumerate() {
                let Follower {
                    sb, group, samples, ..
                } = follower;
                sb.stop().await?;
                drop(group);
                done[i].push(samples);
            }
        }
        if f.store.refused() != 0 {
            return Err(BenchError::msg(format!(
                "follow paths: the DynamoDB stand-in refused {} calls it does not serve (the \
                 counts would not be a run's): see the sandboxes' logs",
                f.store.refused()
            )));
        }
        if f.tasks.other() != 0 {
            return Err(BenchError::msg(format!(
                "follow paths: {} unexpected Step Functions calls",
                f.tasks.other()
            )));
        }
        let total_runs = runs * self.settings.cpu_starts;
        let mut paths_out = Vec::with_capacity(3);
        for (i, followers) in done.iter().enumerate() {
            let none = || BenchError::msg("follow paths: no samples");
            let all = |pick: fn(&Samples) -> &Vec<Duration>| -> Vec<Duration> {
                followers
                    .iter()
                    .flat_map(|fo| pick(fo).iter().copied())
                    .collect()
            };
            let run_cpu: Vec<Duration> = followers
                .iter()
                .flat_map(|fo| fo.runs.iter().map(|r| r.2))
                .collect();
            let polls = all(|fo| &fo.poll);
            paths_out.push(FollowPath {
                execute: Summary::of(&all(|fo| &fo.execute)).ok_or_else(none)?,
                poll: Summary::of(&polls),
                end: Summary::of(&all(|fo| &fo.end)).ok_or_else(none)?,
                run: Summary::of(&run_cpu).ok_or_else(none)?,
                idempotency: calls[i].0,
                ledger: calls[i].1,
                tasks_told: told[i],
            });
        }
        let mut it = paths_out.into_iter();
        let (Some(plain), Some(polled), Some(callback)) = (it.next(), it.next(), it.next()) else {
            return Err(BenchError::msg("follow paths: a path missing"));
        };
        Ok(FollowRow {
            memory_mb: config.memory_mb,
            period: config.period,
            runs: total_runs,
            polls_per_run: POLLS_PER_RUN,
            plain,
            polled,
            callback,
        })
    }
}

fn diff(a: StoreCalls, b: StoreCalls) -> StoreCalls {
    StoreCalls {
        put_item: a.put_item - b.put_item,
        update_item: a.update_item - b.update_item,
        get_item: a.get_item - b.get_item,
        other: a.other - b.other,
    }
}

fn add(a: StoreCalls, b: StoreCalls) -> StoreCalls {
    StoreCalls {
        put_item: a.put_item + b.put_item,
        update_item: a.update_item + b.update_item,
        get_item: a.get_item + b.get_item,
        other: a.other + b.other,
    }
}

/// `--only-runs`: the follow paths alone under the CPU model, printed as their markdown
/// section (no report).
pub async fn only_runs(settings: super::Settings) -> Result<(), BenchError> {
    super::require_binaries(&[&settings.bootstrap, &settings.emulator])?;
    cloudbot_testkit::cgroup::available(Controller::Cpu)
        .map_err(|why| BenchError::msg(format!("the follow paths need the CPU model: {why}")))?;
    let configs = settings.cpu_configs.clone();
    let mut h = Harness::start(settings).await?;
    let rows = h.follow_paths(&configs).await?;
    let mut section = String::new();
    // Writing into a String cannot fail.
    let _ = crate::report::follow_paths(&mut section, &rows, super::store::STORE_LATENCY);
    print!("{section}");
    h.finish().await;
    Ok(())
}
