//! The DynamoDB JSON codec: `{"S": "x"}`, `{"M": {...}}`, ... to and from [`AttributeValue`].
//!
//! Parsing reports errors the way DynamoDB does:
//! - a JSON value of the wrong type for its field (`{"S": 5}`) is a
//!   [`TypeError::Serialization`], and wins over any validation error elsewhere in the input,
//!   because DynamoDB deserialises the whole request before validating it;
//! - otherwise the first [`TypeError::Validation`] found: no type or several types set, `NULL`
//!   not `true`, an empty set, duplicate set elements, a bad number, nesting deeper than 32 levels,
//!   an attribute name (of the item or of any nested `M`) longer than 65,535 bytes.
//!
//! Unknown type keys and JSON `null` fields are ignored, as DynamoDB's deserialiser does. `B` and
//! `BS` are standard base64 with padding. Empty strings and binaries are accepted (only key
//! attributes forbid them; see [`crate::key`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::{AttributeValue, Item, Number, TypeError};

/// Deepest nesting of `M` and `L` values DynamoDB accepts.
pub const MAX_NESTING_DEPTH: usize = 32;

const EMPTY_AV: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const MULTIPLE_AV: &str = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
/// Longest attribute name, in UTF-8 bytes (the API model's `AttributeName`: at most 65,535;
/// "64 KB" in the developer guide). Key attribute names are shorter still (255, checked with
/// the key schema).
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 65_535;

/// The model-constraint text for a map whose keys are attribute names and one is longer than
/// [`MAX_ATTRIBUTE_NAME_LEN`].
pub const NAME_TOO_LONG_CONSTRAINT: &str =
    "Map keys must satisfy constraint: [Member must have length less than or equal to 65535]";

/// DynamoDB's `ValidationException` message for values nested deeper than
/// [`MAX_NESTING_DEPTH`] (also used when an update would nest an item deeper).
pub const NESTING_EXCEEDED: &str = "Nesting Levels have exceeded supported limits";
const NESTING: &str = NESTING_EXCEEDED;
const UNEXPECTED: &str = "Unexpected value type in payload";

/// Parses one DynamoDB JSON attribute value, e.g. `{"N": "1.5"}`.
///
/// # Errors
/// See the [module docs](self).
pub fn attribute_value_from_json(v: &Value) -> Result<AttributeValue, TypeError> {
    let mut p = Parser::default();
    let av = p.value(v, 0)?;
    p.finish(av)
}

/// Parses an item: a JSON object of attribute name to DynamoDB JSON value. Also suits other
/// name-to-value maps such as `ExpressionAttributeValues` and `Key`.
///
/// # Errors
/// `TypeError::Serialization` if `v` is not an object; otherwise see the [module docs](self).
pub fn item_from_json(v: &Value) -> Result<Item, TypeError> {
    let mut p = Parser::default();
    let item = p.map(v, 0)?;
    p.finish(item)
}

/// The DynamoDB JSON form of a value (numbers in canonical form, binaries base64).
pub fn attribute_value_to_json(v: &AttributeValue) -> Value {
    let (key, inner) = match v {
        AttributeValue::S(s) => ("S", Value::String(s.clone())),
        AttributeValue::N(n) => ("N", Value::String(n.to_string())),
        AttributeValue::B(b) => ("B", Value::String(BASE64.encode(b))),
        AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
        AttributeValue::Null => ("NULL", Value::Bool(true)),
        AttributeValue::M(m) => ("M", item_to_json(m)),
        AttributeValue::L(l) => (
            "L",
            Value::Array(l.iter().map(attribute_value_to_json).collect()),
        ),
        AttributeValue::Ss(ss) => (
            "SS",
            Value::Array(ss.iter().map(|s| Value::String(s.clone())).collect()),
        ),
        AttributeValue::Ns(ns) => (
            "NS",
            Value::Array(ns.iter().map(|n| Value::String(n.to_string())).collect()),
        ),
        AttributeValue::Bs(bs) => (
            "BS",
            Value::Array(bs.iter().map(|b| Value::String(BASE64.encode(b))).collect()),
        ),
    };
    let mut obj = Map::with_capacity(1);
    obj.insert(key.to_string(), inner);
    Value::Object(obj)
}

