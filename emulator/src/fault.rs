//! Fault injection: the fault kinds, admin rules (method + path prefix + count) and the
//! per-request `x-emulator-fault` header. Which faults create a job is documented in
//! README.md and on [`FaultKind`].

use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// What goes wrong with a response.
///
/// For an execute request (`POST /{public_id}/bots/{bot_id}/jobs`): `status` and
/// `reset_before` never create a job; `latency`, `reset_after`, `status_after`,
/// `malformed_json`, `truncated_body` and `oversized_body` process the request normally first,
/// so the job IS created (if the request was valid) and only the answer is delayed, replaced or
/// damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer normally after `latency_ms` (default 1000) extra milliseconds.
    Latency,
    /// Answer `status` (default 503; 429 gets `Retry-After: 1` unless `retry_after` is set)
    /// without processing the request.
    Status,
    /// Process the request, then answer `status` (default 503) instead of its answer, as a
    /// gateway in front of the service can after the job was created.
    StatusAfter,
    /// Close the connection (TCP reset) without an answer, before processing the request.
    ResetBefore,
    /// Process the request, then close the connection (TCP reset) without an answer.
    ResetAfter,
    /// Process the request, then answer its status with a body that is not valid JSON.
    MalformedJson,
    /// Process the request, then announce the full `Content-Length` but send only half the
    /// body and close the connection.
    TruncatedBody,
    /// Process the request, then answer a valid JSON body padded to more than 2 MiB.
    OversizedBody,
}

impl FaultKind {
    /// The wire name (`reset_before`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Status => "status",
            FaultKind::StatusAfter => "status_after",
            FaultKind::ResetBefore => "reset_before",
            FaultKind::ResetAfter => "reset_after",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::TruncatedBody => "truncated_body",
            FaultKind::OversizedBody => "oversized_body",
        }
    }

    fn parse(s: &str) -> Option<FaultKind> {
        Some(match s {
            "latency" => FaultKind::Latency,
            "status" => FaultKind::Status,
            "status_after" => FaultKind::StatusAfter,
            "reset_before" => FaultKind::ResetBefore,
            "reset_after" => FaultKind::ResetAfter,
            "malformed_json" => FaultKind::MalformedJson,
            "truncated_body" => FaultKind::TruncatedBody,
            "oversized_body" => FaultKind::OversizedBody,
            _ => return None,
        })
    }
}

/// An admin fault rule: applies `fault` to the next `count` API requests (all of them when
/// `count` is `None`) whose method and path match. The first matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The fault.
    pub fault: FaultKind,
    /// Status for `status` faults (400..=599, default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` seconds for `status` faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Delay for `latency` faults (default 1000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Only requests with this method (case-insensitive); any method when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Only requests whose path starts with this; any path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// How many requests to affect (`None` = until cleared). Counts down as it applies.
    #[serde(default)]
    pub count: Option<u32>,
}

impl FaultRule {
    /// A rule applying `fault` to every API request until cleared.
    pub fn new(fault: FaultKind) -> FaultRule {
        FaultRule {
            fault,
            status: None,
            retry_after: None,
            latency_ms: None,
            method: None,
            path_prefix: None,
            count: None,
        }
    }

    /// Sets the status of a `status` fault.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets `Retry-After` (seconds) of a `status` fault.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Sets the delay of a `latency` fault.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// Restricts the rule to one HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }

    /// Restricts the rule to paths starting with `prefix`.
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    /// Applies the rule to the next `n` matching requests only.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Checks the rule's parameters.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(s) = self.status.filter(|s| !(400..=599).contains(s)) {
            return Err(format!("status {s} is not an error status (400..=599)"));
        }
        if self.count == Some(0) {
            return Err("count must be at least 1 (or null for forever)".into());
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }

    fn resolve(&self) -> Fault {
        let status = self.status.unwrap_or(503);
        Fault {
            kind: self.fault,
            status,
            retry_after: self
                .retry_after
                .or((self.fault == FaultKind::Status && status == 429).then_some(1)),
            latency: Duration::from_millis(self.latency_ms.unwrap_or(1000)),
        }
    }
}

