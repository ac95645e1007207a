//! Input validation and output derivation: how a job's `output` follows from the execute
//! request's `input` and the BOT's definitions (rules documented in emulator/README.md).
//! Wire values follow the Cloud BOT data format ([`crate::data`]).

use serde_json::{Map, Value, json};

use crate::data::{DataType, Transform, normalize};
use crate::seed::BotSeed;

/// Error for an execute request whose `input` does not fit the BOT (message names the key).
#[derive(Debug)]
pub(crate) struct InputError {
    pub key: String,
    pub problem: InputProblem,
}

#[derive(Debug)]
pub(crate) enum InputProblem {
    Unknown,
    Shape(String),
}

/// The effective input: the BOT's defaults overlaid with the request's values.
pub(crate) fn effective_input(
    bot: &BotSeed,
    input: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, InputError> {
    if let Some(input) = input {
        // Reject keys the BOT does not define: a typo would otherwise silently run the BOT
        // with its default value ([I] the real API's behaviour is not documented).
        for key in input.keys() {
            if !bot.input.iter().any(|d| &d.name == key) {
                return Err(InputError {
                    key: key.clone(),
                    problem: InputProblem::Unknown,
                });
            }
        }
    }
    let mut out = Map::new();
    for def in &bot.input {
        let given = input.and_then(|m| m.get(&def.name));
        let value = match given.or(def.default.as_ref()) {
            Some(v) => normalize(def.data_type, v).map_err(|m| InputError {
                key: def.name.clone(),
                problem: InputProblem::Shape(m),
            })?,
            None => empty(def.data_type),
        };
        out.insert(def.name.clone(), value);
    }
    Ok(out)
}

fn empty(t: DataType) -> Value {
    match t {
        DataType::Value | DataType::File => Value::String(String::new()),
        DataType::Multi | DataType::Group => Value::Array(Vec::new()),
    }
}

/// Text form of a source value (used by value and file outputs).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn transform_text(t: Transform, s: &str, source: &Value) -> String {
    match t {
        Transform::Copy => s.to_string(),
        Transform::Upper => s.to_uppercase(),
        Transform::Lower => s.to_lowercase(),
        Transform::Reverse => s.chars().rev().collect(),
        Transform::Length => match source {
            Value::Array(items) => items.len().to_string(),
            _ => s.chars().count().to_string(),
        },
    }
}

/// Derives a job's `output` object. `job_id` and `end_ms` (epoch ms) name and date file outputs.
pub(crate) fn derive_output(
    bot: &BotSeed,
    input: &Map<String, Value>,
    job_id: &str,
    end_ms: i64,
) -> Value {
    let mut out = Map::new();
    for def in &bot.output {
        let source = def.from.as_ref().and_then(|f| input.get(f));
        let value = match (def.data_type, source) {
            (DataType::Value, Some(src)) => {
                Value::String(transform_text(def.transform, &text(src), src))
            }
            (DataType::Multi, Some(Value::Array(items))) => Value::Array(
                items
                    .iter()
                    .map(|i| Value::String(transform_text(def.transform, &text(i), i)))
                    .collect(),
            ),
            (DataType::Multi, Some(src)) => Value::Array(vec![Value::String(transform_text(
                def.transform,
                &text(src),
                src,
            ))]),
            (DataType::Group, Some(src)) => src.clone(),
            (DataType::File, src) => {
                let content = match src {
                    Some(src) => transform_text(def.transform, &text(src), src),
                    None => def.default.as_ref().map(text).unwrap_or_default(),
                };
                let name = def
                    .file_name
                    .clone()
                    .unwrap_or_else(|| format!("{}.txt", def.name));
                json!({"type": "files", "files": [{
                    "ref": format!("jobs/{job_id}/files/{}", uuid::Uuid::new_v4()),
                    "meta": {"name": name, "size": content.len(), "timestamp": end_ms}
                }]})
            }
            (t, None) => match &def.default {
                Some(d) => normalize(t, d).unwrap_or_else(|_| empty(t)),
                None => empty(t),
            },
        };
        out.insert(def.name.clone(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seed;

    fn echo() -> BotSeed {
        Seed::demo().contracts[0].bots[0].clone()
    }

    #[test]
    fn output_follows_input_and_definitions() {
        let bot = echo();
        let input = json!({"message": "Hi you", "tags": ["a", 2], "items": [{"n": 1}]});
        let eff = effective_input(&bot, input.as_object()).unwrap();
        let out = derive_output(&bot, &eff, "J", 1_700_000_000_000);
        assert_eq!(out["echo"], "Hi you");
        assert_eq!(out["shout"], "HI YOU");
        assert_eq!(out["length"], "6");
        assert_eq!(out["tags"], json!(["a", "2"]));
        assert_eq!(out["items"], json!([{"n": "1"}]));
        assert_eq!(out["result"], "done");
        let file = &out["report"]["files"][0];
        assert_eq!(out["report"]["type"], "files");
        assert!(file["ref"].as_str().unwrap().starts_with("jobs/J/files/"));
        assert_eq!(file["meta"]["name"], "report.txt");
        assert_eq!(file["meta"]["size"], 6);
        assert_eq!(file["meta"]["timestamp"], 1_700_000_000_000_i64);
    }

    #[test]
    fn defaults_fill_missing_input() {
        let bot = echo();
        let eff = effective_input(&bot, None).unwrap();
        assert_eq!(eff["message"], "Hello from Cloud BOT");
        assert_eq!(eff["tags"], json!(["demo"]));
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let bot = echo();
        let e = effective_input(&bot, json!({"nope": "x"}).as_object()).unwrap_err();
        assert_eq!(e.key, "nope");
        assert!(matches!(e.problem, InputProblem::Unknown));
        let e = effective_input(&bot, json!({"tags": "x"}).as_object()).unwrap_err();
        assert_eq!(e.key, "tags");
        assert!(matches!(e.problem, InputProblem::Shape(_)));
    }
}
