//! CloudWatch metrics: the one place that knows the Embedded Metric Format (EMF) and the metric
//! names. Every invocation writes exactly one EMF record, one JSON line on stdout next to the
//! JSON log lines; CloudWatch Logs extracts the metrics from it, so no API call and no
//! background flush is needed (nothing can be lost when the sandbox freezes).
//!
//! Dimensions are few and bounded: `Operation` (an operation name, or `none` when the request
//! could not be decoded) and `Outcome` (`ok` or an `errorType` of the error table); the usage
//! metrics alone have `Contract` (a public id). Ids go into
//! the record as plain properties (searchable in Logs Insights, never a dimension), BOT input
//! never. A small writer of our own instead of a metrics crate: docs/benchmarks.md ("EMF
//! writer") has the measured comparison; docs/operations.md documents every name.
//!
//! [`OPERATIONS`] is the one list of `Operation` values: tests/it/lambda/docs.rs writes
//! docs/operations.md's table from it, and tests/py/test_template.py checks the template's
//! dashboard against that table. The alarms on failures watch the [`STACK_TOTALS`] instead (one
//! metric each, whatever the operations).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Namespace used when `CLOUDBOT_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "CloudBotTrigger";

/// `Outcome` of an invocation that succeeded.
pub const OUTCOME_OK: &str = "ok";

/// `Operation` of an invocation whose request could not be decoded.
pub const OPERATION_NONE: &str = "none";

/// Every value the `Operation` dimension takes, with what it counts, in documentation order:
/// each [`OperationKind`](crate::request::OperationKind)'s name (the unit test below fails when
/// one is missing), then [`OPERATION_NONE`]. An alarm that must see every invocation watches a
/// [`STACK_TOTALS`] metric rather than summing over these.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("execute", "start a BOT (every trigger)"),
    (
        "refer_job",
        "read a job (the state machines' polls, the HTTP API, direct invocations)",
    ),
    ("list_bots", "list a contract's API-published BOTs"),
    (
        "resolve_idempotency",
        "the operator's settling of an idempotency record (direct invocations only)",
    ),
    (
        "callback",
        "Cloud BOT's callback at a job's end (the callback API's route)",
    ),
    (
        "bot_done",
        "Cloud BOT's BOT-done webhook of a subscribed BOT (the callback API's bot-done route; \
         docs/events.md, \"Runs started outside AWS\")",
    ),
    (
        "schedule_tick",
        "a managed schedule's tick decided for a state machine (its DecideTick state; nothing is \
         sent to Cloud BOT)",
    ),
    (
        "execution_ended",
        "a Step Functions execution of the stack failed, timed out or was stopped: its open runs \
         suspended ([orphans](orphans.md))",
    ),
    (
        "sweep",
        "the periodic sweep of the run ledger's open runs ([orphans](orphans.md))",
    ),
    (
        "decide_rerun",
        "whether a failed job runs again, decided for a state machine (its DecideRerun state; \
         nothing is sent to Cloud BOT)",
    ),
    (
        OPERATION_NONE,
        "a request that could not be decoded (no operation known): malformed events, unknown \
         routes, malformed callback ids",
    ),
];

/// The dimension names.
pub mod dimension {
    /// Why a managed schedule's tick sent nothing (`holiday`, `shifted`, ...:
    /// docs/schedules.md); only on [`ScheduleSkips`](super::name::SCHEDULE_SKIPS).
    pub const SKIP_REASON: &str = "SkipReason";
    /// The operation: one of [`OPERATIONS`](super::OPERATIONS).
    pub const OPERATION: &str = "Operation";
    /// The contract (public id) of a run whose end was recorded; only on the usage metrics.
    pub const CONTRACT: &str = "Contract";
    /// `ok` or the error type.
    pub const OUTCOME: &str = "Outcome";
    /// The run queue's lane (`high` or `normal`); only on the queue's metrics.
    pub const LANE: &str = "Lane";
}

