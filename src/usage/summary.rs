//! A month's usage from the run ledger's runs of that month (index `by_month`): BOT-seconds and
//! runs per BOT, the totals, the share of the allowance and a month-end forecast. Pure: the
//! caller (`cloudbot usage`) queries the index and hands the figures in. The forecast's method:
//! docs/usage.md, "Forecast".

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::Offset;
use serde::Serialize;

use crate::ledger::MONTH_OFFSET_HOURS;

/// Below this much of the month gone, no forecast: a few runs say nothing about a month.
const MIN_FORECAST_ELAPSED_MS: u64 = 86_400_000;

/// What usage needs of one run of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFigures {
    /// `<public_id>/<bot_id>` (`?` when the record has none yet).
    pub bot: String,
    /// The recorded end's BOT-seconds; `None` while no end is recorded.
    pub elapsed_s: Option<u64>,
}

/// One BOT's month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotUsage {
    /// `<public_id>/<bot_id>`.
    pub bot: String,
    /// BOT-seconds of its ended runs.
    pub seconds: u64,
    /// Its runs (ended or not).
    pub runs: u64,
    /// Its runs with no recorded end (their seconds are not counted yet).
    pub open: u64,
}

/// The month-end forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// BOT-seconds expected by the month's end.
    pub seconds: u64,
    /// That as a share of the allowance (percent), when one is known.
    pub share_percent: Option<f64>,
    /// How it was made.
    pub method: &'static str,
}

/// A month's usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthUsage {
    /// `YYYY-MM` (JST).
    pub month: String,
    /// Per BOT, most seconds first.
    pub bots: Vec<BotUsage>,
    /// BOT-seconds of every ended run.
    pub seconds: u64,
    /// Every run.
    pub runs: u64,
    /// Runs with no recorded end.
    pub open: u64,
    /// The monthly allowance (seconds), when known.
    pub allowance_s: Option<u64>,
    /// `seconds` as a share of the allowance (percent).
    pub share_percent: Option<f64>,
    /// The month-end forecast: the current month only, once a day of it has passed.
    pub forecast: Option<Forecast>,
}

/// How the forecast is made (said in the output).
pub const FORECAST_METHOD: &str =
    "linear: the month's seconds so far x (the month's length / the time gone)";

impl MonthUsage {
    /// Sums `runs` of `month` at `now_ms`, against `allowance_s` when known.
    pub fn of(
        month: &str,
        runs: &[RunFigures],
        allowance_s: Option<u64>,
        now_ms: u64,
    ) -> MonthUsage {
        let mut bots: Vec<BotUsage> = Vec::new();
        for run in runs {
            let i = match bots.iter().position(|b| b.bot == run.bot) {
                Some(i) => i,
                None => {
                    bots.push(BotUsage {
                        bot: run.bot.clone(),
                        seconds: 0,
                        runs: 0,
                        open: 0,
                    });
                    bots.len() - 1
                }
            };
            let bot = &mut bots[i];
            bot.runs += 1;
            match run.elapsed_s {
                Some(s) => bot.seconds = bot.seconds.saturating_add(s),
                None => bot.open += 1,
            }
        }
        bots.sort_by(|a, b| b.seconds.cmp(&a.seconds).then_with(|| a.bot.cmp(&b.bot)));
        let seconds = bots.iter().map(|b| b.seconds).fold(0, u64::saturating_add);
        let share = |s: u64| allowance_s.map(|a| s as f64 * 100.0 / a.max(1) as f64);
        let forecast = month_bounds_ms(month).and_then(|(start, end)| {
            let gone = now_ms.checked_sub(start)?;
            if now_ms >= end || gone < MIN_FORECAST_ELAPSED_MS {
                return None;
            }
            let expected = (u128::from(seconds) * u128::from(end - start) / u128::from(gone))
                .min(u128::from(u64::MAX));
            let expected = u64::try_from(expected).unwrap_or(u64::MAX);
            Some(Forecast {
                seconds: expected,
                share_percent: share(expected),
                method: FORECAST_METHOD,
            })
        });
        MonthUsage {
            month: month.to_owned(),
            runs: bots.iter().map(|b| b.runs).sum(),
            open: bots.iter().map(|b| b.open).sum(),
            seconds,
            share_percent: share(seconds),
            allowance_s,
            forecast,
            bots,
        }
    }
}

/// The month `YYYY-MM` (JST) as epoch ms: its first instant and the next month's.
pub fn month_bounds_ms(month: &str) -> Option<(u64, u64)> {
    let (y, m) = month.split_once('-')?;
    let (y, m) = (y.parse::<i16>().ok()?, m.parse::<i8>().ok()?);
    let first = Date::new(y, m, 1).ok()?;
    let next = first.checked_add(jiff::Span::new().months(1)).ok()?;
    let offset = Offset::constant(MONTH_OFFSET_HOURS);
    let ms = |d: Date| -> Option<u64> {
        let t: Timestamp = offset
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok()?;
        u64::try_from(t.as_millisecond()).ok()
    };
    Some((ms(first)?, ms(next)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bot: &str, elapsed_s: Option<u64>) -> RunFigures {
        RunFigures {
            bot: bot.to_owned(),
            elapsed_s,
        }
    }

    #[test]
    fn a_month_in_japan_starts_at_15_utc_the_day_before() {
        let (start, end) = month_bounds_ms("2026-12").unwrap();
        assert_eq!(start, 1_796_050_800_000); // 2026-11-30T15:00Z
        assert_eq!(end - start, 31 * 86_400_000);
        assert_eq!(month_bounds_ms("2026-13"), None);
        assert_eq!(month_bounds_ms("x"), None);
    }

    #[test]
    fn runs_are_summed_per_bot_and_open_runs_counted_apart() {
        let runs = [
            run("demo/a", Some(10)),
            run("demo/b", Some(100)),
            run("demo/a", Some(5)),
            run("demo/a", None),
        ];
        let (start, _) = month_bounds_ms("2026-12").unwrap();
        let u = MonthUsage::of("2026-12", &runs, Some(1000), start + 3_600_000);
        assert_eq!((u.seconds, u.runs, u.open), (115, 4, 1));
        assert_eq!(u.bots[0].bot, "demo/b");
        assert_eq!(
            (u.bots[1].seconds, u.bots[1].runs, u.bots[1].open),
            (15, 3, 1)
        );
        assert!((u.share_percent.unwrap() - 11.5).abs() < 1e-9);
        assert_eq!(u.forecast, None, "less than a day gone");
    }

    #[test]
    fn the_forecast_extrapolates_the_current_month_linearly() {
        let (start, end) = month_bounds_ms("2026-12").unwrap();
        let runs = [run("demo/a", Some(3_100))];
        // 10 of 31 days gone.
        let u = MonthUsage::of("2026-12", &runs, Some(10_000), start + 10 * 86_400_000);
        let f = u.forecast.unwrap();
        assert_eq!(f.seconds, 9_610);
        assert!((f.share_percent.unwrap() - 96.1).abs() < 1e-9);
        // A month that is over has its figures, no forecast; without an allowance no share.
        let past = MonthUsage::of("2026-12", &runs, None, end);
        assert_eq!((past.forecast, past.share_percent), (None, None));
    }
}
