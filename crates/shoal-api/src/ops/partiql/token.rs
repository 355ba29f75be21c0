//! `NextToken`: where a `SELECT` stopped (its `LastEvaluatedKey`), tied to the statement and
//! parameters it belongs to. Hex of `{"k": <key>, "s": <seal>}`, the seal being the first 16
//! bytes of SHA-256 over the statement and its parameters: a token given with another
//! statement is refused. The key is checked against the table's schema when used, so a forged
//! token reads nothing it could not read with another `WHERE` clause.

use serde_json::{Value, json};
use shoal_types::Item;
use shoal_types::json::{item_from_json, item_to_json};

use crate::error::ApiError;

/// The message of a token that is not one of ours or belongs to another statement.
pub(super) const INVALID: &str = "The provided NextToken is invalid: it was not returned for this statement and these parameters";

/// The seal of a statement and its `Parameters` member (as sent).
pub(super) fn seal(statement: &str, parameters: Option<&Value>) -> String {
    let mut buf = statement.as_bytes().to_vec();
    buf.push(0);
    if let Some(p) = parameters {
        buf.extend(serde_json::to_vec(p).unwrap_or_default());
    }
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &buf);
    hex::encode(&d.as_ref()[..16])
}

/// The token for `last_key`.
pub(super) fn encode(last_key: &Item, seal: &str) -> String {
    let body = json!({"k": item_to_json(last_key), "s": seal});
    hex::encode(serde_json::to_vec(&body).unwrap_or_default())
}

/// The key a token holds.
///
/// # Errors
/// `ValidationException` ([`INVALID`]) when it is not a token of this statement.
pub(super) fn decode(token: &str, seal: &str) -> Result<Item, ApiError> {
    let invalid = || ApiError::validation(INVALID);
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if body.get("s").and_then(Value::as_str) != Some(seal) {
        return Err(invalid());
    }
    let key = body.get("k").ok_or_else(invalid)?;
    item_from_json(key).map_err(|_| invalid())
}
