//! `ClientRequestToken` as the data plane keys it ([`TxToken`]): a hash of the caller's access
//! key id and the token (two callers' equal tokens name different transactions), and a hash of a
//! canonical rendering of the rest of the request (members in sorted order at every level,
//! whatever order the client sent them in), which tells a retry from another request under the
//! same token.

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::{Map, Value};
use shoal_catalog::TxToken;

/// The [`TxToken`] of `token`, sent by `access_key_id` with the request `members`.
pub(crate) fn tx_token(access_key_id: &str, token: &str, members: &Map<String, Value>) -> TxToken {
    let mut key = Vec::with_capacity(access_key_id.len() + token.len() + 1);
    key.extend_from_slice(access_key_id.as_bytes());
    // Access key ids never hold a NUL: the pair is unambiguous.
    key.push(0);
    key.extend_from_slice(token.as_bytes());
    let mut request = String::new();
    for (name, value) in sorted(members) {
        if name == "ClientRequestToken" {
            continue;
        }
        canonical(&Value::String(name.clone()), &mut request);
        request.push(':');
        canonical(value, &mut request);
        request.push(',');
    }
    TxToken {
        key: hash16(&key),
        request: hash16(request.as_bytes()),
    }
}

fn hash16(bytes: &[u8]) -> [u8; 16] {
    let d = digest(&SHA256, bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut members: Vec<_> = map.iter().filter(|(_, v)| !v.is_null()).collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    members
}

/// `value` as JSON with every object's members sorted by name and `null` members left out (an
/// absent member and a `null` one are the same request).
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (name, v) in sorted(map) {
                canonical(&Value::String(name.clone()), out);
                out.push(':');
                canonical(v, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(list) => {
            out.push('[');
            for v in list {
                canonical(v, out);
                out.push(',');
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn token(key: &str, tok: &str, body: Value) -> TxToken {
        tx_token(key, tok, body.as_object().unwrap())
    }

    #[test]
    fn member_order_and_the_token_itself_do_not_change_the_request_hash() {
        let a = token(
            "AK",
            "t1",
            json!({"TransactItems": [{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}}], "ClientRequestToken": "t1"}),
        );
        let b = token(
            "AK",
            "t1",
            json!({"ClientRequestToken": "t1", "TransactItems": [{"Put": {"Item": {"pk": {"S": "a"}}, "TableName": "t"}}], "ReturnConsumedCapacity": null}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn another_caller_or_another_request_hashes_differently() {
        let body =
            json!({"TransactItems": [{"Delete": {"TableName": "t", "Key": {"pk": {"S": "a"}}}}]});
        let a = token("AK1", "t", body.clone());
        let b = token("AK2", "t", body.clone());
        assert_ne!(a.key, b.key);
        assert_eq!(a.request, b.request);
        let c = token(
            "AK1",
            "t",
            json!({"TransactItems": [{"Delete": {"TableName": "t", "Key": {"pk": {"S": "b"}}}}]}),
        );
        assert_eq!(a.key, c.key);
        assert_ne!(a.request, c.request);
    }
}
