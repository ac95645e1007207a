//! The awsJson1.0 wire format of the lean DynamoDB calls (`table::lean`): a request body from the
//! SDK's own input builder, and the answer back into the SDK's output and error types, so the
//! adapters read exactly what the SDK path gives them. Only what the hot-path calls use is
//! written here (`PutItem`, `UpdateItem`, `GetItem` with expressions, `ReturnValues`,
//! `ReturnValuesOnConditionCheckFailure`, `ConsistentRead`); an input with anything else set
//! (the legacy `Expected`/`AttributeUpdates`/`AttributesToGet`, consumed-capacity or
//! item-collection metrics) is not lean: the caller sends it through the SDK as before.
//!
//! AttributeValue as the service writes it: `{"S":..}`, `{"N":..}`, `{"B":base64}`, `SS`, `NS`,
//! `BS`, `M`, `L`, `NULL`, `BOOL`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemInputBuilder;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemInputBuilder;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemInputBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_types::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// An attribute value in the service's JSON.
pub(crate) struct Av<'a>(pub(crate) &'a AttributeValue);

impl Serialize for Av<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self.0 {
            AttributeValue::S(v) => map.serialize_entry("S", v)?,
            AttributeValue::N(v) => map.serialize_entry("N", v)?,
            AttributeValue::B(v) => map.serialize_entry("B", &BASE64.encode(v.as_ref()))?,
            AttributeValue::Ss(v) => map.serialize_entry("SS", v)?,
            AttributeValue::Ns(v) => map.serialize_entry("NS", v)?,
            AttributeValue::Bs(v) => map.serialize_entry("BS", &Blobs(v))?,
            AttributeValue::M(v) => map.serialize_entry("M", &Items(v))?,
            AttributeValue::L(v) => map.serialize_entry("L", &List(v))?,
            AttributeValue::Null(v) => map.serialize_entry("NULL", v)?,
            AttributeValue::Bool(v) => map.serialize_entry("BOOL", v)?,
            _ => return Err(S::Error::custom("an attribute value of an unknown kind")),
        }
        map.end()
    }
}

struct Blobs<'a>(&'a [Blob]);

impl Serialize for Blobs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for b in self.0 {
            seq.serialize_element(&BASE64.encode(b.as_ref()))?;
        }
        seq.end()
    }
}

struct List<'a>(&'a [AttributeValue]);

impl Serialize for List<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&Av(v))?;
        }
        seq.end()
    }
}

/// An item, a key or the expression values: attribute name → value.
pub(crate) struct Items<'a>(pub(crate) &'a HashMap<String, AttributeValue>);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Av(v))?;
        }
        map.end()
    }
}

/// One request body: the members the three operations share, each written only when set.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Body<'a> {
    table_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Items<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Items<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_expression: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition_expression: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    projection_expression: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expression_attribute_names: Option<&'a HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expression_attribute_values: Option<Items<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_values: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_values_on_condition_check_failure: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consistent_read: Option<bool>,
}

impl Body<'_> {
    /// The JSON bytes; `None` when a value cannot be written (an unknown attribute kind).
    pub(crate) fn to_bytes(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }
}

/// The body of a `PutItem`, or `None` when the input is not one the lean path sends.
pub(crate) fn put_body(input: &PutItemInputBuilder) -> Option<Body<'_>> {
    if input.get_expected().is_some()
        || input.get_conditional_operator().is_some()
        || input.get_return_consumed_capacity().is_some()
        || input.get_return_item_collection_metrics().is_some()
    {
        return None;
    }
    Some(Body {
        table_name: input.get_table_name().as_deref()?,
        item: Some(Items(input.get_item().as_ref()?)),
        condition_expression: input.get_condition_expression().as_deref(),
        expression_attribute_names: input.get_expression_attribute_names().as_ref(),
        expression_attribute_values: input.get_expression_attribute_values().as_ref().map(Items),
        return_values: input.get_return_values().as_ref().map(|v| v.as_str()),
        return_values_on_condition_check_failure: input
            .get_return_values_on_condition_check_failure()
            .as_ref()
            .map(|v| v.as_str()),
        ..Body::default()
    })
}

