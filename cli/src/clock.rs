//! Times in the operator's time zone. Cloud BOT sends `start_time` in UTC
//! (`2026-01-02T03:04:05Z`); text output shows it in `TZ` (an IANA name such as `Asia/Tokyo`),
//! else the machine's zone (`/etc/localtime`). `--json` keeps the value as Cloud BOT sent it.
//!
//! jiff (by the author of ripgrep, maintained) rather than chrono + chrono-tz: it reads `TZ` and
//! the system zone itself, uses the system's tz database (no copy compiled in on Linux), and
//! formats zone abbreviations, all in one crate.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The operator's zone: `TZ`, else the system's, else UTC (jiff's fallback, with a warning).
pub fn operator_zone() -> TimeZone {
    TimeZone::system()
}

/// `raw` (RFC 3339) as `2026-01-02 12:04:05 JST` in `zone`; unparsable values unchanged.
pub fn local_time(raw: &str, zone: &TimeZone) -> String {
    match raw.parse::<Timestamp>() {
        Ok(ts) => ts
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_shown_in_the_given_zone() {
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            local_time("2026-01-02T03:04:05Z", &tokyo),
            "2026-01-02 12:04:05 JST"
        );
        assert_eq!(
            local_time("2026-01-02T03:04:05Z", &TimeZone::UTC),
            "2026-01-02 03:04:05 UTC"
        );
        assert_eq!(local_time("yesterday", &tokyo), "yesterday");
    }
}
