//! Typed access to the members of a request's JSON object.
//!
//! Wrong JSON types are `SerializationException`s, as DynamoDB's front end reports them; a JSON
//! `null` counts as an absent member. Model constraints (required, lengths, enums) are checked by the
//! handlers with [`crate::error::Violations`].

use std::collections::HashMap;

use serde_json::{Map, Value};
use shoal_types::json::{MAX_ATTRIBUTE_NAME_LEN, NAME_TOO_LONG_CONSTRAINT};
use shoal_types::{AttributeValue, Item};

use crate::error::ApiError;

/// The top-level JSON object of a request.
pub struct Input<'a> {
    obj: &'a Map<String, Value>,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::String(_) => "STRING_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// The SerializationException for a value of the wrong JSON type.
pub fn type_mismatch(v: &Value, expected: &str) -> ApiError {
    match v {
        Value::Object(_) => {
            ApiError::serialization("Start of structure or map found where not expected.")
        }
        Value::Array(_) => ApiError::serialization("Start of list found where not expected"),
        other => ApiError::serialization(format!(
            "{} can not be converted to {expected}",
            json_kind(other)
        )),
    }
}

impl<'a> Input<'a> {
    /// Wraps a parsed request body; anything but a JSON object is a SerializationException.
    pub fn new(body: &'a Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(obj) => Ok(Input { obj }),
            other => Err(type_mismatch(other, "a structure")),
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// Every member of the request, as sent.
    pub fn members(&self) -> &'a Map<String, Value> {
        self.obj
    }

    /// The raw JSON of a member (`None` when absent or `null`).
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.get(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        opt_str(self.get(name))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(type_mismatch(v, "a Boolean")),
        }
    }

    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        opt_i64(self.get(name))
    }

    pub fn object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        opt_object(self.get(name))
    }

    pub fn array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        opt_array(self.get(name))
    }

    /// A member that is a map of attribute name to AttributeValue (`Item`, `Key`).
    ///
    /// # Errors
    /// An attribute name over 65,535 bytes (the model constraint on the map's keys), then the
    /// codec's errors.
    pub fn item(&self, name: &str) -> Result<Option<Item>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                if let Value::Object(obj) = v {
                    attribute_name_keys(obj.keys(), name)?;
                }
                Ok(Some(shoal_types::json::item_from_json(v)?))
            }
        }
    }

    /// `ExpressionAttributeNames`: a map of strings (attribute names: at most 65,535 bytes).
    pub fn string_map(&self, name: &str) -> Result<Option<HashMap<String, String>>, ApiError> {
        let Some(obj) = self.object(name)? else {
            return Ok(None);
        };
        let mut out = HashMap::with_capacity(obj.len());
        for (k, v) in obj {
            match v {
                Value::String(s) if s.len() > MAX_ATTRIBUTE_NAME_LEN => {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value at '{}' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_ATTRIBUTE_NAME_LEN}]",
                        member_field(name)
                    )));
                }
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => return Err(type_mismatch(other, "String")),
            }
        }
        Ok(Some(out))
    }

    /// `ExpressionAttributeValues`: a map of AttributeValues. A bad value is reported as DynamoDB
    /// does: `ExpressionAttributeValues contains invalid value: <reason> for key <name>`.
    pub fn value_map(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, ApiError> {
        let Some(obj) = self.object(name)? else {
            return Ok(None);
        };
        let mut out = HashMap::with_capacity(obj.len());
        for (k, v) in obj {
            match shoal_types::json::attribute_value_from_json(v) {
                Ok(av) => {
                    out.insert(k.clone(), av);
                }
                Err(shoal_types::TypeError::Validation(m)) => {
                    return Err(ApiError::validation(format!(
                        "ExpressionAttributeValues contains invalid value: {m} for key {k}"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(out))
    }
}

pub fn opt_str(v: Option<&Value>) -> Result<Option<&str>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(type_mismatch(v, "String")),
    }
}

pub fn opt_i64(v: Option<&Value>) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => Err(ApiError::serialization(format!(
                "NUMBER_VALUE can not be converted to a Long: {n}"
            ))),
        },
        Some(v) => Err(type_mismatch(v, "a Long")),
    }
}

pub fn opt_object(v: Option<&Value>) -> Result<Option<&Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v @ Value::Array(_)) => Err(type_mismatch(v, "a structure")),
        Some(v) => Err(ApiError::serialization(format!(
            "Unexpected value type in payload: {}",
            json_kind(v)
        ))),
    }
}

pub fn opt_array(v: Option<&Value>) -> Result<Option<&Vec<Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v @ Value::Object(_)) => Err(type_mismatch(v, "a list")),
        Some(v) => Err(ApiError::serialization(format!(
            "Unexpected value type in payload: {}",
            json_kind(v)
        ))),
    }
}

/// The JSON kind of a top-level input member in the API model. Every member name has one type
/// across the input shapes of the operations Shoal serves (checked against the model when this
/// table was written); nested members are not listed (`Key` is a map at the top level but a
/// string in a `Tag`).
#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    Boolean,
    Integer,
    List,
    Object,
}

