//! `cloudbot enqueue FILE`: a JSON-lines file of execute requests onto the run queue's lanes
//! (docs/queue.md, "Enqueueing a batch").
//!
//! Every line is checked with the function's own decoder of a message body before anything is
//! sent, so a line the CLI accepts is one the function accepts (with the same API base and
//! defaults). A line without its own `idempotency_key` gets one (`<prefix>-<line number>`): a
//! send retried after a lost answer (by the SDK or here) then puts a second copy on the queue
//! that starts nothing, where a copy keyed by its new message id would start a second billed
//! run. Lines go out in `SendMessageBatch` groups, and only the entries SQS reports failed (not
//! its refusals of the entry itself) are sent again, a bounded number of times.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use clap::Args as ClapArgs;
use cloudbot_trigger::cloudbot::{Language, PublicId};
use cloudbot_trigger::config::{DEFAULT_CALLBACK_TRIES, Requests};
use cloudbot_trigger::idempotency::RecordKey;
use cloudbot_trigger::request::{Operation, Priority};
use cloudbot_trigger::trigger::{Lane, decode_message_body};
use serde::Serialize;

use crate::args::Global;
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{BOLD, DIM, Output};
use crate::session::{api_base, aws_config};
use crate::stage::{Stage, Tracker};
use crate::target::Origin;

/// SQS's most entries in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's classic payload limit, for one message and for a whole `SendMessageBatch` alike (the
/// template leaves the queues' `MaximumMessageSize` at its default).
pub const MAX_PAYLOAD_BYTES: usize = 262_144;
/// Sends of one group: the first and the retries of the entries SQS reported failed.
const SEND_ROUNDS: u32 = 4;
/// The longest wait before the first retry of failed entries; it doubles per round, random
/// within (full jitter, as the follow loop's retries).
pub const FIRST_RETRY_WAIT: Duration = Duration::from_millis(200);

/// `cloudbot enqueue FILE`.
#[derive(Debug, Clone, ClapArgs)]
pub struct EnqueueArgs {
    /// The requests: one JSON object per line, as a run queue message body (docs/queue.md);
    /// `-` for stdin. Blank lines are skipped.
    pub file: PathBuf,
    /// The stack output RunQueueHighUrl (lines with `"priority": "high"`).
    #[arg(long, env = "CLOUDBOT_RUN_QUEUE_HIGH_URL", value_name = "URL")]
    pub high_queue_url: Option<String>,
    /// The stack output RunQueueNormalUrl (every other line).
    #[arg(long, env = "CLOUDBOT_RUN_QUEUE_NORMAL_URL", value_name = "URL")]
    pub normal_queue_url: Option<String>,
    /// The keys of lines without their own `idempotency_key` are PREFIX-<line number>. Give the
    /// prefix a run printed to send the same file again without starting any line twice
    /// [default: enqueue-<random>, new on every run].
    #[arg(long, value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// Send the valid lines and list the invalid ones (exit code 8), instead of sending nothing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Check the lines and show their lanes and keys; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The function's default BOT (its CLOUDBOT_DEFAULT_BOT_ENDPOINT): lines naming no BOT are
    /// valid only with it.
    #[arg(long, env = "CLOUDBOT_DEFAULT_BOT_ENDPOINT", value_name = "URL")]
    pub default_bot_endpoint: Option<String>,
    /// The function's default contract (its CLOUDBOT_DEFAULT_PUBLIC_ID), for lines with
    /// `bot_id` alone.
    #[arg(long, env = "CLOUDBOT_DEFAULT_PUBLIC_ID", value_name = "PUBLIC_ID")]
    pub default_public_id: Option<String>,
}

/// A valid line, as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// 1-based line number in the file.
    pub number: usize,
    /// The lane its `priority` picks.
    pub lane: Lane,
    /// The idempotency record key the function will use (`request:...`).
    pub key: RecordKey,
    /// The message body: the line, with the generated key when it had none.
    pub body: String,
}

/// A line that will not be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// 1-based line number in the file.
    pub number: usize,
    /// Why (the function's own message, naming the field).
    pub reason: String,
}