/// The metric names.
pub mod name {
    /// 1 per invocation.
    pub const INVOCATIONS: &str = "Invocations";
    /// 1 when the invocation failed (any error type), else 0.
    pub const FAILURES: &str = "Failures";
    /// 1 when this invocation started a BOT run (a job exists because of it), else 0.
    pub const RUNS_STARTED: &str = "RunsStarted";
    /// 1 when the invocation answered from the idempotency store instead of starting a run.
    pub const REPLAYS: &str = "Replays";
    /// Secrets Manager reads made during the invocation.
    pub const SECRET_FETCHES: &str = "SecretFetches";
    /// 1 on the first invocation of a sandbox, else 0.
    pub const COLD_START: &str = "ColdStart";
    /// Time spent in Cloud BOT API calls (retries included); absent when none was made.
    pub const UPSTREAM_LATENCY: &str = "UpstreamLatency";
    /// Time from event to answer.
    pub const TOTAL_LATENCY: &str = "TotalLatency";
    /// 1 when a managed schedule's tick sent nothing, by `SkipReason` only (its own directive
    /// in the record, present only then).
    pub const SCHEDULE_SKIPS: &str = "ScheduleSkips";
    /// 1 when a job's end tripped a managed schedule's failure breaker (the schedule paused
    /// itself), without dimensions (its own directive in the record, present only then).
    pub const SCHEDULE_PAUSED: &str = "SchedulePaused";
    /// Run ledger writes that failed during the invocation (the run went on; docs/ledger.md);
    /// present only when one did.
    pub const LEDGER_WRITE_FAILURES: &str = "LedgerWriteFailures";
    /// The run queue (docs/queue.md), one record per lane of a batch, by `Lane`: how long the
    /// batch's oldest message waited in the queue (from its `SentTimestamp`).
    pub const QUEUE_WAIT: &str = "QueueWait";
    /// Messages of the batch in the lane.
    pub const QUEUE_MESSAGES: &str = "QueueMessages";
    /// Messages reported failed to be delivered again (provably no job started).
    pub const QUEUE_REDELIVERED: &str = "QueueRedelivered";
    /// Messages reported failed that will not succeed as sent (dead-letter queue eventually).
    pub const QUEUE_DEAD_LETTERED: &str = "QueueDeadLettered";
    /// Messages whose execute's outcome is unknown: deleted, never redelivered; alarmed.
    pub const QUEUE_OUTCOME_UNKNOWN: &str = "QueueOutcomeUnknown";
    /// Job-finished events that could not be put on the bus during the invocation (the run
    /// went on; docs/events.md); present only when one could not.
    pub const EVENT_PUBLISH_FAILURES: &str = "EventPublishFailures";
    /// How long a job has been running, at each look that found it running (refer_job: the
    /// state machines' polls), without dimensions (its own directive, present only then;
    /// docs/overrun.md).
    pub const JOB_RUNNING_SECONDS: &str = "JobRunningSeconds";
    /// 1 when a look suspended a job past its maximum run time (the run ended overrun),
    /// without dimensions (in the same directive, present only then).
    pub const JOB_OVERRUNS: &str = "JobOverruns";
    /// A run's BOT-seconds, when this invocation recorded its end (docs/usage.md); by
    /// `Contract` and without dimensions (its own directive, present only then).
    pub const BOT_SECONDS: &str = "BotSeconds";
    /// The contract's month as a share of the budget's allowance after that end was counted;
    /// only with a budget (the warning alarm's metric).
    pub const BUDGET_USED_PERCENT: &str = "BudgetUsedPercent";
    /// Messages of the batch in the lane that found their contract's cap on running jobs
    /// reached and were put back for later (admission control, docs/queue.md).
    pub const QUEUE_ADMISSION_WAITS: &str = "QueueAdmissionWaits";
    /// The slots of a capped contract taken when the sweep looked, by `Contract` (its own
    /// record; docs/queue.md, "Admission control").
    pub const ADMISSION_SLOTS_IN_USE: &str = "AdmissionSlotsInUse";
    /// Of them, the slots the sweep cannot settle on its own (an unknown outcome, or a holder
    /// gone without naming its job): an operator looks (the same record).
    pub const ADMISSION_SLOTS_UNRESOLVED: &str = "AdmissionSlotsUnresolved";
}

/// An EMF unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Percent.
    Percent,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Percent => "Percent",
        }
    }
}

/// Every metric the function emits, with its unit: the list alarms and the dashboard may use
/// (tests/py/test_template.py checks the template against it).
pub const METRICS: &[(&str, Unit)] = &[
    (name::INVOCATIONS, Unit::Count),
    (name::FAILURES, Unit::Count),
    (name::RUNS_STARTED, Unit::Count),
    (name::REPLAYS, Unit::Count),
    (name::SECRET_FETCHES, Unit::Count),
    (name::COLD_START, Unit::Count),
    (name::UPSTREAM_LATENCY, Unit::Milliseconds),
    (name::TOTAL_LATENCY, Unit::Milliseconds),
    (name::SCHEDULE_SKIPS, Unit::Count),
    (name::SCHEDULE_PAUSED, Unit::Count),
    (name::LEDGER_WRITE_FAILURES, Unit::Count),
    (name::QUEUE_WAIT, Unit::Milliseconds),
    (name::QUEUE_MESSAGES, Unit::Count),
    (name::QUEUE_REDELIVERED, Unit::Count),
    (name::QUEUE_DEAD_LETTERED, Unit::Count),
    (name::QUEUE_OUTCOME_UNKNOWN, Unit::Count),
    (name::EVENT_PUBLISH_FAILURES, Unit::Count),
    (name::JOB_RUNNING_SECONDS, Unit::Seconds),
    (name::JOB_OVERRUNS, Unit::Count),
    (name::BOT_SECONDS, Unit::Seconds),
    (name::BUDGET_USED_PERCENT, Unit::Percent),
    (name::QUEUE_ADMISSION_WAITS, Unit::Count),
    (name::ADMISSION_SLOTS_IN_USE, Unit::Count),
    (name::ADMISSION_SLOTS_UNRESOLVED, Unit::Count),
];

/// The dimension sets of every metric: per operation and outcome (failures by error type), and
/// per operation alone (latency percentiles across outcomes).
pub const DIMENSION_SETS: &[&[&str]] = &[
    &[dimension::OPERATION, dimension::OUTCOME],
    &[dimension::OPERATION],
];

/// The dimension set of [`name::SCHEDULE_SKIPS`]: by skip reason.
pub const SKIP_DIMENSION_SETS: &[&[&str]] = &[&[dimension::SKIP_REASON]];

