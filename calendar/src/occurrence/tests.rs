//! Occurrences in both directions: shifts, month ends, Nth business days, coalescing, and the
//! agreement of `resolve` and `decide_day`.

use jiff::civil::{Date, date};
use serde_json::json;

use super::*;
use crate::calendar::tests::company;
use crate::holidays;

fn recurrence(value: serde_json::Value) -> Recurrence {
    serde_json::from_value(value).unwrap()
}

fn holiday(name: &'static str) -> ClosedReason {
    ClosedReason::Holiday { name }
}

fn run(on: Date) -> Option<Resolution> {
    Some(Resolution::Run { on })
}

#[test]
fn the_25th_or_the_business_day_before() {
    let calendar = company();
    let monthly = recurrence(json!({"monthly": 25}));
    let rule = Rule {
        recurrence: &monthly,
        months: None,
        on_closed: OnClosed::PreviousBusinessDay,
        calendar: &calendar,
    };
    let cases = [
        (date(2027, 1, 25), run(date(2027, 1, 25))),
        (date(2027, 4, 25), run(date(2027, 4, 23))),
        (date(2027, 7, 25), run(date(2027, 7, 23))),
        (date(2027, 12, 25), run(date(2027, 12, 24))),
        (date(2026, 10, 25), run(date(2026, 10, 23))),
        (date(2027, 4, 24), None),
    ];
    for (nominal, expected) in cases {
        assert_eq!(rule.resolve(nominal).unwrap(), expected, "{nominal}");
    }
}

#[test]
fn previous_business_day_crosses_month_and_year_boundaries() {
    let calendar = company();
    let first = recurrence(json!({"monthly": 1}));
    let rule = Rule {
        recurrence: &first,
        months: None,
        on_closed: OnClosed::PreviousBusinessDay,
        calendar: &calendar,
    };
    let cases = [
        // Golden Week's Saturday: back to Friday 30 April.
        (date(2027, 5, 1), run(date(2027, 4, 30))),
        // 元日 inside 年末年始: back to the last business day of the old year.
        (date(2027, 1, 1), run(date(2026, 12, 28))),
        (date(2026, 11, 1), run(date(2026, 10, 30))),
        (date(2027, 8, 1), run(date(2027, 7, 30))),
        (date(2027, 6, 1), run(date(2027, 5, 31))),
        (date(2027, 3, 1), run(date(2027, 3, 1))),
    ];
    for (nominal, expected) in cases {
        assert_eq!(rule.resolve(nominal).unwrap(), expected, "{nominal}");
    }
}

#[test]
fn next_business_day_and_skip_on_closed_days() {
    let calendar = company();
    let first = recurrence(json!({"monthly": 1}));
    let next = Rule {
        recurrence: &first,
        months: None,
        on_closed: OnClosed::NextBusinessDay,
        calendar: &calendar,
    };
    assert_eq!(
        next.resolve(date(2027, 1, 1)).unwrap(),
        run(date(2027, 1, 4))
    );
    assert_eq!(
        next.resolve(date(2027, 5, 1)).unwrap(),
        run(date(2027, 5, 6))
    );
    let skip = Rule {
        on_closed: OnClosed::Skip,
        ..next
    };
    assert_eq!(
        skip.resolve(date(2027, 5, 1)).unwrap(),
        Some(Resolution::Skipped(SkipReason::Weekend {
            weekday: WeekdayName::Sat
        }))
    );
    assert_eq!(
        skip.resolve(date(2027, 6, 1)).unwrap(),
        Some(Resolution::Skipped(SkipReason::CompanyClosed {
            label: "棚卸".into()
        }))
    );
}

#[test]
fn a_day_of_month_beyond_the_months_end_is_its_last_day() {
    let calendar = CalendarRule::default();
    let last = recurrence(json!({"monthly": 31}));
    let rule = Rule {
        recurrence: &last,
        months: None,
        on_closed: OnClosed::PreviousBusinessDay,
        calendar: &calendar,
    };
    let cases = [
        (date(2027, 2, 28), run(date(2027, 2, 26))),
        (date(2027, 4, 30), run(date(2027, 4, 30))),
        (date(2027, 1, 31), run(date(2027, 1, 29))),
        (date(2027, 4, 29), None),
    ];
    for (nominal, expected) in cases {
        assert_eq!(rule.resolve(nominal).unwrap(), expected, "{nominal}");
    }
}

