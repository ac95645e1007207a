//! `cloudbot schedules check` and `cloudbot schedules preview` as an operator runs them, on the
//! repository's example schedule file (`calendar/examples/schedules.yaml`, the one README's
//! "Your schedules" shows): labels, holiday names, the schedule's own time zone whatever `TZ`
//! says, `--json`, and errors that name the field. Pure commands: no server is started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

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
    let output = cloudbot(&[
        "schedules",
        "preview",
        "daily-sales-report",
        "--file",
        file.to_str().unwrap(),
        "--from",
        "2026-12-28",
        "--days",
        "10",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("2026-12-28 (月)  09:00 JST  run\n"), "{text}");
    assert!(
        text.contains("2026-12-29 (火)  -          skipped  company closed day 年末年始\n"),
        "{text}"
    );
    assert!(text.contains("2027-01-04 (月)  09:00 JST  run\n"), "{text}");
    // 12-28 and 01-04 .. 01-06 run (01-02, 01-03 are weekend days and 年末年始).
    assert!(text.ends_with("4 runs\n"), "{text}");

    let output = cloudbot(&[
        "schedules",
        "preview",
        "month-end-close",
        "--file",
        file.to_str().unwrap(),
        "--from",
        "2026-12-01",
        "--days",
        "31",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    // 12-29 .. 12-31 are closed (年末年始): the last business day of December 2026 is the 28th.
    let runs: Vec<&str> = text.lines().filter(|l| l.contains("JST  run")).collect();
    assert_eq!(runs, ["2026-12-28 (月)  18:30 JST  run"], "{text}");
}

#[test]
fn preview_json_names_the_holiday_and_keeps_the_schedules_zone() {
    let file = example();
    let output = cloudbot(&[
        "--json",
        "schedules",
        "preview",
        "daily-sales-report",
        "--file",
        file.to_str().unwrap(),
        "--from",
        "2027-01-08",
        "--days",
        "4",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
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
    let output = cloudbot(&[
        "--json",
        "schedules",
        "preview",
        "payroll-export",
        "--file",
        file.to_str().unwrap(),
        "--from",
        "2027-04-22",
        "--days",
        "4",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
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
    let file = file.to_str().unwrap();

    let output = cloudbot(&["schedules", "check", file]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let preview = |name: &str, from: &str, days: &str| {
        let output = cloudbot(&[
            "--json",
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
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
        doc["entries"]
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