/// The dimension set of [`name::SCHEDULE_PAUSED`]: none. A `Schedule` dimension would be
/// bounded (the schedule file's names), but one alarm in the template must see every schedule,
/// and a CloudWatch alarm cannot sum a dimension's unknown values (no `SEARCH` in alarms); the
/// schedule is named in the record's `Schedule` property, the WARN log line and
/// `cloudbot schedules list`.
pub const PAUSED_DIMENSION_SETS: &[&[&str]] = &[&[]];

/// The dimension set of [`name::JOB_RUNNING_SECONDS`] and [`name::JOB_OVERRUNS`]: none, for
/// the same reason as [`PAUSED_DIMENSION_SETS`] (one alarm sees every job); the job is the
/// record's `JobId` property.
pub const RUNNING_DIMENSION_SETS: &[&[&str]] = &[&[]];

/// The dimension sets of [`name::BOT_SECONDS`] and [`name::BUDGET_USED_PERCENT`]: per contract
/// (few: the public ids the stack runs BOTs of), and none, which the template's budget alarm
/// watches (one allowance per stack). The BOT is a property, not a dimension: one metric per BOT
/// would cost per BOT, and `cloudbot usage` has the per-BOT figures from the ledger.
pub const USAGE_DIMENSION_SETS: &[&[&str]] = &[&[dimension::CONTRACT], &[]];

/// The failure counters that also get a stack-wide total: each is published a second time
/// without dimensions (its own directive, [`TOTAL_DIMENSION_SETS`], present whenever the
/// counter is), so an alarm watches ONE metric whatever the operations. Summing them per
/// `Operation` in the alarm instead would need one metric per operation, and a metric-math
/// alarm holds at most 10 (PutMetricAlarm refuses more at deploy).
pub const STACK_TOTALS: &[&str] = &[
    name::FAILURES,
    name::LEDGER_WRITE_FAILURES,
    name::EVENT_PUBLISH_FAILURES,
];

/// The dimension set of the [`STACK_TOTALS`]: none.
pub const TOTAL_DIMENSION_SETS: &[&[&str]] = &[&[]];
/// The sandbox's metrics writer: built once at cold start, borrowed by every invocation.
#[derive(Debug)]
pub struct Metrics {
    namespace: String,
    cold: AtomicBool,
}

