//! Fire-time decisions: a tick's scheduled time read in the schedule's time zone, a shifted run
//! keyed on its nominal occurrence, skips with their reasons, and staleness.

use jiff::Timestamp;
use jiff::civil::date;
use serde_json::json;

use super::*;
use crate::calendar::ClosedReason;
use crate::schedule::ScheduleFile;

fn schedule(extra: serde_json::Value) -> Schedule {
    let mut schedule = json!({
        "name": "payroll",
        "at": "09:00",
        "recurrence": {"monthly": 1},
        "on_closed": "next_business_day",
        "bot_endpoint": "https://api.c-bot.pro/demo/bots/payroll/jobs",
        "calendar": {"closed": [{"dates": "12-29..01-03", "label": "年末年始"}]}
    });
    for (key, value) in extra.as_object().unwrap() {
        schedule[key] = value.clone();
    }
    let file = ScheduleFile::from_value(json!({"version": 1, "schedules": [schedule]})).unwrap();
    file.schedules.into_iter().next().unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn a_shifted_occurrence_runs_once_on_its_shifted_day_keyed_on_its_nominal_date() {
    let payroll = schedule(json!({}));
    // 09:00 in Tokyo is 00:00 UTC.
    let shifted_day = at("2027-01-04T00:00:00Z");
    let expected = TickDecision::Run(Run {
        nominal: date(2027, 1, 1),
        on: date(2027, 1, 4),
        nominal_time: at("2027-01-01T00:00:00Z"),
    });
    // A duplicate delivery gets the same answer, so the same key.
    assert_eq!(decide_tick(&payroll, shifted_day).unwrap(), expected);
    assert_eq!(decide_tick(&payroll, shifted_day).unwrap(), expected);
    let TickDecision::Run(run) = expected else {
        unreachable!()
    };
    assert!(run.shifted());

    // The nominal day sends nothing and says where the occurrence runs and why.
    let nominal_day = decide_tick(&payroll, at("2027-01-01T00:00:00Z")).unwrap();
    assert_eq!(
        nominal_day,
        TickDecision::Skipped {
            day: date(2027, 1, 1),
            reason: TickSkip::Calendar(SkipReason::Shifted {
                to: date(2027, 1, 4),
                closed: ClosedReason::Holiday { name: "元日" },
            }),
        }
    );
    assert_eq!(
        serde_json::to_value(&nominal_day).unwrap(),
        json!({"decision": "skipped", "day": "2027-01-01", "reason": "shifted", "to": "2027-01-04",
               "closed": {"reason": "holiday", "name": "元日"}})
    );
    // The days between run nothing.
    for day in [
        "2027-01-02T00:00:00Z",
        "2027-01-03T00:00:00Z",
        "2027-01-05T00:00:00Z",
    ] {
        let decision = decide_tick(&payroll, at(day)).unwrap();
        assert!(
            matches!(
                decision,
                TickDecision::Skipped {
                    reason: TickSkip::Calendar(SkipReason::NotScheduled),
                    ..
                }
            ),
            "{day}: {decision:?}"
        );
    }
}

#[test]
fn a_holiday_skips_with_its_name() {
    let report = schedule(json!({"recurrence": "daily", "on_closed": null}));
    let decision = decide_tick(&report, at("2027-05-04T00:00:00Z")).unwrap();
    assert_eq!(
        serde_json::to_value(&decision).unwrap(),
        json!({"decision": "skipped", "day": "2027-05-04", "reason": "holiday", "name": "みどりの日"})
    );
    let TickDecision::Skipped { reason, .. } = decision else {
        panic!()
    };
    assert_eq!(reason.code(), "holiday");
    let run = decide_tick(&report, at("2027-05-06T00:00:00Z")).unwrap();
    assert_eq!(
        serde_json::to_value(&run).unwrap(),
        json!({"decision": "run", "nominal": "2027-05-06", "on": "2027-05-06", "nominal_time": "2027-05-06T00:00:00Z"})
    );
}

#[test]
fn the_date_is_read_in_the_schedules_time_zone() {
    // 00:30 in Tokyo on 4 January is still 3 January in UTC.
    let early = schedule(json!({"at": "00:30"}));
    let decision = decide_tick(&early, at("2027-01-03T15:30:00Z")).unwrap();
    let TickDecision::Run(run) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!((run.nominal, run.on), (date(2027, 1, 1), date(2027, 1, 4)));
    assert_eq!(run.nominal_time, at("2026-12-31T15:30:00Z"));

    let new_york = schedule(json!({"time_zone": "America/New_York", "at": "21:00"}));
    // 21:00 on 3 January in New York is 11:00 on 4 January in Tokyo: the date is New York's.
    let decision = decide_tick(&new_york, at("2027-01-04T02:00:00Z")).unwrap();
    assert!(
        matches!(decision, TickDecision::Skipped { day, .. } if day == date(2027, 1, 3)),
        "{decision:?}"
    );
}

#[test]
fn a_tick_at_another_time_or_for_a_paused_schedule_sends_nothing() {
    let payroll = schedule(json!({}));
    let decision = decide_tick(&payroll, at("2027-01-04T01:00:00Z")).unwrap();
    let TickDecision::Skipped { reason, .. } = decision else {
        panic!()
    };
    assert_eq!(reason.code(), "wrong_time");
    assert_eq!(
        serde_json::to_value(&reason).unwrap(),
        json!({"reason": "wrong_time", "expected": "09:00:00", "got": "10:00:00"})
    );

    let paused = schedule(json!({"enabled": false}));
    let decision = decide_tick(&paused, at("2027-01-04T00:00:00Z")).unwrap();
    let TickDecision::Skipped { reason, .. } = decision else {
        panic!()
    };
    assert_eq!(reason.code(), "paused");
}

#[test]
fn a_tick_past_the_holiday_data_is_stale() {
    let payroll = schedule(json!({}));
    let day = crate::holidays::valid_through() + jiff::Span::new().days(4);
    let tick = day
        .to_datetime(payroll.at.0)
        .to_zoned_datetime(payroll.time_zone.tz().clone())
        .unwrap();
    assert_eq!(
        decide_tick(&payroll, tick.timestamp()),
        Err(CalendarError::Stale {
            date: day,
            valid_through: crate::holidays::valid_through()
        })
    );
}

/// The README lists the skip reasons the function answers with and counts in its metric.
#[test]
fn every_skip_reason_code_is_documented() {
    let readme = include_str!("../../README.md");
    let closed = ClosedReason::Weekend {
        weekday: crate::WeekdayName::Sat,
    };
    let day = date(2027, 1, 1);
    let reasons = [
        TickSkip::Calendar(SkipReason::Holiday { name: "元日" }),
        TickSkip::Calendar(SkipReason::CompanyClosed {
            label: "年末年始".into(),
        }),
        TickSkip::Calendar(SkipReason::Weekend {
            weekday: crate::WeekdayName::Sat,
        }),
        TickSkip::Calendar(SkipReason::Shifted {
            to: day,
            closed: closed.clone(),
        }),
        TickSkip::Calendar(SkipReason::Coalesced {
            into: day,
            on: day,
            closed,
        }),
        TickSkip::Calendar(SkipReason::TooFewBusinessDays { nth: 20, count: 19 }),
        TickSkip::Calendar(SkipReason::NotScheduled),
        TickSkip::Other(OtherSkip::Paused),
        TickSkip::Other(OtherSkip::WrongTime {
            expected: Time::midnight(),
            got: Time::midnight(),
        }),
    ];
    for reason in reasons {
        let code = reason.code();
        assert!(
            readme.contains(&format!("`{code}`")),
            "README.md does not document `{code}`"
        );
        assert_eq!(
            serde_json::to_value(&reason).unwrap()["reason"],
            json!(code)
        );
    }
}
