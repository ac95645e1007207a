//! The Cloud BOT data format: the kinds of data item, the transforms an output can apply, and
//! the checks that turn an input value into its wire form. Plain values are strings,
//! multi-values are arrays of strings, group data are arrays of row objects, files are
//! `{"type":"files","files":[{"ref","meta":{"name","size","timestamp"}}]}`.
//! The bottom layer: the seed and the output rules both use it, it uses neither.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Kind of a data item, as in the Cloud BOT data viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// A single value (always a JSON string on the wire).
    Value,
    /// A multi-value item: array of strings.
    Multi,
    /// Group (table) data: array of row objects keyed by column name.
    Group,
    /// A file object `{"type":"files","files":[...]}` (outputs only).
    File,
}

/// Transformation applied to the source input of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The value unchanged.
    #[default]
    Copy,
    /// Upper-cased (value and multi items).
    Upper,
    /// Lower-cased (value and multi items).
    Lower,
    /// Characters reversed (value and multi items).
    Reverse,
    /// Number of characters (value) or of items/rows (multi/group), as a string.
    Length,
}

/// Checks (and describes the problem with) a value given for an item of `data_type`.
pub(crate) fn check_input_value(data_type: DataType, value: &Value) -> Result<(), String> {
    normalize(data_type, value).map(|_| ())
}

/// Converts an input value to its wire form: numbers and booleans become strings (the API
/// carries every plain value as a string); anything else of the wrong shape is an error.
pub(crate) fn normalize(data_type: DataType, value: &Value) -> Result<Value, String> {
    match data_type {
        DataType::Value | DataType::File => scalar(value)
            .map(Value::String)
            .ok_or_else(|| "expected a string".to_string()),
        DataType::Multi => match value {
            Value::Array(items) => items
                .iter()
                .map(|v| scalar(v).map(Value::String))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
                .ok_or_else(|| "expected an array of strings".to_string()),
            _ => Err("expected an array of strings".to_string()),
        },
        DataType::Group => match value {
            Value::Array(rows) => rows
                .iter()
                .map(|row| match row {
                    Value::Object(cols) => cols
                        .iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::Array(_) => normalize(DataType::Multi, v).ok(),
                                _ => scalar(v).map(Value::String),
                            };
                            v.map(|v| (k.clone(), v))
                        })
                        .collect::<Option<Map<_, _>>>()
                        .map(Value::Object),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
                .ok_or_else(|| "expected an array of row objects with string values".to_string()),
            _ => Err("expected an array of row objects".to_string()),
        },
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether an output of `data_type` with `transform` can be derived from a `source` input.
pub(crate) fn check_derivation(
    data_type: DataType,
    transform: Transform,
    source: DataType,
) -> Result<(), String> {
    match (data_type, source) {
        (DataType::Value | DataType::File, _) => Ok(()),
        (DataType::Multi, DataType::Value | DataType::Multi) => Ok(()),
        (DataType::Group, DataType::Group) if transform == Transform::Copy => Ok(()),
        (DataType::Group, DataType::Group) => {
            Err("group outputs support only the copy transform".to_string())
        }
        (out, src) => Err(format!(
            "a {out:?} output cannot be derived from a {src:?} input"
        )),
    }
}
