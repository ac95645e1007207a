//! The typed parsers every configuration reader goes through, and [`ConfigError`]. An empty
//! variable counts as unset: CloudFormation and `--env-vars` make empty values easy.

use std::time::Duration;

/// A configuration variable is missing or invalid; `Display` names the variable, never its value
/// when the value could be sensitive.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    pub(super) fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// The variables, read through a name → value lookup.
pub(super) struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The trimmed value of `var`; `None` when unset or empty.
    pub(super) fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `true`/`1` or `false`/`0` (unset: false).
    pub(super) fn flag(&self, var: &'static str) -> Result<bool, ConfigError> {
        match self.get(var).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(_) => Err(ConfigError::new(var, "must be `true` or `false`")),
        }
    }

    /// Milliseconds between 1 and `max_ms`.
    pub(super) fn ms(
        &self,
        var: &'static str,
        default: Duration,
        max_ms: u64,
    ) -> Result<Duration, ConfigError> {
        self.ms_between(var, default, 1, max_ms)
    }

    /// Like [`Self::ms`], with `0` allowed (it turns the setting off).
    pub(super) fn ms_or_off(
        &self,
        var: &'static str,
        default: Duration,
        max_ms: u64,
    ) -> Result<Duration, ConfigError> {
        self.ms_between(var, default, 0, max_ms)
    }

    fn ms_between(
        &self,
        var: &'static str,
        default: Duration,
        min_ms: u64,
        max_ms: u64,
    ) -> Result<Duration, ConfigError> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        self.u64(var, default_ms, min_ms, max_ms)
            .map(Duration::from_millis)
    }

    /// Whole seconds between `min` and `max`.
    pub(super) fn seconds(
        &self,
        var: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.u64(var, default.as_secs(), min, max)
            .map(Duration::from_secs)
    }

    pub(super) fn u32(
        &self,
        var: &'static str,
        default: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        let value = self.u64(var, default.into(), min.into(), max.into())?;
        u32::try_from(value).map_err(|_| ConfigError::new(var, "out of range"))
    }

    pub(super) fn u64(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let value: u64 = raw.parse().map_err(|_| {
            ConfigError::new(
                var,
                format!("must be a whole number between {min} and {max}"),
            )
        })?;
        if !(min..=max).contains(&value) {
            return Err(ConfigError::new(
                var,
                format!("must be between {min} and {max}"),
            ));
        }
        Ok(value)
    }
}