/// The DynamoDB JSON form of an item: an object of attribute name to value.
pub fn item_to_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_value_to_json(v)))
            .collect(),
    )
}

/// Decodes a base64 string as DynamoDB does (standard alphabet, padded).
///
/// # Errors
/// `TypeError::Serialization` for a length that is not a multiple of 4 or invalid characters.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, TypeError> {
    if !s.len().is_multiple_of(4) {
        return Err(TypeError::Serialization(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        )));
    }
    BASE64
        .decode(s)
        .map_err(|_| TypeError::Serialization("Invalid Base64 encoding".to_string()))
}

/// The serialization error for `got` where a JSON value of kind `expected` belongs.
fn mismatch(got: &Value, expected: &str) -> TypeError {
    let msg = match got {
        Value::Object(_) => "Start of structure or map found where not expected.".to_string(),
        Value::Array(_) => "Start of list found where not expected".to_string(),
        Value::Number(_) => format!("NUMBER_VALUE cannot be converted to {expected}"),
        Value::String(_) => format!("STRING_VALUE cannot be converted to {expected}"),
        Value::Bool(true) => format!("TRUE_VALUE cannot be converted to {expected}"),
        Value::Bool(false) => format!("FALSE_VALUE cannot be converted to {expected}"),
        Value::Null => format!("null cannot be converted to {expected}"),
    };
    TypeError::Serialization(msg)
}

/// Parses while remembering the first validation error, so that a serialization error anywhere
/// in the input still takes precedence.
#[derive(Default)]
struct Parser {
    first_invalid: Option<String>,
}

impl Parser {
    fn invalid(&mut self, msg: impl Into<String>) -> AttributeValue {
        if self.first_invalid.is_none() {
            self.first_invalid = Some(msg.into());
        }
        AttributeValue::Null
    }

    fn finish<T>(self, v: T) -> Result<T, TypeError> {
        match self.first_invalid {
            Some(msg) => Err(TypeError::Validation(msg)),
            None => Ok(v),
        }
    }

    /// A name-to-value map (an item or an `M`), whose values sit at `depth`.
    fn map(&mut self, v: &Value, depth: usize) -> Result<Item, TypeError> {
        let obj = match v {
            Value::Object(obj) => obj,
            Value::Array(_) => return Err(mismatch(v, "Map")),
            _ => return Err(TypeError::Serialization(UNEXPECTED.to_string())),
        };
        let mut item = Item::new();
        for (name, v) in obj {
            if name.len() > MAX_ATTRIBUTE_NAME_LEN {
                self.invalid(format!(
                    "1 validation error detected: {NAME_TOO_LONG_CONSTRAINT}"
                ));
            }
            let av = self.value(v, depth)?;
            item.insert(name.clone(), av);
        }
        Ok(item)
    }

