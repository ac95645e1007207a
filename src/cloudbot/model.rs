//! Cloud BOT request and response shapes: language, job status, the Job and Bot objects, the
//! execute request. Decoding is forward compatible: unknown fields are ignored, unknown status
//! values are preserved, and `output` is kept as the raw JSON the server sent.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::endpoint::JobEndpoint;

/// Language of server messages, sent as `content-language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Language {
    /// Japanese (the service default).
    #[default]
    Ja,
    /// English.
    En,
}

impl Language {
    /// `"ja"` or `"en"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Ja => "ja",
            Language::En => "en",
        }
    }
}

/// A language other than `ja`/`en`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("language must be \"ja\" or \"en\"")]
pub struct UnknownLanguage;

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ja" => Ok(Language::Ja),
            "en" => Ok(Language::En),
            _ => Err(UnknownLanguage),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's `status`: 0 succeeded, 1 error, 2 executing. Other values (the vendor may add e.g.
/// queued/suspended states) are kept as `Unknown(n)` instead of failing the whole answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// 0: the BOT finished successfully.
    Succeeded,
    /// 1: the BOT ended in error (also, presumably, a suspended job [I]).
    Error,
    /// 2: still running.
    Executing,
    /// Any other value, preserved.
    Unknown(i64),
}

impl JobStatus {
    /// The wire value.
    pub fn code(self) -> i64 {
        match self {
            JobStatus::Succeeded => 0,
            JobStatus::Error => 1,
            JobStatus::Executing => 2,
            JobStatus::Unknown(n) => n,
        }
    }

    /// `"succeeded"`, `"error"`, `"executing"` or `"unknown"`.
    pub fn label(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Error => "error",
            JobStatus::Executing => "executing",
            JobStatus::Unknown(_) => "unknown",
        }
    }

    /// True once the job will not change any more (succeeded or error).
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Error)
    }
}

impl From<i64> for JobStatus {
    fn from(n: i64) -> Self {
        match n {
            0 => JobStatus::Succeeded,
            1 => JobStatus::Error,
            2 => JobStatus::Executing,
            n => JobStatus::Unknown(n),
        }
    }
}

impl From<JobStatus> for i64 {
    fn from(s: JobStatus) -> Self {
        s.code()
    }
}

impl Serialize for JobStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(JobStatus::from(d.deserialize_any(LenientInt)?))
    }
}

/// Accepts an integer, an integral float, or a string holding an integer (integration wrappers
/// show `"2"`), so a cosmetic change on the server does not break decoding.
struct LenientInt;

impl Visitor<'_> for LenientInt {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
            // Exact: integral and well inside the range where f64 holds integers exactly.
            Ok(v as i64)
        } else {
            Err(E::custom("not an integer"))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom("string does not hold an integer"))
    }
}

fn lenient_opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(LenientInt).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// A job (execution result), as returned by execute, job reference, suspend and callbacks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Response code in the body (mirrors the HTTP status, e.g. 200/201).
    #[serde(default, deserialize_with = "lenient_opt_int")]
    pub code: Option<i64>,
    /// Job id (UUID).
    pub job_id: String,
    /// BOT id (empty when the server omitted it).
    #[serde(default)]
    pub bot_id: String,
    /// BOT name.
    #[serde(default)]
    pub bot_name: Option<String>,
    /// 0 succeeded, 1 error, 2 executing, other values preserved.
    pub status: JobStatus,
    /// Start time, ISO 8601 UTC (kept as the server wrote it).
    #[serde(default)]
    pub start_time: Option<String>,
    /// Elapsed time in seconds.
    #[serde(default, deserialize_with = "lenient_opt_int")]
    pub elapsed_time: Option<i64>,
    /// Human-readable message (language per `content-language`).
    #[serde(default)]
    pub message: Option<String>,
    /// BOT output data, exactly as the server sent it (strings, arrays, group rows, file
    /// objects). Never reinterpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<RawValue>>,
    /// URL to watch the run, when the server sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cast_url: Option<String>,
    /// Set by the client, never read from the server: the answer exceeded the response cap, so
    /// it was read without its `output` (`output` is `None` whatever the job produced). The
    /// output stays readable from Cloud BOT at the job reference endpoint (docs/client.md,
    /// "Oversized outputs").
    #[serde(skip)]
    pub output_omitted: bool,
}

/// A BOT of a contract, as listed by `GET /{public_id}/bots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bot {
    /// BOT id.
    #[serde(alias = "bot_id")]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

/// The body of an execute call. `None` fields are omitted, so the server applies its defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecuteRequest {
    /// BOT input data keyed by data name; omitted keys use the BOT's defaults.
    pub input: Option<serde_json::Map<String, serde_json::Value>>,
    /// Where Cloud BOT POSTs the job when it ends.
    pub callback_endpoint: Option<String>,
    /// Number of callback attempts.
    pub callback_tries: Option<u32>,
    /// How long the server waits for the job before answering, in milliseconds [I] (0 = answer
    /// at once with status executing).
    pub timeout_ms: Option<u64>,
}

