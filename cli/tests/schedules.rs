//! `cloudbot schedules` as an operator runs it. `check` and `preview` on the repository's example
//! schedule file (`calendar/examples/schedules.yaml`, the one README's "Your schedules" shows):
//! labels, holiday names, the schedule's own time zone whatever `TZ` says, `--json`, and errors
//! that name the field (pure commands: no server). `diff`, `apply`, `list` and `resume` against
//! moto's EventBridge Scheduler and DynamoDB (one moto per test, a group and a table per test):
//! apply twice is a no-op, changed entries are updated and removed ones deleted, a hand edit is
//! reported and not overwritten, a schedule not managed by the file is never touched, `list`
//! shows the next run and a state record the test writes, `resume` lifts a pause. `backfill`
//! against moto's ledger table, idempotency table and a state machine (StartExecution records
//! the delivery), and against the function itself (the Lambda stand-in running the handler on
//! the emulator): only the occurrences that did not run are delivered, once, on their nominal
//! keys; without `--yes` and a terminal nothing is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../calendar/examples/schedules.yaml")
}

/// The CLI with an operator zone far from the schedules' (their times must not follow it).
fn cloudbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudbot"))
        .args(args)
        .env("TZ", "America/New_York")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// `schedules preview NAME --file FILE --from FROM --days DAYS`, which must exit 0: its output.
fn preview(file: &Path, name: &str, from: &str, days: &str) -> String {
    preview_with(&[], file, name, from, days)
}

/// [`preview`] with `--json`: its document.
fn preview_json(file: &Path, name: &str, from: &str, days: &str) -> Value {
    serde_json::from_str(&preview_with(&["--json"], file, name, from, days)).unwrap()
}

