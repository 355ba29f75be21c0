//! Parsing a request body as JSON, refusing duplicate object keys at any depth.
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"Item": {...}, "Item": {...}}`
//! would silently mean the second item. DynamoDB's documentation does not say what it does with
//! duplicates; Shoal refuses them (`SerializationException`), so no two readers of one request —
//! a proxy that keeps the first key and Shoal that keeps the last — can disagree about it.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// How the error for two equal object keys starts.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key '";

/// Longest key quoted in a duplicate-key message.
const QUOTED_KEY_CHARS: usize = 64;

/// Parses `body` as one JSON value (whitespace around it allowed).
///
/// # Errors
/// Malformed JSON, trailing characters, nesting deeper than serde_json's limit (128), or an
/// object with two equal keys; the message says where.
pub(crate) fn parse(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A `serde_json::Value` that refuses duplicate keys.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(Strict)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(Strict)?);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    let key: String = slot.key().chars().take(QUOTED_KEY_CHARS).collect();
                    return Err(A::Error::custom(format!(
                        "{DUPLICATE_KEY}{key}' (object keys must be unique)"
                    )));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_serde_json_parses() {
        for text in [
            r#"{}"#,
            r#"{"a": 1, "b": [1, -2, 3.5, "x", null, true, {"c": {}}]}"#,
            r#" [ ] "#,
            r#""s""#,
            r#"{"TableName":"t","Item":{"pk":{"S":"a"},"n":{"N":"1"}}}"#,
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse(text.as_bytes()).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"TableName":"a","TableName":"b"}"#,
            r#"{"Item":{"pk":{"S":"a"},"pk":{"S":"b"}}}"#,
            r#"{"Item":{"m":{"M":{"x":{"L":[{"M":{"k":{"S":"1"},"k":{"N":"2"}}}]}}}}}"#,
        ] {
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("duplicate key"), "{text}: {e}");
        }
    }

    #[test]
    fn trailing_characters_and_malformed_input_are_refused() {
        assert!(parse(b"{} {}").is_err());
        assert!(parse(b"{\"a\":").is_err());
        assert!(parse(&[b'['; 200]).is_err());
    }
}
