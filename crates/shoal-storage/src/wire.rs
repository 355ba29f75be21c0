//! Compact, versioned binary codec for what replication moves between nodes: the [`Command`]s
//! a Raft log carries ([`encode_command`] / [`decode_command`]) and the outcome the leader's
//! state machine returns for each of them ([`encode_outcome`] / [`decode_outcome`]).
//!
//! Every message starts with the format version byte ([`WIRE_VERSION`], 1); a decoder rejects
//! versions it does not know. Items and attribute values use [`shoal_types::codec`]; an item is
//! length-prefixed. Integers are LEB128 varints, strings and byte strings are
//! `varint(len) bytes`, optional values are a `0`/`1` byte then the value.
//!
//! | command | layout after the version byte |
//! |---|---|
//! | Put | `1` item condition? |
//! | Delete | `2` item condition? |
//! | Update | `3` item update condition? |
//!
//! `AND` / `OR` are written n-ary (`12` / `13`, then `varint(count)` conditions), so a legacy
//! `Expected` or `ScanFilter` of any number of entries costs one nesting level. The binary
//! tags `9` / `10` of earlier builds still decode (as two-operand `And` / `Or`), so log entries
//! written before stay readable; a node of an earlier build cannot read the n-ary tags.
//!
//! Propose only what [`encode_command_checked`] accepts: it refuses a command larger than
//! [`MAX_COMMAND_LEN`] or one that [`decode_command`] would refuse (nesting beyond its
//! limits), so every replica can decode every committed entry.
//!
//! Decoding never panics, rejects trailing bytes, bounds every count by the remaining input
//! (so it never allocates more than the input justifies) and bounds recursion depth
//! ([`MAX_DEPTH`]).

use shoal_expr::{CompareOp, Condition, DocPath, Operand, PathElem, Update, UpdateValue};
use shoal_types::codec::{CodecError, decode_item, decode_value, encode_item, encode_value};
use shoal_types::{AttributeValue, Item};

use crate::{Applied, ApplyError, Command, StorageError, TxId, TxOp, TxToken};

/// The format version written as the first byte of every encoded message.
pub const WIRE_VERSION: u8 = 1;

/// Deepest nesting of conditions / update values the decoder accepts. Conditions nest only
/// through parentheses and `NOT` (`AND` / `OR` are flat), at most
/// `shoal_expr::MAX_NESTING` (32) levels; an update value's `+` / `-` chain nests one level
/// per operator, at most `shoal_expr::MAX_OPERATORS` (300). This leaves headroom while
/// bounding the recursion of the code that walks a decoded command.
pub const MAX_DEPTH: usize = 512;

/// Largest encoded command [`encode_command_checked`] accepts: twice DynamoDB's 16 MB request
/// limit (a command is never larger than the request it came from, give or take framing), and
/// well under the node-to-node frame limit (64 MiB) that carries it to the leader and followers.
pub const MAX_COMMAND_LEN: usize = 32 << 20;

/// Why bytes are not a valid encoded command or outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input is empty or ended in the middle of a value.
    #[error("wire message is truncated")]
    Truncated,
    /// The first byte names a format version this node does not know.
    #[error("unsupported wire format version {0}")]
    UnknownVersion(u8),
    /// An unknown tag byte.
    #[error("unknown {what} tag {tag} at offset {offset}")]
    UnknownTag {
        /// The kind of value being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
        /// Its offset in the input.
        offset: usize,
    },
    /// A malformed varint, an oversized count or length, or invalid UTF-8.
    #[error("malformed {what} at offset {offset}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Its offset in the input.
        offset: usize,
    },
    /// An embedded item or attribute value does not decode.
    #[error("invalid item or value at offset {offset}: {source}")]
    Value {
        /// The offset of the item or value.
        offset: usize,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// Conditions or update values nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} at offset {0}")]
    TooDeep(usize),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// An encoded command over [`MAX_COMMAND_LEN`] (refused by [`encode_command_checked`]).
    #[error("encoded command of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// [`MAX_COMMAND_LEN`].
        max: usize,
    },
}

// ---- tags ----

const CMD_PUT: u8 = 1;
const CMD_DELETE: u8 = 2;
const CMD_UPDATE: u8 = 3;
const CMD_SPLIT: u8 = 4;
const CMD_TX_PREPARE: u8 = 5;
const CMD_TX_RESOLVE: u8 = 6;
const CMD_TX_DECIDE: u8 = 7;
const CMD_TX_FORGET: u8 = 8;
const CMD_TX_READ: u8 = 9;
const CMD_TX_RELEASE: u8 = 10;
const CMD_TX_CHECK: u8 = 11;
/// [`Command::Expire`] (sent only by nodes that read it: a TTL delete of this version).
const CMD_EXPIRE: u8 = 12;
/// [`Command::SetStream`] (proposed only for tables with a stream, by nodes that read it).
const CMD_SET_STREAM: u8 = 13;

const TXOP_PUT: u8 = 1;
const TXOP_UPDATE: u8 = 2;
const TXOP_DELETE: u8 = 3;
const TXOP_CHECK: u8 = 4;