fn preview_with(global: &[&str], file: &Path, name: &str, from: &str, days: &str) -> String {
    let file = file.to_str().unwrap();
    let mut args = global.to_vec();
    args.extend([
        "schedules",
        "preview",
        name,
        "--file",
        file,
        "--from",
        from,
        "--days",
        days,
    ]);
    let output = cloudbot(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn the_example_file_checks() {
    let file = example();
    let output = cloudbot(&["schedules", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("valid, 5 schedules"), "{text}");
    assert!(text.contains("month-end-close  18:30 Asia/Tokyo"), "{text}");
    assert!(
        text.contains("invoices  10:00 Asia/Tokyo  (enabled: false)"),
        "{text}"
    );
}

#[test]
fn preview_labels_the_year_end_closing_and_the_last_business_day() {
    let file = example();
    let text = preview(&file, "daily-sales-report", "2026-12-28", "10");
    assert!(text.contains("2026-12-28 (月)  09:00 JST  run\n"), "{text}");
    assert!(
        text.contains("2026-12-29 (火)  -          skipped  company closed day 年末年始\n"),
        "{text}"
    );
    assert!(text.contains("2027-01-04 (月)  09:00 JST  run\n"), "{text}");
    // 12-28 and 01-04 .. 01-06 run (01-02, 01-03 are weekend days and 年末年始).
    assert!(text.ends_with("4 runs\n"), "{text}");

    let text = preview(&file, "month-end-close", "2026-12-01", "31");
    // 12-29 .. 12-31 are closed (年末年始): the last business day of December 2026 is the 28th.
    let runs: Vec<&str> = text.lines().filter(|l| l.contains("JST  run")).collect();
    assert_eq!(runs, ["2026-12-28 (月)  18:30 JST  run"], "{text}");
}

#[test]
fn preview_json_names_the_holiday_and_keeps_the_schedules_zone() {
    let file = example();
    let doc = preview_json(&file, "daily-sales-report", "2027-01-08", "4");
    assert_eq!(doc["schedule"], "daily-sales-report");
    assert_eq!(doc["time_zone"], "Asia/Tokyo");
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["label"], "run");
    assert_eq!(entries[0]["at"], "2027-01-08T00:00:00Z");
    assert!(
        entries[0]["local_time"]
            .as_str()
            .unwrap()
            .starts_with("2027-01-08T09:00:00+09:00[Asia/Tokyo]"),
        "{doc}"
    );
    assert_eq!(entries[3]["day"], "2027-01-11");
    assert_eq!(entries[3]["label"], "skipped");
    assert_eq!(entries[3]["reason"], "holiday");
    assert_eq!(entries[3]["name"], "成人の日");
    assert_eq!(doc["stopped"], Value::Null);
}

#[test]
fn preview_json_labels_a_shifted_run() {
    let file = example();
    let doc = preview_json(&file, "payroll-export", "2027-04-22", "4");
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries[0]["day"], "2027-04-23");
    assert_eq!(entries[0]["nominal"], "2027-04-25");
    assert_eq!(entries[0]["label"], "run (shifted)");
    assert_eq!(entries[1]["label"], "shifted");
    assert_eq!(entries[1]["to"], "2027-04-23");
}

#[test]
fn errors_name_the_field_or_the_schedule_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("cloudbot-schedules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nschedules:\n  - name: a\n    at: \"25:00\"\n    recurrence: daily\n    \
         bot_endpoint: https://api.c-bot.pro/demo/bots/x/jobs\n",
    )
    .unwrap();
    let output = cloudbot(&["schedules", "check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("schedules[0].at"),
        "{}",
        stderr(&output)
    );

    let bad_json = dir.join("bad.json");
    std::fs::write(&bad_json, r#"{"version": 2, "schedules": []}"#).unwrap();
    let output = cloudbot(&["--json", "schedules", "check", bad_json.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["error"]["type"], "Cli.Usage");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("field `version`"),
        "{doc}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let file = example();
    let output = cloudbot(&[
        "schedules",
        "preview",
        "nope",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("no schedule named `nope`"), "{err}");
    assert!(err.contains("month-end-close"), "{err}");
}

/// README's "Your schedules" example is a valid file whose schedules preview as it says: the
/// daily report skips 年末年始, the month-end close runs on the last business day.
#[test]
fn the_readme_example_is_a_valid_schedule_file() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("\n## Your schedules\n")
        .nth(1)
        .expect("README has a section `## Your schedules`");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the section has a ```yaml block");
    let dir = std::env::temp_dir().join(format!("cloudbot-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("schedules.yaml");
    std::fs::write(&file, yaml).unwrap();

    let output = cloudbot(&["schedules", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let preview = |name: &str, from: &str, days: &str| {
        preview_json(&file, name, from, days)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "run")
            .map(|e| e["day"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        preview("daily-sales-report", "2026-12-28", "8"),
        ["2026-12-28", "2027-01-04"]
    );
    assert_eq!(
        preview("month-end-close", "2027-01-01", "59"),
        ["2027-01-29", "2027-02-26"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------------------------------------
// diff / apply / list / resume against moto.

mod support;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use cloudbot_calendar::{ScheduleFile, wire};
use support::ledger::create_ledger_table;
use support::moto::Moto;

const ROLE: &str = "arn:aws:iam::123456789012:role/stack-SchedulerRole";
const TARGET: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:RunBotCallback";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:stack-ScheduleDeadLetterQueue";
const GROUP: &str = "stack-ScheduleGroup";
const TABLE: &str = "stack-IdempotencyTable";

/// moto with the stack's group and table, and the CLI's environment for them.
struct Stack {
    moto: Moto,
    scheduler: aws_sdk_scheduler::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    dir: PathBuf,
}

impl Stack {
    async fn start(test: &str) -> Stack {
        let moto = Moto::start();
        let aws = moto.sdk_config();
        let scheduler = aws_sdk_scheduler::Client::new(&aws);
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        scheduler
            .create_schedule_group()
            .name(GROUP)
            .send()
            .await
            .unwrap();
        dynamodb
            .create_table()
            .table_name(TABLE)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("record_key")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("record_key")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!("cloudbot-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Stack {
            moto,
            scheduler,
            dynamodb,
            dir,
        }
    }

    /// The CLI against moto, with the stack outputs in the environment.
    fn cloudbot(&self, args: &[&str]) -> Output {
        self.moto
            .point(&mut Command::new(env!("CARGO_BIN_EXE_cloudbot")))
            .args(args)
            .env("TZ", "America/New_York")
            .env("CLOUDBOT_SCHEDULE_GROUP", GROUP)
            .env("CLOUDBOT_SCHEDULER_ROLE_ARN", ROLE)
            .env("CLOUDBOT_SCHEDULE_TARGET_ARN", TARGET)
            .env("CLOUDBOT_SCHEDULE_DLQ_ARN", DLQ)
            .env("CLOUDBOT_IDEMPOTENCY_TABLE", TABLE)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A schedule file in the test's directory.
    fn file(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Every schedule of the group by name: (description, expression, zone, state, input).
    async fn group(
        &self,
    ) -> Vec<(
        String,
        aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    )> {
        let names: Vec<String> = self
            .scheduler
            .list_schedules()
            .group_name(GROUP)
            .send()
            .await
            .unwrap()
            .schedules()
            .iter()
            .filter_map(|s| s.name().map(str::to_owned))
            .collect();
        let mut out = Vec::new();
        for name in names {
            let found = self
                .scheduler
                .get_schedule()
                .group_name(GROUP)
                .name(&name)
                .send()
                .await
                .unwrap();
            out.push((name, found));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    async fn get(
        &self,
        name: &str,
    ) -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
        self.scheduler
            .get_schedule()
            .group_name(GROUP)
            .name(name)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn example_text() -> String {
    std::fs::read_to_string(example()).unwrap()
}

fn doc(output: &Output) -> Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|e| panic!("{e}: stdout {} stderr {}", stdout(output), stderr(output)))
}

/// The actions of a diff/apply document by schedule name.
fn actions(doc: &Value) -> Vec<(String, String)> {
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn apply_makes_the_group_match_the_file_and_twice_changes_nothing() {
    let stack = Stack::start("apply").await;
    let file = stack.file("schedules.yaml", &example_text());

    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).ends_with("5 changes applied\n"),
        "{}",
        stdout(&output)
    );

    // One schedule per entry, named as the entry, as the brief of apply says.
    let parsed = ScheduleFile::from_yaml(&example_text()).unwrap();
    let live = stack.group().await;
    assert_eq!(live.len(), 5);
    for entry in &parsed.schedules {
        let found = &live
            .iter()
            .find(|(n, _)| n == entry.name.as_str())
            .unwrap()
            .1;
        assert!(
            wire::managed_digest(found.description().unwrap()).is_some(),
            "{found:?}"
        );
        assert_eq!(
            found.schedule_expression(),
            Some(entry.scheduler_expression().as_str())
        );
        assert_eq!(
            found.schedule_expression_timezone(),
            Some(entry.time_zone.name())
        );
        let state = if entry.enabled { "ENABLED" } else { "DISABLED" };
        assert_eq!(found.state().unwrap().as_str(), state);
        assert_eq!(
            found.flexible_time_window().unwrap().mode(),
            &FlexibleTimeWindowMode::Off
        );
        let target = found.target().unwrap();
        assert_eq!(target.arn(), TARGET);
        assert_eq!(target.role_arn(), ROLE);
        assert_eq!(target.dead_letter_config().unwrap().arn(), Some(DLQ));
        assert_eq!(
            target.retry_policy().unwrap().maximum_retry_attempts(),
            Some(2)
        );
        assert_eq!(
            target
                .retry_policy()
                .unwrap()
                .maximum_event_age_in_seconds(),
            Some(900)
        );
        let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
        assert_eq!(input, wire::target_input(entry));
    }
    assert_eq!(
        live.iter()
            .find(|(n, _)| n == "month-end-close")
            .unwrap()
            .1
            .schedule_expression(),
        Some("cron(30 18 * * ? *)")
    );

    // Twice: nothing to do, nothing done.
    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).ends_with("no changes\n"),
        "{}",
        stdout(&output)
    );
    let output = stack.cloudbot(&["--json", "schedules", "diff", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let diff = doc(&output);
    assert!(
        actions(&diff).iter().all(|(_, a)| a == "unchanged"),
        "{diff}"
    );
    assert_eq!(diff["applied"], false);

    // A changed entry is updated, a removed one deleted; diff says so first and changes nothing.
    let edited = example_text()
        .replace("at: \"09:00\"", "at: \"09:15\"")
        .replace(
            "  # The quarterly close",
            "  # (removed)\n  # The quarterly close",
        );
    let quarter = edited.find("  - name: quarter-close").unwrap();
    let invoices = edited.find("  # Invoices").unwrap();
    let edited = format!("{}{}", &edited[..quarter], &edited[invoices..]);
    let file = stack.file("edited.yaml", &edited);
    let output = stack.cloudbot(&["--json", "schedules", "diff", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let diff = doc(&output);
    assert_eq!(
        actions(&diff),
        pairs(&[
            ("daily-sales-report", "update"),
            ("month-end-close", "unchanged"),
            ("payroll-export", "unchanged"),
            ("invoices", "unchanged"),
            ("quarter-close", "delete"),
        ])
    );
    assert_eq!(
        diff["changes"][0]["fields"],
        json!(["schedule_expression", "input"])
    );
    assert_eq!(stack.group().await.len(), 5, "diff changes nothing");

    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).ends_with("2 changes applied\n"),
        "{}",
        stdout(&output)
    );
    let live = stack.group().await;
    let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "daily-sales-report",
            "invoices",
            "month-end-close",
            "payroll-export"
        ]
    );
    assert_eq!(
        stack.get("daily-sales-report").await.schedule_expression(),
        Some("cron(15 9 * * ? *)")
    );
    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert!(
        stdout(&output).ends_with("no changes\n"),
        "{}",
        stdout(&output)
    );
}

/// Hand edits and schedules the file does not manage.
#[tokio::test]
async fn hand_edits_are_reported_and_foreign_schedules_never_touched() {
    let stack = Stack::start("hand-edits").await;
    let file = stack.file("schedules.yaml", &example_text());
    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // A schedule somebody made in the console, in the same group.
    let foreign_target = Target::builder()
        .arn(TARGET)
        .role_arn(ROLE)
        .input("{}")
        .build()
        .unwrap();
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .unwrap();
    stack
        .scheduler
        .create_schedule()
        .group_name(GROUP)
        .name("adhoc")
        .description("made by hand")
        .schedule_expression("rate(1 hour)")
        .flexible_time_window(window.clone())
        .target(foreign_target.clone())
        .send()
        .await
        .unwrap();
    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("? adhoc  not managed by apply"), "{text}");
    assert!(text.ends_with("no changes\n"), "{text}");

    // Someone disables payroll-export in the console (keeping the description).
    let payroll = stack.get("payroll-export").await;
    stack
        .scheduler
        .update_schedule()
        .group_name(GROUP)
        .name("payroll-export")
        .set_description(payroll.description().map(str::to_owned))
        .schedule_expression(payroll.schedule_expression().unwrap())
        .set_schedule_expression_timezone(payroll.schedule_expression_timezone().map(str::to_owned))
        .flexible_time_window(window.clone())
        .target(payroll.target().unwrap().clone())
        .state(ScheduleState::Disabled)
        .send()
        .await
        .unwrap();
    // ... while the file moves the month-end close: apply must not do that either.
    let moved = stack.file(
        "moved.yaml",
        &example_text().replace("at: \"18:30\"", "at: \"19:00\""),
    );
    for command in ["diff", "apply"] {
        let output = stack.cloudbot(&["--json", "schedules", command, &moved]);
        assert_eq!(
            output.status.code(),
            Some(7),
            "{command}: {}",
            stderr(&output)
        );
        let plan = doc(&output);
        let actions = actions(&plan);
        assert!(
            actions.contains(&("payroll-export".into(), "hand_edited".into())),
            "{plan}"
        );
        assert!(
            actions.contains(&("month-end-close".into(), "update".into())),
            "{plan}"
        );
        assert!(
            actions.contains(&("adhoc".into(), "not_managed".into())),
            "{plan}"
        );
        let payroll = plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "payroll-export")
            .unwrap();
        assert_eq!(payroll["fields"], json!(["state"]));
        assert_eq!(plan["applied"], false);
    }
    let output = stack.cloudbot(&["schedules", "apply", &moved]);
    assert_eq!(output.status.code(), Some(7));
    assert!(
        stdout(&output).contains("! payroll-export  changed by hand since the last apply"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).ends_with("apply changed nothing\n"));
    assert_eq!(
        stack.get("payroll-export").await.state(),
        Some(&ScheduleState::Disabled)
    );
    assert_eq!(
        stack.get("month-end-close").await.schedule_expression(),
        Some("cron(30 18 * * ? *)"),
        "a blocked apply changes nothing"
    );

    // The operator decides: overwrite the hand edit.
    let output = stack.cloudbot(&["schedules", "apply", &moved, "--overwrite-hand-edits"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stack.get("payroll-export").await.state(),
        Some(&ScheduleState::Enabled)
    );
    assert_eq!(
        stack.get("month-end-close").await.schedule_expression(),
        Some("cron(0 19 * * ? *)")
    );

    // A foreign schedule under a file entry's name: never touched, not even when overwriting.
    let extra = stack.file(
        "extra.yaml",
        &format!(
            "{}\n  - name: adhoc\n    at: \"08:00\"\n    recurrence: daily\n    \
             bot_endpoint: https://api.c-bot.pro/demo/bots/x/jobs\n",
            example_text()
                .replace("at: \"18:30\"", "at: \"19:00\"")
                .trim_end()
        ),
    );
    for overwrite in [false, true] {
        let mut args = vec!["schedules", "apply", extra.as_str()];
        if overwrite {
            args.push("--overwrite-hand-edits");
        }
        let output = stack.cloudbot(&args);
        assert_eq!(output.status.code(), Some(7), "{}", stderr(&output));
        assert!(
            stdout(&output).contains("! adhoc  exists without the managed marker"),
            "{}",
            stdout(&output)
        );
    }
    let adhoc = stack.get("adhoc").await;
    assert_eq!(adhoc.description(), Some("made by hand"));
    assert_eq!(adhoc.schedule_expression(), Some("rate(1 hour)"));
    assert_eq!(adhoc.target().unwrap().input(), Some("{}"));

    // Bad stack outputs are named before anything is sent.
    let output = stack.cloudbot(&[
        "schedules",
        "diff",
        &file,
        "--target-arn",
        "arn:aws:sqs:us-east-1:123456789012:q",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--target-arn"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn list_shows_next_run_state_and_last_outcome_and_resume_lifts_a_pause() {
    let stack = Stack::start("list").await;
    let file = stack.file("schedules.yaml", &example_text());
    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // The function's record after three failed month-end closes (written as the function
    // writes it: names from wire::state).
    let paused_at = 1_796_000_000_i64;
    let item = [
        (
            wire::state::LAST_OUTCOME,
            AttributeValue::S("failed".into()),
        ),
        (
            wire::state::LAST_OUTCOME_AT,
            AttributeValue::N(paused_at.to_string()),
        ),
        (
            wire::state::LAST_JOB,
            AttributeValue::S("https://api.c-bot.pro/demo/jobs/j-3".into()),
        ),
        (
            wire::state::CONSECUTIVE_FAILURES,
            AttributeValue::N("3".into()),
        ),
        (
            wire::state::PAUSED_AT,
            AttributeValue::N(paused_at.to_string()),
        ),
        (
            wire::state::PAUSE_REASON,
            AttributeValue::S("3 consecutive failed jobs".into()),
        ),
    ];
    let mut put = stack.dynamodb.put_item().table_name(TABLE).item(
        "record_key",
        AttributeValue::S(wire::state::key("month-end-close")),
    );
    for (name, value) in item {
        put = put.item(name, value);
    }
    put.send().await.unwrap();

    let output = stack.cloudbot(&["--json", "schedules", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let listed = doc(&output);
    let rows = listed["schedules"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap().clone();
    let close = row("month-end-close");
    assert_eq!(close["managed"], true);
    assert_eq!(close["scheduler_state"], "ENABLED");
    assert_eq!(close["state"]["last_outcome"], "failed");
    assert_eq!(close["state"]["paused_at"], paused_at);
    assert_eq!(close["state"]["consecutive_failures"], 3);
    // The next run is the calendar's: the preview's first run from now on, in Tokyo time.
    let now = jiff::Timestamp::now();
    let today = now
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Tokyo").unwrap())
        .date();
    let preview = cloudbot(&[
        "--json",
        "schedules",
        "preview",
        "month-end-close",
        "--file",
        &file,
        "--from",
        &today.to_string(),
        "--days",
        "62",
    ]);
    let expected = doc(&preview)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "run")
        .map(|e| e["at"].as_str().unwrap().to_owned())
        .find(|at| at.parse::<jiff::Timestamp>().unwrap() > now)
        .unwrap();
    assert_eq!(close["next_run"]["at"], expected.as_str(), "{close}");
    assert!(
        close["next_run"]["local_time"]
            .as_str()
            .unwrap()
            .contains("T18:30:00+09:00[Asia/Tokyo]"),
        "{close}"
    );
    let invoices = row("invoices");
    assert_eq!(invoices["scheduler_state"], "DISABLED");
    assert_eq!(invoices["state"], Value::Null, "no record: no run yet");

    let output = stack.cloudbot(&["schedules", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("paused by the failure breaker since"),
        "{text}"
    );
    assert!(
        text.contains("cloudbot schedules resume month-end-close"),
        "{text}"
    );
    assert!(text.contains("no run yet"), "{text}");

    // resume lifts the pause, conditionally, and leaves the Scheduler state to the file.
    let output = stack.cloudbot(&["schedules", "resume", "month-end-close"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("resumed"), "{}", stdout(&output));
    let record = stack
        .dynamodb
        .get_item()
        .table_name(TABLE)
        .key(
            "record_key",
            AttributeValue::S(wire::state::key("month-end-close")),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!record.contains_key(wire::state::PAUSED_AT), "{record:?}");
    assert!(
        !record.contains_key(wire::state::PAUSE_REASON),
        "{record:?}"
    );
    assert_eq!(
        record[wire::state::CONSECUTIVE_FAILURES].as_n().unwrap(),
        "0"
    );
    let resumed_at: i64 = record[wire::state::RESUMED_AT]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert!((resumed_at - now.as_second()).abs() < 600, "{resumed_at}");
    assert_eq!(record[wire::state::LAST_OUTCOME].as_s().unwrap(), "failed");
    assert_eq!(
        stack.get("month-end-close").await.state(),
        Some(&ScheduleState::Enabled)
    );

    let output = stack.cloudbot(&["--json", "schedules", "resume", "month-end-close"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(doc(&output)["resumed"], false);
    let output = stack.cloudbot(&["schedules", "resume", "daily-sales-report"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no state record"),
        "{}",
        stderr(&output)
    );
}

// ------------------------------------------------------------------------------------------------
// backfill against moto: the run ledger's by_schedule index, the idempotency table, the
// schedule's RunBotCallback target as a moto state machine (StartExecution records the input).

const LEDGER: &str = "stack-RunLedgerTable";

impl Stack {
    /// The run ledger, as the template declares it ([`create_ledger_table`]).
    fn ledger(&self) {
        create_ledger_table(&self.moto, LEDGER);
    }

    /// The CLI against moto with the ledger configured (or not) and stdin not a terminal.
    fn backfill(&self, ledger: bool, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cloudbot"));
        self.moto
            .point(&mut command)
            .args(["--json", "schedules", "backfill"])
            .args(args)
            .env("TZ", "America/New_York")
            .env("CLOUDBOT_SCHEDULE_GROUP", GROUP)
            .env("CLOUDBOT_IDEMPOTENCY_TABLE", TABLE)
            .stdin(Stdio::null());
        if ledger {
            command.env("CLOUDBOT_RUN_LEDGER_TABLE", LEDGER);
        } else {
            command.env_remove("CLOUDBOT_RUN_LEDGER_TABLE");
        }
        command.output().unwrap()
    }
}

/// The executions of the RunBotCallback stand-in: (name, input).
async fn executions(sfn: &aws_sdk_sfn::Client) -> Vec<(String, Value)> {
    let listed = sfn
        .list_executions()
        .state_machine_arn(TARGET)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for execution in listed.executions() {
        let described = sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .unwrap();
        out.push((
            execution.name().to_owned(),
            serde_json::from_str(described.input().unwrap()).unwrap(),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["day"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn backfill_delivers_only_the_occurrences_that_did_not_run_with_their_nominal_keys() {
    let stack = Stack::start("backfill").await;
    stack.ledger();
    let file = stack.file("schedules.yaml", &example_text());
    let output = stack.cloudbot(&["schedules", "apply", &file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let schedule_arn = stack
        .get("daily-sales-report")
        .await
        .arn()
        .unwrap()
        .to_owned();
    let aws = stack.moto.sdk_config();
    let sfn = aws_sdk_sfn::Client::new(&aws);
    let machine = sfn
        .create_state_machine()
        .name("RunBotCallback")
        .definition(r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/stack-StateMachineRole")
        .send()
        .await
        .unwrap();
    assert_eq!(machine.state_machine_arn(), TARGET);

    // 2026-11-24's run is in the ledger (as the function records a scheduled run).
    let nominal_24 = "2026-11-24T00:00:00Z";
    stack
        .dynamodb
        .put_item()
        .table_name(LEDGER)
        .item("run", AttributeValue::S("demo/j-24".into()))
        .item("schedule", AttributeValue::S("daily-sales-report".into()))
        .item("nominal_time", AttributeValue::S(nominal_24.into()))
        .item(
            "job_endpoint",
            AttributeValue::S("https://api.c-bot.pro/demo/jobs/j-24".into()),
        )
        .item("status", AttributeValue::S("succeeded".into()))
        .send()
        .await
        .unwrap();

    // 11-20 (Fri) runs, 11-21/22 weekend, 11-23 勤労感謝の日, 11-24 ran, 11-25 runs.
    let period = [
        "daily-sales-report",
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-25",
    ];
    let expected = pairs(&[
        ("2026-11-20", "not_run"),
        ("2026-11-21", "skipped"),
        ("2026-11-22", "skipped"),
        ("2026-11-23", "skipped"),
        ("2026-11-24", "ran"),
        ("2026-11-25", "not_run"),
    ]);

    // No terminal and no --yes: the list, exit code 2, nothing delivered.
    let output = stack.backfill(true, &period);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    let listed = doc(&output);
    assert_eq!(statuses(&listed), expected, "{listed}");
    assert_eq!(listed["delivered"], false);
    let holiday = &listed["occurrences"][3]["detail"];
    assert!(
        holiday.as_str().unwrap().contains("勤労感謝の日"),
        "{holiday}"
    );
    assert_eq!(
        listed["occurrences"][4]["job"],
        "https://api.c-bot.pro/demo/jobs/j-24"
    );
    assert!(executions(&sfn).await.is_empty());

    // --yes: exactly the two, as the Scheduler would deliver them, with backfill: true.
    let mut args = period.to_vec();
    args.push("--yes");
    let output = stack.backfill(true, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let done = doc(&output);
    assert_eq!(statuses(&done), expected, "{done}");
    let results: Vec<&str> = done["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["delivery"]["result"].as_str())
        .collect();
    assert_eq!(results, ["started", "started"], "{done}");
    let delivered = executions(&sfn).await;
    assert_eq!(
        delivered
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        [
            "backfill-daily-sales-report-20261120T0000Z",
            "backfill-daily-sales-report-20261125T0000Z"
        ]
    );
    for ((_, input), time) in delivered
        .iter()
        .zip(["2026-11-20T00:00:00Z", "2026-11-25T00:00:00Z"])
    {
        assert_eq!(input["schedule"]["schedule_arn"], schedule_arn.as_str());
        assert_eq!(input["schedule"]["scheduled_time"], time);
        assert_eq!(input["schedule"]["backfill"], true);
        assert_eq!(
            input["schedule"]["definition"]["name"],
            "daily-sales-report"
        );
        assert_eq!(
            input["request"]["bot_endpoint"],
            "https://api.c-bot.pro/demo/bots/sales_report/jobs"
        );
    }
    assert_eq!(
        done["occurrences"][0]["key"],
        format!("schedule:{schedule_arn}@2026-11-20T00:00:00Z")
    );

    // Again: the executions are found by their names; nothing new is started.
    let output = stack.backfill(true, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let again = doc(&output);
    let results: Vec<&str> = again["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["delivery"]["result"].as_str())
        .collect();
    assert_eq!(
        results,
        ["already_delivered", "already_delivered"],
        "{again}"
    );
    assert_eq!(executions(&sfn).await.len(), 2);

    // A shifted occurrence keeps its nominal key: payroll's 2026-10-25 is a Sunday, it runs on
    // Friday the 23rd at 07:00 JST and is keyed on the 25th.
    let output = stack.backfill(
        true,
        &[
            "payroll-export",
            "--from",
            "2026-10-22",
            "--to",
            "2026-10-26",
            "--dry-run",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let shifted = doc(&output);
    let run = shifted["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == "not_run")
        .unwrap()
        .clone();
    assert_eq!(run["day"], "2026-10-23");
    assert_eq!(run["nominal"], "2026-10-25");
    assert_eq!(run["scheduled_time"], "2026-10-22T22:00:00Z");
    let payroll_arn = stack.get("payroll-export").await.arn().unwrap().to_owned();
    assert_eq!(
        run["key"],
        format!("schedule:{payroll_arn}@2026-10-24T22:00:00Z")
    );
    assert_eq!(executions(&sfn).await.len(), 2);

    // Without the ledger, occurrences older than the idempotency window are refused (exit 8).
    let output = stack.backfill(false, &args);
    assert_eq!(output.status.code(), Some(8), "{}", stderr(&output));
    let refused = doc(&output);
    assert_eq!(
        statuses(&refused)
            .into_iter()
            .filter(|(_, s)| s != "skipped")
            .map(|(_, s)| s)
            .collect::<Vec<_>>(),
        ["too_old", "too_old", "too_old"],
        "{refused}"
    );
    assert_eq!(executions(&sfn).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_to_the_function_starts_each_missing_run_once_and_then_reads_it_as_ran() {
    use cloudbot_emulator::{Emulator, EmulatorOptions, Seed};
    use cloudbot_trigger::idempotency::Idempotency;
    use cloudbot_trigger::ledger::{Ledger, LedgerTable};
    use cloudbot_trigger::schedule::state::ScheduleStates;
    use cloudbot_trigger::table::DynamoDbStore;
    use support::lambda::LambdaStandIn;

    let stack = Stack::start("backfill-fn").await;
    stack.ledger();
    let emulator = Emulator::start_with(EmulatorOptions::new(Seed::demo()))
        .await
        .unwrap();
    let base = emulator.base_url();
    let aws = stack.moto.sdk_config();
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    secrets
        .create_secret()
        .name("cloudbot/demo")
        .secret_string(r#"{"access_token":"demo-access-token","secret_key":"demo-secret-key"}"#)
        .send()
        .await
        .unwrap();
    let vars = std::collections::HashMap::from([
        ("CLOUDBOT_SECRET_ID", "cloudbot/demo".to_owned()),
        ("CLOUDBOT_API_BASE", base.clone()),
        (
            "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
            format!("{base}/demo/bots/echo_bot/jobs"),
        ),
        ("CLOUDBOT_IDEMPOTENCY_TABLE", TABLE.to_owned()),
        ("CLOUDBOT_RUN_LEDGER_TABLE", LEDGER.to_owned()),
    ]);
    // Wired as src/main.rs wires it: idempotency, schedule state records, the run ledger.
    let config = cloudbot_trigger::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let expiry = config.idempotency.as_ref().unwrap().expiry;
    let retention = config.ledger.as_ref().unwrap().retention;
    let store = || DynamoDbStore::new(stack.dynamodb.clone(), TABLE.into());
    let service = cloudbot_trigger::service::Service::new(config, secrets)
        .unwrap()
        .with_idempotency(Some(Idempotency::new(store(), expiry)))
        .with_schedule_states(Some(ScheduleStates::new(store())))
        .with_ledger(Some(Ledger::new(
            LedgerTable::new(stack.dynamodb.clone(), LEDGER.into()),
            retention,
        )));
    let lambda = LambdaStandIn::start(std::sync::Arc::new(service)).await;

    // A daily schedule on the emulator's echo BOT, the function's alias as its target.
    let function = "arn:aws:lambda:us-east-1:123456789012:function:stack-CloudBotFunction:live";
    let file = stack.file(
        "echo.yaml",
        &format!(
            "version: 1\nschedules:\n  - name: daily-echo\n    at: \"09:00\"\n    recurrence: daily\n    \
             bot_endpoint: {base}/demo/bots/echo_bot/jobs\n    policies: {{ overlap: allow }}\n"
        ),
    );
    let output = stack.cloudbot(&["schedules", "apply", &file, "--target-arn", function]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let schedule_arn = stack.get("daily-echo").await.arn().unwrap().to_owned();

    let run = |args: Vec<&'static str>, ledger: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cloudbot"));
        stack
            .moto
            .point(&mut command)
            .args(["--json", "schedules", "backfill", "daily-echo"])
            .args(["--from", "2026-11-23", "--to", "2026-11-25"])
            .args(args)
            .env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint)
            .env("CLOUDBOT_SCHEDULE_GROUP", GROUP)
            .env("CLOUDBOT_IDEMPOTENCY_TABLE", TABLE)
            .stdin(Stdio::null());
        if ledger {
            command.env("CLOUDBOT_RUN_LEDGER_TABLE", LEDGER);
        } else {
            command.env_remove("CLOUDBOT_RUN_LEDGER_TABLE");
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };

    // 11-23 is 勤労感謝の日; 11-24 and 11-25 did not run (the ledger is empty).
    let output = run(vec!["--yes"], true).await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let done = doc(&output);
    assert_eq!(
        statuses(&done),
        pairs(&[
            ("2026-11-23", "skipped"),
            ("2026-11-24", "not_run"),
            ("2026-11-25", "not_run"),
        ]),
        "{done}"
    );
    let deliveries: Vec<&Value> = done["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("delivery"))
        .collect();
    assert_eq!(deliveries.len(), 2, "{done}");
    for delivery in &deliveries {
        assert_eq!(delivery["result"], "started", "{done}");
        assert!(
            delivery["job"].as_str().unwrap().starts_with(&base),
            "{done}"
        );
    }
    assert_eq!(emulator.stats().jobs_created, 2);
    let invocations = lambda.invocations.lock().unwrap().clone();
    assert_eq!(invocations.len(), 2);
    // The SDK percent-encodes the ARN in the Invoke path.
    assert_eq!(invocations[0].0.replace("%3A", ":"), function);
    assert_eq!(invocations[0].1["schedule"]["backfill"], true);
    assert_eq!(
        invocations[0].1["schedule"]["schedule_arn"],
        schedule_arn.as_str()
    );
    assert_eq!(
        invocations[0].1["schedule"]["scheduled_time"],
        "2026-11-24T00:00:00Z"
    );

    // Again: the function's ledger records (schedule + nominal occurrence, as backfill looks
    // them up) say they ran; and without the ledger, their idempotency records (the nominal
    // keys) do. Nothing more is delivered.
    for (ledger, source) in [(true, "run ledger"), (false, "idempotency record")] {
        let output = run(vec!["--yes"], ledger).await.unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let again = doc(&output);
        assert_eq!(
            statuses(&again),
            pairs(&[
                ("2026-11-23", "skipped"),
                ("2026-11-24", "ran"),
                ("2026-11-25", "ran"),
            ]),
            "{again}"
        );
        for (row, delivery) in [(1, 0), (2, 1)] {
            assert_eq!(
                again["occurrences"][row]["job"], deliveries[delivery]["job"],
                "{again}"
            );
            let detail = again["occurrences"][row]["detail"].as_str().unwrap();
            assert!(detail.contains(source), "{again}");
        }
    }
    assert_eq!(lambda.invocations.lock().unwrap().len(), 2);
    assert_eq!(emulator.stats().jobs_created, 2);
}