    fn list<'v>(&mut self, v: &'v Value) -> Result<&'v [Value], TypeError> {
        match v {
            Value::Array(a) => Ok(a),
            Value::Object(_) => Err(mismatch(v, "List")),
            _ => Err(TypeError::Serialization(UNEXPECTED.to_string())),
        }
    }

    /// One attribute value, enclosed in `depth` `M`/`L` values.
    fn value(&mut self, v: &Value, depth: usize) -> Result<AttributeValue, TypeError> {
        let obj = match v {
            Value::Object(obj) => obj,
            Value::Array(_) => return Err(mismatch(v, "AttributeValue")),
            _ => return Err(TypeError::Serialization(UNEXPECTED.to_string())),
        };
        let mut found: Option<AttributeValue> = None;
        let mut count = 0usize;
        for (key, inner) in obj {
            if inner.is_null() {
                continue;
            }
            let av = match key.as_str() {
                "S" => AttributeValue::S(string(inner)?.to_string()),
                "N" => {
                    let s = string(inner)?;
                    match s.parse::<Number>() {
                        Ok(n) => AttributeValue::N(n),
                        Err(e) => self.invalid(e.to_string()),
                    }
                }
                "B" => AttributeValue::B(decode_base64(string(inner)?)?),
                "BOOL" => AttributeValue::Bool(boolean(inner)?),
                "NULL" => {
                    if boolean(inner)? {
                        AttributeValue::Null
                    } else {
                        self.invalid(
                            "One or more parameter values were invalid: Null attribute value \
                             types must have the value of true",
                        )
                    }
                }
                "M" | "L" if depth >= MAX_NESTING_DEPTH => {
                    // Do not descend: bounds recursion on hostile input.
                    self.invalid(NESTING)
                }
                "M" => AttributeValue::M(self.map(inner, depth + 1)?),
                "L" => {
                    let elems = self.list(inner)?;
                    let mut out = Vec::with_capacity(elems.len());
                    for e in elems {
                        out.push(self.value(e, depth + 1)?);
                    }
                    AttributeValue::L(out)
                }
                "SS" => {
                    let elems = self.string_list(inner)?;
                    let parsed = elems.iter().map(|s| s.to_string()).collect();
                    self.set(&elems, "string", parsed, AttributeValue::Ss)
                }
                "NS" => {
                    let elems = self.string_list(inner)?;
                    let parsed: Result<Vec<Number>, _> =
                        elems.iter().map(|s| s.parse::<Number>()).collect();
                    match parsed {
                        Ok(parsed) => self.set(&elems, "number", parsed, AttributeValue::Ns),
                        Err(e) => self.invalid(e.to_string()),
                    }
                }
                "BS" => {
                    let elems = self.string_list(inner)?;
                    let parsed = elems
                        .iter()
                        .map(|s| decode_base64(s))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.set(&elems, "binary", parsed, AttributeValue::Bs)
                }
                _ => continue, // Unknown members are ignored, as DynamoDB does.
            };
            count += 1;
            found = Some(av);
        }
        match (count, found) {
            (1, Some(av)) => Ok(av),
            (0, _) | (_, None) => Ok(self.invalid(EMPTY_AV)),
            _ => Ok(self.invalid(MULTIPLE_AV)),
        }
    }

    fn string_list<'v>(&mut self, v: &'v Value) -> Result<Vec<&'v str>, TypeError> {
        self.list(v)?.iter().map(string).collect()
    }

    /// Validates a set's parsed elements: not empty, no two equal (`elems` is the input text,
    /// quoted in the duplicates message).
    fn set<T: Ord>(
        &mut self,
        elems: &[&str],
        kind: &str,
        parsed: Vec<T>,
        wrap: impl FnOnce(Vec<T>) -> AttributeValue,
    ) -> AttributeValue {
        if parsed.is_empty() {
            // DynamoDB's wording differs by kind (the double space is DynamoDB's).
            return self.invalid(if kind == "binary" {
                "One or more parameter values were invalid: Binary sets should not be empty"
                    .to_string()
            } else {
                format!(
                    "One or more parameter values were invalid: An {kind} set  may not be empty"
                )
            });
        }
        let mut sorted: Vec<&T> = parsed.iter().collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w.first() == w.get(1)) {
            return self.invalid(format!(
                "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
                elems.join(", ")
            ));
        }
        wrap(parsed)
    }
}

fn string(v: &Value) -> Result<&str, TypeError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(mismatch(v, "String")),
    }
}

fn boolean(v: &Value) -> Result<bool, TypeError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(mismatch(v, "Boolean")),
    }
}

#[cfg(test)]
mod tests;
