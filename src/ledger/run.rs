//! A run of the ledger as pure values: its key, who started it, what was learned about its job,
//! and the one write each learning becomes. No SDK type here; `dynamodb` turns a [`RunWrite`]
//! into one `UpdateItem`. Item shape, keys and indexes: docs/ledger.md.

use jiff::Timestamp;
use jiff::tz::Offset;

use crate::cloudbot::{JobEndpoint, JobStatus};
use crate::idempotency::RecordKey;
use crate::trigger::Trigger;

/// Longest message kept (characters): a BOT's message is a sentence; a runaway one must not push
/// the item towards DynamoDB's 400 KB.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// The hours the month of a run is shifted by: Japan Standard Time (UTC+9, no daylight saving),
/// the time zone of Cloud BOT's contract month [I]: the monthly allowance is a Japanese
/// contract's, so a month of runs is the contract's month (docs/ledger.md, "Months").
pub const MONTH_OFFSET_HOURS: i8 = 9;

/// The key of a started run: `<public_id>/<job_id>`, derived from the job reference endpoint, so
/// every path that learns a job's state finds the run with no index and no read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey(String);

impl RunKey {
    /// The run of the job at `job`.
    pub fn of_job(job: &JobEndpoint) -> Self {
        Self(format!(
            "{}/{}",
            job.public_id().as_str(),
            job.job_id().as_str()
        ))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who started a run: known only to the execute that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `scheduler`, `eventbridge`, `api`, `step_functions` or `direct`.
    pub trigger: &'static str,
    /// The schedule's name, when the run is a schedule's occurrence.
    pub schedule: Option<String>,
    /// The nominal occurrence (RFC 3339), with `schedule`.
    pub nominal_time: Option<String>,
    /// The Step Functions execution ARN, when the idempotency key names one.
    pub execution: Option<String>,
    /// The idempotency key as stored (`request:…`), when the execute had one.
    pub request_key: Option<String>,
    /// The Lambda request id of the invocation that started the run.
    pub request_id: String,
    /// The ARN of the IAM principal that signed the API Gateway request that started it
    /// (API Gateway only; the other triggers are told by `trigger`, `execution`, `schedule`).
    pub caller: Option<String>,
    /// The run's maximum run time in seconds (`max_run_seconds`), when its request set one:
    /// every later look at the job reads it from here (docs/overrun.md).
    pub max_run_s: Option<u64>,
    /// The request asked to keep the job running when its workflow ends (`keep_running`): the
    /// orphan paths leave it (docs/orphans.md).
    pub keep_running: bool,
    /// The attempt of a re-run loop this run is (1 for the first job; docs/state-machines.md,
    /// "Re-run on failure"), when the execute carried one.
    pub attempt: Option<u32>,
    /// The run of the failed job this attempt re-runs (`<public_id>/<job_id>`).
    pub previous_run: Option<String>,
    /// The BOT input it was started with, for `cloudbot rerun` (bounded; src/ledger/input.rs).
    pub input: super::KeptInput,
}

impl Origin {
    /// The origin of an execute delivered by `trigger`, keyed by `key` (the nominal occurrence's
    /// for a managed schedule, whose name is `schedule_name`).
    ///
    /// What the key tells (docs/exactly-once.md, "Keys per trigger"): `schedule:<arn>@<time>` is
    /// a Scheduler occurrence; `request:schedule:<arn>@<time>#…` is the shipped state machines'
    /// run of one; `request:arn:…:states:…:execution:…#…` names the execution.
    pub fn of(
        trigger: Trigger,
        key: Option<&RecordKey>,
        task_token: bool,
        schedule_name: Option<&str>,
        request_id: &str,
    ) -> Self {
        let key_text = key.map(RecordKey::as_str);
        let request = key_text.and_then(|k| k.strip_prefix("request:"));
        let execution = key.and_then(execution_of_key).map(str::to_owned);
        let occurrence = key_text
            .and_then(|k| k.strip_prefix("schedule:"))
            .or_else(|| request.and_then(|k| k.strip_prefix("schedule:")))
            .map(|k| k.split('#').next().unwrap_or(k))
            .and_then(|k| k.rsplit_once('@'));
        let from_state_machine = execution.is_some()
            || task_token
            || request.is_some_and(|k| k.starts_with("schedule:"));
        let trigger = match trigger {
            Trigger::ApiGatewayRest | Trigger::ApiGatewayHttp => "api",
            Trigger::EventBridge | Trigger::Scheduled => "eventbridge",
            Trigger::Scheduler => "scheduler",
            Trigger::Direct if from_state_machine => "step_functions",
            Trigger::Direct => "direct",
            Trigger::Queue => "queue",
        };
        let (schedule, nominal_time) = match occurrence {
            Some((arn, time)) => (
                Some(
                    schedule_name
                        .map(str::to_owned)
                        .unwrap_or_else(|| schedule_of_arn(arn).to_owned()),
                ),
                Some(time.to_owned()),
            ),
            None => (None, None),
        };
        Self {
            trigger,
            schedule,
            nominal_time,
            execution,
            request_key: key_text.map(str::to_owned),
            request_id: request_id.to_owned(),
            caller: None,
            max_run_s: None,
            keep_running: false,
            attempt: None,
            previous_run: None,
            input: super::KeptInput::NotRecorded,
        }
    }
}

impl Origin {
    /// This origin with the execution the execute's envelope named (its `execution` field):
    /// it wins over the key's, which it was checked to agree with (src/trigger/execution.rs),
    /// and is the only one a run keyed on a schedule occurrence has (docs/orphans.md).
    pub fn with_execution(mut self, execution: Option<&str>) -> Self {
        if let Some(arn) = execution {
            self.execution = Some(arn.to_owned());
        }
        self
    }
}

/// The Step Functions execution an idempotency key names
/// (`request:arn:…:states:…:execution:…#…`), if any.
pub fn execution_of_key(key: &RecordKey) -> Option<&str> {
    key.as_str()
        .strip_prefix("request:")
        .filter(|k| k.starts_with("arn:") && k.contains(":states:") && k.contains(":execution:"))
        .map(|k| k.split('#').next().unwrap_or(k))
}

/// The schedule's name in a Scheduler ARN (`…:schedule/<group>/<name>`).
fn schedule_of_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// What a path learned about a job (never its input or output data).
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The job's status.
    pub status: JobStatus,
    /// The BOT id Cloud BOT reported (empty when it omitted it).
    pub bot_id: &'a str,
    /// Cloud BOT's start time of the job (ISO 8601), when given.
    pub start_time: Option<&'a str>,
    /// Cloud BOT's elapsed seconds, when given.
    pub elapsed_s: Option<i64>,
    /// Cloud BOT's message.
    pub message: Option<&'a str>,
    /// The answer was over the client's response cap and read without its output
    /// (docs/client.md, "Oversized outputs").
    pub output_omitted: bool,
}