/// The body of an `UpdateItem`, or `None` when the input is not one the lean path sends.
pub(crate) fn update_body(input: &UpdateItemInputBuilder) -> Option<Body<'_>> {
    if input.get_attribute_updates().is_some()
        || input.get_expected().is_some()
        || input.get_conditional_operator().is_some()
        || input.get_return_consumed_capacity().is_some()
        || input.get_return_item_collection_metrics().is_some()
    {
        return None;
    }
    Some(Body {
        table_name: input.get_table_name().as_deref()?,
        key: Some(Items(input.get_key().as_ref()?)),
        update_expression: input.get_update_expression().as_deref(),
        condition_expression: input.get_condition_expression().as_deref(),
        expression_attribute_names: input.get_expression_attribute_names().as_ref(),
        expression_attribute_values: input.get_expression_attribute_values().as_ref().map(Items),
        return_values: input.get_return_values().as_ref().map(|v| v.as_str()),
        return_values_on_condition_check_failure: input
            .get_return_values_on_condition_check_failure()
            .as_ref()
            .map(|v| v.as_str()),
        ..Body::default()
    })
}

/// The body of a `GetItem`, or `None` when the input is not one the lean path sends.
pub(crate) fn get_body(input: &GetItemInputBuilder) -> Option<Body<'_>> {
    if input.get_attributes_to_get().is_some() || input.get_return_consumed_capacity().is_some() {
        return None;
    }
    Some(Body {
        table_name: input.get_table_name().as_deref()?,
        key: Some(Items(input.get_key().as_ref()?)),
        projection_expression: input.get_projection_expression().as_deref(),
        expression_attribute_names: input.get_expression_attribute_names().as_ref(),
        consistent_read: *input.get_consistent_read(),
        ..Body::default()
    })
}

/// An attribute value from the service's JSON.
pub(crate) fn attribute_value(v: &Value) -> Result<AttributeValue, &'static str> {
    let map = v.as_object().ok_or("an attribute value is not an object")?;
    let (kind, v) = match (map.len(), map.iter().next()) {
        (1, Some(entry)) => entry,
        _ => return Err("an attribute value has not exactly one member"),
    };
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .ok_or("a text member is not text")
    };
    let texts = |v: &Value| {
        v.as_array()
            .ok_or("a set is not an array")?
            .iter()
            .map(text)
            .collect::<Result<Vec<_>, _>>()
    };
    let blob = |v: &Value| {
        BASE64
            .decode(v.as_str().ok_or("a binary member is not text")?)
            .map(Blob::new)
            .map_err(|_| "a binary member is not base64")
    };
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(text(v)?),
        "N" => AttributeValue::N(text(v)?),
        "B" => AttributeValue::B(blob(v)?),
        "SS" => AttributeValue::Ss(texts(v)?),
        "NS" => AttributeValue::Ns(texts(v)?),
        "BS" => AttributeValue::Bs(
            v.as_array()
                .ok_or("a set is not an array")?
                .iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item(v)?),
        "L" => AttributeValue::L(
            v.as_array()
                .ok_or("a list is not an array")?
                .iter()
                .map(attribute_value)
                .collect::<Result<_, _>>()?,
        ),
        "NULL" => AttributeValue::Null(v.as_bool().ok_or("NULL is not a boolean")?),
        "BOOL" => AttributeValue::Bool(v.as_bool().ok_or("BOOL is not a boolean")?),
        _ => return Err("an attribute value of an unknown kind"),
    })
}

/// An item (attribute name → value) from the service's JSON.
pub(crate) fn item(v: &Value) -> Result<HashMap<String, AttributeValue>, &'static str> {
    v.as_object()
        .ok_or("an item is not an object")?
        .iter()
        .map(|(k, v)| Ok((k.clone(), attribute_value(v)?)))
        .collect()
}

/// The member `name` of an answer as an item, if present.
fn member(
    body: &Value,
    name: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, &'static str> {
    body.get(name).map(item).transpose()
}

/// A service error as the answer states it: the code (the `__type` without its namespace, or
/// the `x-amzn-ErrorType` header), the message, and the item a failed condition returned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceFault {
    pub(crate) code: String,
    pub(crate) message: Option<String>,
    pub(crate) item: Option<HashMap<String, AttributeValue>>,
}

