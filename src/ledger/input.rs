//! The BOT input a run was started with, as the run ledger keeps it so `cloudbot rerun` can
//! start the run again (docs/ledger.md, "The input"): the request's `input` object as compact
//! JSON (`{}` for none: the BOT's defaults), only up to [`MAX_INPUT_BYTES`]; a larger input is
//! not kept and the run says so (`input_omitted`), so a re-run never silently runs with less.

use serde_json::{Map, Value};

/// Largest input kept (bytes of compact JSON): an item stays well under DynamoDB's 400 KB and
/// one write unit per KB; BOT inputs are form values, far smaller.
pub const MAX_INPUT_BYTES: usize = 4096;

/// What the start of a run records of its input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeptInput {
    /// Nothing (a write that is not a start, or an execute the ledger learned elsewhere).
    #[default]
    NotRecorded,
    /// The input as compact JSON.
    Kept(String),
    /// The input was larger than [`MAX_INPUT_BYTES`]: not kept.
    Omitted,
}

impl KeptInput {
    /// The record of `input` (the request's, `None` when it had none).
    pub fn of(input: Option<&Map<String, Value>>) -> Self {
        let json = match input {
            Some(map) => Value::Object(map.clone()).to_string(),
            None => "{}".to_owned(),
        };
        if json.len() > MAX_INPUT_BYTES {
            KeptInput::Omitted
        } else {
            KeptInput::Kept(json)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_input_is_kept_as_json_up_to_its_bound() {
        let small = json!({"Region": "Kanto", "tags": ["a"]});
        assert_eq!(
            KeptInput::of(small.as_object()),
            KeptInput::Kept(r#"{"Region":"Kanto","tags":["a"]}"#.to_owned())
        );
        assert_eq!(KeptInput::of(None), KeptInput::Kept("{}".to_owned()));
        let large = json!({"text": "x".repeat(MAX_INPUT_BYTES)});
        assert_eq!(KeptInput::of(large.as_object()), KeptInput::Omitted);
    }
}
