//! Day spans and day statuses: Golden Week, 年末年始, お盆, 振替休日, 国民の休日, extra open days.

use jiff::civil::{Date, date};
use serde_json::json;

use super::*;

/// A company calendar like many Japanese offices keep.
pub(crate) fn company() -> CalendarRule {
    serde_json::from_value(json!({
        "closed": [
            {"dates": "12-29..01-03", "label": "年末年始"},
            {"dates": "08-13..08-16", "label": "お盆"},
            {"dates": "2027-06-01..2027-06-02", "label": "棚卸"},
            {"dates": "02-29", "label": "閏日"}
        ],
        "open": [
            {"dates": "2027-03-27", "label": "決算対応"},
            {"dates": "2027-02-11", "label": "出勤日"}
        ]
    }))
    .unwrap()
}

fn holiday(name: &'static str) -> DayStatus {
    DayStatus::Closed(ClosedReason::Holiday { name })
}

fn company_closed(label: &str) -> DayStatus {
    DayStatus::Closed(ClosedReason::CompanyClosed {
        label: label.to_owned(),
    })
}

fn weekend(weekday: WeekdayName) -> DayStatus {
    DayStatus::Closed(ClosedReason::Weekend { weekday })
}

#[test]
fn day_spans_parse_every_form_and_refuse_the_rest() {
    let yearly = |from, to| Ok(DaySpan::Yearly { from, to });
    let once = |from, to| Ok(DaySpan::Once { from, to });
    let cases: [(&str, Result<DaySpan, ()>); 13] = [
        ("12-29..01-03", yearly((12, 29), (1, 3))),
        ("08-13..08-16", yearly((8, 13), (8, 16))),
        ("06-01", yearly((6, 1), (6, 1))),
        ("02-29", yearly((2, 29), (2, 29))),
        ("2027-05-06", once(date(2027, 5, 6), date(2027, 5, 6))),
        (
            "2027-05-06..2027-05-07",
            once(date(2027, 5, 6), date(2027, 5, 7)),
        ),
        ("02-30", Err(())),
        ("13-01", Err(())),
        ("6-1", Err(())),
        ("12-29..2027-01-03", Err(())),
        ("2027-05-07..2027-05-06", Err(())),
        ("06-01..06-01", Err(())),
        ("", Err(())),
    ];
    for (text, expected) in cases {
        assert_eq!(
            text.parse::<DaySpan>().map_err(|_| ()),
            expected,
            "{text:?}"
        );
        if let Ok(span) = expected {
            assert_eq!(span.to_string(), text);
        }
    }
}

#[test]
fn a_yearly_range_crossing_the_year_end_contains_both_ends_and_nothing_else() {
    let span: DaySpan = "12-29..01-03".parse().unwrap();
    let cases = [
        (date(2026, 12, 28), false),
        (date(2026, 12, 29), true),
        (date(2026, 12, 31), true),
        (date(2027, 1, 1), true),
        (date(2027, 1, 3), true),
        (date(2027, 1, 4), false),
        (date(2027, 6, 15), false),
    ];
    for (day, expected) in cases {
        assert_eq!(span.contains(day), expected, "{day}");
    }
}

#[test]
fn statuses_through_the_year_on_a_company_calendar() {
    use WeekdayName::{Sat, Sun};
    let cases: [(Date, DayStatus); 28] = [
        // 年末年始: the company range, with 元日 named when it is also a national holiday.
        (date(2026, 12, 28), DayStatus::Open),
        (date(2026, 12, 29), company_closed("年末年始")),
        (date(2027, 1, 1), holiday("元日")),
        (date(2027, 1, 2), company_closed("年末年始")),
        (date(2027, 1, 3), company_closed("年末年始")),
        (date(2027, 1, 4), DayStatus::Open),
        // Golden Week 2027.
        (date(2027, 4, 28), DayStatus::Open),
        (date(2027, 4, 29), holiday("昭和の日")),
        (date(2027, 4, 30), DayStatus::Open),
        (date(2027, 5, 1), weekend(Sat)),
        (date(2027, 5, 2), weekend(Sun)),
        (date(2027, 5, 3), holiday("憲法記念日")),
        (date(2027, 5, 4), holiday("みどりの日")),
        (date(2027, 5, 5), holiday("こどもの日")),
        (date(2027, 5, 6), DayStatus::Open),
        // 振替休日: 春分の日 2027 is a Sunday; 憲法記念日 2026 is a Sunday.
        (date(2027, 3, 21), holiday("春分の日")),
        (date(2027, 3, 22), holiday("休日")),
        (date(2026, 5, 6), holiday("休日")),
        // 国民の休日 between 敬老の日 and 秋分の日 2026.
        (date(2026, 9, 22), holiday("休日")),
        // お盆, around 山の日.
        (date(2027, 8, 11), holiday("山の日")),
        (date(2027, 8, 13), company_closed("お盆")),
        (date(2027, 8, 16), company_closed("お盆")),
        (date(2027, 8, 17), DayStatus::Open),
        // One-off closed days and extra open days (over a weekend and over a national holiday).
        (date(2027, 6, 1), company_closed("棚卸")),
        (date(2027, 3, 27), DayStatus::Open),
        (date(2027, 2, 11), DayStatus::Open),
        // A yearly 02-29 exists only in leap years.
        (date(2024, 2, 29), company_closed("閏日")),
        (date(2025, 2, 28), DayStatus::Open),
    ];
    let rule = company();
    for (day, expected) in cases {
        assert_eq!(rule.status(day).unwrap(), expected, "{day}");
    }
}