impl ServiceFault {
    /// From an error answer's header and body (a body that is not JSON leaves the header's code
    /// or none).
    pub(crate) fn parse(error_type_header: Option<&str>, body: &[u8]) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let strip = |t: &str| {
            let t = t.split(':').next().unwrap_or(t);
            t.rsplit('#').next().unwrap_or(t).to_owned()
        };
        let code = json
            .get("__type")
            .and_then(Value::as_str)
            .map(strip)
            .or_else(|| error_type_header.map(strip))
            .unwrap_or_default();
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| json.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        let item = json.get("Item").and_then(|v| item(v).ok());
        Self {
            code,
            message,
            item,
        }
    }

    fn meta(&self) -> ErrorMetadata {
        let mut meta = ErrorMetadata::builder();
        if !self.code.is_empty() {
            meta = meta.code(&self.code);
        }
        if let Some(message) = &self.message {
            meta = meta.message(message);
        }
        meta.build()
    }

    fn condition_failed(&self) -> Option<ConditionalCheckFailedException> {
        (self.code == "ConditionalCheckFailedException").then(|| {
            ConditionalCheckFailedException::builder()
                .set_message(self.message.clone())
                .set_item(self.item.clone())
                .meta(self.meta())
                .build()
        })
    }
}

/// One operation of the lean path: its target and how its answer becomes the SDK's types.
pub(crate) trait Operation {
    /// The operation's name (the `X-Amz-Target` suffix, and the name in errors).
    const NAME: &'static str;
    /// The SDK's output type.
    type Output;
    /// The SDK's error type.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The output from a successful answer's JSON.
    fn output(body: &Value) -> Result<Self::Output, &'static str>;
    /// The error of a failed answer.
    fn error(fault: &ServiceFault) -> Self::Error;
}

/// `PutItem`.
pub(crate) struct Put;
/// `UpdateItem`.
pub(crate) struct Update;
/// `GetItem`.
pub(crate) struct Get;

impl Operation for Put {
    const NAME: &'static str = "PutItem";
    type Output = PutItemOutput;
    type Error = PutItemError;
    fn output(body: &Value) -> Result<PutItemOutput, &'static str> {
        Ok(PutItemOutput::builder()
            .set_attributes(member(body, "Attributes")?)
            .build())
    }
    fn error(fault: &ServiceFault) -> PutItemError {
        match fault.condition_failed() {
            Some(e) => PutItemError::ConditionalCheckFailedException(e),
            None => PutItemError::generic(fault.meta()),
        }
    }
}

impl Operation for Update {
    const NAME: &'static str = "UpdateItem";
    type Output = UpdateItemOutput;
    type Error = UpdateItemError;
    fn output(body: &Value) -> Result<UpdateItemOutput, &'static str> {
        Ok(UpdateItemOutput::builder()
            .set_attributes(member(body, "Attributes")?)
            .build())
    }
    fn error(fault: &ServiceFault) -> UpdateItemError {
        match fault.condition_failed() {
            Some(e) => UpdateItemError::ConditionalCheckFailedException(e),
            None => UpdateItemError::generic(fault.meta()),
        }
    }
}

