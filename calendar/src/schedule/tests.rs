//! The schedule file: the example parses from YAML and JSON alike, every invalid field is named,
//! and the committed JSON Schema is the one the model generates.

use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;

#[cfg(feature = "yaml")]
const EXAMPLE: &str = include_str!("../../examples/schedules.yaml");
const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schedules.schema.json");

fn minimal() -> Value {
    json!({"version": 1, "schedules": [{
        "name": "report",
        "at": "09:00",
        "recurrence": "daily",
        "bot_endpoint": "https://api.c-bot.pro/demo/bots/report/jobs"
    }]})
}

fn field_error(value: Value) -> (String, String) {
    match ScheduleFile::from_value(value) {
        Err(FileError::Field { field, reason }) => (field, reason),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
#[cfg(feature = "yaml")]
fn the_example_file_parses_with_its_anchors_and_defaults() {
    let file = ScheduleFile::from_yaml(EXAMPLE).unwrap();
    let names: Vec<&str> = file.schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "daily-sales-report",
            "month-end-close",
            "payroll-export",
            "quarter-close",
            "invoices"
        ]
    );
    let report = &file.schedules[0];
    assert_eq!(report.at.0, jiff::civil::Time::constant(9, 0, 0, 0));
    assert_eq!(report.time_zone.name(), "Asia/Tokyo");
    assert_eq!(report.policies, RunPolicies::default());
    assert_eq!(report.calendar.closed.len(), 3);
    assert!(report.calendar.national_holidays);
    // The alias shares the anchored calendar.
    assert_eq!(file.schedules[1].calendar, report.calendar);
    assert_eq!(
        file.schedules[1].recurrence,
        Recurrence::BusinessDay(crate::occurrence::NthBusinessDay::Last)
    );
    assert_eq!(
        file.schedules[1].policies.max_lateness.0,
        SignedDuration::from_hours(2)
    );
    assert_eq!(
        file.schedules[2].on_closed,
        Some(OnClosed::PreviousBusinessDay)
    );
    // Without a calendar: weekends and national holidays.
    assert_eq!(
        file.schedules[3].months.as_deref(),
        Some(&[3, 6, 9, 12][..])
    );
    assert_eq!(file.schedules[4].calendar, CalendarRule::default());
    assert!(!file.schedules[4].enabled);
}

#[test]
#[cfg(feature = "yaml")]
fn a_file_written_back_as_json_reads_the_same() {
    let file = ScheduleFile::from_yaml(EXAMPLE).unwrap();
    let json = serde_json::to_string_pretty(&file).unwrap();
    assert_eq!(ScheduleFile::from_json(&json).unwrap(), file);
}

#[test]
#[cfg(feature = "yaml")]
fn an_unquoted_time_of_day_in_yaml_is_still_a_time() {
    let yaml = "version: 1\nschedules:\n  - name: a\n    at: 09:05\n    recurrence: daily\n    bot_endpoint: https://api.c-bot.pro/p/bots/b/jobs\n";
    let file = ScheduleFile::from_yaml(yaml).unwrap();
    assert_eq!(file.schedules[0].at.to_string(), "09:05");
}