impl Metrics {
    /// A writer publishing under `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            cold: AtomicBool::new(true),
        }
    }

    /// Starts the record of one invocation (the first one of the sandbox is the cold start).
    pub fn start(&self, trigger: &'static str, request_id: &str) -> Invocation {
        Invocation {
            cold_start: self.cold.swap(false, Ordering::Relaxed),
            trigger,
            request_id: request_id.to_owned(),
            operation: OPERATION_NONE,
            outcome: OUTCOME_OK,
            job_id: None,
            upstream: None,
            run_started: false,
            replay: false,
            secret_fetches: 0,
            schedule_skip: None,
            schedule_paused: None,
            ledger_write_failures: 0,
            event_publish_failures: 0,
            job_running: None,
            overrun: false,
            usage: None,
        }
    }

    /// Writes the record as one line on stdout. A failed write is ignored: metrics must never
    /// fail an invocation.
    pub fn emit(&self, invocation: &Invocation, total: Duration) {
        let line = self.render(invocation, total, SystemTime::now());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    /// The record as one JSON line (with the trailing newline).
    pub fn render(&self, invocation: &Invocation, total: Duration, now: SystemTime) -> String {
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let record = Record {
            namespace: &self.namespace,
            timestamp,
            invocation,
            total_ms: millis(total),
        };
        // Serializing plain strings and numbers cannot fail; an empty line would be dropped
        // by CloudWatch rather than break anything.
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// What one invocation did, filled in as it runs.
#[derive(Debug, Clone)]
pub struct Invocation {
    cold_start: bool,
    trigger: &'static str,
    request_id: String,
    operation: &'static str,
    outcome: &'static str,
    job_id: Option<String>,
    upstream: Option<Duration>,
    run_started: bool,
    replay: bool,
    secret_fetches: u32,
    schedule_skip: Option<&'static str>,
    schedule_paused: Option<String>,
    ledger_write_failures: u32,
    event_publish_failures: u32,
    job_running: Option<Duration>,
    overrun: bool,
    usage: Option<UsageSample>,
}

/// A recorded run end's usage (docs/usage.md).
#[derive(Debug, Clone)]
struct UsageSample {
    contract: String,
    bot: Option<String>,
    seconds: u64,
    used_percent: Option<f64>,
}

impl Invocation {
    /// The decoded operation's name (one of [`OPERATIONS`]).
    pub fn set_operation(&mut self, operation: &'static str) {
        debug_assert!(
            OPERATIONS.iter().any(|(name, _)| *name == operation),
            "{operation} is not in metrics::OPERATIONS"
        );
        self.operation = operation;
    }

    /// The error type the invocation failed with (`ok` stays when never called).
    pub fn set_failed(&mut self, error_type: &'static str) {
        self.outcome = error_type;
    }

    /// Adds the duration of one Cloud BOT call.
    pub fn add_upstream(&mut self, elapsed: Duration) {
        self.upstream = Some(self.upstream.unwrap_or_default() + elapsed);
    }

    /// This invocation started a BOT run (job `job_id`).
    pub fn set_run_started(&mut self, job_id: &str) {
        self.run_started = true;
        self.job_id = Some(job_id.to_owned());
    }

    /// The job the invocation was about (refer_job), as a property.
    pub fn set_job(&mut self, job_id: &str) {
        self.job_id = Some(job_id.to_owned());
    }

    /// The invocation answered from the idempotency store (no new run).
    pub fn set_replay(&mut self) {
        self.replay = true;
    }

    /// Whether the invocation answered from the idempotency store.
    pub fn replayed(&self) -> bool {
        self.replay
    }

    /// A managed schedule's tick sent nothing, for this reason code (issue 21).
    pub fn set_schedule_skip(&mut self, reason: &'static str) {
        self.schedule_skip = Some(reason);
    }

    /// A job's end learnt by this invocation paused the managed schedule `schedule` (its
    /// failure breaker tripped).
    pub fn set_schedule_paused(&mut self, schedule: &str) {
        self.schedule_paused = Some(schedule.to_owned());
    }

    /// A run ledger write failed (the run went on).
    pub fn add_ledger_write_failure(&mut self) {
        self.ledger_write_failures += 1;
    }

    /// A job-finished event could not be put (the run went on).
    pub fn add_event_publish_failure(&mut self) {
        self.event_publish_failures += 1;
    }

    /// A look found the job running for `running` (issue 22).
    pub fn set_job_running(&mut self, running: Duration) {
        self.job_running = Some(running);
    }

    /// This invocation suspended a job past its maximum run time.
    pub fn set_overrun(&mut self) {
        self.overrun = true;
    }

    /// This invocation recorded the end of a run of `contract` (`bot`, `seconds` BOT-seconds);
    /// `used_percent`: the month's share of the budget after it, with a budget.
    pub fn set_usage(
        &mut self,
        contract: &str,
        bot: Option<&str>,
        seconds: u64,
        used_percent: Option<f64>,
    ) {
        self.usage = Some(UsageSample {
            contract: contract.to_owned(),
            bot: bot.map(str::to_owned),
            seconds,
            used_percent,
        });
    }

    /// Adds Secrets Manager reads made for this invocation.
    pub fn add_secret_fetches(&mut self, n: u32) {
        self.secret_fetches += n;
    }
}

fn millis(d: Duration) -> f64 {
    // Three decimals (microseconds) are plenty and keep the line short.
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The EMF document: `_aws` metadata plus one root member per metric, dimension and property.
struct Record<'a> {
    namespace: &'a str,
    timestamp: u64,
    invocation: &'a Invocation,
    total_ms: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: u64,
    cloud_watch_metrics: Vec<Directive<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: &'static [&'static [&'static str]],
    metrics: Vec<MetricDef>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDef {
    name: &'static str,
    unit: &'static str,
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let inv = self.invocation;
        let count = |b: bool| u32::from(b);
        let mut values: Vec<(&'static str, f64)> = vec![
            (name::INVOCATIONS, 1.0),
            (name::FAILURES, f64::from(count(inv.outcome != OUTCOME_OK))),
            (name::RUNS_STARTED, f64::from(count(inv.run_started))),
            (name::REPLAYS, f64::from(count(inv.replay))),
            (name::SECRET_FETCHES, f64::from(inv.secret_fetches)),
            (name::COLD_START, f64::from(count(inv.cold_start))),
        ];
        if let Some(upstream) = inv.upstream {
            values.push((name::UPSTREAM_LATENCY, millis(upstream)));
        }
        // Only when one failed: no series (and no cost) while the ledger works.
        if inv.ledger_write_failures > 0 {
            values.push((
                name::LEDGER_WRITE_FAILURES,
                f64::from(inv.ledger_write_failures),
            ));
        }
        if inv.event_publish_failures > 0 {
            values.push((
                name::EVENT_PUBLISH_FAILURES,
                f64::from(inv.event_publish_failures),
            ));
        }
        values.push((name::TOTAL_LATENCY, self.total_ms));
        // Every metric declared in the directive must be a root member (EMF specification), so
        // the declaration is built from the values actually present.
        let metrics = values
            .iter()
            .map(|(n, _)| MetricDef {
                name: n,
                unit: unit_of(n).as_str(),
            })
            .collect();
        let mut directives = vec![Directive {
            namespace: self.namespace,
            dimensions: DIMENSION_SETS,
            metrics,
        }];
        // The stack-wide totals the alarms watch: the same root members, declared again
        // without dimensions (the per-operation series stay for the dashboard).
        directives.push(Directive {
            namespace: self.namespace,
            dimensions: TOTAL_DIMENSION_SETS,
            metrics: values
                .iter()
                .filter(|(n, _)| STACK_TOTALS.contains(n))
                .map(|(n, _)| MetricDef {
                    name: n,
                    unit: unit_of(n).as_str(),
                })
                .collect(),
        });
        // A skip is counted by its reason alone, in a second directive of the same record, so
        // the invocation's own dimension sets stay as they are.
        if inv.schedule_skip.is_some() {
            directives.push(Directive {
                namespace: self.namespace,
                dimensions: SKIP_DIMENSION_SETS,
                metrics: vec![MetricDef {
                    name: name::SCHEDULE_SKIPS,
                    unit: Unit::Count.as_str(),
                }],
            });
        }
        // The breaker's trip, counted without dimensions: one alarm for every schedule.
        if inv.schedule_paused.is_some() {
            directives.push(Directive {
                namespace: self.namespace,
                dimensions: PAUSED_DIMENSION_SETS,
                metrics: vec![MetricDef {
                    name: name::SCHEDULE_PAUSED,
                    unit: Unit::Count.as_str(),
                }],
            });
        }
        // How long a running job has run (and its overrun), without dimensions: one alarm
        // for every job.
        if inv.job_running.is_some() {
            let mut metrics = vec![MetricDef {
                name: name::JOB_RUNNING_SECONDS,
                unit: Unit::Seconds.as_str(),
            }];
            if inv.overrun {
                metrics.push(MetricDef {
                    name: name::JOB_OVERRUNS,
                    unit: Unit::Count.as_str(),
                });
            }
            directives.push(Directive {
                namespace: self.namespace,
                dimensions: RUNNING_DIMENSION_SETS,
                metrics,
            });
        }
        // A recorded end's usage, by contract and without dimensions.
        if let Some(usage) = &inv.usage {
            let mut metrics = vec![MetricDef {
                name: name::BOT_SECONDS,
                unit: Unit::Seconds.as_str(),
            }];
            if usage.used_percent.is_some() {
                metrics.push(MetricDef {
                    name: name::BUDGET_USED_PERCENT,
                    unit: Unit::Percent.as_str(),
                });
            }
            directives.push(Directive {
                namespace: self.namespace,
                dimensions: USAGE_DIMENSION_SETS,
                metrics,
            });
        }
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(
            "_aws",
            &Metadata {
                timestamp: self.timestamp,
                cloud_watch_metrics: directives,
            },
        )?;
        map.serialize_entry(dimension::OPERATION, inv.operation)?;
        map.serialize_entry(dimension::OUTCOME, inv.outcome)?;
        for (n, v) in &values {
            // Counts as integers, latencies with their fraction.
            if unit_of(n) == Unit::Count {
                map.serialize_entry(n, &(*v as u64))?;
            } else {
                map.serialize_entry(n, v)?;
            }
        }
        if let Some(reason) = inv.schedule_skip {
            map.serialize_entry(dimension::SKIP_REASON, reason)?;
            map.serialize_entry(name::SCHEDULE_SKIPS, &1u64)?;
        }
        if let Some(schedule) = &inv.schedule_paused {
            map.serialize_entry(name::SCHEDULE_PAUSED, &1u64)?;
            map.serialize_entry("Schedule", schedule)?;
        }
        if let Some(running) = inv.job_running {
            map.serialize_entry(name::JOB_RUNNING_SECONDS, &running.as_secs())?;
            if inv.overrun {
                map.serialize_entry(name::JOB_OVERRUNS, &1u64)?;
            }
        }
        if let Some(usage) = &inv.usage {
            map.serialize_entry(dimension::CONTRACT, &usage.contract)?;
            map.serialize_entry(name::BOT_SECONDS, &usage.seconds)?;
            if let Some(percent) = usage.used_percent {
                // Two decimals are plenty for an alarm on a percentage.
                map.serialize_entry(
                    name::BUDGET_USED_PERCENT,
                    &((percent * 100.0).round() / 100.0),
                )?;
            }
            if let Some(bot) = &usage.bot {
                map.serialize_entry("Bot", bot)?;
            }
        }
        map.serialize_entry("Trigger", inv.trigger)?;
        map.serialize_entry("RequestId", &inv.request_id)?;
        if let Some(job_id) = &inv.job_id {
            map.serialize_entry("JobId", job_id)?;
        }
        map.end()
    }
}

/// The dimension set of the run queue's metrics: by lane.
pub const LANE_DIMENSION_SETS: &[&[&str]] = &[&[dimension::LANE]];

/// What one lane of a run queue batch did (its own record, next to the messages' own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueBatch {
    /// `high` or `normal`.
    pub lane: &'static str,
    /// The age of the lane's oldest message of the batch when it was received.
    pub oldest_wait: Duration,
    /// Messages of the lane.
    pub messages: u32,
    /// Of them, reported failed to be delivered again.
    pub redelivered: u32,
    /// Of them, reported failed for the dead-letter queue.
    pub dead_lettered: u32,
    /// Of them, whose outcome is unknown.
    pub outcome_unknown: u32,
    /// Of them, put back to wait for a slot of their contract.
    pub admission_waits: u32,
}

impl Metrics {
    /// Writes the record of one lane of a run queue batch as one line on stdout.
    pub fn emit_queue_batch(&self, batch: &QueueBatch) {
        let line = self.render_queue_batch(batch, SystemTime::now());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    /// The record of one lane of a run queue batch as one JSON line.
    pub fn render_queue_batch(&self, batch: &QueueBatch, now: SystemTime) -> String {
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let counts = [
            (name::QUEUE_MESSAGES, batch.messages),
            (name::QUEUE_REDELIVERED, batch.redelivered),
            (name::QUEUE_DEAD_LETTERED, batch.dead_lettered),
            (name::QUEUE_OUTCOME_UNKNOWN, batch.outcome_unknown),
            (name::QUEUE_ADMISSION_WAITS, batch.admission_waits),
        ];
        let mut metrics = vec![MetricDef {
            name: name::QUEUE_WAIT,
            unit: Unit::Milliseconds.as_str(),
        }];
        metrics.extend(counts.iter().map(|(n, _)| MetricDef {
            name: n,
            unit: Unit::Count.as_str(),
        }));
        let mut record = serde_json::Map::new();
        let metadata = Metadata {
            timestamp,
            cloud_watch_metrics: vec![Directive {
                namespace: &self.namespace,
                dimensions: LANE_DIMENSION_SETS,
                metrics,
            }],
        };
        record.insert(
            "_aws".into(),
            serde_json::to_value(metadata).unwrap_or_default(),
        );
        record.insert(dimension::LANE.into(), batch.lane.into());
        record.insert(name::QUEUE_WAIT.into(), millis(batch.oldest_wait).into());
        for (n, v) in counts {
            record.insert(n.into(), v.into());
        }
        let mut line = serde_json::Value::Object(record).to_string();
        line.push('\n');
        line
    }
}

/// The dimension set of the admission slots' record: by contract.
pub const CONTRACT_DIMENSION_SETS: &[&[&str]] = &[&[dimension::CONTRACT]];

impl Metrics {
    /// Writes the sweep's record of one capped contract's slots as one line on stdout.
    pub fn emit_admission_slots(&self, contract: &str, in_use: u32, unresolved: u32) {
        let line = self.render_admission_slots(contract, in_use, unresolved, SystemTime::now());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    /// The sweep's record of one capped contract's slots as one JSON line.
    pub fn render_admission_slots(
        &self,
        contract: &str,
        in_use: u32,
        unresolved: u32,
        now: SystemTime,
    ) -> String {
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let counts = [
            (name::ADMISSION_SLOTS_IN_USE, in_use),
            (name::ADMISSION_SLOTS_UNRESOLVED, unresolved),
        ];
        let metadata = Metadata {
            timestamp,
            cloud_watch_metrics: vec![Directive {
                namespace: &self.namespace,
                dimensions: CONTRACT_DIMENSION_SETS,
                metrics: counts
                    .iter()
                    .map(|(n, _)| MetricDef {
                        name: n,
                        unit: Unit::Count.as_str(),
                    })
                    .collect(),
            }],
        };
        let mut record = serde_json::Map::new();
        record.insert(
            "_aws".into(),
            serde_json::to_value(metadata).unwrap_or_default(),
        );
        record.insert(dimension::CONTRACT.into(), contract.into());
        for (n, v) in counts {
            record.insert(n.into(), v.into());
        }
        let mut line = serde_json::Value::Object(record).to_string();
        line.push('\n');
        line
    }
}

fn unit_of(metric: &str) -> Unit {
    METRICS
        .iter()
        .find(|(n, _)| *n == metric)
        .map_or(Unit::Count, |(_, u)| *u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_queue_batch_record_declares_every_value_by_lane() {
        let m = Metrics::new(DEFAULT_NAMESPACE);
        let batch = QueueBatch {
            lane: "high",
            oldest_wait: Duration::from_millis(1500),
            messages: 4,
            redelivered: 1,
            dead_lettered: 1,
            outcome_unknown: 1,
            admission_waits: 2,
        };
        let v = parse(&m.render_queue_batch(&batch, UNIX_EPOCH));
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], serde_json::json!([["Lane"]]));
        for def in directive["Metrics"].as_array().unwrap() {
            let name = def["Name"].as_str().unwrap();
            assert!(v.get(name).is_some(), "{name} declared but absent");
            assert_eq!(def["Unit"], unit_of(name).as_str(), "{name}");
        }
        assert_eq!(v["Lane"], "high");
        assert_eq!(v["QueueWait"], 1500.0);
        assert_eq!(v["QueueOutcomeUnknown"], 1);
        assert_eq!(v["QueueMessages"], 4);
        assert_eq!(v["QueueAdmissionWaits"], 2);
    }

    fn parse(line: &str) -> Value {
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line:?}"
        );
        serde_json::from_str(line).unwrap()
    }

    fn render(inv: &Invocation) -> Value {
        let m = Metrics::new("Test/NS");
        parse(&m.render(
            inv,
            Duration::from_micros(12_345),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        ))
    }

    /// The EMF specification's structural rules, checked on one record.
    fn assert_valid_emf(v: &Value) {
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].as_u64().is_some(), "{v}");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        // An invocation's record: its directive, the stack-wide totals', the skip's when a
        // schedule tick was skipped, the breaker's when a schedule paused itself, a running job's,
        // and usage's when a run's end was recorded (the side records have one).
        assert!((1..=6).contains(&directives.len()));
        for d in directives {
            assert!(d["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
            for set in d["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                // An empty set is valid EMF: the metric without dimensions (SchedulePaused).
                assert!(set.len() <= 30);
                for dim in set {
                    let dim = dim.as_str().unwrap();
                    assert!(
                        v[dim].is_string(),
                        "dimension {dim} must be a string root member"
                    );
                }
            }
            let defs = d["Metrics"].as_array().unwrap();
            assert!(defs.len() <= 100);
            for def in defs {
                let name = def["Name"].as_str().unwrap();
                assert!(
                    v[name].is_number(),
                    "metric {name} must be a numeric root member"
                );
                let unit = def["Unit"].as_str().unwrap();
                assert!(
                    ["Count", "Milliseconds", "Seconds", "Percent"].contains(&unit),
                    "{unit}"
                );
            }
        }
    }

    #[test]
    fn a_successful_execute_is_one_valid_record_with_the_run_counted() {
        let m = Metrics::new("Test/NS");
        let mut inv = m.start("eventbridge", "req-1");
        inv.set_operation("execute");
        inv.add_secret_fetches(1);
        inv.add_upstream(Duration::from_millis(40));
        inv.add_upstream(Duration::from_micros(2_500));
        inv.set_run_started("job-1");
        let v = render(&inv);
        assert_valid_emf(&v);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123u64);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Test/NS");
        assert_eq!(v["Operation"], "execute");
        assert_eq!(v["Outcome"], "ok");
        assert_eq!(v["Invocations"], 1);
        assert_eq!(v["Failures"], 0);
        assert_eq!(v["RunsStarted"], 1);
        assert_eq!(v["Replays"], 0);
        assert_eq!(v["SecretFetches"], 1);
        assert_eq!(v["ColdStart"], 1);
        assert_eq!(v["UpstreamLatency"], 42.5);
        assert_eq!(v["TotalLatency"], 12.345);
        assert_eq!(v["Trigger"], "eventbridge");
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["JobId"], "job-1");
    }

    #[test]
    fn a_failure_is_counted_under_its_error_type_and_only_the_first_record_is_cold() {
        let m = Metrics::new(DEFAULT_NAMESPACE);
        let _first = m.start("apigw-v2", "req-1");
        let mut inv = m.start("apigw-v2", "req-2");
        inv.set_failed("InvalidRequest");
        let v = render(&inv);
        assert_valid_emf(&v);
        assert_eq!(v["Operation"], OPERATION_NONE);
        assert_eq!(v["Outcome"], "InvalidRequest");
        assert_eq!(v["Failures"], 1);
        assert_eq!(v["ColdStart"], 0);
        assert_eq!(v["RunsStarted"], 0);
        // No upstream call: no UpstreamLatency, neither as a value nor as a declared metric.
        assert!(v.get("UpstreamLatency").is_none());
        let declared: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap())
            .collect();
        assert!(!declared.contains(&"UpstreamLatency"));
        // Only a record with a failed ledger write has the metric (no series while it works).
        assert!(!declared.contains(&"LedgerWriteFailures"));
        assert!(v.get("LedgerWriteFailures").is_none());
        assert!(v.get("JobId").is_none());
    }

    #[test]
    fn every_declared_metric_is_in_the_one_list_with_its_unit() {
        let m = Metrics::new("NS");
        let mut inv = m.start("sfn", "r");
        inv.add_upstream(Duration::from_millis(1));
        inv.set_replay();
        // Not a real combination (a skip makes no upstream call), but it puts every metric in
        // one record.
        inv.set_schedule_skip("holiday");
        inv.set_schedule_paused("daily-report");
        inv.add_ledger_write_failure();
        inv.add_event_publish_failure();
        inv.set_job_running(Duration::from_secs(3_700));
        inv.set_overrun();
        inv.set_usage("demo", Some("demo/echo_bot"), 42, Some(12.3456));
        let v = render(&inv);
        assert_valid_emf(&v);
        // The run queue's metrics have their own record (one per lane of a batch).
        let queue = parse(&m.render_queue_batch(&QueueBatch::default(), UNIX_EPOCH));
        let slots = parse(&m.render_admission_slots("demo", 3, 1, UNIX_EPOCH));
        assert_valid_emf(&slots);
        assert_eq!(
            (&slots["Contract"], &slots["AdmissionSlotsInUse"]),
            (&Value::from("demo"), &Value::from(3))
        );
        let declared: Vec<&Value> = [&v, &queue, &slots]
            .into_iter()
            .flat_map(|r| r["_aws"]["CloudWatchMetrics"].as_array().unwrap())
            .flat_map(|d| d["Metrics"].as_array().unwrap())
            .collect();
        // The stack-wide totals are declared twice (per operation and without dimensions).
        let distinct: std::collections::BTreeSet<&str> = declared
            .iter()
            .map(|d| d["Name"].as_str().unwrap())
            .collect();
        assert_eq!(declared.len(), distinct.len() + STACK_TOTALS.len());
        assert_eq!(
            distinct.len(),
            METRICS.len(),
            "all metrics present with an upstream call, a skip, a trip, a failed ledger write, \
             a queue batch, a running job and a recorded end with a budget"
        );
        for def in declared {
            let name = def["Name"].as_str().unwrap();
            let (_, unit) = METRICS.iter().find(|(n, _)| *n == name).unwrap();
            assert_eq!(def["Unit"], unit.as_str());
        }
        assert_eq!(v["Replays"], 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Operation", "Outcome"], ["Operation"]])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][1],
            serde_json::json!({
                "Namespace": "Test/NS",
                "Dimensions": [[]],
                "Metrics": [
                    {"Name": "Failures", "Unit": "Count"},
                    {"Name": "LedgerWriteFailures", "Unit": "Count"},
                    {"Name": "EventPublishFailures", "Unit": "Count"},
                ],
            }),
            "the stack-wide totals, without dimensions"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][2]["Dimensions"],
            serde_json::json!([["SkipReason"]])
        );
        assert_eq!(v["SkipReason"], "holiday");
        assert_eq!(v["ScheduleSkips"], 1);
        // The breaker's trip: no dimensions, the schedule as a plain property.
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][3]["Dimensions"],
            serde_json::json!([[]])
        );
        assert_eq!(v["SchedulePaused"], 1);
        assert_eq!(v["Schedule"], "daily-report");
        // A running job's time and its overrun: no dimensions either, whole seconds.
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][4]["Dimensions"],
            serde_json::json!([[]])
        );
        assert_eq!(v["JobRunningSeconds"], 3_700);
        assert_eq!(v["JobOverruns"], 1);
        // A recorded end's usage: by contract and without dimensions, the BOT a property.
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][5]["Dimensions"],
            serde_json::json!([["Contract"], []])
        );
        assert_eq!(v["Contract"], "demo");
        assert_eq!(v["BotSeconds"], 42);
        assert_eq!(v["BudgetUsedPercent"], 12.35);
        assert_eq!(v["Bot"], "demo/echo_bot");
    }

    #[test]
    fn every_record_carries_the_stack_wide_failure_total_the_alarm_watches() {
        let m = Metrics::new("NS");
        let totals = |v: &Value| -> Vec<(String, Value)> {
            let directive = &v["_aws"]["CloudWatchMetrics"][1];
            assert_eq!(directive["Dimensions"], serde_json::json!([[]]));
            directive["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let name = d["Name"].as_str().unwrap().to_owned();
                    let value = v[&name].clone();
                    (name, value)
                })
                .collect()
        };
        // A success: Failures 0 is still published, so the total exists (and reads 0).
        let mut ok = m.start("sfn", "r1");
        ok.set_operation("refer_job");
        let v = render(&ok);
        assert_valid_emf(&v);
        assert_eq!(totals(&v), [("Failures".to_owned(), Value::from(0))]);
        // A failure of any operation counts 1 in the same dimensionless metric, whose value is
        // the per-operation one (one root member, declared in both directives).
        let mut failed = m.start("apigw-v2", "r2");
        failed.set_operation("decide_rerun");
        failed.set_failed("InvalidRequest");
        failed.add_ledger_write_failure();
        failed.add_ledger_write_failure();
        let v = render(&failed);
        assert_valid_emf(&v);
        assert_eq!(
            totals(&v),
            [
                ("Failures".to_owned(), Value::from(1)),
                ("LedgerWriteFailures".to_owned(), Value::from(2)),
            ]
        );
        let per_operation: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap())
            .collect();
        assert!(
            per_operation.contains(&"Failures") && per_operation.contains(&"LedgerWriteFailures")
        );
        // Every total is a metric of the one list.
        assert!(
            STACK_TOTALS
                .iter()
                .all(|t| METRICS.iter().any(|(n, _)| n == t))
        );
    }

    #[test]
    fn only_a_look_at_a_running_job_carries_its_running_time() {
        let m = Metrics::new("NS");
        let mut inv = m.start("sfn", "r");
        inv.set_operation("refer_job");
        let v = render(&inv);
        assert!(v.get("JobRunningSeconds").is_none() && v.get("JobOverruns").is_none());
        inv.set_job_running(Duration::from_millis(61_900));
        let v = render(&inv);
        assert_valid_emf(&v);
        assert_eq!(v["JobRunningSeconds"], 61);
        assert!(v.get("JobOverruns").is_none(), "no overrun, no series");
    }

    #[test]
    fn an_end_without_a_budget_has_its_seconds_and_no_share() {
        let m = Metrics::new("NS");
        let mut inv = m.start("sfn", "r");
        inv.set_usage("demo", None, 7, None);
        let v = render(&inv);
        assert_valid_emf(&v);
        assert_eq!(v["BotSeconds"], 7);
        assert!(v.get("BudgetUsedPercent").is_none() && v.get("Bot").is_none());
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][2]["Metrics"],
            serde_json::json!([{"Name": "BotSeconds", "Unit": "Seconds"}])
        );
    }

    #[test]
    fn a_record_without_a_skip_has_two_directives_and_no_skip_reason() {
        let m = Metrics::new("NS");
        let v = render(&m.start("scheduler", "r"));
        // The invocation's and the stack-wide totals'.
        assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 2);
        assert!(v.get("SkipReason").is_none() && v.get("ScheduleSkips").is_none());
    }

    #[test]
    fn operations_lists_every_operation_kind_and_none() {
        use crate::request::OperationKind;
        // No wildcard: a new OperationKind does not compile here until it is added to this
        // match and to `kinds`, and then fails until OPERATIONS names it.
        let checked = |kind: OperationKind| match kind {
            OperationKind::Execute
            | OperationKind::ReferJob
            | OperationKind::ListBots
            | OperationKind::ResolveIdempotency
            | OperationKind::Callback
            | OperationKind::ScheduleTick
            | OperationKind::ExecutionEnded
            | OperationKind::Sweep
            | OperationKind::BotDone
            | OperationKind::DecideRerun => kind,
        };
        let kinds = [
            OperationKind::Execute,
            OperationKind::ReferJob,
            OperationKind::ListBots,
            OperationKind::ResolveIdempotency,
            OperationKind::Callback,
            OperationKind::BotDone,
            OperationKind::ScheduleTick,
            OperationKind::ExecutionEnded,
            OperationKind::Sweep,
            OperationKind::DecideRerun,
        ]
        .map(checked);
        assert!(OperationKind::ALL.iter().all(|k| kinds.contains(k)));
        let mut expected: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        expected.push(OPERATION_NONE);
        let listed: Vec<&str> = OPERATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed, expected);
    }
}