const COND_COMPARE: u8 = 1;
const COND_BETWEEN: u8 = 2;
const COND_IN: u8 = 3;
const COND_EXISTS: u8 = 4;
const COND_NOT_EXISTS: u8 = 5;
const COND_TYPE: u8 = 6;
const COND_BEGINS_WITH: u8 = 7;
const COND_CONTAINS: u8 = 8;
const COND_AND: u8 = 9;
const COND_OR: u8 = 10;
const COND_NOT: u8 = 11;
const COND_AND_N: u8 = 12;
const COND_OR_N: u8 = 13;

const OPERAND_PATH: u8 = 1;
const OPERAND_VALUE: u8 = 2;
const OPERAND_SIZE: u8 = 3;

const ELEM_NAME: u8 = 0;
const ELEM_INDEX: u8 = 1;

const UV_PATH: u8 = 1;
const UV_VALUE: u8 = 2;
const UV_IF_NOT_EXISTS: u8 = 3;
const UV_LIST_APPEND: u8 = 4;
const UV_PLUS: u8 = 5;
const UV_MINUS: u8 = 6;

const OUT_APPLIED: u8 = 0;
const OUT_CONDITION_FAILED: u8 = 1;
const OUT_VALIDATION: u8 = 2;
const OUT_COLLECTION_LIMIT: u8 = 3;
const OUT_STORAGE: u8 = 4;
const OUT_WRONG_PARTITION: u8 = 5;
const OUT_TX_CONFLICT: u8 = 6;
const OUT_TX_ABORTED: u8 = 7;
const OUT_TX_ALREADY_COMMITTED: u8 = 8;
const OUT_TX_TOKEN_MISMATCH: u8 = 9;
const OUT_TX_IN_PROGRESS: u8 = 10;

const SE_WRONG_KEY: u8 = 1;
const SE_CORRUPT: u8 = 2;
const SE_DISK_FULL: u8 = 3;
const SE_IO: u8 = 4;
const SE_SQLITE: u8 = 5;
const SE_INVALID_KEY: u8 = 6;
const SE_UNKNOWN_INDEX: u8 = 7;

/// The `context` of a [`StorageError::Sqlite`] decoded from the wire (the original context is
/// a `&'static str` of the sending node; its text is kept in the error message).
pub const REMOTE_SQLITE_CONTEXT: &str = "on the replica that applied the command";

// ---- encoding ----

/// Appends the encoding of `c` (version byte first) to `out`.
pub fn encode_command(c: &Command, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    match c {
        Command::Put { item, condition } => {
            out.push(CMD_PUT);
            put_item(item, out);
            put_opt_condition(condition.as_ref(), out);
        }
        Command::Delete { key, condition } => {
            out.push(CMD_DELETE);
            put_item(key, out);
            put_opt_condition(condition.as_ref(), out);
        }
        Command::Expire { key, condition } => {
            out.push(CMD_EXPIRE);
            put_item(key, out);
            put_opt_condition(condition.as_ref(), out);
        }
        Command::Update {
            key,
            update,
            condition,
        } => {
            out.push(CMD_UPDATE);
            put_item(key, out);
            put_update(update, out);
            put_opt_condition(condition.as_ref(), out);
        }
        Command::SetStream { setting } => {
            out.push(CMD_SET_STREAM);
            match setting {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    put_varint(u64::from(s.stream), out);
                    out.push(s.view.tag());
                    put_varint(s.partition, out);
                }
            }
        }
        Command::Split {
            start,
            end,
            epoch,
            child,
        } => {
            out.push(CMD_SPLIT);
            for n in [
                *start,
                *end,
                *epoch,
                child.child,
                child.start,
                child.end,
                child.epoch,
            ] {
                put_varint(n, out);
            }
        }
        Command::TxPrepare {
            txid,
            ts,
            primary,
            token,
            op,
        } => {
            out.push(CMD_TX_PREPARE);
            out.extend_from_slice(txid);
            put_varint(*ts, out);
            put_str(&primary.table, out);
            put_item(&primary.key, out);
            put_token(token.as_ref(), out);
            put_tx_op(op, out);
        }
        Command::TxResolve { txid, key, commit } => {
            out.push(CMD_TX_RESOLVE);
            out.extend_from_slice(txid);
            put_item(key, out);
            out.push(u8::from(*commit));
        }
        Command::TxDecide {
            txid,
            key,
            commit,
            ts,
            token,
        } => {
            out.push(CMD_TX_DECIDE);
            out.extend_from_slice(txid);
            put_item(key, out);
            out.push(u8::from(*commit));
            put_varint(*ts, out);
            put_token(token.as_ref(), out);
        }
        Command::TxForget { txid, key } => {
            out.push(CMD_TX_FORGET);
            out.extend_from_slice(txid);
            put_item(key, out);
        }
        Command::TxRead { txid, key, ts } => {
            out.push(CMD_TX_READ);
            out.extend_from_slice(txid);
            put_item(key, out);
            put_varint(*ts, out);
        }
        Command::TxCheck { txid, key } => {
            out.push(CMD_TX_CHECK);
            out.extend_from_slice(txid);
            put_item(key, out);
        }
        Command::TxRelease { txid, key } => {
            out.push(CMD_TX_RELEASE);
            out.extend_from_slice(txid);
            put_item(key, out);
        }
    }
}

