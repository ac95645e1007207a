//! A rule-based calculator of the holiday law (国民の祝日に関する法律 and its amendments), used
//! only to check the shipped list independently of it.
//!
//! It knows the fixed dates, the Happy Monday moves (2000, 2003), the holidays added or renamed
//! over the years, the equinox days by the usual approximation formula, 振替休日 (from
//! 1973-04-12; "the next day" until 2006, "the next day that is not a 祝日" from 2007) and
//! 国民の休日 (from 1985-12-27; a non-Sunday, non-振替 day until 2006, any day from 2007). The
//! one-off days set by special acts (imperial ceremonies, the 2019 enthronement, the 2020–2021
//! Olympic moves) are a separate table, so a test can show that they are exactly where the
//! general rules and the official list differ.

use std::collections::BTreeMap;

use jiff::civil::{Date, Weekday};

/// Whether the special acts (one-off holidays, the Olympic moves) are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Acts {
    /// The general rules only.
    GeneralOnly,
    /// The general rules and the special acts.
    WithSpecial,
}

/// One-off 祝日 set by special acts, with the names the official list gives them. 2019-04-30 and
/// 2019-05-02 are not here: they follow from the 国民の休日 rule once 05-01 is a 祝日.
pub(super) const SPECIAL_DAYS: [(Date, &str); 6] = [
    (Date::constant(1959, 4, 10), "結婚の儀"),
    (Date::constant(1989, 2, 24), "大喪の礼"),
    (Date::constant(1990, 11, 12), "即位礼正殿の儀"),
    (Date::constant(1993, 6, 9), "結婚の儀"),
    (Date::constant(2019, 5, 1), "休日（祝日扱い）"),
    (Date::constant(2019, 10, 22), "休日（祝日扱い）"),
];

/// The Olympic special measures act: 海の日, スポーツの日 and 山の日 moved in 2020 and 2021.
fn olympic_date(year: i16, name: &str) -> Option<Date> {
    let month_day = match (year, name) {
        (2020, "海の日") => (7, 23),
        (2020, "スポーツの日") => (7, 24),
        (2020, "山の日") => (8, 10),
        (2021, "海の日") => (7, 22),
        (2021, "スポーツの日") => (7, 23),
        (2021, "山の日") => (8, 8),
        _ => return None,
    };
    Some(Date::constant(year, month_day.0, month_day.1))
}

/// The holidays and days off of `year` under the law, by date, named as the official list names
/// them (振替休日 and 国民の休日 are `休日`).
pub(super) fn holidays(year: i16, acts: Acts) -> BTreeMap<Date, &'static str> {
    let mut shukujitsu: BTreeMap<Date, &'static str> = BTreeMap::new();
    for (date, name) in national_holidays(year) {
        let date = match acts {
            Acts::WithSpecial => olympic_date(year, name).unwrap_or(date),
            Acts::GeneralOnly => date,
        };
        shukujitsu.insert(date, name);
    }
    if acts == Acts::WithSpecial {
        for (date, name) in SPECIAL_DAYS {
            if date.year() == year {
                shukujitsu.insert(date, name);
            }
        }
    }

    let mut days_off = shukujitsu.clone();
    let mut substitutes = Vec::new();
    for &date in shukujitsu.keys() {
        if date.weekday() != Weekday::Sunday || date < Date::constant(1973, 4, 12) {
            continue;
        }
        let mut next = next_day(date);
        if year >= 2007 {
            while shukujitsu.contains_key(&next) {
                next = next_day(next);
            }
        } else if shukujitsu.contains_key(&next) {
            continue;
        }
        substitutes.push(next);
    }
    for &date in &substitutes {
        days_off.insert(date, "休日");
    }

    // 国民の休日: a day between two 祝日 (the neighbours are checked against the 祝日 only).
    let mut sandwiched = Vec::new();
    let mut date = Date::constant(year, 1, 2);
    while date < Date::constant(year, 12, 31) {
        let between = shukujitsu.contains_key(&prev_day(date))
            && shukujitsu.contains_key(&next_day(date))
            && !shukujitsu.contains_key(&date);
        let applies = if year >= 2007 {
            true
        } else {
            date >= Date::constant(1985, 12, 27)
                && date.weekday() != Weekday::Sunday
                && !substitutes.contains(&date)
        };
        if between && applies {
            sandwiched.push(date);
        }
        date = next_day(date);
    }
    for date in sandwiched {
        days_off.insert(date, "休日");
    }
    days_off
}