/// Checks every non-blank line of `text` as the function checks a message body, keying the
/// lines without their own key as `<prefix>-<line number>`.
pub fn check_lines(text: &str, config: &Requests, prefix: &str) -> (Vec<Checked>, Vec<Invalid>) {
    let mut checked = Vec::new();
    let mut invalid = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match check_line(line, number, config, prefix) {
            Ok(line) => checked.push(line),
            Err(reason) => invalid.push(Invalid { number, reason }),
        }
    }
    (checked, invalid)
}

fn check_line(
    line: &str,
    number: usize,
    config: &Requests,
    prefix: &str,
) -> Result<Checked, String> {
    let (key, priority) = execute_of(line, config)?;
    let (body, key, priority) = match key {
        Some(key) => (line.to_owned(), key, priority),
        None => {
            let body = with_key(line, &format!("{prefix}-{number}"));
            // What is sent is checked again: the key must be where the function looks for it.
            match execute_of(&body, config)? {
                (Some(key), priority) => (body, key, priority),
                (None, _) => return Err("the generated idempotency key was not taken".into()),
            }
        }
    };
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "the message is {} bytes; a run queue message holds at most {MAX_PAYLOAD_BYTES} \
             bytes (SQS)",
            body.len()
        ));
    }
    let lane = match priority {
        Priority::High => Lane::High,
        Priority::Normal => Lane::Normal,
    };
    Ok(Checked {
        number,
        lane,
        key,
        body,
    })
}

/// The key and priority of one message body, decoded by the function's own code.
fn execute_of(body: &str, config: &Requests) -> Result<(Option<RecordKey>, Priority), String> {
    let request = decode_message_body(body, config).map_err(|e| e.to_string())?;
    match request.operation {
        Operation::Execute(execute) => Ok((execute.idempotency_key, execute.priority)),
        // decode_message_body accepts executes only.
        other => Err(format!("`{}` is not an execute", other.kind().name())),
    }
}

/// `object` (a JSON object's text that has no top-level `idempotency_key`) with `key` as its
/// first member. Inserted as text, so the rest of the line is sent byte for byte (a number in
/// the input is never re-printed with another precision).
fn with_key(object: &str, key: &str) -> String {
    let rest = object.strip_prefix('{').unwrap_or(object);
    let key = serde_json::Value::from(key);
    if rest.trim_start().starts_with('}') {
        format!("{{\"idempotency_key\":{key}{rest}")
    } else {
        format!("{{\"idempotency_key\":{key},{rest}")
    }
}

/// The lines of one lane in `SendMessageBatch` groups: at most [`MAX_BATCH_ENTRIES`] entries
/// and [`MAX_PAYLOAD_BYTES`] of bodies each, in file order.
pub fn groups<'a>(lines: &[&'a Checked]) -> Vec<Vec<&'a Checked>> {
    let mut groups: Vec<Vec<&Checked>> = Vec::new();
    let mut bytes = 0;
    for line in lines {
        let fits = groups.last().is_some_and(|group| {
            group.len() < MAX_BATCH_ENTRIES && bytes + line.body.len() <= MAX_PAYLOAD_BYTES
        });
        if !fits {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += line.body.len();
        if let Some(group) = groups.last_mut() {
            group.push(line);
        }
    }
    groups
}

/// One entry of a batch send.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The batch entry id (the line number).
    pub id: String,
    /// The message body.
    pub body: &'a str,
}

/// The answer to one `SendMessageBatch`.
#[derive(Debug, Default)]
pub struct Sent {
    /// Entry id and SQS message id of each entry SQS took.
    pub succeeded: Vec<(String, String)>,
    /// The entries SQS did not take.
    pub failed: Vec<EntryFailure>,
}

/// An entry SQS did not take.
#[derive(Debug, Clone)]
pub struct EntryFailure {
    /// The entry id.
    pub id: String,
    /// True when the entry itself is at fault (sending it again cannot help).
    pub sender_fault: bool,
    /// SQS's error code.
    pub code: String,
    /// SQS's message.
    pub message: String,
}

/// A `SendMessageBatch` call that failed as a whole (after the SDK's own retries).
#[derive(Debug, Clone)]
pub struct BatchFailure {
    /// True unless the failure proves nothing was taken (SQS answered with an error): a lost
    /// answer may hide queued messages.
    pub may_have_arrived: bool,
    /// The error code (SQS's, or the SDK's kind of failure).
    pub code: String,
    /// What failed.
    pub message: String,
}