fn put_token(token: Option<&TxToken>, out: &mut Vec<u8>) {
    match token {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.key);
            out.extend_from_slice(&t.request);
        }
    }
}

fn put_tx_op(op: &TxOp, out: &mut Vec<u8>) {
    match op {
        TxOp::Put { item, condition } => {
            out.push(TXOP_PUT);
            put_item(item, out);
            put_opt_condition(condition.as_ref(), out);
        }
        TxOp::Update {
            key,
            update,
            condition,
        } => {
            out.push(TXOP_UPDATE);
            put_item(key, out);
            put_update(update, out);
            put_opt_condition(condition.as_ref(), out);
        }
        TxOp::Delete { key, condition } => {
            out.push(TXOP_DELETE);
            put_item(key, out);
            put_opt_condition(condition.as_ref(), out);
        }
        TxOp::Check { key, condition } => {
            out.push(TXOP_CHECK);
            put_item(key, out);
            put_condition(condition, out);
        }
    }
}

/// Encodes `c` for proposing: the encoding of [`encode_command`], after checking that it is at
/// most [`MAX_COMMAND_LEN`] bytes and that [`decode_command`] accepts it. A command that fails
/// here must not be proposed: every replica would refuse the committed entry.
///
/// # Errors
/// [`WireError::TooLarge`], or the error [`decode_command`] returns for the encoding (e.g.
/// [`WireError::TooDeep`] for conditions or update values nested deeper than [`MAX_DEPTH`], or
/// a value nested deeper than the item codec accepts).
pub fn encode_command_checked(c: &Command) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(256);
    encode_command(c, &mut out);
    if out.len() > MAX_COMMAND_LEN {
        return Err(WireError::TooLarge {
            len: out.len(),
            max: MAX_COMMAND_LEN,
        });
    }
    decode_command(&out)?;
    Ok(out)
}

/// Appends the encoding of an optional condition (version byte first) to `out`: a filter sent
/// with a read forwarded to another node.
pub fn encode_condition(c: Option<&Condition>, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    put_opt_condition(c, out);
}

/// Decodes a condition encoded by [`encode_condition`]; the whole input must be one condition.
///
/// # Errors
/// A [`WireError`] for an unknown version, truncated, malformed, too deep or trailing data.
pub fn decode_condition(b: &[u8]) -> Result<Option<Condition>, WireError> {
    let mut r = Reader::new(b)?;
    let c = r.opt_condition()?;
    r.finish()?;
    Ok(c)
}

/// Appends the encoding of a command's outcome (version byte first) to `out`.
///
/// Every [`ApplyError`] variant round-trips; a [`StorageError`] keeps its variant and message
/// (see [`decode_outcome`] for the two variants whose source cannot be carried exactly).
pub fn encode_outcome(r: &Result<Applied, ApplyError>, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    match r {
        Ok(Applied { old, new }) => {
            out.push(OUT_APPLIED);
            put_opt_item(old.as_ref(), out);
            put_opt_item(new.as_ref(), out);
        }
        Err(ApplyError::ConditionalCheckFailed { item }) => {
            out.push(OUT_CONDITION_FAILED);
            put_opt_item(item.as_ref(), out);
        }
        Err(ApplyError::Validation(msg)) => {
            out.push(OUT_VALIDATION);
            put_str(msg, out);
        }
        Err(ApplyError::ItemCollectionSizeLimitExceeded) => out.push(OUT_COLLECTION_LIMIT),
        Err(ApplyError::WrongPartition) => out.push(OUT_WRONG_PARTITION),
        Err(ApplyError::TransactionConflict) => out.push(OUT_TX_CONFLICT),
        Err(ApplyError::TransactionAborted) => out.push(OUT_TX_ABORTED),
        Err(ApplyError::TxAlreadyCommitted) => out.push(OUT_TX_ALREADY_COMMITTED),
        Err(ApplyError::TxTokenMismatch) => out.push(OUT_TX_TOKEN_MISMATCH),
        Err(ApplyError::TxInProgress) => out.push(OUT_TX_IN_PROGRESS),
        Err(ApplyError::Storage(e)) => {
            out.push(OUT_STORAGE);
            put_storage_error(e, out);
        }
    }
}