fn top_level_kind(member: &str) -> Option<Kind> {
    Some(match member {
        "TableName"
        | "BillingMode"
        | "ClientRequestToken"
        | "ConditionExpression"
        | "ConditionalOperator"
        | "ExclusiveStartShardId"
        | "ExclusiveStartStreamArn"
        | "ExclusiveStartTableName"
        | "FilterExpression"
        | "GlobalTableSettingsReplicationMode"
        | "GlobalTableSourceArn"
        | "IndexName"
        | "KeyConditionExpression"
        | "MultiRegionConsistency"
        | "NextToken"
        | "ProjectionExpression"
        | "ResourceArn"
        | "ResourcePolicy"
        | "ReturnConsumedCapacity"
        | "ReturnItemCollectionMetrics"
        | "ReturnValues"
        | "ReturnValuesOnConditionCheckFailure"
        | "Select"
        | "SequenceNumber"
        | "ShardId"
        | "ShardIterator"
        | "ShardIteratorType"
        | "StreamArn"
        | "TableClass"
        | "UpdateExpression" => Kind::String,
        "ConsistentRead"
        | "DeletionProtectionEnabled"
        | "DisassociationProtectionEnabled"
        | "ScanIndexForward" => Kind::Boolean,
        "Limit" | "Segment" | "TotalSegments" => Kind::Integer,
        "AttributeDefinitions"
        | "AttributesToGet"
        | "GlobalSecondaryIndexUpdates"
        | "GlobalSecondaryIndexes"
        | "GlobalTableWitnessUpdates"
        | "KeySchema"
        | "LocalSecondaryIndexes"
        | "ReplicaUpdates"
        | "TagKeys"
        | "Tags"
        | "TransactItems"
        | "TransactStatements"
        | "VectorIndexUpdates"
        | "VectorIndexes" => Kind::List,
        "AttributeUpdates"
        | "ExclusiveStartKey"
        | "Expected"
        | "ExpressionAttributeNames"
        | "ExpressionAttributeValues"
        | "Item"
        | "Key"
        | "KeyConditions"
        | "QueryFilter"
        | "RequestItems"
        | "ScanFilter"
        | "OnDemandThroughput"
        | "ProvisionedThroughput"
        | "SSESpecification"
        | "ShardFilter"
        | "StreamSpecification"
        | "WarmThroughput" => Kind::Object,
        _ => return None,
    })
}

impl Input<'_> {
    /// Checks the JSON type of every top-level member the API model knows, before any other
    /// check: DynamoDB reads the whole request before it validates it, so a member of the wrong
    /// type is a `SerializationException` even when another member breaks a rule.
    ///
    /// # Errors
    /// The `SerializationException` of the first member of the wrong type.
    pub fn check_member_types(&self) -> Result<(), ApiError> {
        for (name, value) in self.obj {
            let Some(kind) = top_level_kind(name) else {
                continue;
            };
            let value = Some(value);
            match kind {
                Kind::String => opt_str(value).map(|_| ())?,
                Kind::Boolean => match value {
                    None | Some(Value::Null | Value::Bool(_)) => {}
                    Some(v) => return Err(type_mismatch(v, "a Boolean")),
                },
                Kind::Integer => opt_i64(value).map(|_| ())?,
                Kind::List => opt_array(value).map(|_| ())?,
                Kind::Object => opt_object(value).map(|_| ())?,
            }
        }
        Ok(())
    }
}

/// A nested object (an element of a list member) viewed as an [`Input`].
pub fn nested(v: &Value) -> Result<Input<'_>, ApiError> {
    Input::new(v)
}

/// `TableName` → `tableName`: a member's name as DynamoDB's validation messages give it.
pub fn member_field(member: &str) -> String {
    let mut c = member.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// The model constraint on a map keyed by attribute names (`Item`, `Key`, `Expected`,
/// `ScanFilter`, `AttributeUpdates`, ...) or a list of them (`AttributesToGet`): none longer
/// than 65,535 bytes.
///
/// # Errors
/// `1 validation error detected: Value at 'item' failed to satisfy constraint: Map keys must
/// satisfy constraint: [Member must have length less than or equal to 65535]` (`Member must
/// satisfy constraint` for a list).
pub fn attribute_name_keys<'n>(
    mut names: impl Iterator<Item = &'n String>,
    member: &str,
) -> Result<(), ApiError> {
    if names.any(|n| n.len() > MAX_ATTRIBUTE_NAME_LEN) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: {NAME_TOO_LONG_CONSTRAINT}",
            member_field(member)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A member of the wrong JSON type is reported even when the request breaks other rules (a
    /// legacy parameter mixed with an expression, a missing required member).
    #[test]
    fn member_types_are_checked_before_anything_else() {
        for body in [
            json!({"KeyConditionExpression": "pk = :p", "KeyConditions": "x"}),
            json!({"TableName": "t", "Limit": "ten"}),
            json!({"ConsistentRead": "yes"}),
            json!({"RequestItems": []}),
            json!({"Tags": {}}),
        ] {
            let e = Input::new(&body).unwrap().check_member_types().unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Serialization, "{body}");
        }
        // Nested members and members the model does not know are left to the handlers.
        let fine = json!({"TableName": "t", "Limit": 5, "Tags": [{"Key": "k"}], "Other": 1});
        Input::new(&fine).unwrap().check_member_types().unwrap();
    }
}