/// Where the batches go: SQS, or a stand-in in the unit tests.
pub trait Queue {
    /// Sends `entries` to `queue_url` in one `SendMessageBatch`.
    fn send(
        &self,
        queue_url: &str,
        entries: &[Entry<'_>],
    ) -> impl Future<Output = Result<Sent, BatchFailure>>;
}

/// What became of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Fate {
    /// SQS took it.
    Enqueued {
        /// Its SQS message id.
        message_id: String,
    },
    /// SQS did not take it (or the line was invalid and skipped).
    NotEnqueued {
        /// SQS's error code, or `InvalidRequest`.
        code: String,
        /// Why.
        message: String,
    },
    /// The last send's answer was lost: it may be on the queue.
    MayBeQueued {
        /// The kind of failure.
        code: String,
        /// What failed.
        message: String,
    },
}

/// Sends one group, sending again only the entries SQS reported failed through no fault of the
/// entry, at most [`SEND_ROUNDS`] sends in all. A call that fails as a whole (after the SDK's
/// own retries of transient faults) is not repeated here: its lines are reported. `first_wait`
/// is [`FIRST_RETRY_WAIT`] (the unit tests' stand-in answers at once: zero).
pub async fn send_group(
    queue: &impl Queue,
    queue_url: &str,
    group: &[&Checked],
    first_wait: Duration,
) -> Vec<(usize, Fate)> {
    let mut fates = Vec::with_capacity(group.len());
    let mut pending: Vec<(&Checked, Fate)> = group
        .iter()
        .map(|line| {
            let never_sent = Fate::NotEnqueued {
                code: "NotSent".into(),
                message: "not sent".into(),
            };
            (*line, never_sent)
        })
        .collect();
    for round in 0..SEND_ROUNDS {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            let cap = first_wait.saturating_mul(1 << (round - 1));
            tokio::time::sleep(Duration::from_millis(fastrand::u64(
                0..=u64::try_from(cap.as_millis()).unwrap_or(u64::MAX),
            )))
            .await;
        }
        let entries: Vec<Entry<'_>> = pending
            .iter()
            .map(|(line, _)| Entry {
                id: line.number.to_string(),
                body: &line.body,
            })
            .collect();
        let sent = match queue.send(queue_url, &entries).await {
            Ok(sent) => sent,
            Err(failure) => {
                let fate = if failure.may_have_arrived {
                    Fate::MayBeQueued {
                        code: failure.code,
                        message: failure.message,
                    }
                } else {
                    Fate::NotEnqueued {
                        code: failure.code,
                        message: failure.message,
                    }
                };
                fates.extend(pending.iter().map(|(line, _)| (line.number, fate.clone())));
                return fates;
            }
        };
        let mut again = Vec::new();
        for (line, _) in pending {
            let id = line.number.to_string();
            if let Some((_, message_id)) = sent.succeeded.iter().find(|(s, _)| *s == id) {
                fates.push((
                    line.number,
                    Fate::Enqueued {
                        message_id: message_id.clone(),
                    },
                ));
            } else if let Some(failed) = sent.failed.iter().find(|f| f.id == id) {
                let fate = Fate::NotEnqueued {
                    code: failed.code.clone(),
                    message: failed.message.clone(),
                };
                if failed.sender_fault {
                    fates.push((line.number, fate));
                } else {
                    again.push((line, fate));
                }
            } else {
                // Neither taken nor refused by name: as good as a lost answer for this entry.
                let fate = Fate::MayBeQueued {
                    code: "NotInAnswer".into(),
                    message: "SQS's answer did not name this entry".into(),
                };
                again.push((line, fate));
            }
        }
        pending = again;
    }
    fates.extend(pending.into_iter().map(|(line, fate)| (line.number, fate)));
    fates
}

/// SQS through the SDK.
pub struct Sqs(aws_sdk_sqs::Client);