/// The `trigger` of a run first learned from Cloud BOT's "BOT done" webhook: started outside
/// this stack (Cloud BOT's console, its schedules, kintone, Zapier; docs/ledger.md). Set only
/// when no start wrote one: the execute of a run of ours overwrites it.
pub const OUTSIDE: &str = "outside";

/// The end status of a run suspended for passing its maximum run time (docs/overrun.md).
pub const OVERRUN: &str = "overrun";

/// The end status of a run whose job was suspended because its workflow failed, timed out or
/// was stopped while it ran (docs/orphans.md).
pub const ORPHANED: &str = "orphaned";

/// The end of a run, recorded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// `succeeded` or `error`, or [`OVERRUN`].
    pub status: &'static str,
    /// When it was learned (epoch ms).
    pub ended_at_ms: u64,
    /// Cloud BOT's elapsed seconds, else the time since the start.
    pub elapsed_s: u64,
    /// Cloud BOT's message, at most [`MAX_MESSAGE_CHARS`].
    pub message: Option<String>,
    /// The finished job's output was too large to read (kept at Cloud BOT: GET the job
    /// endpoint).
    pub output_omitted: bool,
}

/// One write of a run: every field is commutative with every other write of the same run
/// (first-seen times and the identity are set only if absent), except the end, which is
/// conditional on no end being recorded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWrite {
    /// The run.
    pub run: RunKey,
    /// The job reference endpoint.
    pub job_endpoint: String,
    /// `<public_id>/<bot_id>`, when known (the `by_bot` index).
    pub bot: Option<String>,
    /// The start (epoch ms): set if absent.
    pub started_at_ms: u64,
    /// The month of the start in JST, `YYYY-MM` (the `by_month` index): set with the start.
    pub month: String,
    /// The TTL (epoch seconds): the start plus the retention, set with the start.
    pub expires_at_s: u64,
    /// The status attribute of the first-seen time (`seen_executing`, …) and that time (ms).
    pub seen: (String, u64),
    /// The status label.
    pub status: &'static str,
    /// Who started it (the execute's write only).
    pub origin: Option<Origin>,
    /// The end (a final status only).
    pub end: Option<End>,
    /// The `trigger` to set when the record has none ([`OUTSIDE`] from the BOT-done webhook).
    pub trigger_if_unset: Option<&'static str>,
}

