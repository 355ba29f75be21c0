//! Shard iterators: the opaque `ShardIterator` strings `GetShardIterator` and `GetRecords` hand
//! out, as DynamoDB's look: `<stream ARN>|1|<hex payload>`. The payload holds the shard, the
//! position in it, when the iterator was issued and a CRC-32 over all of it with the ARN, so a
//! mangled iterator is recognised; it is not secret (a client that forges one can read only
//! what its policy lets it read of that stream: authorization checks the ARN it names).
//!
//! An iterator expires [`LIFETIME_MS`] (15 minutes) after it was issued, as DynamoDB's do.

use shoal_catalog::{RecordsFrom, ShardId};

use crate::error::{ApiError, ErrorKind};

/// How long an iterator may be used: 15 minutes.
pub const LIFETIME_MS: u64 = 15 * 60 * 1000;

/// The format version after the ARN.
const VERSION: &str = "1";

/// Payload bytes: partition, epoch, position kind, sequence number, issue time, CRC-32.
const PAYLOAD_LEN: usize = 8 + 8 + 1 + 8 + 8 + 4;

/// A decoded shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    /// The stream's ARN.
    pub stream_arn: String,
    pub shard: ShardId,
    /// Where the next read starts.
    pub from: RecordsFrom,
    /// When it was issued (ms since the epoch).
    pub issued_ms: u64,
}

impl ShardIterator {
    /// The `ShardIterator` string.
    pub fn encode(&self) -> String {
        let (kind, seq) = match self.from {
            RecordsFrom::TrimHorizon => (0u8, 0),
            RecordsFrom::Latest => (1, 0),
            RecordsFrom::At(s) => (2, s),
            RecordsFrom::After(s) => (3, s),
        };
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&self.shard.partition.to_be_bytes());
        payload.extend_from_slice(&self.shard.epoch.to_be_bytes());
        payload.push(kind);
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.extend_from_slice(&self.issued_ms.to_be_bytes());
        let crc = checksum(&self.stream_arn, &payload);
        payload.extend_from_slice(&crc.to_be_bytes());
        format!("{}|{VERSION}|{}", self.stream_arn, hex::encode(payload))
    }

    /// Decodes an [`ShardIterator::encode`] string; `None` for anything else.
    pub fn decode(s: &str) -> Option<ShardIterator> {
        let mut parts = s.rsplitn(3, '|');
        let payload = hex::decode(parts.next()?).ok()?;
        if parts.next()? != VERSION {
            return None;
        }
        let stream_arn = parts.next()?;
        if payload.len() != PAYLOAD_LEN || !stream_arn.contains("/stream/") {
            return None;
        }
        let (body, crc) = payload.split_at(PAYLOAD_LEN - 4);
        if checksum(stream_arn, body).to_be_bytes() != crc {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?))
        };
        let seq = u64_at(17)?;
        let from = match body.get(16)? {
            0 => RecordsFrom::TrimHorizon,
            1 => RecordsFrom::Latest,
            2 => RecordsFrom::At(seq),
            3 => RecordsFrom::After(seq),
            _ => return None,
        };
        Some(ShardIterator {
            stream_arn: stream_arn.to_string(),
            shard: ShardId {
                partition: u64_at(0)?,
                epoch: u64_at(8)?,
            },
            from,
            issued_ms: u64_at(25)?,
        })
    }

    /// The iterator named by `s`, if it is valid and not expired at `now_ms`.
    ///
    /// # Errors
    /// `ValidationException` for a string no [`ShardIterator::encode`] made;
    /// `ExpiredIteratorException` once [`LIFETIME_MS`] passed since it was issued.
    pub fn parse(s: &str, now_ms: u64) -> Result<ShardIterator, ApiError> {
        let it = ShardIterator::decode(s)
            .ok_or_else(|| ApiError::validation(format!("Invalid ShardIterator: {s}")))?;
        if now_ms.saturating_sub(it.issued_ms) > LIFETIME_MS {
            return Err(ApiError::new(
                ErrorKind::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is \
                     {} which is further in the future than the tolerated delay of {LIFETIME_MS} \
                     milliseconds.",
                    timestamp(it.issued_ms),
                    timestamp(now_ms)
                ),
            ));
        }
        Ok(it)
    }
}

fn checksum(arn: &str, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(arn.as_bytes());
    h.update(body);
    h.finalize()
}

/// `ms` since the epoch as `YYYY-MM-DDThh:mm:ss.sssZ`.
fn timestamp(ms: u64) -> String {
    format!("{}Z", super::spec::label(ms))
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-01-01T00:00:00.000";

    fn it(from: RecordsFrom) -> ShardIterator {
        ShardIterator {
            stream_arn: ARN.into(),
            shard: ShardId {
                partition: 7,
                epoch: 3,
            },
            from,
            issued_ms: 1_000_000,
        }
    }

    #[test]
    fn iterators_round_trip() {
        for from in [
            RecordsFrom::TrimHorizon,
            RecordsFrom::Latest,
            RecordsFrom::At(42),
            RecordsFrom::After(u64::MAX - 1),
        ] {
            let s = it(from).encode();
            assert!(s.starts_with(&format!("{ARN}|1|")), "{s}");
            assert!(s.len() <= 2048);
            assert_eq!(ShardIterator::decode(&s), Some(it(from)));
            assert_eq!(
                ShardIterator::parse(&s, 1_000_000 + LIFETIME_MS).unwrap(),
                it(from)
            );
        }
    }

    #[test]
    fn mangled_iterators_are_invalid() {
        let s = it(RecordsFrom::At(42)).encode();
        let mut flipped = s.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let other_arn = s.replace("table/t/", "table/u/");
        for bad in [
            "",
            "garbage",
            "a|1|00",
            &s[..s.len() - 2],
            &String::from_utf8(flipped).unwrap(),
            &other_arn,
            &s.replace("|1|", "|2|"),
        ] {
            assert_eq!(ShardIterator::decode(bad), None, "{bad}");
            let e = ShardIterator::parse(bad, 0).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Validation);
            assert!(
                e.message.starts_with("Invalid ShardIterator"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn iterators_expire_after_15_minutes() {
        let s = it(RecordsFrom::TrimHorizon).encode();
        let e = ShardIterator::parse(&s, 1_000_001 + LIFETIME_MS).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ExpiredIterator);
        assert!(
            e.message.starts_with(
                "Iterator expired. The iterator was created at time 1970-01-01T00:16:40.000Z"
            ),
            "{}",
            e.message
        );
    }
}