impl Operation for Get {
    const NAME: &'static str = "GetItem";
    type Output = GetItemOutput;
    type Error = GetItemError;
    fn output(body: &Value) -> Result<GetItemOutput, &'static str> {
        Ok(GetItemOutput::builder()
            .set_item(member(body, "Item")?)
            .build())
    }
    fn error(fault: &ServiceFault) -> GetItemError {
        GetItemError::generic(fault.meta())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
    use serde_json::json;

    fn every_kind() -> AttributeValue {
        AttributeValue::M(HashMap::from([
            ("s".to_owned(), AttributeValue::S("tö\"x\n".to_owned())),
            ("n".to_owned(), AttributeValue::N("-12.5".to_owned())),
            (
                "b".to_owned(),
                AttributeValue::B(Blob::new(vec![0, 1, 254])),
            ),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["a".to_owned(), "b".to_owned()]),
            ),
            ("ns".to_owned(), AttributeValue::Ns(vec!["1".to_owned()])),
            (
                "bs".to_owned(),
                AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())]),
            ),
            (
                "l".to_owned(),
                AttributeValue::L(vec![
                    AttributeValue::Null(true),
                    AttributeValue::Bool(false),
                ]),
            ),
            ("m".to_owned(), AttributeValue::M(HashMap::new())),
        ]))
    }

    #[test]
    fn every_attribute_kind_is_written_as_the_service_reads_it() {
        let written: Value = serde_json::to_value(Av(&every_kind())).unwrap();
        assert_eq!(
            written,
            json!({"M": {
                "s": {"S": "tö\"x\n"},
                "n": {"N": "-12.5"},
                "b": {"B": "AAH+"},
                "ss": {"SS": ["a", "b"]},
                "ns": {"NS": ["1"]},
                "bs": {"BS": ["aGk="]},
                "l": {"L": [{"NULL": true}, {"BOOL": false}]},
                "m": {"M": {}},
            }})
        );
    }

    #[test]
    fn every_attribute_kind_reads_back_as_written() {
        let v = every_kind();
        let written = serde_json::to_value(Av(&v)).unwrap();
        assert_eq!(attribute_value(&written).unwrap(), v);
    }

    #[test]
    fn malformed_attribute_values_are_refused() {
        for bad in [
            json!("S"),
            json!({}),
            json!({"S": "a", "N": "1"}),
            json!({"S": 1}),
            json!({"B": "not base64!"}),
            json!({"SS": "a"}),
            json!({"BOOL": "true"}),
            json!({"X": "a"}),
        ] {
            assert!(attribute_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_put_body_carries_the_condition_and_the_old_item_request() {
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .build(),
        );
        let put = client
            .put_item()
            .table_name("t")
            .item("record_key", AttributeValue::S("k".into()))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", "record_key")
            .expression_attribute_values(":n", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let body: Value =
            serde_json::from_slice(&put_body(put.as_input()).unwrap().to_bytes().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "TableName": "t",
                "Item": {"record_key": {"S": "k"}},
                "ConditionExpression": "attribute_not_exists(#k)",
                "ExpressionAttributeNames": {"#k": "record_key"},
                "ExpressionAttributeValues": {":n": {"N": "1"}},
                "ReturnValues": "ALL_OLD",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            })
        );
        // What the lean path does not write goes through the SDK.
        let legacy =
            put.return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total);
        assert!(put_body(legacy.as_input()).is_none());
        let update = client
            .update_item()
            .table_name("t")
            .key("record_key", AttributeValue::S("k".into()))
            .update_expression("SET #a = :a");
        let body: Value =
            serde_json::from_slice(&update_body(update.as_input()).unwrap().to_bytes().unwrap())
                .unwrap();
        assert_eq!(
            body,
            json!({"TableName": "t", "Key": {"record_key": {"S": "k"}}, "UpdateExpression": "SET #a = :a"})
        );
        let get = client
            .get_item()
            .table_name("t")
            .key("record_key", AttributeValue::S("k".into()))
            .consistent_read(true);
        let body: Value =
            serde_json::from_slice(&get_body(get.as_input()).unwrap().to_bytes().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"TableName": "t", "Key": {"record_key": {"S": "k"}}, "ConsistentRead": true})
        );
        assert!(get_body(client.get_item().table_name("t").as_input()).is_none());
    }

    #[test]
    fn a_failed_condition_returns_the_old_item_as_the_sdk_does() {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"state":{"S":"completed"}}}"#;
        let fault = ServiceFault::parse(None, body);
        let err = Put::error(&fault);
        assert!(err.is_conditional_check_failed_exception());
        assert_eq!(err.code(), Some("ConditionalCheckFailedException"));
        match Update::error(&fault) {
            UpdateItemError::ConditionalCheckFailedException(e) => assert_eq!(
                e.item().and_then(|i| i.get("state")),
                Some(&AttributeValue::S("completed".into()))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_faults_keep_their_code_and_message() {
        let fault = ServiceFault::parse(
            None,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","Message":"slow down"}"#,
        );
        assert_eq!(fault.code, "ProvisionedThroughputExceededException");
        let err = Get::error(&fault);
        assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
        assert_eq!(err.message(), Some("slow down"));
        // A body that is not JSON: the header's code, without its namespace and suffix.
        let fault = ServiceFault::parse(Some("InternalServerError:http://internal"), b"<html>");
        assert_eq!(fault.code, "InternalServerError");
        assert_eq!(ServiceFault::parse(None, b"").code, "");
        assert_eq!(Put::error(&ServiceFault::parse(None, b"")).code(), None);
    }

    #[test]
    fn outputs_carry_the_returned_attributes_and_item() {
        let out = Update::output(&json!({"Attributes": {"a": {"N": "1"}}})).unwrap();
        assert_eq!(
            out.attributes().and_then(|a| a.get("a")),
            Some(&AttributeValue::N("1".into()))
        );
        assert!(Get::output(&json!({})).unwrap().item().is_none());
        assert!(Get::output(&json!({"Item": {"a": {"Q": 1}}})).is_err());
        assert!(Put::output(&json!({})).unwrap().attributes().is_none());
    }
}