#[test]
fn nth_and_last_business_days_of_months_that_start_or_end_on_closed_days() {
    let calendar = company();
    let cases = [
        // January 2027 starts with 元日 and 年末年始 over a weekend.
        (
            NthBusinessDay::Nth(1),
            date(2027, 1, 15),
            Ok(date(2027, 1, 4)),
        ),
        (
            NthBusinessDay::Nth(3),
            date(2027, 1, 15),
            Ok(date(2027, 1, 6)),
        ),
        // May 2027 starts with Golden Week.
        (
            NthBusinessDay::Nth(1),
            date(2027, 5, 20),
            Ok(date(2027, 5, 6)),
        ),
        (
            NthBusinessDay::Nth(2),
            date(2027, 5, 20),
            Ok(date(2027, 5, 7)),
        ),
        // November 2026 starts on a Sunday, with 文化の日 on the Tuesday.
        (
            NthBusinessDay::Nth(2),
            date(2026, 11, 20),
            Ok(date(2026, 11, 4)),
        ),
        // Month ends: 年末年始, a weekend, a plain Friday, a Friday before a weekend end.
        (
            NthBusinessDay::Last,
            date(2027, 12, 1),
            Ok(date(2027, 12, 28)),
        ),
        (
            NthBusinessDay::Last,
            date(2026, 5, 1),
            Ok(date(2026, 5, 29)),
        ),
        (
            NthBusinessDay::Last,
            date(2027, 4, 1),
            Ok(date(2027, 4, 30)),
        ),
        (
            NthBusinessDay::Last,
            date(2027, 7, 1),
            Ok(date(2027, 7, 30)),
        ),
        (
            NthBusinessDay::Last,
            date(2027, 10, 1),
            Ok(date(2027, 10, 29)),
        ),
        // February 2027 has 19 business days.
        (
            NthBusinessDay::Nth(19),
            date(2027, 2, 1),
            Ok(date(2027, 2, 26)),
        ),
        (
            NthBusinessDay::Nth(20),
            date(2027, 2, 1),
            Err(SkipReason::TooFewBusinessDays { nth: 20, count: 19 }),
        ),
    ];
    let daily = Recurrence::Daily;
    let rule = Rule {
        recurrence: &daily,
        months: None,
        on_closed: OnClosed::Skip,
        calendar: &calendar,
    };
    for (nth, month, expected) in cases {
        assert_eq!(
            rule.nth_business_day(month, nth).unwrap(),
            expected,
            "{nth} of {month}"
        );
        if let Ok(day) = expected {
            let recurrence = Recurrence::BusinessDay(nth);
            let rule = Rule {
                recurrence: &recurrence,
                months: None,
                ..rule
            };
            assert_eq!(rule.resolve(day).unwrap(), run(day));
            assert_eq!(
                rule.decide_day(day).unwrap(),
                DayDecision::Run { nominal: day }
            );
            let before = day.yesterday().unwrap();
            assert_eq!(
                rule.decide_day(before).unwrap(),
                DayDecision::Skip(SkipReason::NotScheduled)
            );
        }
    }
}

#[test]
fn occurrences_shifted_onto_one_day_run_once_as_the_earliest() {
    let calendar = CalendarRule::default();
    // Monday 3 and Tuesday 4 May 2027 are holidays, so is Wednesday 5: both shift to Thursday 6.
    let weekly = recurrence(json!({"weekly": ["mon", "tue", "thu"]}));
    let rule = Rule {
        recurrence: &weekly,
        months: None,
        on_closed: OnClosed::NextBusinessDay,
        calendar: &calendar,
    };
    assert_eq!(
        rule.resolve(date(2027, 5, 3)).unwrap(),
        Some(Resolution::Skipped(SkipReason::Coalesced {
            into: date(2027, 5, 6),
            on: date(2027, 5, 6),
            closed: holiday("憲法記念日")
        }))
    );
    assert_eq!(
        rule.decide_day(date(2027, 5, 6)).unwrap(),
        DayDecision::Run {
            nominal: date(2027, 5, 6)
        }
    );

    let weekly = recurrence(json!({"weekly": ["mon", "tue"]}));
    let rule = Rule {
        recurrence: &weekly,
        months: None,
        ..rule
    };
    assert_eq!(
        rule.resolve(date(2027, 5, 3)).unwrap(),
        run(date(2027, 5, 6))
    );
    assert_eq!(
        rule.resolve(date(2027, 5, 4)).unwrap(),
        Some(Resolution::Skipped(SkipReason::Coalesced {
            into: date(2027, 5, 3),
            on: date(2027, 5, 6),
            closed: holiday("みどりの日")
        }))
    );
    assert_eq!(
        rule.decide_day(date(2027, 5, 6)).unwrap(),
        DayDecision::Run {
            nominal: date(2027, 5, 3)
        }
    );
    assert_eq!(
        rule.decide_day(date(2027, 5, 3)).unwrap(),
        DayDecision::Skip(SkipReason::Shifted {
            to: date(2027, 5, 6),
            closed: holiday("憲法記念日")
        })
    );
}