impl Queue for Sqs {
    async fn send(&self, queue_url: &str, entries: &[Entry<'_>]) -> Result<Sent, BatchFailure> {
        let entries = entries
            .iter()
            .map(|e| {
                SendMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .message_body(e.body)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BatchFailure {
                may_have_arrived: false,
                code: "InvalidEntry".into(),
                message: e.to_string(),
            })?;
        let answer =
            self.0
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    let (may_have_arrived, kind) = match &e {
                        SdkError::ServiceError(_) => (false, "ServiceError"),
                        SdkError::ConstructionFailure(_) => (false, "ConstructionFailure"),
                        SdkError::DispatchFailure(_) => (true, "DispatchFailure"),
                        SdkError::TimeoutError(_) => (true, "Timeout"),
                        _ => (true, "ResponseError"),
                    };
                    BatchFailure {
                        may_have_arrived,
                        code: e.code().unwrap_or(kind).to_owned(),
                        message: e.message().map(str::to_owned).unwrap_or_else(|| {
                            aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()
                        }),
                    }
                })?;
        Ok(Sent {
            succeeded: answer
                .successful()
                .iter()
                .map(|s| (s.id().to_owned(), s.message_id().to_owned()))
                .collect(),
            failed: answer
                .failed()
                .iter()
                .map(|f| EntryFailure {
                    id: f.id().to_owned(),
                    sender_fault: f.sender_fault(),
                    code: f.code().to_owned(),
                    message: f.message().unwrap_or_default().to_owned(),
                })
                .collect(),
        })
    }
}

/// One line in the result.
#[derive(Debug, Serialize)]
struct LineResult {
    line: usize,
    lane: Option<&'static str>,
    idempotency_key: Option<String>,
    #[serde(flatten)]
    fate: Fate,
}

/// `cloudbot enqueue`: check every line, then send them lane by lane.
pub async fn run(
    out: Output,
    tracker: &Tracker,
    global: &Global,
    args: &EnqueueArgs,
) -> Result<Exit, CliError> {
    let config = requests_config(global, args)?;
    let prefix = match &args.key_prefix {
        Some(prefix) => {
            RecordKey::request(&format!("{prefix}-1"))
                .map_err(|p| CliError::Usage(format!("--key-prefix {p}")))?;
            prefix.clone()
        }
        None => format!("enqueue-{:016x}", fastrand::u64(..)),
    };
    let text = read_input(&args.file)?;
    let (checked, invalid) = check_lines(&text, &config, &prefix);
    if !invalid.is_empty() && !args.skip_invalid {
        let list: Vec<String> = invalid
            .iter()
            .map(|i| format!("  line {}: {}", i.number, i.reason))
            .collect();
        return Err(CliError::Usage(format!(
            "{} of {} lines are invalid; nothing was sent (--skip-invalid sends the others):\n{}",
            invalid.len(),
            invalid.len() + checked.len(),
            list.join("\n")
        )));
    }
    if checked.is_empty() && invalid.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no request",
            args.file.display()
        )));
    }
    let lanes = [
        (
            Lane::High,
            args.high_queue_url.as_deref(),
            "--high-queue-url",
        ),
        (
            Lane::Normal,
            args.normal_queue_url.as_deref(),
            "--normal-queue-url",
        ),
    ];
    let mut plan = Vec::new();
    for (lane, url, flag) in lanes {
        let lines: Vec<&Checked> = checked.iter().filter(|c| c.lane == lane).collect();
        if lines.is_empty() {
            continue;
        }
        let url = url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{} lines go to the {} lane: give {flag} (the stack output RunQueue{}Url)",
                    lines.len(),
                    lane.name(),
                    if lane == Lane::High { "High" } else { "Normal" }
                ))
            })?;
        plan.push((lane, url, lines));
    }
    let mut results: Vec<LineResult> = invalid
        .iter()
        .map(|i| LineResult {
            line: i.number,
            lane: None,
            idempotency_key: None,
            fate: Fate::NotEnqueued {
                code: "InvalidRequest".into(),
                message: i.reason.clone(),
            },
        })
        .collect();
    if !args.dry_run {
        let sqs = Sqs(aws_sdk_sqs::Client::new(&aws_config().await?));
        let progress = out.progress("enqueueing");
        // From the first send on, an interrupt may leave lines queued: said, with the way to
        // send the rest without starting any line twice (`report.rs`).
        tracker.set(Stage::EnqueueSent {
            key_prefix: prefix.clone(),
        });
        for (lane, url, lines) in &plan {
            for group in groups(lines) {
                for (number, fate) in send_group(&sqs, url, &group, FIRST_RETRY_WAIT).await {
                    let line = group.iter().find(|l| l.number == number);
                    results.push(LineResult {
                        line: number,
                        lane: Some(lane.name()),
                        idempotency_key: line.map(|l| l.key.to_string()),
                        fate,
                    });
                }
            }
        }
        drop(progress);
        tracker.set(Stage::Quiet);
    }
    results.sort_by_key(|r| r.line);
    let exit = exit_of(&results, args.dry_run);
    if out.is_json() {
        let lines: Vec<serde_json::Value> = if args.dry_run {
            checked
                .iter()
                .map(|c| {
                    serde_json::json!({"line": c.number, "lane": c.lane.name(),
                        "idempotency_key": c.key.to_string()})
                })
                .collect()
        } else {
            results
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect()
        };
        out.json(&serde_json::json!({
            "key_prefix": prefix,
            "dry_run": args.dry_run,
            "lines": lines,
        }))?;
        return Ok(exit);
    }
    let mut w = out.text();
    if args.dry_run {
        for c in &checked {
            writeln!(
                w,
                "line {:>4}  {DIM}{:<6}{DIM:#}  {}",
                c.number,
                c.lane.name(),
                c.key
            )?;
        }
    }
    for r in &results {
        match &r.fate {
            Fate::Enqueued { .. } => {}
            Fate::NotEnqueued { code, message } => {
                writeln!(w, "line {}: not enqueued ({code}): {message}", r.line)?;
            }
            Fate::MayBeQueued { code, message } => {
                writeln!(w, "line {}: may be queued ({code}): {message}", r.line)?;
            }
        }
    }
    let count = |lane: Lane| {
        results
            .iter()
            .filter(|r| r.lane == Some(lane.name()) && matches!(r.fate, Fate::Enqueued { .. }))
            .count()
    };
    if args.dry_run {
        writeln!(
            w,
            "{BOLD}dry run{BOLD:#}: {} lines valid, nothing sent",
            checked.len()
        )?;
    } else {
        writeln!(
            w,
            "{BOLD}enqueued {} of {} lines{BOLD:#} (high {}, normal {}); keys {prefix}-<line>",
            count(Lane::High) + count(Lane::Normal),
            results.len(),
            count(Lane::High),
            count(Lane::Normal)
        )?;
    }
    if exit == Exit::JobMayExist {
        writeln!(
            w,
            "hint: send the file again with --key-prefix {prefix}: a line already queued then \
             starts nothing twice (its key is the same; within the idempotency window)"
        )?;
    }
    Ok(exit)
}

