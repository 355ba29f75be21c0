//! Request bodies, written with `write!` into a reused buffer (no JSON trees on the hot path).
//!
//! Key layout: on a hash-only table item `i` has hash key `k{i:012}`; on a table with a range
//! key it has hash key `p{i / per_partition:010}` and range key `s{i % per_partition:08}`, so
//! a partition holds `--items-per-partition` consecutive items. Every item has one more string
//! attribute, `data`, padded so the item's DynamoDB size is `--item-size` bytes. Payloads are
//! slices at random offsets of one pre-generated random alphanumeric buffer.

use std::fmt::Write as _;

use rand::Rng;

use crate::args::Workload;
use crate::client::Target;

/// The payload attribute's name.
pub const DATA_ATTR: &str = "data";
/// Extra random bytes after the payload length, so payloads start at different offsets.
const PAYLOAD_SLACK: usize = 4096;

/// The key attribute names of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Hash (partition) key attribute, type S.
    pub hash: String,
    /// Range (sort) key attribute, type S, if any.
    pub range: Option<String>,
}

/// One request kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Update,
    Query,
    Scan,
    BatchWrite,
    BatchGet,
    TransactWrite,
    TransactGet,
}

impl Op {
    /// Picks the next request kind of a workload.
    pub fn pick<R: Rng + ?Sized>(workload: Workload, rng: &mut R) -> Op {
        let read_share = match workload {
            Workload::Put => return Op::Put,
            Workload::Get => return Op::Get,
            Workload::Update => return Op::Update,
            Workload::Query => return Op::Query,
            Workload::Scan => return Op::Scan,
            Workload::BatchWrite => return Op::BatchWrite,
            Workload::BatchGet => return Op::BatchGet,
            Workload::TransactWrite => return Op::TransactWrite,
            Workload::TransactGet => return Op::TransactGet,
            Workload::YcsbA => 0.5,
            Workload::YcsbB => 0.95,
            Workload::YcsbC => return Op::Get,
        };
        if rng.random::<f64>() < read_share {
            Op::Get
        } else {
            Op::Update
        }
    }
}

/// Settings of the request writer.
#[derive(Debug, Clone)]
pub struct Shape {
    pub table: String,
    pub schema: Schema,
    pub items: u64,
    pub items_per_partition: u64,
    pub item_size: usize,
    pub consistent: bool,
    pub query_limit: u32,
    pub batch_size: usize,
}

/// Writes request bodies for one table. Shared read-only by all workers.
#[derive(Debug)]
pub struct Requests {
    shape: Shape,
    table_json: String,
    hash_json: String,
    range_json: Option<String>,
    payload: String,
    payload_len: usize,
}

impl Requests {
    /// Prepares the writer: escapes the names and generates the random payload buffer.
    pub fn new<R: Rng + ?Sized>(shape: Shape, rng: &mut R) -> Self {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let table_json = quote(&shape.table);
        let hash_json = quote(&shape.schema.hash);
        let range_json = shape.schema.range.as_deref().map(quote);
        let key_size = match &shape.schema.range {
            None => shape.schema.hash.len() + 13,
            Some(r) => shape.schema.hash.len() + 11 + r.len() + 9,
        };
        let payload_len = shape
            .item_size
            .saturating_sub(key_size + DATA_ATTR.len())
            .max(1);
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let payload = (0..payload_len + PAYLOAD_SLACK)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        Requests {
            shape,
            table_json,
            hash_json,
            range_json,
            payload,
            payload_len,
        }
    }

