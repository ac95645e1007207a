//! The shipped list checked against the law, year by year, and the special acts that make the
//! difference.

use std::collections::BTreeMap;

use jiff::civil::{Date, date};

use super::law::{self, Acts, SPECIAL_DAYS};
use super::*;

fn shipped_year(year: i16) -> BTreeMap<Date, &'static str> {
    all()
        .unwrap()
        .iter()
        .filter(|holiday| holiday.date.year() == year)
        .map(|holiday| (holiday.date, holiday.name))
        .collect()
}

#[test]
fn the_shipped_list_parses_and_covers_every_year_through_its_stated_validity() {
    let list = all().unwrap();
    assert_eq!(list.first().unwrap().date, date(1955, 1, 1));
    assert_eq!(list.last().unwrap().date.year(), VALID_THROUGH_YEAR);
    for year in FIRST_YEAR..=VALID_THROUGH_YEAR {
        // Every year has at least the nine holidays of the 1948 law.
        assert!(
            shipped_year(year).len() >= 9,
            "{year} is incomplete in the data"
        );
    }
}

#[test]
fn every_year_of_the_shipped_list_agrees_with_the_law() {
    for year in FIRST_YEAR..=VALID_THROUGH_YEAR {
        assert_eq!(
            shipped_year(year),
            law::holidays(year, Acts::WithSpecial),
            "year {year}"
        );
    }
}

#[test]
fn special_acts_are_exactly_where_the_general_rules_and_the_list_differ() {
    // (date, true = a day off in the list that the general rules do not give,
    //  false = a day the general rules give that the special acts moved away)
    let expected = [
        (date(1959, 4, 10), true),
        (date(1989, 2, 24), true),
        (date(1990, 11, 12), true),
        (date(1993, 6, 9), true),
        // The enthronement: 05-01 and 10-22 by the act, 04-30 and 05-02 as 国民の休日.
        (date(2019, 4, 30), true),
        (date(2019, 5, 1), true),
        (date(2019, 5, 2), true),
        (date(2019, 10, 22), true),
        // The Olympics, 2020: 海の日, スポーツの日 and 山の日 moved.
        (date(2020, 7, 20), false),
        (date(2020, 7, 23), true),
        (date(2020, 7, 24), true),
        (date(2020, 8, 10), true),
        (date(2020, 8, 11), false),
        (date(2020, 10, 12), false),
        // 2021, with 08-08 on a Sunday and its 振替休日 on 08-09.
        (date(2021, 7, 19), false),
        (date(2021, 7, 22), true),
        (date(2021, 7, 23), true),
        (date(2021, 8, 8), true),
        (date(2021, 8, 9), true),
        (date(2021, 8, 11), false),
        (date(2021, 10, 11), false),
    ];
    let mut differences = Vec::new();
    for year in FIRST_YEAR..=VALID_THROUGH_YEAR {
        let shipped = shipped_year(year);
        let general = law::holidays(year, Acts::GeneralOnly);
        for day in shipped.keys().filter(|day| !general.contains_key(day)) {
            differences.push((*day, true));
        }
        for day in general.keys().filter(|day| !shipped.contains_key(day)) {
            differences.push((*day, false));
        }
    }
    differences.sort();
    assert_eq!(differences, expected);
    assert_eq!(SPECIAL_DAYS.len(), 6);
}

#[test]
fn the_special_days_have_their_official_names() {
    let cases = [
        (date(2019, 4, 30), "休日"),
        (date(2019, 5, 1), "休日（祝日扱い）"),
        (date(2019, 5, 2), "休日"),
        (date(2019, 10, 22), "休日（祝日扱い）"),
        (date(2020, 7, 23), "海の日"),
        (date(2020, 7, 24), "スポーツの日"),
        (date(2020, 8, 10), "山の日"),
        (date(2021, 7, 22), "海の日"),
        (date(2021, 7, 23), "スポーツの日"),
        (date(2021, 8, 8), "山の日"),
        (date(2021, 8, 9), "休日"),
    ];
    for (day, name) in cases {
        assert_eq!(
            holiday_on(day).unwrap().map(|h| h.name),
            Some(name),
            "{day}"
        );
    }
    for day in [
        date(2020, 7, 20),
        date(2020, 8, 11),
        date(2020, 10, 12),
        date(2021, 10, 11),
    ] {
        assert_eq!(holiday_on(day).unwrap(), None, "{day}");
    }
}

#[test]
fn a_date_past_the_data_is_stale_and_one_before_it_is_refused() {
    let last = date(VALID_THROUGH_YEAR, 12, 31);
    assert_eq!(valid_through(), last);
    assert_eq!(holiday_on(last).unwrap(), None);
    let next = last.tomorrow().unwrap();
    assert_eq!(
        holiday_on(next),
        Err(CalendarError::Stale {
            date: next,
            valid_through: last
        })
    );
    let before = date(1954, 12, 31);
    assert_eq!(
        holiday_on(before),
        Err(CalendarError::BeforeData {
            date: before,
            first: date(1955, 1, 1)
        })
    );
}

#[test]
fn malformed_data_is_an_error_naming_the_line() {
    assert_eq!(
        parse("date,name\n"),
        Err(CalendarError::MalformedData { line: 1 })
    );
    let header = format!("{HEADER}\n");
    for (body, line) in [
        ("2020/1/1,元日\n2020/13/1,x\n", 3),
        ("2020/1/1\n", 2),
        ("2020/1/2,a\n2020/1/1,b\n", 3),
        ("2020/1/1,\n", 2),
        ("2020/1/1/1,x\n", 2),
        ("2020/x/1,x\n", 2),
        ("2020/x/1/1,x\n", 2),
    ] {
        let text: &'static str = format!("{header}{body}").leak();
        assert_eq!(
            parse(text),
            Err(CalendarError::MalformedData { line }),
            "{body:?}"
        );
    }
}