/// A fault chosen for one request, with its parameters resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub latency: Duration,
}

/// The active admin rules.
#[derive(Debug, Default)]
pub(crate) struct FaultRules {
    rules: Vec<FaultRule>,
}

impl FaultRules {
    pub fn add(&mut self, rules: Vec<FaultRule>) {
        self.rules.extend(rules);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    /// Picks the first matching rule and counts it down.
    pub fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.rules.iter().position(|r| r.matches(method, path))?;
        let fault = self.rules[i].resolve();
        if let Some(n) = &mut self.rules[i].count {
            *n -= 1;
            if *n == 0 {
                self.rules.remove(i);
            }
        }
        Some(fault)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Header naming a fault for this request only.
pub const FAULT_HEADER: &str = "x-emulator-fault";
/// Status of a `status` fault chosen by header.
pub const STATUS_HEADER: &str = "x-emulator-status";
/// `Retry-After` seconds of a `status` fault chosen by header.
pub const RETRY_AFTER_HEADER: &str = "x-emulator-retry-after";
/// Delay of a `latency` fault chosen by header.
pub const LATENCY_HEADER: &str = "x-emulator-latency-ms";

/// Reads the per-request fault headers. `Err` describes an unusable header (answered 400, so a
/// typo in a test is noticed instead of silently testing the happy path).
pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Option<Fault>, String> {
    let Some(name) = headers.get(FAULT_HEADER) else {
        return Ok(None);
    };
    let name = name.to_str().unwrap_or("").trim();
    let kind =
        FaultKind::parse(name).ok_or_else(|| format!("unknown {FAULT_HEADER} value {name:?}"))?;
    let number = |h: &str| -> Result<Option<u64>, String> {
        headers
            .get(h)
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| format!("{h} must be a non-negative integer"))
            })
            .transpose()
    };
    let status = number(STATUS_HEADER)?
        .map(|s| u16::try_from(s).map_err(|_| format!("{STATUS_HEADER} out of range")))
        .transpose()?;
    let rule = FaultRule {
        fault: kind,
        status,
        retry_after: number(RETRY_AFTER_HEADER)?,
        latency_ms: number(LATENCY_HEADER)?,
        method: None,
        path_prefix: None,
        count: None,
    };
    rule.validate()?;
    Ok(Some(rule.resolve()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_expire_and_first_match_wins() {
        let mut rules = FaultRules::default();
        rules.add(vec![
            FaultRule::new(FaultKind::Status)
                .status(429)
                .method("post")
                .path_prefix("/demo/bots")
                .times(2),
            FaultRule::new(FaultKind::Latency).latency_ms(5),
        ]);
        let f = rules.take("POST", "/demo/bots/echo_bot/jobs").unwrap();
        assert_eq!(
            (f.kind, f.status, f.retry_after),
            (FaultKind::Status, 429, Some(1))
        );
        assert_eq!(
            rules.take("GET", "/demo/bots").unwrap().kind,
            FaultKind::Latency
        );
        assert_eq!(
            rules.take("POST", "/demo/bots/x/jobs").unwrap().kind,
            FaultKind::Status
        );
        assert_eq!(
            rules.take("POST", "/demo/bots/x/jobs").unwrap().kind,
            FaultKind::Latency
        );
    }

    #[test]
    fn header_faults_parse_and_reject_typos() {
        let mut h = HeaderMap::new();
        assert!(from_headers(&h).unwrap().is_none());
        h.insert(FAULT_HEADER, "status".parse().unwrap());
        h.insert(STATUS_HEADER, "500".parse().unwrap());
        let f = from_headers(&h).unwrap().unwrap();
        assert_eq!(
            (f.kind, f.status, f.retry_after),
            (FaultKind::Status, 500, None)
        );
        h.insert(FAULT_HEADER, "rest_before".parse().unwrap());
        assert!(from_headers(&h).is_err());
        h.insert(FAULT_HEADER, "status".parse().unwrap());
        h.insert(STATUS_HEADER, "200".parse().unwrap());
        assert!(from_headers(&h).is_err());
    }
}