/// The wire shape of [`ExecuteRequest`].
#[derive(Serialize)]
pub(crate) struct ExecuteBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_tries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl<'a> From<&'a ExecuteRequest> for ExecuteBody<'a> {
    fn from(r: &'a ExecuteRequest) -> Self {
        Self {
            timeout: r.timeout_ms,
            callback_endpoint: r.callback_endpoint.as_deref(),
            callback_tries: r.callback_tries,
            input: r.input.as_ref(),
        }
    }
}

/// A started (or, with a `timeout`, possibly finished) job.
#[derive(Debug, Clone)]
pub struct Started {
    /// The job as the execute call returned it.
    pub job: Job,
    /// Where to refer to (GET) or suspend (DELETE) the job.
    pub job_reference: JobEndpoint,
    /// HTTP status of the execute answer (201 started, 200 finished within `timeout` [I]).
    pub http_status: u16,
}

/// A contract the credentials can see, as listed by `GET /services/contracts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// The contract's public id (first path segment of its BOT and job URLs).
    pub public_id: String,
    /// Contract name (requested with `properties=name`; `null` when unset).
    #[serde(default)]
    pub name: Option<String>,
    /// Plan (requested with `properties=plan`).
    #[serde(default)]
    pub plan: Option<String>,
}

/// Filters of a job list (`GET /{public_id}/bots/{bot_id}/jobs`, ../shared §3.6); every field is
/// optional and `Default` asks for the server's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// At most this many jobs (`limit`).
    pub limit: Option<u32>,
    /// Only jobs started at or after this time (`datetime_from`, ISO 8601 UTC).
    pub started_since: Option<std::time::SystemTime>,
    /// Only jobs in these states (`statuses`); empty = all.
    pub statuses: Vec<JobStatus>,
}

/// Body of `GET /services/contracts`.
#[derive(Deserialize)]
pub(crate) struct ContractList {
    #[serde(default)]
    pub(crate) contracts: Vec<Contract>,
}

/// Body of `GET /{public_id}/bots/{bot_id}/jobs`. [I] the wrapper key `jobs` is not confirmed by
/// the vendor (../shared §3.6); a body without it is an invalid answer, not an empty list.
#[derive(Deserialize)]
pub(crate) struct JobList {
    pub(crate) jobs: Vec<Job>,
}

/// Body of `GET /{public_id}/bots`.
#[derive(Deserialize)]
pub(crate) struct BotList {
    #[serde(default)]
    pub(crate) bots: Vec<Bot>,
}

/// An error body `{"code":..,"message":..}` (both optional, extra fields ignored).
#[derive(Deserialize, Default)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) message: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_keeps_unknown_values() {
        for (n, s) in [
            (0, JobStatus::Succeeded),
            (1, JobStatus::Error),
            (2, JobStatus::Executing),
            (7, JobStatus::Unknown(7)),
            (-1, JobStatus::Unknown(-1)),
        ] {
            assert_eq!(JobStatus::from(n), s);
            assert_eq!(i64::from(s), n);
        }
        assert_eq!(JobStatus::Unknown(9).label(), "unknown");
    }

    #[test]
    fn job_decodes_forward_compatibly_and_keeps_output_raw() {
        let body = r#"{"code":201,"job_id":"00000000-0000-0000-0000-000000000000","bot_id":"b",
            "bot_name":"B","status":"3","start_time":"2019-12-02T05:30:13Z","elapsed_time":6.0,
            "output":{"Price": "500", "Tags":["a"]},"brand_new_field":{"x":1}}"#;
        let job: Job = serde_json::from_str(body).unwrap();
        assert_eq!(job.status, JobStatus::Unknown(3));
        assert_eq!(job.elapsed_time, Some(6));
        assert_eq!(job.code, Some(201));
        assert_eq!(
            job.output.unwrap().get(),
            r#"{"Price": "500", "Tags":["a"]}"#
        );
    }

    #[test]
    fn job_requires_id_and_status() {
        assert!(serde_json::from_str::<Job>(r#"{"status":0}"#).is_err());
        assert!(serde_json::from_str::<Job>(r#"{"job_id":"x"}"#).is_err());
        assert!(serde_json::from_str::<Job>(r#"{"job_id":"x","status":"zwei"}"#).is_err());
    }

    #[test]
    fn execute_body_omits_none_fields() {
        let empty = serde_json::to_string(&ExecuteBody::from(&ExecuteRequest::default())).unwrap();
        assert_eq!(empty, "{}");
        let mut input = serde_json::Map::new();
        input.insert("k".into(), "v".into());
        let full = ExecuteRequest {
            input: Some(input),
            callback_endpoint: Some("https://cb.example/x".into()),
            callback_tries: Some(3),
            timeout_ms: Some(0),
        };
        let v: serde_json::Value = serde_json::to_value(ExecuteBody::from(&full)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"timeout":0,"callback_endpoint":"https://cb.example/x",
                "callback_tries":3,"input":{"k":"v"}})
        );
    }

    #[test]
    fn language_parses_only_ja_and_en() {
        assert_eq!("ja".parse::<Language>(), Ok(Language::Ja));
        assert_eq!("en".parse::<Language>(), Ok(Language::En));
        assert!("EN".parse::<Language>().is_err());
        assert!("fr".parse::<Language>().is_err());
    }
}