#[test]
fn weekends_are_closed_unless_the_rule_opens_them_and_holidays_can_be_ignored() {
    let seven_days: CalendarRule = serde_json::from_value(json!({"closed_weekdays": []})).unwrap();
    assert_eq!(
        seven_days.status(date(2027, 5, 1)).unwrap(),
        DayStatus::Open
    );
    assert_eq!(
        seven_days.status(date(2027, 5, 3)).unwrap(),
        holiday("憲法記念日")
    );

    let no_holidays: CalendarRule =
        serde_json::from_value(json!({"national_holidays": false})).unwrap();
    assert_eq!(
        no_holidays.status(date(2027, 5, 3)).unwrap(),
        DayStatus::Open
    );
    // Without national holidays no holiday data is needed, so no date is stale.
    assert_eq!(
        no_holidays.status(date(2031, 5, 5)).unwrap(),
        DayStatus::Open
    );
    assert_eq!(
        no_holidays.status(date(2031, 5, 4)).unwrap(),
        weekend(WeekdayName::Sun)
    );
}

#[test]
fn a_date_past_the_holiday_data_is_stale_unless_it_is_an_extra_open_day() {
    let mut rule = CalendarRule::default();
    let day = holidays::valid_through() + jiff::Span::new().days(4);
    assert_eq!(
        rule.status(day),
        Err(CalendarError::Stale {
            date: day,
            valid_through: holidays::valid_through()
        })
    );
    rule.open.push(LabelledDays {
        dates: day.to_string().parse().unwrap(),
        label: "仕事始め".into(),
    });
    assert_eq!(rule.status(day).unwrap(), DayStatus::Open);
}

#[test]
fn searching_for_a_business_day_crosses_month_and_year_boundaries() {
    let rule = company();
    let cases = [
        (date(2027, 5, 1), Direction::Backward, date(2027, 4, 30)),
        (date(2027, 5, 1), Direction::Forward, date(2027, 5, 6)),
        (date(2027, 1, 1), Direction::Backward, date(2026, 12, 28)),
        (date(2026, 12, 29), Direction::Forward, date(2027, 1, 4)),
        (date(2026, 11, 1), Direction::Backward, date(2026, 10, 30)),
        (date(2027, 8, 13), Direction::Backward, date(2027, 8, 12)),
        (date(2027, 8, 10), Direction::Forward, date(2027, 8, 12)),
    ];
    for (from, direction, expected) in cases {
        assert_eq!(
            rule.next_open(from, direction).unwrap(),
            expected,
            "{from} {direction:?}"
        );
    }
}

#[test]
fn a_calendar_without_business_days_ends_the_search_with_an_error() {
    let closed_all_year: CalendarRule = serde_json::from_value(json!({
        "national_holidays": false,
        "closed": [{"dates": "01-01..12-31", "label": "休業"}]
    }))
    .unwrap();
    let from = date(2030, 6, 1);
    assert_eq!(
        closed_all_year.next_open(from, Direction::Forward),
        Err(CalendarError::NoBusinessDay { from })
    );
}

#[test]
fn unknown_calendar_fields_are_refused() {
    let error = serde_json::from_value::<CalendarRule>(json!({"holidays": true})).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `holidays`"),
        "{error}"
    );
}