    /// The settings this writer was made with.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    fn payload<R: Rng + ?Sized>(&self, rng: &mut R) -> &str {
        let off = rng.random_range(0..PAYLOAD_SLACK);
        // ASCII only, so every offset is a char boundary.
        self.payload
            .get(off..off + self.payload_len)
            .unwrap_or(&self.payload)
    }

    fn write_key(&self, out: &mut String, i: u64) {
        match &self.range_json {
            None => {
                let _ = write!(out, "{{{}:{{\"S\":\"k{i:012}\"}}}}", self.hash_json);
            }
            Some(range) => {
                let per = self.shape.items_per_partition.max(1);
                let _ = write!(
                    out,
                    "{{{}:{{\"S\":\"p{:010}\"}},{range}:{{\"S\":\"s{:08}\"}}}}",
                    self.hash_json,
                    i / per,
                    i % per
                );
            }
        }
    }

    fn write_item<R: Rng + ?Sized>(&self, out: &mut String, i: u64, rng: &mut R) {
        self.write_key(out, i);
        out.pop(); // the key's closing brace
        let _ = write!(
            out,
            ",\"{DATA_ATTR}\":{{\"S\":\"{}\"}}}}",
            self.payload(rng)
        );
    }

    /// Writes (after clearing `out`) the body of `op` on item `i` (the first item of a batch,
    /// the partition of item `i` for a query, the start key for a scan) and returns its target.
    pub fn write<R: Rng + ?Sized>(&self, op: Op, i: u64, rng: &mut R, out: &mut String) -> Target {
        out.clear();
        let t = &self.table_json;
        let consistent = self.shape.consistent;
        match op {
            Op::Put => {
                let _ = write!(out, "{{\"TableName\":{t},\"Item\":");
                self.write_item(out, i, rng);
                out.push('}');
                Target::PutItem
            }
            Op::Get => {
                let _ = write!(out, "{{\"TableName\":{t},\"Key\":");
                self.write_key(out, i);
                if consistent {
                    out.push_str(",\"ConsistentRead\":true");
                }
                out.push('}');
                Target::GetItem
            }
            Op::Update => {
                let _ = write!(out, "{{\"TableName\":{t},\"Key\":");
                self.write_key(out, i);
                let _ = write!(
                    out,
                    ",\"UpdateExpression\":\"SET #d = :d\",\"ExpressionAttributeNames\":{{\"#d\":\"{DATA_ATTR}\"}},\"ExpressionAttributeValues\":{{\":d\":{{\"S\":\"{}\"}}}}}}",
                    self.payload(rng)
                );
                Target::UpdateItem
            }
            Op::Query => {
                let h = &self.hash_json;
                let _ = write!(
                    out,
                    "{{\"TableName\":{t},\"KeyConditionExpression\":\"#h = :h\",\"ExpressionAttributeNames\":{{\"#h\":{h}}},\"ExpressionAttributeValues\":{{\":h\":"
                );
                // The hash key value of item i, taken from its key.
                let mut key = String::with_capacity(64);
                self.write_key(&mut key, i);
                let value = key
                    .find(":{")
                    .and_then(|start| key.get(start + 1..))
                    .and_then(|rest| rest.find('}').and_then(|end| rest.get(..=end)))
                    .unwrap_or("{\"S\":\"\"}");
                out.push_str(value);
                let _ = write!(out, "}},\"Limit\":{}", self.shape.query_limit);
                if consistent {
                    out.push_str(",\"ConsistentRead\":true");
                }
                out.push('}');
                Target::Query
            }
            Op::Scan => {
                let _ = write!(
                    out,
                    "{{\"TableName\":{t},\"Limit\":{},\"ExclusiveStartKey\":",
                    self.shape.query_limit
                );
                self.write_key(out, i);
                if consistent {
                    out.push_str(",\"ConsistentRead\":true");
                }
                out.push('}');
                Target::Scan
            }
            Op::BatchWrite => {
                let n = self.batch_len();
                self.write_batch_write(out, (0..n).map(|k| self.wrap(i, k)), rng);
                Target::BatchWriteItem
            }
            Op::BatchGet => {
                let _ = write!(out, "{{\"RequestItems\":{{{t}:{{\"Keys\":[");
                for k in 0..self.batch_len() {
                    if k > 0 {
                        out.push(',');
                    }
                    self.write_key(out, self.wrap(i, k));
                }
                out.push(']');
                if consistent {
                    out.push_str(",\"ConsistentRead\":true");
                }
                out.push_str("}}}");
                Target::BatchGetItem
            }
            Op::TransactWrite => {
                out.push_str("{\"TransactItems\":[");
                for k in 0..self.batch_len() {
                    if k > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{{\"Put\":{{\"TableName\":{t},\"Item\":");
                    self.write_item(out, self.wrap(i, k), rng);
                    out.push_str("}}");
                }
                out.push_str("]}");
                Target::TransactWriteItems
            }
            Op::TransactGet => {
                out.push_str("{\"TransactItems\":[");
                for k in 0..self.batch_len() {
                    if k > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{{\"Get\":{{\"TableName\":{t},\"Key\":");
                    self.write_key(out, self.wrap(i, k));
                    out.push_str("}}");
                }
                out.push_str("]}");
                Target::TransactGetItems
            }
        }
    }

    /// Writes (after clearing `out`) a BatchWriteItem of puts of the given items.
    pub fn write_batch_write<R: Rng + ?Sized>(
        &self,
        out: &mut String,
        items: impl Iterator<Item = u64>,
        rng: &mut R,
    ) {
        out.clear();
        let _ = write!(out, "{{\"RequestItems\":{{{}:[", self.table_json);
        for (k, i) in items.enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str("{\"PutRequest\":{\"Item\":");
            self.write_item(out, i, rng);
            out.push_str("}}");
        }
        out.push_str("]}}");
    }

    /// Distinct keys per batch: at most the key space.
    fn batch_len(&self) -> u64 {
        (self.shape.batch_size as u64).min(self.shape.items).max(1)
    }

    fn wrap(&self, i: u64, k: u64) -> u64 {
        (i % self.shape.items.max(1) + k) % self.shape.items.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn requests(range: bool, consistent: bool) -> Requests {
        let shape = Shape {
            table: "bench".into(),
            schema: Schema {
                hash: "pk".into(),
                range: range.then(|| "sk".into()),
            },
            items: 1000,
            items_per_partition: 100,
            item_size: 1024,
            consistent,
            query_limit: 10,
            batch_size: 3,
        };
        Requests::new(shape, &mut StdRng::seed_from_u64(1))
    }

    fn item_size(item: &serde_json::Value) -> usize {
        item.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| k.len() + v["S"].as_str().unwrap().len())
            .sum()
    }

    #[test]
    fn every_body_is_valid_json_and_items_have_the_requested_size() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut out = String::new();
        for range in [false, true] {
            let r = requests(range, true);
            for op in [
                Op::Put,
                Op::Get,
                Op::Update,
                Op::Query,
                Op::Scan,
                Op::BatchWrite,
                Op::BatchGet,
                Op::TransactWrite,
                Op::TransactGet,
            ] {
                r.write(op, 998, &mut rng, &mut out);
                let v: serde_json::Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("{op:?} range={range}: {e}: {out}"));
                if op == Op::Put {
                    assert_eq!(item_size(&v["Item"]), 1024, "{out}");
                }
                if op == Op::BatchWrite {
                    let puts = v["RequestItems"]["bench"].as_array().unwrap();
                    assert_eq!(puts.len(), 3);
                    // Keys wrap around the key space and stay distinct.
                    let k = |n: usize| puts[n]["PutRequest"]["Item"]["pk"].clone();
                    assert_ne!(k(0), k(2));
                }
                if op == Op::TransactWrite {
                    let puts = v["TransactItems"].as_array().unwrap();
                    assert_eq!(puts.len(), 3);
                    assert_eq!(item_size(&puts[1]["Put"]["Item"]), 1024, "{out}");
                }
                if op == Op::TransactGet {
                    assert_eq!(v["TransactItems"].as_array().unwrap().len(), 3);
                }
            }
        }
    }

    #[test]
    fn keys_follow_the_documented_layout() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut out = String::new();
        requests(false, false).write(Op::Get, 42, &mut rng, &mut out);
        assert_eq!(
            out,
            r#"{"TableName":"bench","Key":{"pk":{"S":"k000000000042"}}}"#
        );
        requests(true, false).write(Op::Get, 342, &mut rng, &mut out);
        assert_eq!(
            out,
            r#"{"TableName":"bench","Key":{"pk":{"S":"p0000000003"},"sk":{"S":"s00000042"}}}"#
        );
        requests(true, false).write(Op::Query, 342, &mut rng, &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ExpressionAttributeValues"][":h"]["S"], "p0000000003");
        assert_eq!(v["Limit"], 10);
    }

    #[test]
    fn ycsb_mixes_have_their_read_shares() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut reads = |w| {
            (0..10_000)
                .filter(|_| Op::pick(w, &mut rng) == Op::Get)
                .count()
        };
        let a = reads(Workload::YcsbA);
        let b = reads(Workload::YcsbB);
        let c = reads(Workload::YcsbC);
        assert!((4_700..5_300).contains(&a), "{a}");
        assert!((9_300..9_700).contains(&b), "{b}");
        assert_eq!(c, 10_000);
    }
}
