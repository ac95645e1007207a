//! `CLOUDBOT_EVENT_BUS_NAME`: the EventBridge bus the job-finished events go to (docs/events.md);
//! unset: no events are put (said at cold start).

use super::env::{ConfigError, Env};

/// The variable.
pub const EVENT_BUS_VAR: &str = "CLOUDBOT_EVENT_BUS_NAME";

/// The bus's name or ARN (`None` when unset): EventBridge's name characters (letters, digits,
/// `. - _ /`), and `:` for an ARN, at most 1600 characters (an ARN's maximum).
pub(super) fn event_bus(
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Option<String>, ConfigError> {
    let Some(raw) = env.get(EVENT_BUS_VAR) else {
        return Ok(None);
    };
    let valid = raw.len() <= 1600
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/:".contains(&b));
    if !valid {
        return Err(ConfigError::new(
            EVENT_BUS_VAR,
            "must be an EventBridge bus name or ARN (letters, digits and . - _ / :)",
        ));
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: Option<&str>) -> Result<Option<String>, ConfigError> {
        let env =
            Env::new(|name: &str| (name == EVENT_BUS_VAR).then_some(value)?.map(str::to_owned));
        event_bus(&env)
    }

    #[test]
    fn the_bus_is_optional_and_named_or_refused_with_the_variable() {
        assert_eq!(read(None).unwrap(), None);
        assert_eq!(
            read(Some("stack-jobs")).unwrap().as_deref(),
            Some("stack-jobs")
        );
        let arn = "arn:aws:events:ap-northeast-1:123456789012:event-bus/stack-jobs";
        assert_eq!(read(Some(arn)).unwrap().as_deref(), Some(arn));
        let err = read(Some("a bus")).unwrap_err();
        assert!(err.to_string().contains(EVENT_BUS_VAR), "{err}");
    }
}
