//! Previews: runs, shifted and skipped occurrences labelled with the holiday's name, and where the
//! holiday data ends.

use jiff::civil::{Date, date};
use serde_json::json;

use super::*;
use crate::calendar::{ClosedReason, WeekdayName};
use crate::schedule::ScheduleFile;

fn schedule(extra: serde_json::Value) -> Schedule {
    let mut schedule = json!({
        "name": "s",
        "at": "07:00",
        "recurrence": "daily",
        "bot_endpoint": "https://api.c-bot.pro/demo/bots/b/jobs",
        "calendar": {"closed": [{"dates": "12-29..01-03", "label": "年末年始"}]}
    });
    for (key, value) in extra.as_object().unwrap() {
        schedule[key] = value.clone();
    }
    let file = ScheduleFile::from_value(json!({"version": 1, "schedules": [schedule]})).unwrap();
    file.schedules.into_iter().next().unwrap()
}

/// A compact form of an entry: (day, nominal, "run" or the skip reason's code).
fn lines(preview: &Preview) -> Vec<(Date, Date, &'static str)> {
    preview
        .entries
        .iter()
        .map(|entry| {
            let kind = match &entry.kind {
                PreviewKind::Run { .. } => "run",
                PreviewKind::Skipped { reason } => reason.code(),
            };
            (entry.day, entry.nominal, kind)
        })
        .collect()
}

#[test]
fn golden_week_is_labelled_day_by_day() {
    let daily = schedule(json!({}));
    let preview = preview(&daily, date(2027, 4, 28), 10);
    assert_eq!(preview.stopped, None);
    let days: Vec<(Date, String)> = preview
        .entries
        .iter()
        .map(|entry| match &entry.kind {
            PreviewKind::Run { .. } => (entry.day, "run".to_owned()),
            PreviewKind::Skipped { reason } => (entry.day, reason.to_string()),
        })
        .collect();
    let expected = [
        (date(2027, 4, 28), "run"),
        (date(2027, 4, 29), "national holiday 昭和の日"),
        (date(2027, 4, 30), "run"),
        (date(2027, 5, 1), "weekend (Saturday)"),
        (date(2027, 5, 2), "weekend (Sunday)"),
        (date(2027, 5, 3), "national holiday 憲法記念日"),
        (date(2027, 5, 4), "national holiday みどりの日"),
        (date(2027, 5, 5), "national holiday こどもの日"),
        (date(2027, 5, 6), "run"),
        (date(2027, 5, 7), "run"),
    ];
    let expected: Vec<(Date, String)> = expected
        .iter()
        .map(|(d, s)| (*d, (*s).to_owned()))
        .collect();
    assert_eq!(days, expected);
    assert_eq!(
        preview.entries[0].kind,
        PreviewKind::Run {
            at: "2027-04-27T22:00:00Z".parse().unwrap()
        }
    );
}

#[test]
fn a_shifted_occurrence_shows_on_both_days() {
    let payroll =
        schedule(json!({"recurrence": {"monthly": 25}, "on_closed": "previous_business_day"}));
    let listed = preview(&payroll, date(2027, 4, 1), 61);
    assert_eq!(
        lines(&listed),
        [
            (date(2027, 4, 23), date(2027, 4, 25), "run"),
            (date(2027, 4, 25), date(2027, 4, 25), "shifted"),
            (date(2027, 5, 25), date(2027, 5, 25), "run"),
        ]
    );
    assert_eq!(
        listed.entries[1].kind,
        PreviewKind::Skipped {
            reason: SkipReason::Shifted {
                to: date(2027, 4, 23),
                closed: ClosedReason::Weekend {
                    weekday: WeekdayName::Sun
                }
            }
        }
    );
    // The run of an occurrence shifted back before the window is not in it; the nominal day is.
    let first =
        schedule(json!({"recurrence": {"monthly": 1}, "on_closed": "previous_business_day"}));
    assert_eq!(
        lines(&preview(&first, date(2027, 5, 1), 3)),
        [(date(2027, 5, 1), date(2027, 5, 1), "shifted")]
    );
}

#[test]
fn a_month_without_the_requested_business_day_is_listed_on_its_last_day() {
    let twentieth = schedule(json!({"recurrence": {"business_day": 20}}));
    assert_eq!(
        lines(&preview(&twentieth, date(2027, 2, 1), 60)),
        [
            (
                date(2027, 2, 28),
                date(2027, 2, 28),
                "too_few_business_days"
            ),
            (date(2027, 3, 29), date(2027, 3, 29), "run")
        ]
    );
}

#[test]
fn a_preview_past_the_holiday_data_stops_there_and_says_so() {
    // Every weekday open, so the scenario holds in whichever year the data ends.
    let daily = schedule(json!({"calendar": {
        "closed_weekdays": [],
        "closed": [{"dates": "12-29..01-03", "label": "年末年始"}]
    }}));
    let year = crate::holidays::VALID_THROUGH_YEAR;
    let listed = preview(&daily, date(year, 12, 27), 10);
    let day = |d| date(year, 12, d);
    assert_eq!(
        lines(&listed),
        [
            (day(27), day(27), "run"),
            (day(28), day(28), "run"),
            (day(29), day(29), "company_closed"),
            (day(30), day(30), "company_closed"),
            (day(31), day(31), "company_closed"),
        ]
    );
    let stale = CalendarError::Stale {
        date: date(year + 1, 1, 1),
        valid_through: day(31),
    };
    assert_eq!(listed.stopped, Some(stale));
    let json = serde_json::to_value(&listed).unwrap();
    assert_eq!(
        json["entries"][2],
        json!({"day": day(29), "nominal": day(29), "kind": "skipped", "reason": "company_closed", "label": "年末年始"})
    );
    assert_eq!(
        json["stopped"],
        json!(format!(
            "{}-01-01 is past the Japanese holiday data, which is valid through {year}-12-31",
            year + 1
        ))
    );
}

#[test]
fn a_quarter_end_close_runs_on_the_last_business_day_of_its_months_only() {
    let close = schedule(json!({"recurrence": {"business_day": "last"}, "months": [3, 6, 9, 12]}));
    assert_eq!(
        lines(&preview(&close, date(2027, 1, 1), 365)),
        [
            (date(2027, 3, 31), date(2027, 3, 31), "run"),
            (date(2027, 6, 30), date(2027, 6, 30), "run"),
            (date(2027, 9, 30), date(2027, 9, 30), "run"),
            // 29–31 December are 年末年始 on this calendar.
            (date(2027, 12, 28), date(2027, 12, 28), "run"),
        ]
    );
    let payroll = schedule(
        json!({"recurrence": {"monthly": 1}, "months": [5], "on_closed": "previous_business_day"}),
    );
    // 1 May 2027 is a Saturday: the May occurrence runs on 30 April, outside its month.
    assert_eq!(
        lines(&preview(&payroll, date(2027, 4, 1), 60)),
        [
            (date(2027, 4, 30), date(2027, 5, 1), "run"),
            (date(2027, 5, 1), date(2027, 5, 1), "shifted")
        ]
    );
}
