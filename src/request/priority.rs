//! The execute's `priority` (`high` | `normal`, default `normal`): what the budget stop looks at
//! (docs/usage.md, "Budget"), and what a queue may order by. A small closed type, parsed
//! strictly: any other value or type is refused with the field named.

use serde_json::Value;

use super::{RequestError, str_field};

/// How much a run matters when the month's allowance runs short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Runs even past the budget's stop level (Cloud BOT's own limit still applies).
    High,
    /// Refused past the budget's stop level, before anything is sent (`Budget.Exhausted`).
    #[default]
    Normal,
}

impl Priority {
    /// Every value, in documentation order.
    pub const ALL: [Priority; 2] = [Priority::High, Priority::Normal];

    /// The name as written in requests, logs and the ledger.
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
        }
    }

    /// The request field `priority` (absent: `normal`).
    pub(super) fn of_field(value: Option<&Value>) -> Result<Self, RequestError> {
        let Some(value) = value else {
            return Ok(Priority::Normal);
        };
        let raw = str_field(value, "priority")?;
        Self::ALL
            .into_iter()
            .find(|p| p.name() == raw)
            .ok_or_else(|| RequestError::field("priority", "must be `high` or `normal`"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn priority_defaults_to_normal_and_accepts_only_its_two_names() {
        assert_eq!(Priority::of_field(None), Ok(Priority::Normal));
        assert_eq!(Priority::of_field(Some(&json!("high"))), Ok(Priority::High));
        assert_eq!(
            Priority::of_field(Some(&json!("normal"))),
            Ok(Priority::Normal)
        );
        for bad in [
            json!("HIGH"),
            json!("urgent"),
            json!(""),
            json!(1),
            json!(true),
        ] {
            let err = Priority::of_field(Some(&bad)).unwrap_err();
            assert!(
                matches!(&err, RequestError::Field { field, .. } if field == "priority"),
                "{bad}: {err:?}"
            );
        }
    }
}