#[test]
fn every_invalid_field_is_named_by_its_path() {
    let cases: [(&str, Value, &str, &str); 33] = [
        (
            "/schedules/0/months",
            json!([]),
            "schedules[0].months",
            "names no month",
        ),
        (
            "/schedules/0/months",
            json!([0]),
            "schedules[0].months",
            "0 is not a month",
        ),
        (
            "/schedules/0/months",
            json!([3, 13]),
            "schedules[0].months",
            "13 is not a month",
        ),
        (
            "/schedules/0/months",
            json!([3, 3]),
            "schedules[0].months",
            "names 3 twice",
        ),
        ("/version", json!(2), "version", "must be 1"),
        (
            "/schedules/0/colour",
            json!("red"),
            "schedules[0].colour",
            "unknown field `colour`",
        ),
        (
            "/schedules/0/name",
            json!("日報"),
            "schedules[0].name",
            "not a schedule name",
        ),
        (
            "/schedules/0/name",
            json!("x".repeat(65)),
            "schedules[0].name",
            "not a schedule name",
        ),
        ("/schedules/0/at", json!("9:00"), "schedules[0].at", "HH:MM"),
        (
            "/schedules/0/at",
            json!("24:00"),
            "schedules[0].at",
            "HH:MM",
        ),
        (
            "/schedules/0/recurrence",
            json!("hourly"),
            "schedules[0].recurrence",
            "unknown variant `hourly`",
        ),
        (
            "/schedules/0/recurrence",
            json!({"weekly": []}),
            "schedules[0].recurrence.weekly",
            "names no weekday",
        ),
        (
            "/schedules/0/recurrence",
            json!({"weekly": ["mon", "mon"]}),
            "schedules[0].recurrence.weekly",
            "names `mon` twice",
        ),
        (
            "/schedules/0/recurrence",
            json!({"weekly": ["monday"]}),
            "schedules[0].recurrence.weekly[0]",
            "unknown variant `monday`",
        ),
        (
            "/schedules/0/recurrence",
            json!({"monthly": 32}),
            "schedules[0].recurrence.monthly",
            "1 to 31",
        ),
        (
            "/schedules/0/recurrence",
            json!({"business_day": 0}),
            "schedules[0].recurrence.business_day",
            "1 to 23",
        ),
        (
            "/schedules/0/time_zone",
            json!("Asia/Osaka"),
            "schedules[0].time_zone",
            "not a known IANA time zone",
        ),
        (
            "/schedules/0/bot_endpoint",
            json!("https://api.c-bot.pro/demo/jobs/1"),
            "schedules[0].bot_endpoint",
            "BOT execution endpoint",
        ),
        (
            "/schedules/0/bot_endpoint",
            json!("https://u:p@api.c-bot.pro/d/bots/b/jobs"),
            "schedules[0].bot_endpoint",
            "credentials",
        ),
        (
            "/schedules/0/bot_endpoint",
            json!("ftp://api.c-bot.pro/d/bots/b/jobs"),
            "schedules[0].bot_endpoint",
            "http(s)",
        ),
        (
            "/schedules/0/input",
            json!([1]),
            "schedules[0].input",
            "invalid type",
        ),
        (
            "/schedules/0/on_closed",
            json!("next_business_day"),
            "schedules[0].on_closed",
            "cannot shift a daily schedule",
        ),
        (
            "/schedules/0/calendar",
            json!({"closed": [{"dates": "12-29..01-32", "label": "x"}]}),
            "schedules[0].calendar.closed[0].dates",
            "not a day or a range",
        ),
        (
            "/schedules/0/calendar",
            json!({"closed": [{"dates": "12-29", "label": " "}]}),
            "schedules[0].calendar.closed[0].label",
            "must not be empty",
        ),
        (
            "/schedules/0/calendar",
            json!({"closed_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}),
            "schedules[0].calendar.closed_weekdays",
            "closes every day",
        ),
        (
            "/schedules/0/policies",
            json!({"overlap": "queue"}),
            "schedules[0].policies.overlap",
            "unknown variant `queue`",
        ),
        (
            "/schedules/0/policies",
            json!({"max_lateness": "25h"}),
            "schedules[0].policies.max_lateness",
            "at most 24h",
        ),
        (
            "/schedules/0/policies",
            json!({"failure_breaker": 0}),
            "schedules[0].policies.failure_breaker",
            "1 to 100",
        ),
        (
            "/schedules/0/policies",
            json!({"max_run_seconds": 0}),
            "schedules[0].policies.max_run_seconds",
            "1 to 2592000",
        ),
        (
            "/schedules/0/policies",
            json!({"rerun": {"attempts": 0}}),
            "schedules[0].policies.rerun.attempts",
            "from 1 to 5",
        ),
        (
            "/schedules/0/policies",
            json!({"rerun": {"attempts": 1, "backoff_seconds": 3601}}),
            "schedules[0].policies.rerun.backoff_seconds",
            "from 0 to 3600",
        ),
        (
            "/schedules/0/policies",
            json!({"rerun": {"attempts": 1, "message_pattern": "("}}),
            "schedules[0].policies.rerun.message_pattern",
            "not a valid pattern",
        ),
        (
            "/schedules/0/policies",
            json!({"rerun": {"attempts": 1, "retries": 2}}),
            "schedules[0].policies.rerun.retries",
            "unknown field `retries`",
        ),
    ];
    for (pointer, value, field, reason) in cases {
        let mut file = minimal();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut file
        } else {
            file.pointer_mut(parent).unwrap()
        };
        target[key] = value;
        let (got_field, got_reason) = field_error(file);
        assert_eq!(got_field, field, "{pointer}: {got_reason}");
        assert!(
            got_reason.contains(reason),
            "{pointer}: `{got_reason}` lacks `{reason}`"
        );
    }
}

#[test]
fn rules_that_would_not_do_what_they_say_are_refused() {
    let mut file = minimal();
    file["schedules"][0]["recurrence"] = json!({"business_day": 3});
    file["schedules"][0]["on_closed"] = json!("skip");
    assert_eq!(field_error(file).0, "schedules[0].on_closed");

    let mut file = minimal();
    let copy = file["schedules"][0].clone();
    file["schedules"].as_array_mut().unwrap().push(copy);
    let (field, reason) = field_error(file);
    assert_eq!(field, "schedules[1].name");
    assert!(reason.contains("schedules[0]"), "{reason}");

    let mut file = minimal();
    file.as_object_mut().unwrap().remove("version");
    assert!(field_error(file).1.contains("missing field `version`"));
}

#[test]
fn syntax_errors_say_which_format() {
    assert!(matches!(
        ScheduleFile::from_json("{"),
        Err(FileError::Syntax { format: "JSON", .. })
    ));
    #[cfg(feature = "yaml")]
    assert!(matches!(
        ScheduleFile::from_yaml("version: [1\n"),
        Err(FileError::Syntax { format: "YAML", .. })
    ));
}

#[test]
fn a_rerun_policy_is_read_with_its_defaults_and_kept_in_the_definition() {
    let mut file = minimal();
    file["schedules"][0]["policies"] =
        json!({"rerun": {"attempts": 2, "message_pattern": "(?i)timeout"}});
    let file = ScheduleFile::from_value(file).unwrap();
    let rerun = file.schedules[0].policies.rerun.clone().unwrap();
    assert_eq!(
        (
            rerun.attempts,
            rerun.backoff_seconds,
            rerun.message_pattern.as_deref()
        ),
        (2, 0, Some("(?i)timeout"))
    );
    // The definition the CLI sends (and the function reads back) keeps it.
    let definition = serde_json::to_value(&file.schedules[0]).unwrap();
    assert_eq!(
        definition["policies"]["rerun"],
        json!({"attempts": 2, "backoff_seconds": 0, "message_pattern": "(?i)timeout"})
    );
    assert_eq!(Schedule::from_value(definition).unwrap(), file.schedules[0]);
    assert_eq!(RunPolicies::default().rerun, None);
}

#[test]
fn lateness_is_measured_from_the_ticks_scheduled_time() {
    let policies = RunPolicies {
        max_lateness: "30m".parse().unwrap(),
        ..RunPolicies::default()
    };
    let scheduled: Timestamp = "2027-01-04T00:00:00Z".parse().unwrap();
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    assert!(!policies.too_late(scheduled, at("2027-01-04T00:30:00Z")));
    assert!(policies.too_late(scheduled, at("2027-01-04T00:30:01Z")));
    assert!(!policies.too_late(scheduled, at("2027-01-03T23:59:00Z")));
    assert_eq!(
        RunPolicies::default().max_lateness.0,
        SignedDuration::from_hours(1)
    );
    assert_eq!(date(2027, 1, 4).to_string(), "2027-01-04");
}

#[test]
fn the_default_time_zone_is_tokyo_from_the_compiled_in_database() {
    let zone = Zone::default();
    assert_eq!(zone.name(), "Asia/Tokyo");
    assert_eq!(zone.tz().iana_name(), Some("Asia/Tokyo"));
    assert!("Europe/Berlin".parse::<Zone>().is_ok());
}

/// The committed schema is what the model generates. After changing the model, regenerate it:
/// `CLOUDBOT_CALENDAR_BLESS=1 cargo test -p cloudbot-calendar schema`.
#[test]
fn the_committed_json_schema_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    if std::env::var_os("CLOUDBOT_CALENDAR_BLESS").is_some() {
        std::fs::write(SCHEMA_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "{SCHEMA_PATH} is out of date: run `CLOUDBOT_CALENDAR_BLESS=1 cargo test -p cloudbot-calendar schema`"
    );
}

#[test]
fn the_schema_names_the_fields_and_refuses_unknown_ones() {
    let schema = json_schema();
    assert_eq!(schema["additionalProperties"], json!(false));
    let schedule = &schema["$defs"]["Schedule"];
    assert_eq!(schedule["additionalProperties"], json!(false));
    let mut required: Vec<&str> = schedule["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(required, ["at", "bot_endpoint", "name", "recurrence"]);
    for field in [
        "time_zone",
        "input",
        "calendar",
        "on_closed",
        "policies",
        "enabled",
        "description",
    ] {
        assert!(schedule["properties"].get(field).is_some(), "{field}");
    }
}

#[test]
fn one_schedule_alone_is_validated_with_fields_named_from_it() {
    let schedule = minimal()["schedules"][0].clone();
    assert_eq!(
        Schedule::from_value(schedule.clone())
            .unwrap()
            .name
            .as_str(),
        "report"
    );
    let mut bad = schedule.clone();
    bad["calendar"] = json!({"open": [{"dates": "2027-13-01", "label": "x"}]});
    assert!(matches!(
        Schedule::from_value(bad),
        Err(FileError::Field { field, .. }) if field == "calendar.open[0].dates"
    ));
    let mut bad = schedule;
    bad["on_closed"] = json!("previous_business_day");
    assert!(matches!(
        Schedule::from_value(bad),
        Err(FileError::Field { field, .. }) if field == "on_closed"
    ));
}

#[test]
fn a_calendar_closing_every_weekday_is_refused_even_with_repeats() {
    let mut file = minimal();
    file["schedules"][0]["calendar"] =
        json!({"closed_weekdays": ["sat", "sat", "sun", "mon", "tue", "wed", "thu"]});
    assert!(ScheduleFile::from_value(file.clone()).is_ok());
    file["schedules"][0]["calendar"]["closed_weekdays"][1] = json!("fri");
    assert_eq!(field_error(file).0, "schedules[0].calendar.closed_weekdays");
}

#[test]
fn the_scheduler_fires_daily_at_the_time_of_day_in_the_schedules_zone() {
    let mut value = minimal()["schedules"][0].clone();
    value["at"] = json!("09:05");
    value["recurrence"] = json!({"business_day": "last"});
    value["time_zone"] = json!("America/New_York");
    let schedule = Schedule::from_value(value).unwrap();
    assert_eq!(schedule.scheduler_expression(), "cron(5 9 * * ? *)");
    assert_eq!(schedule.time_zone.name(), "America/New_York");
}