impl RunWrite {
    /// The write for what was learned about `job` at `now_ms`; `origin` for the execute that
    /// started it; `retention_s` from the start to the TTL.
    pub fn of(
        job: &JobEndpoint,
        observed: &Observed<'_>,
        origin: Option<Origin>,
        now_ms: u64,
        retention_s: u64,
    ) -> Self {
        // The execute's start is when its answer came; a job first learned by another path
        // started when Cloud BOT says, else now.
        let started_at_ms = match origin {
            Some(_) => now_ms,
            None => observed
                .start_time
                .and_then(|t| t.parse::<Timestamp>().ok())
                .and_then(|t| u64::try_from(t.as_millisecond()).ok())
                .unwrap_or(now_ms),
        };
        let end = observed.status.is_final().then(|| End {
            status: observed.status.label(),
            ended_at_ms: now_ms,
            elapsed_s: observed
                .elapsed_s
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(now_ms.saturating_sub(started_at_ms) / 1000),
            message: observed
                .message
                .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect()),
            output_omitted: observed.output_omitted,
        });
        let bot = (!observed.bot_id.is_empty())
            .then(|| format!("{}/{}", job.public_id().as_str(), observed.bot_id));
        Self {
            run: RunKey::of_job(job),
            job_endpoint: job.url().to_owned(),
            bot,
            started_at_ms,
            month: month_of(started_at_ms),
            expires_at_s: (started_at_ms / 1000).saturating_add(retention_s),
            seen: (seen_attribute(observed.status), now_ms),
            status: observed.status.label(),
            origin,
            end,
            trigger_if_unset: None,
        }
    }
}

impl RunWrite {
    /// The write of a run that passed its maximum run time and was suspended: its end is
    /// [`OVERRUN`] whatever the job reads after the suspend (Cloud BOT accepted it), with what
    /// that re-read said (`observed`).
    pub fn overrun(
        job: &JobEndpoint,
        observed: &Observed<'_>,
        now_ms: u64,
        retention_s: u64,
    ) -> Self {
        Self::suspended(job, observed, OVERRUN, now_ms, retention_s)
    }

    /// The write of a run whose job this product suspended: its end is `status` ([`OVERRUN`]
    /// or [`ORPHANED`]) whatever the job reads after the suspend (Cloud BOT accepted it), with
    /// what that re-read said (`observed`).
    pub fn suspended(
        job: &JobEndpoint,
        observed: &Observed<'_>,
        status: &'static str,
        now_ms: u64,
        retention_s: u64,
    ) -> Self {
        let mut write = Self::of(job, observed, None, now_ms, retention_s);
        write.end = Some(End {
            status,
            ended_at_ms: now_ms,
            elapsed_s: observed
                .elapsed_s
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(now_ms.saturating_sub(write.started_at_ms) / 1000),
            message: observed
                .message
                .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect()),
            output_omitted: observed.output_omitted,
        });
        write
    }
}

/// The attribute holding the first time a status was seen: `seen_executing`, `seen_succeeded`,
/// `seen_error`, or `seen_code_<n>` for a status code Cloud BOT has not documented.
pub fn seen_attribute(status: JobStatus) -> String {
    match status {
        JobStatus::Unknown(n) => format!("seen_code_{n}"),
        known => format!("seen_{}", known.label()),
    }
}