fn put_storage_error(e: &StorageError, out: &mut Vec<u8>) {
    match e {
        StorageError::WrongKey { path, message } => {
            out.push(SE_WRONG_KEY);
            put_str(&path.to_string_lossy(), out);
            put_str(message, out);
        }
        StorageError::Corrupt { context } => {
            out.push(SE_CORRUPT);
            put_str(context, out);
        }
        StorageError::DiskFull { context } => {
            out.push(SE_DISK_FULL);
            put_str(context, out);
        }
        StorageError::Io { context, source } => {
            out.push(SE_IO);
            put_str(context, out);
            put_str(&source.to_string(), out);
        }
        StorageError::Sqlite { context, source } => {
            out.push(SE_SQLITE);
            let code = match source {
                rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
                _ => rusqlite::ffi::SQLITE_ERROR,
            };
            put_varint(u64::from(code.cast_unsigned()), out);
            put_str(&format!("{context}: {source}"), out);
        }
        StorageError::InvalidKey(msg) => {
            out.push(SE_INVALID_KEY);
            put_str(msg, out);
        }
        StorageError::UnknownIndex(id) => {
            out.push(SE_UNKNOWN_INDEX);
            put_varint(u64::from(*id), out);
        }
    }
}

fn put_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_len(n: usize, out: &mut Vec<u8>) {
    put_varint(u64::try_from(n).unwrap_or(u64::MAX), out);
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    put_len(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn put_item(item: &Item, out: &mut Vec<u8>) {
    let mut buf = Vec::new();
    encode_item(item, &mut buf);
    put_len(buf.len(), out);
    out.extend_from_slice(&buf);
}

fn put_opt_item(item: Option<&Item>, out: &mut Vec<u8>) {
    match item {
        None => out.push(0),
        Some(item) => {
            out.push(1);
            put_item(item, out);
        }
    }
}

fn put_opt_condition(c: Option<&Condition>, out: &mut Vec<u8>) {
    match c {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            put_condition(c, out);
        }
    }
}

fn put_path(p: &DocPath, out: &mut Vec<u8>) {
    put_len(p.elems.len(), out);
    for e in &p.elems {
        match e {
            PathElem::Name(n) => {
                out.push(ELEM_NAME);
                put_str(n, out);
            }
            PathElem::Index(i) => {
                out.push(ELEM_INDEX);
                put_len(*i, out);
            }
        }
    }
}

fn put_operand(o: &Operand, out: &mut Vec<u8>) {
    match o {
        Operand::Path(p) => {
            out.push(OPERAND_PATH);
            put_path(p, out);
        }
        Operand::Value(v) => {
            out.push(OPERAND_VALUE);
            encode_value(v, out);
        }
        Operand::Size(p) => {
            out.push(OPERAND_SIZE);
            put_path(p, out);
        }
    }
}

fn compare_op_tag(op: CompareOp) -> u8 {
    match op {
        CompareOp::Eq => 0,
        CompareOp::Ne => 1,
        CompareOp::Lt => 2,
        CompareOp::Le => 3,
        CompareOp::Gt => 4,
        CompareOp::Ge => 5,
    }
}

fn put_condition(c: &Condition, out: &mut Vec<u8>) {
    match c {
        Condition::Compare { op, left, right } => {
            out.push(COND_COMPARE);
            out.push(compare_op_tag(*op));
            put_operand(left, out);
            put_operand(right, out);
        }
        Condition::Between { value, low, high } => {
            out.push(COND_BETWEEN);
            put_operand(value, out);
            put_operand(low, out);
            put_operand(high, out);
        }
        Condition::In { value, list } => {
            out.push(COND_IN);
            put_operand(value, out);
            put_len(list.len(), out);
            for o in list {
                put_operand(o, out);
            }
        }
        Condition::AttributeExists(p) => {
            out.push(COND_EXISTS);
            put_path(p, out);
        }
        Condition::AttributeNotExists(p) => {
            out.push(COND_NOT_EXISTS);
            put_path(p, out);
        }
        Condition::AttributeType(p, o) => {
            out.push(COND_TYPE);
            put_path(p, out);
            put_operand(o, out);
        }
        Condition::BeginsWith(a, b) => {
            out.push(COND_BEGINS_WITH);
            put_operand(a, out);
            put_operand(b, out);
        }
        Condition::Contains(a, b) => {
            out.push(COND_CONTAINS);
            put_operand(a, out);
            put_operand(b, out);
        }
        Condition::And(cs) => {
            out.push(COND_AND_N);
            put_len(cs.len(), out);
            for c in cs {
                put_condition(c, out);
            }
        }
        Condition::Or(cs) => {
            out.push(COND_OR_N);
            put_len(cs.len(), out);
            for c in cs {
                put_condition(c, out);
            }
        }
        Condition::Not(a) => {
            out.push(COND_NOT);
            put_condition(a, out);
        }
    }
}

fn put_update_value(v: &UpdateValue, out: &mut Vec<u8>) {
    match v {
        UpdateValue::Path(p) => {
            out.push(UV_PATH);
            put_path(p, out);
        }
        UpdateValue::Value(v) => {
            out.push(UV_VALUE);
            encode_value(v, out);
        }
        UpdateValue::IfNotExists(p, v) => {
            out.push(UV_IF_NOT_EXISTS);
            put_path(p, out);
            put_update_value(v, out);
        }
        UpdateValue::ListAppend(a, b) => {
            out.push(UV_LIST_APPEND);
            put_update_value(a, out);
            put_update_value(b, out);
        }
        UpdateValue::Plus(a, b) => {
            out.push(UV_PLUS);
            put_update_value(a, out);
            put_update_value(b, out);
        }
        UpdateValue::Minus(a, b) => {
            out.push(UV_MINUS);
            put_update_value(a, out);
            put_update_value(b, out);
        }
    }
}

fn put_update(u: &Update, out: &mut Vec<u8>) {
    put_len(u.set.len(), out);
    for (p, v) in &u.set {
        put_path(p, out);
        put_update_value(v, out);
    }
    put_len(u.remove.len(), out);
    for p in &u.remove {
        put_path(p, out);
    }
    put_len(u.add.len(), out);
    for (p, v) in &u.add {
        put_path(p, out);
        encode_value(v, out);
    }
    put_len(u.delete.len(), out);
    for (p, v) in &u.delete {
        put_path(p, out);
        encode_value(v, out);
    }
}

// ---- decoding ----

/// Whether `b`, encoded by [`encode_command`], is an item write (a put, delete or update), not a
/// split: read from its first two bytes, without decoding it.
pub fn is_item_write(b: &[u8]) -> bool {
    matches!(b, [WIRE_VERSION, CMD_PUT | CMD_DELETE | CMD_UPDATE, ..])
}

/// Whether `b`, encoded by [`encode_command`], is a transaction's prepare: an item write that
/// costs twice the units ([`Command::TxPrepare`]).
pub fn is_tx_prepare(b: &[u8]) -> bool {
    matches!(b, [WIRE_VERSION, CMD_TX_PREPARE, ..])
}

/// Whether `b`, encoded by [`encode_command`], is a transaction's read ([`Command::TxRead`]),
/// metered as a read.
pub fn is_tx_read(b: &[u8]) -> bool {
    matches!(b, [WIRE_VERSION, CMD_TX_READ, ..])
}

/// Decodes a command encoded by [`encode_command`]; the whole input must be one command.
///
/// # Errors
/// A [`WireError`] for an unknown version, truncated, malformed or trailing data.
pub fn decode_command(b: &[u8]) -> Result<Command, WireError> {
    let mut r = Reader::new(b)?;
    let offset = r.pos;
    let cmd = match r.byte()? {
        CMD_PUT => Command::Put {
            item: r.item()?,
            condition: r.opt_condition()?,
        },
        CMD_DELETE => Command::Delete {
            key: r.item()?,
            condition: r.opt_condition()?,
        },
        CMD_EXPIRE => Command::Expire {
            key: r.item()?,
            condition: r.opt_condition()?,
        },
        CMD_UPDATE => Command::Update {
            key: r.item()?,
            update: r.update()?,
            condition: r.opt_condition()?,
        },
        CMD_SET_STREAM => Command::SetStream {
            setting: match r.byte()? {
                0 => None,
                1 => {
                    let at = r.pos;
                    let malformed = |what| WireError::Malformed { what, offset: at };
                    let stream = u32::try_from(r.varint()?).map_err(|_| malformed("stream id"))?;
                    let tag = r.byte()?;
                    let view = crate::StreamViewType::from_tag(tag)
                        .ok_or_else(|| malformed("stream view type"))?;
                    Some(crate::StreamSetting {
                        stream,
                        view,
                        partition: r.varint()?,
                    })
                }
                tag => {
                    return Err(WireError::UnknownTag {
                        what: "stream setting",
                        tag,
                        offset: r.pos,
                    });
                }
            },
        },
        CMD_SPLIT => Command::Split {
            start: r.varint()?,
            end: r.varint()?,
            epoch: r.varint()?,
            child: crate::SplitChild {
                child: r.varint()?,
                start: r.varint()?,
                end: r.varint()?,
                epoch: r.varint()?,
            },
        },
        CMD_TX_PREPARE => Command::TxPrepare {
            txid: r.txid()?,
            ts: r.varint()?,
            primary: crate::TxPrimary {
                table: r.string()?,
                key: r.item()?,
            },
            token: r.token()?,
            op: r.tx_op()?,
        },
        CMD_TX_RESOLVE => Command::TxResolve {
            txid: r.txid()?,
            key: r.item()?,
            commit: r.flag("commit flag")?,
        },
        CMD_TX_DECIDE => Command::TxDecide {
            txid: r.txid()?,
            key: r.item()?,
            commit: r.flag("commit flag")?,
            ts: r.varint()?,
            token: r.token()?,
        },
        CMD_TX_FORGET => Command::TxForget {
            txid: r.txid()?,
            key: r.item()?,
        },
        CMD_TX_READ => Command::TxRead {
            txid: r.txid()?,
            key: r.item()?,
            ts: r.varint()?,
        },
        CMD_TX_CHECK => Command::TxCheck {
            txid: r.txid()?,
            key: r.item()?,
        },
        CMD_TX_RELEASE => Command::TxRelease {
            txid: r.txid()?,
            key: r.item()?,
        },
        tag => {
            return Err(WireError::UnknownTag {
                what: "command",
                tag,
                offset,
            });
        }
    };
    r.finish()?;
    Ok(cmd)
}

/// Decodes an outcome encoded by [`encode_outcome`]; the whole input must be one outcome.
///
/// Storage errors decode to the same [`StorageError`] variant with the same message, except
/// that an [`StorageError::Io`] source becomes an `io::Error` of kind `Other` carrying the
/// original message, and a [`StorageError::Sqlite`] keeps SQLite's extended error code and its
/// message under the context [`REMOTE_SQLITE_CONTEXT`].
///
/// # Errors
/// A [`WireError`] for an unknown version, truncated, malformed or trailing data.
pub fn decode_outcome(b: &[u8]) -> Result<Result<Applied, ApplyError>, WireError> {
    let mut r = Reader::new(b)?;
    let offset = r.pos;
    let outcome = match r.byte()? {
        OUT_APPLIED => Ok(Applied {
            old: r.opt_item()?,
            new: r.opt_item()?,
        }),
        OUT_CONDITION_FAILED => Err(ApplyError::ConditionalCheckFailed {
            item: r.opt_item()?,
        }),
        OUT_VALIDATION => Err(ApplyError::Validation(r.string()?)),
        OUT_COLLECTION_LIMIT => Err(ApplyError::ItemCollectionSizeLimitExceeded),
        OUT_WRONG_PARTITION => Err(ApplyError::WrongPartition),
        OUT_TX_CONFLICT => Err(ApplyError::TransactionConflict),
        OUT_TX_ABORTED => Err(ApplyError::TransactionAborted),
        OUT_TX_ALREADY_COMMITTED => Err(ApplyError::TxAlreadyCommitted),
        OUT_TX_TOKEN_MISMATCH => Err(ApplyError::TxTokenMismatch),
        OUT_TX_IN_PROGRESS => Err(ApplyError::TxInProgress),
        OUT_STORAGE => Err(ApplyError::Storage(r.storage_error()?)),
        tag => {
            return Err(WireError::UnknownTag {
                what: "outcome",
                tag,
                offset,
            });
        }
    };
    r.finish()?;
    Ok(outcome)
}

/// The decoded `AND` / `OR` of `operands`, exactly as encoded (not flattened).
fn join(or: bool, operands: Vec<Condition>) -> Condition {
    if or {
        Condition::Or(operands)
    } else {
        Condition::And(operands)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned after a known version byte.
    fn new(bytes: &'a [u8]) -> Result<Self, WireError> {
        match bytes.first() {
            None => Err(WireError::Truncated),
            Some(&WIRE_VERSION) => Ok(Reader { bytes, pos: 1 }),
            Some(&v) => Err(WireError::UnknownVersion(v)),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        let b = *self.bytes.get(self.pos).ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let offset = self.pos;
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(WireError::Malformed {
                    what: "varint",
                    offset,
                });
            }
            n |= low << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(WireError::Malformed {
            what: "varint",
            offset,
        })
    }

    /// A length of bytes that follow: must fit in the remaining input.
    fn len(&mut self) -> Result<usize, WireError> {
        let offset = self.pos;
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            Ok(_) => Err(WireError::Truncated),
            Err(_) => Err(WireError::Malformed {
                what: "length",
                offset,
            }),
        }
    }

    /// A count of elements that each take at least one byte: bounded by the remaining input.
    fn count(&mut self) -> Result<usize, WireError> {
        self.len()
    }

    fn string(&mut self) -> Result<String, WireError> {
        let n = self.len()?;
        let offset = self.pos;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| WireError::Malformed {
            what: "UTF-8 string",
            offset,
        })
    }

    fn txid(&mut self) -> Result<TxId, WireError> {
        let raw = self.take(16)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(raw);
        Ok(id)
    }

    fn token(&mut self) -> Result<Option<TxToken>, WireError> {
        if self.flag("client token")? {
            Ok(Some(TxToken {
                key: self.txid()?,
                request: self.txid()?,
            }))
        } else {
            Ok(None)
        }
    }

    fn tx_op(&mut self) -> Result<TxOp, WireError> {
        let offset = self.pos;
        Ok(match self.byte()? {
            TXOP_PUT => TxOp::Put {
                item: self.item()?,
                condition: self.opt_condition()?,
            },
            TXOP_UPDATE => TxOp::Update {
                key: self.item()?,
                update: self.update()?,
                condition: self.opt_condition()?,
            },
            TXOP_DELETE => TxOp::Delete {
                key: self.item()?,
                condition: self.opt_condition()?,
            },
            TXOP_CHECK => TxOp::Check {
                key: self.item()?,
                condition: self.condition()?,
            },
            tag => {
                return Err(WireError::UnknownTag {
                    what: "transaction action",
                    tag,
                    offset,
                });
            }
        })
    }

    fn item(&mut self) -> Result<Item, WireError> {
        let n = self.len()?;
        let offset = self.pos;
        let raw = self.take(n)?;
        decode_item(raw).map_err(|source| WireError::Value { offset, source })
    }

    fn opt_item(&mut self) -> Result<Option<Item>, WireError> {
        if self.flag("optional item")? {
            self.item().map(Some)
        } else {
            Ok(None)
        }
    }

    fn value(&mut self) -> Result<AttributeValue, WireError> {
        let offset = self.pos;
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let (v, used) = decode_value(rest).map_err(|source| match source {
            CodecError::Truncated => WireError::Truncated,
            source => WireError::Value { offset, source },
        })?;
        self.pos = self.pos.saturating_add(used);
        Ok(v)
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, WireError> {
        let offset = self.pos;
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(WireError::UnknownTag { what, tag, offset }),
        }
    }

    /// A document path; enforces [`DocPath`]'s invariant (non-empty, starting with a name).
    fn path(&mut self) -> Result<DocPath, WireError> {
        let start = self.pos;
        let n = self.count()?;
        if n == 0 || self.bytes.get(self.pos) != Some(&ELEM_NAME) {
            return Err(WireError::Malformed {
                what: "document path",
                offset: start,
            });
        }
        let mut elems = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = self.pos;
            elems.push(match self.byte()? {
                ELEM_NAME => PathElem::Name(self.string()?),
                ELEM_INDEX => {
                    let offset = self.pos;
                    let i = self.varint()?;
                    PathElem::Index(usize::try_from(i).map_err(|_| WireError::Malformed {
                        what: "list index",
                        offset,
                    })?)
                }
                tag => {
                    return Err(WireError::UnknownTag {
                        what: "path element",
                        tag,
                        offset,
                    });
                }
            });
        }
        Ok(DocPath { elems })
    }

    fn operand(&mut self) -> Result<Operand, WireError> {
        let offset = self.pos;
        Ok(match self.byte()? {
            OPERAND_PATH => Operand::Path(self.path()?),
            OPERAND_VALUE => Operand::Value(self.value()?),
            OPERAND_SIZE => Operand::Size(self.path()?),
            tag => {
                return Err(WireError::UnknownTag {
                    what: "operand",
                    tag,
                    offset,
                });
            }
        })
    }

    fn compare_op(&mut self) -> Result<CompareOp, WireError> {
        let offset = self.pos;
        Ok(match self.byte()? {
            0 => CompareOp::Eq,
            1 => CompareOp::Ne,
            2 => CompareOp::Lt,
            3 => CompareOp::Le,
            4 => CompareOp::Gt,
            5 => CompareOp::Ge,
            tag => {
                return Err(WireError::UnknownTag {
                    what: "comparison operator",
                    tag,
                    offset,
                });
            }
        })
    }

    fn opt_condition(&mut self) -> Result<Option<Condition>, WireError> {
        if self.flag("optional condition")? {
            self.condition().map(Some)
        } else {
            Ok(None)
        }
    }

    /// A condition. Iterative (an explicit stack of pending `AND`/`OR`/`NOT`), so a deep
    /// nesting costs heap, not thread stack; nesting is still bounded by [`MAX_DEPTH`] for the
    /// code that later walks the condition recursively.
    fn condition(&mut self) -> Result<Condition, WireError> {
        /// An `AND`/`OR` waiting for `left` more operands after those in `done`, or a `NOT`.
        enum Pending {
            Join {
                or: bool,
                left: usize,
                done: Vec<Condition>,
            },
            Not,
        }
        let mut stack: Vec<Pending> = Vec::new();
        loop {
            let offset = self.pos;
            if stack.len() >= MAX_DEPTH {
                return Err(WireError::TooDeep(offset));
            }
            let tag = self.byte()?;
            let pending = match tag {
                COND_AND | COND_OR => Some((tag == COND_OR, 2)),
                COND_AND_N | COND_OR_N => Some((tag == COND_OR_N, self.count()?)),
                COND_NOT => {
                    stack.push(Pending::Not);
                    continue;
                }
                _ => None,
            };
            let mut done = match pending {
                Some((or, left)) if left > 0 => {
                    stack.push(Pending::Join {
                        or,
                        left,
                        done: Vec::with_capacity(left.min(1024)),
                    });
                    continue;
                }
                Some((or, _)) => join(or, Vec::new()),
                None => self.condition_leaf(tag, offset)?,
            };
            loop {
                match stack.pop() {
                    None => return Ok(done),
                    Some(Pending::Not) => done = Condition::Not(Box::new(done)),
                    Some(Pending::Join {
                        or,
                        left,
                        done: mut operands,
                    }) => {
                        operands.push(done);
                        if left > 1 {
                            stack.push(Pending::Join {
                                or,
                                left: left - 1,
                                done: operands,
                            });
                            break;
                        }
                        done = join(or, operands);
                    }
                }
            }
        }
    }

    fn condition_leaf(&mut self, tag: u8, offset: usize) -> Result<Condition, WireError> {
        Ok(match tag {
            COND_COMPARE => Condition::Compare {
                op: self.compare_op()?,
                left: self.operand()?,
                right: self.operand()?,
            },
            COND_BETWEEN => Condition::Between {
                value: self.operand()?,
                low: self.operand()?,
                high: self.operand()?,
            },
            COND_IN => {
                let value = self.operand()?;
                let n = self.count()?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(self.operand()?);
                }
                Condition::In { value, list }
            }
            COND_EXISTS => Condition::AttributeExists(self.path()?),
            COND_NOT_EXISTS => Condition::AttributeNotExists(self.path()?),
            COND_TYPE => Condition::AttributeType(self.path()?, self.operand()?),
            COND_BEGINS_WITH => Condition::BeginsWith(self.operand()?, self.operand()?),
            COND_CONTAINS => Condition::Contains(self.operand()?, self.operand()?),
            tag => {
                return Err(WireError::UnknownTag {
                    what: "condition",
                    tag,
                    offset,
                });
            }
        })
    }

    /// An update value, decoded iteratively as [`Reader::condition`].
    fn update_value(&mut self) -> Result<UpdateValue, WireError> {
        enum Pending {
            IfNotExists(DocPath),
            /// The binary operator's tag and its left operand once decoded.
            Binary(u8, Option<Box<UpdateValue>>),
        }
        let mut stack: Vec<Pending> = Vec::new();
        loop {
            let offset = self.pos;
            if stack.len() >= MAX_DEPTH {
                return Err(WireError::TooDeep(offset));
            }
            let mut done = match self.byte()? {
                UV_IF_NOT_EXISTS => {
                    let p = self.path()?;
                    stack.push(Pending::IfNotExists(p));
                    continue;
                }
                tag @ (UV_LIST_APPEND | UV_PLUS | UV_MINUS) => {
                    stack.push(Pending::Binary(tag, None));
                    continue;
                }
                tag => self.update_value_leaf(tag, offset)?,
            };
            loop {
                match stack.pop() {
                    None => return Ok(done),
                    Some(Pending::IfNotExists(p)) => {
                        done = UpdateValue::IfNotExists(p, Box::new(done));
                    }
                    Some(Pending::Binary(tag, None)) => {
                        stack.push(Pending::Binary(tag, Some(Box::new(done))));
                        break;
                    }
                    Some(Pending::Binary(tag, Some(a))) => {
                        let b = Box::new(done);
                        done = match tag {
                            UV_LIST_APPEND => UpdateValue::ListAppend(a, b),
                            UV_PLUS => UpdateValue::Plus(a, b),
                            _ => UpdateValue::Minus(a, b),
                        };
                    }
                }
            }
        }
    }

    fn update_value_leaf(&mut self, tag: u8, offset: usize) -> Result<UpdateValue, WireError> {
        match tag {
            UV_PATH => Ok(UpdateValue::Path(self.path()?)),
            UV_VALUE => Ok(UpdateValue::Value(self.value()?)),
            tag => Err(WireError::UnknownTag {
                what: "update value",
                tag,
                offset,
            }),
        }
    }

    fn update(&mut self) -> Result<Update, WireError> {
        let n = self.count()?;
        let mut set = Vec::with_capacity(n);
        for _ in 0..n {
            set.push((self.path()?, self.update_value()?));
        }
        let n = self.count()?;
        let mut remove = Vec::with_capacity(n);
        for _ in 0..n {
            remove.push(self.path()?);
        }
        let n = self.count()?;
        let mut add = Vec::with_capacity(n);
        for _ in 0..n {
            add.push((self.path()?, self.value()?));
        }
        let n = self.count()?;
        let mut delete = Vec::with_capacity(n);
        for _ in 0..n {
            delete.push((self.path()?, self.value()?));
        }
        Ok(Update {
            set,
            remove,
            add,
            delete,
        })
    }

    fn storage_error(&mut self) -> Result<StorageError, WireError> {
        let offset = self.pos;
        Ok(match self.byte()? {
            SE_WRONG_KEY => StorageError::WrongKey {
                path: self.string()?.into(),
                message: self.string()?,
            },
            SE_CORRUPT => StorageError::Corrupt {
                context: self.string()?,
            },
            SE_DISK_FULL => StorageError::DiskFull {
                context: self.string()?,
            },
            SE_IO => StorageError::Io {
                context: self.string()?,
                source: std::io::Error::other(self.string()?),
            },
            SE_SQLITE => {
                let at = self.pos;
                let code = u32::try_from(self.varint()?).map_err(|_| WireError::Malformed {
                    what: "SQLite error code",
                    offset: at,
                })?;
                let message = self.string()?;
                StorageError::Sqlite {
                    context: REMOTE_SQLITE_CONTEXT,
                    source: rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(code.cast_signed()),
                        Some(message),
                    ),
                }
            }
            SE_INVALID_KEY => StorageError::InvalidKey(self.string()?),
            SE_UNKNOWN_INDEX => {
                let at = self.pos;
                StorageError::UnknownIndex(u32::try_from(self.varint()?).map_err(|_| {
                    WireError::Malformed {
                        what: "index id",
                        offset: at,
                    }
                })?)
            }
            tag => {
                return Err(WireError::UnknownTag {
                    what: "storage error",
                    tag,
                    offset,
                });
            }
        })
    }
}