/// For every day of the data's last two years and several rules: an occurrence resolved onto a
/// day is the one that day runs, and a day's run is where its nominal occurrence resolves.
#[test]
fn resolve_and_decide_day_agree_on_every_day() {
    let calendars = [CalendarRule::default(), company()];
    let recurrences = [
        recurrence(json!("daily")),
        recurrence(json!({"weekly": ["mon", "fri"]})),
        recurrence(json!({"weekly": ["sat", "sun", "mon"]})),
        recurrence(json!({"monthly": 1})),
        recurrence(json!({"monthly": 25})),
        recurrence(json!({"monthly": 31})),
        recurrence(json!({"business_day": 3})),
        recurrence(json!({"business_day": "last"})),
    ];
    let policies = [
        OnClosed::Skip,
        OnClosed::NextBusinessDay,
        OnClosed::PreviousBusinessDay,
    ];
    let (first, last) = (date(2026, 1, 1), date(2027, 12, 20));
    let mut runs = 0;
    for calendar in &calendars {
        for recurrence in &recurrences {
            for (on_closed, months) in policies
                .into_iter()
                .flat_map(|p| [(p, None), (p, Some(&[1, 5, 12][..]))])
            {
                let rule = Rule {
                    recurrence,
                    months,
                    on_closed,
                    calendar,
                };
                let mut day = first;
                while day <= last {
                    if let Some(Resolution::Run { on }) = rule.resolve(day).unwrap() {
                        assert_eq!(
                            rule.decide_day(on).unwrap(),
                            DayDecision::Run { nominal: day },
                            "{rule:?} {day}"
                        );
                        runs += 1;
                    }
                    if let DayDecision::Run { nominal } = rule.decide_day(day).unwrap() {
                        assert_eq!(rule.resolve(nominal).unwrap(), run(day), "{rule:?} {day}");
                    }
                    day = day.tomorrow().unwrap();
                }
            }
        }
    }
    assert!(runs > 5000, "{runs}");
}

#[test]
fn a_decision_that_needs_days_past_the_data_is_stale() {
    // Every weekday open, so the scenario holds in whichever year the data ends.
    let calendar: CalendarRule = serde_json::from_value(json!({
        "closed_weekdays": [],
        "closed": [{"dates": "12-29..01-03", "label": "年末年始"}]
    }))
    .unwrap();
    let year = holidays::VALID_THROUGH_YEAR;
    let last_open = date(year, 12, 28);
    let new_year = date(year + 1, 1, 1);
    let first = recurrence(json!({"monthly": 1}));
    let rule = Rule {
        recurrence: &first,
        months: None,
        on_closed: OnClosed::PreviousBusinessDay,
        calendar: &calendar,
    };
    // The next 1 January would run on the last business day of the data's last year, but the
    // next year is past the data: whether it is closed is not known.
    let stale = |day| CalendarError::Stale {
        date: day,
        valid_through: holidays::valid_through(),
    };
    assert_eq!(rule.decide_day(last_open), Err(stale(new_year)));
    assert_eq!(rule.resolve(new_year), Err(stale(new_year)));
    // A nominal day inside the data whose shift stays inside it is answered.
    let monthly = recurrence(json!({"monthly": 31}));
    let rule = Rule {
        recurrence: &monthly,
        months: None,
        ..rule
    };
    assert_eq!(
        rule.decide_day(last_open).unwrap(),
        DayDecision::Run {
            nominal: date(year, 12, 31)
        }
    );
}

#[test]
fn business_day_accepts_1_to_23_or_last_only() {
    for (value, ok) in [
        (json!(1), true),
        (json!(23), true),
        (json!("last"), true),
        (json!(0), false),
        (json!(24), false),
        (json!(-1), false),
        (json!("first"), false),
        (json!(2.5), false),
    ] {
        let parsed = serde_json::from_value::<Recurrence>(json!({"business_day": value}));
        assert_eq!(parsed.is_ok(), ok, "{value} {parsed:?}");
    }
}