/// `YYYY-MM` of `ms` (epoch ms) in UTC+[`MONTH_OFFSET_HOURS`].
pub fn month_of(ms: u64) -> String {
    let offset = Offset::constant(MONTH_OFFSET_HOURS);
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| {
            let civil = offset.to_datetime(t);
            format!("{:04}-{:02}", civil.year(), civil.month())
        })
        .unwrap_or_else(|| "1970-01".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudbot::ApiBase;

    fn job() -> JobEndpoint {
        let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
        JobEndpoint::parse(&base, "https://api.c-bot.pro/demo/jobs/j-1", "j").unwrap()
    }

    fn observed(status: JobStatus) -> Observed<'static> {
        Observed {
            status,
            bot_id: "echo_bot",
            start_time: Some("2026-11-30T15:30:00Z"),
            elapsed_s: Some(12),
            message: Some("done"),
            output_omitted: false,
        }
    }

    #[test]
    fn the_month_is_the_japanese_calendar_month() {
        // 2026-11-30T15:00Z is 2026-12-01T00:00 in Tokyo.
        assert_eq!(month_of(1_796_050_800_000 - 1), "2026-11");
        assert_eq!(month_of(1_796_050_800_000), "2026-12");
    }

    #[test]
    fn a_run_is_keyed_by_its_job() {
        assert_eq!(RunKey::of_job(&job()).as_str(), "demo/j-1");
    }

    #[test]
    fn a_job_first_learned_elsewhere_starts_when_cloud_bot_says() {
        let w = RunWrite::of(
            &job(),
            &observed(JobStatus::Succeeded),
            None,
            1_796_100_000_000,
            10,
        );
        assert_eq!(w.started_at_ms, 1_796_052_600_000);
        assert_eq!(w.month, "2026-12");
        assert_eq!(w.expires_at_s, 1_796_052_600 + 10);
        assert_eq!(w.bot.as_deref(), Some("demo/echo_bot"));
        let end = w.end.unwrap();
        assert_eq!((end.status, end.elapsed_s), ("succeeded", 12));
        assert_eq!(w.seen.0, "seen_succeeded");
    }

    #[test]
    fn an_overrun_ends_the_run_as_overrun_even_while_the_job_reads_executing() {
        let w = RunWrite::overrun(
            &job(),
            &observed(JobStatus::Executing),
            1_796_100_000_000,
            10,
        );
        let end = w.end.unwrap();
        assert_eq!((end.status, end.elapsed_s), (OVERRUN, 12));
        let w = RunWrite::overrun(&job(), &observed(JobStatus::Error), 1_796_100_000_000, 10);
        assert_eq!(w.end.unwrap().status, OVERRUN);
    }

    #[test]
    fn only_a_final_status_ends_a_run() {
        let w = RunWrite::of(&job(), &observed(JobStatus::Executing), None, 5_000, 10);
        assert!(w.end.is_none());
        assert_eq!(seen_attribute(JobStatus::Unknown(7)), "seen_code_7");
    }

    #[test]
    fn the_origin_is_read_from_the_trigger_and_the_key() {
        let arn = "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/default/nightly";
        let key = RecordKey::schedule(arn, "2026-11-24T00:00:00Z").unwrap();
        let o = Origin::of(Trigger::Scheduler, Some(&key), false, None, "r");
        assert_eq!(
            (o.trigger, o.schedule.as_deref(), o.nominal_time.as_deref()),
            ("scheduler", Some("nightly"), Some("2026-11-24T00:00:00Z"))
        );
        let managed = Origin::of(Trigger::Scheduler, Some(&key), false, Some("pay"), "r");
        assert_eq!(managed.schedule.as_deref(), Some("pay"));

        let exec = "arn:aws:states:us-east-1:123456789012:execution:RunBot:abc";
        let key = RecordKey::request(&format!("{exec}#ExecuteBot")).unwrap();
        let o = Origin::of(Trigger::Direct, Some(&key), false, None, "r");
        assert_eq!(
            (o.trigger, o.execution.as_deref()),
            ("step_functions", Some(exec))
        );
        assert_eq!(o.schedule, None);

        let key =
            RecordKey::request(&format!("schedule:{arn}@2026-11-24T00:00:00Z#ExecuteBot")).unwrap();
        let o = Origin::of(Trigger::Direct, Some(&key), false, None, "r");
        assert_eq!(
            (o.trigger, o.schedule.as_deref(), o.nominal_time.as_deref()),
            (
                "step_functions",
                Some("nightly"),
                Some("2026-11-24T00:00:00Z")
            )
        );

        // The envelope's `execution` gives a schedule-keyed run its execution (else none).
        assert_eq!(o.execution, None);
        let named = o.clone().with_execution(Some(exec));
        assert_eq!(named.execution.as_deref(), Some(exec));
        assert_eq!(named.schedule.as_deref(), Some("nightly"));
        assert_eq!(o.clone().with_execution(None), o);

        let key = RecordKey::request("order-1").unwrap();
        let o = Origin::of(Trigger::Direct, Some(&key), false, None, "r");
        assert_eq!(
            (o.trigger, o.request_key.as_deref()),
            ("direct", Some("request:order-1"))
        );
        assert_eq!(
            Origin::of(Trigger::Direct, None, true, None, "r").trigger,
            "step_functions"
        );
        assert_eq!(
            Origin::of(Trigger::ApiGatewayHttp, None, false, None, "r").trigger,
            "api"
        );
        assert_eq!(
            Origin::of(Trigger::Scheduled, None, false, None, "r").trigger,
            "eventbridge"
        );
    }
}