/// The exit code of a run: a line that may be queued says so (4); a line not enqueued makes
/// 8, or 3 when none at all was.
fn exit_of(results: &[LineResult], dry_run: bool) -> Exit {
    let may_be_queued = results
        .iter()
        .any(|r| matches!(r.fate, Fate::MayBeQueued { .. }));
    let enqueued = results
        .iter()
        .filter(|r| matches!(r.fate, Fate::Enqueued { .. }))
        .count();
    if may_be_queued {
        Exit::JobMayExist
    } else if dry_run || enqueued == results.len() {
        Exit::Ok
    } else if enqueued == 0 {
        Exit::NotStarted
    } else {
        Exit::NotAllDelivered
    }
}

/// What the lines are checked against: the CLI's API base and language, the function's
/// defaults as given.
fn requests_config(global: &Global, args: &EnqueueArgs) -> Result<Requests, CliError> {
    let (base, is_default) = api_base(global)?;
    let default_bot = args
        .default_bot_endpoint
        .as_deref()
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            Origin {
                base: &base,
                is_default,
            }
            .bot(raw, "--default-bot-endpoint")
        })
        .transpose()?;
    let default_public_id = args
        .default_public_id
        .as_deref()
        .map(str::trim)
        .filter(|raw| !raw.is_empty())
        .map(|raw| PublicId::parse(raw, "--default-public-id"))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let language = global
        .language
        .parse::<Language>()
        .map_err(|e| CliError::Usage(format!("--language: {e}")))?;
    Ok(Requests {
        api_base: base,
        default_bot,
        default_public_id,
        language,
        default_callback_tries: DEFAULT_CALLBACK_TRIES,
        // The deployed function refuses plain-http callbacks; local runs are not the CLI's.
        allow_http_loopback_callback: false,
    })
}