/// The 国民の祝日 of `year` by the general rules (names as in the official list).
fn national_holidays(year: i16) -> Vec<(Date, &'static str)> {
    let fixed = |month: i8, day: i8| Date::constant(year, month, day);
    let monday = |month: i8, nth: i8| nth_monday(year, month, nth);
    let mut days = vec![(fixed(1, 1), "元日")];
    days.push(if year >= 2000 {
        (monday(1, 2), "成人の日")
    } else {
        (fixed(1, 15), "成人の日")
    });
    if year >= 1967 {
        days.push((fixed(2, 11), "建国記念の日"));
    }
    days.push((
        Date::constant(year, 3, vernal_equinox_day(year)),
        "春分の日",
    ));
    match year {
        ..=1988 => days.push((fixed(4, 29), "天皇誕生日")),
        1989..=2018 => days.push((fixed(12, 23), "天皇誕生日")),
        2019 => {}
        2020.. => days.push((fixed(2, 23), "天皇誕生日")),
    }
    match year {
        1989..=2006 => days.push((fixed(4, 29), "みどりの日")),
        2007.. => {
            days.push((fixed(4, 29), "昭和の日"));
            days.push((fixed(5, 4), "みどりの日"));
        }
        _ => {}
    }
    days.push((fixed(5, 3), "憲法記念日"));
    days.push((fixed(5, 5), "こどもの日"));
    match year {
        1996..=2002 => days.push((fixed(7, 20), "海の日")),
        2003.. => days.push((monday(7, 3), "海の日")),
        _ => {}
    }
    if year >= 2016 {
        days.push((fixed(8, 11), "山の日"));
    }
    match year {
        1966..=2002 => days.push((fixed(9, 15), "敬老の日")),
        2003.. => days.push((monday(9, 3), "敬老の日")),
        _ => {}
    }
    days.push((
        Date::constant(year, 9, autumnal_equinox_day(year)),
        "秋分の日",
    ));
    match year {
        1966..=1999 => days.push((fixed(10, 10), "体育の日")),
        2000..=2018 => days.push((monday(10, 2), "体育の日")),
        // The renaming law passed in 2018 took effect in 2020; the official list labels 2019's.
        2019 => days.push((monday(10, 2), "体育の日（スポーツの日）")),
        2020.. => days.push((monday(10, 2), "スポーツの日")),
        _ => {}
    }
    days.push((fixed(11, 3), "文化の日"));
    days.push((fixed(11, 23), "勤労感謝の日"));
    days
}

/// 春分日 by the approximation formula (valid 1900–2099; the almanac fixes the real one).
fn vernal_equinox_day(year: i16) -> i8 {
    equinox_day(year, 20.8357, 20.8431)
}

/// 秋分日 by the approximation formula (valid 1900–2099).
fn autumnal_equinox_day(year: i16) -> i8 {
    equinox_day(year, 23.2588, 23.2488)
}

fn equinox_day(year: i16, before_1980: f64, from_1980: f64) -> i8 {
    let y = f64::from(year);
    let (base, leap_base) = if year < 1980 {
        (before_1980, 1983.0)
    } else {
        (from_1980, 1980.0)
    };
    // The formula's int() truncates toward zero (it matters before 1983, where y - 1983 < 0).
    let day = (base + 0.242194 * (y - 1980.0) - ((y - leap_base) / 4.0).trunc()).trunc();
    day as i8
}

fn nth_monday(year: i16, month: i8, nth: i8) -> Date {
    Date::constant(year, month, 1)
        .nth_weekday_of_month(nth, Weekday::Monday)
        .unwrap()
}

fn next_day(date: Date) -> Date {
    date.tomorrow().unwrap()
}

fn prev_day(date: Date) -> Date {
    date.yesterday().unwrap()
}