fn read_input(path: &Path) -> Result<String, CliError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use cloudbot_trigger::cloudbot::ApiBase;

    use super::*;

    fn config() -> Requests {
        Requests {
            api_base: ApiBase::parse("https://api.c-bot.pro").unwrap(),
            default_bot: None,
            default_public_id: None,
            language: Language::Ja,
            default_callback_tries: DEFAULT_CALLBACK_TRIES,
            allow_http_loopback_callback: false,
        }
    }

    #[test]
    fn lines_are_checked_by_the_functions_decoder_and_keyed_and_laned() {
        let text = r#"{"public_id": "demo", "bot_id": "a", "input": {"n": 12345678901234567890123}}

{"idempotency_key": "own", "public_id": "demo", "bot_id": "b", "priority": "high"}
{"public_id": "demo", "bot_id": "c", "priority": "urgent"}
{"bot_id": "d"}
{}
not json
{"idempotency_key": "e", "request": {"public_id": "demo", "bot_id": "e"}}
"#;
        let (checked, invalid) = check_lines(text, &config(), "p");
        let keys: Vec<(usize, String, Lane)> = checked
            .iter()
            .map(|c| (c.number, c.key.to_string(), c.lane))
            .collect();
        assert_eq!(
            keys,
            [
                (1, "request:p-1".to_owned(), Lane::Normal),
                (3, "request:own".to_owned(), Lane::High),
                (8, "request:e".to_owned(), Lane::Normal),
            ]
        );
        // The rest of the line is sent byte for byte: the big number keeps its digits.
        assert!(
            checked[0].body.starts_with(r#"{"idempotency_key":"p-1","#)
                && checked[0].body.contains("12345678901234567890123"),
            "{}",
            checked[0].body
        );
        assert_eq!(checked[1].body, text.lines().nth(2).unwrap());
        let reasons: Vec<(usize, &str)> = invalid
            .iter()
            .map(|i| (i.number, i.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].0 == 4 && reasons[0].1.contains("`priority`"));
        assert!(reasons[1].0 == 5 && reasons[1].1.contains("`public_id`"));
        assert!(reasons[2].0 == 6 && reasons[2].1.contains("`bot_endpoint`"));
        assert!(reasons[3].0 == 7 && reasons[3].1.contains("not valid JSON"));
    }

    #[test]
    fn a_message_over_the_sqs_limit_is_refused_by_line() {
        let big = format!(
            r#"{{"public_id": "demo", "bot_id": "a", "input": {{"x": "{}"}}}}"#,
            "a".repeat(MAX_PAYLOAD_BYTES)
        );
        let (checked, invalid) = check_lines(&big, &config(), "p");
        assert!(checked.is_empty());
        assert!(invalid[0].reason.contains("at most 262144"), "{invalid:?}");
    }

    fn line(number: usize, bytes: usize) -> Checked {
        Checked {
            number,
            lane: Lane::Normal,
            key: RecordKey::request(&format!("k-{number}")).unwrap(),
            body: "x".repeat(bytes),
        }
    }

    #[test]
    fn groups_hold_ten_entries_and_the_payload_limit() {
        let lines: Vec<Checked> = (1..=23).map(|n| line(n, 100)).collect();
        let refs: Vec<&Checked> = lines.iter().collect();
        let sizes: Vec<usize> = groups(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let lines: Vec<Checked> = (1..=4).map(|n| line(n, 100_000)).collect();
        let refs: Vec<&Checked> = lines.iter().collect();
        let sizes: Vec<usize> = groups(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2]);
    }

    /// One scripted answer: the entry ids that fail (and whether for their own fault), or the
    /// whole call failing (and whether its messages may have arrived).
    type Answer = Result<Vec<(&'static str, bool)>, bool>;

    /// A queue that answers from a script, one answer per call.
    struct Scripted {
        answers: RefCell<Vec<Answer>>,
        calls: RefCell<Vec<Vec<String>>>,
    }

    impl Queue for Scripted {
        async fn send(&self, _url: &str, entries: &[Entry<'_>]) -> Result<Sent, BatchFailure> {
            self.calls
                .borrow_mut()
                .push(entries.iter().map(|e| e.id.clone()).collect());
            let answer = self.answers.borrow_mut().remove(0);
            let fail = match answer {
                Ok(fail) => fail,
                Err(may_have_arrived) => {
                    return Err(BatchFailure {
                        may_have_arrived,
                        code: "X".into(),
                        message: "x".into(),
                    });
                }
            };
            let mut sent = Sent::default();
            for e in entries {
                match fail.iter().find(|(id, _)| *id == e.id) {
                    Some((_, sender_fault)) => sent.failed.push(EntryFailure {
                        id: e.id.clone(),
                        sender_fault: *sender_fault,
                        code: if *sender_fault {
                            "Bad"
                        } else {
                            "InternalError"
                        }
                        .into(),
                        message: String::new(),
                    }),
                    None => sent.succeeded.push((e.id.clone(), format!("m-{}", e.id))),
                }
            }
            Ok(sent)
        }
    }

    fn scripted(answers: Vec<Answer>) -> Scripted {
        Scripted {
            answers: RefCell::new(answers),
            calls: RefCell::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn only_entries_failed_through_no_fault_of_their_own_are_sent_again_bounded() {
        let lines: Vec<Checked> = (1..=4).map(|n| line(n, 10)).collect();
        let group: Vec<&Checked> = lines.iter().collect();
        // 2 is refused for itself (never again); 3 fails twice then goes; 4 fails every time.
        let queue = scripted(vec![
            Ok(vec![("2", true), ("3", false), ("4", false)]),
            Ok(vec![("3", false), ("4", false)]),
            Ok(vec![("4", false)]),
            Ok(vec![("4", false)]),
        ]);
        let mut fates = send_group(&queue, "u", &group, Duration::ZERO).await;
        fates.sort_by_key(|(n, _)| *n);
        assert_eq!(
            *queue.calls.borrow(),
            [
                vec!["1", "2", "3", "4"],
                vec!["3", "4"],
                vec!["3", "4"],
                vec!["4"]
            ]
        );
        let kinds: Vec<(usize, &str)> = fates
            .iter()
            .map(|(n, f)| {
                let kind = match f {
                    Fate::Enqueued { .. } => "enqueued",
                    Fate::NotEnqueued { .. } => "not",
                    Fate::MayBeQueued { .. } => "maybe",
                };
                (*n, kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [(1, "enqueued"), (2, "not"), (3, "enqueued"), (4, "not")]
        );
    }

    #[tokio::test]
    async fn a_call_that_failed_as_a_whole_is_reported_not_repeated() {
        let lines: Vec<Checked> = (1..=2).map(|n| line(n, 10)).collect();
        let group: Vec<&Checked> = lines.iter().collect();
        for (may_have_arrived, maybe) in [(true, true), (false, false)] {
            let queue = scripted(vec![Err(may_have_arrived)]);
            let fates = send_group(&queue, "u", &group, Duration::ZERO).await;
            assert_eq!(queue.calls.borrow().len(), 1);
            assert!(
                fates
                    .iter()
                    .all(|(_, f)| matches!(f, Fate::MayBeQueued { .. }) == maybe)
            );
            assert_eq!(fates.len(), 2);
        }
    }

    #[test]
    fn the_exit_code_says_whether_a_line_may_be_queued_or_was_not_enqueued() {
        let result = |fate: Fate| LineResult {
            line: 1,
            lane: None,
            idempotency_key: None,
            fate,
        };
        let ok = || {
            result(Fate::Enqueued {
                message_id: "m".into(),
            })
        };
        let not = || {
            result(Fate::NotEnqueued {
                code: "c".into(),
                message: "m".into(),
            })
        };
        let maybe = || {
            result(Fate::MayBeQueued {
                code: "c".into(),
                message: "m".into(),
            })
        };
        assert_eq!(exit_of(&[ok(), ok()], false), Exit::Ok);
        assert_eq!(exit_of(&[ok(), not()], false), Exit::NotAllDelivered);
        assert_eq!(exit_of(&[not(), not()], false), Exit::NotStarted);
        assert_eq!(exit_of(&[ok(), not(), maybe()], false), Exit::JobMayExist);
        assert_eq!(exit_of(&[], true), Exit::Ok);
    }
}
