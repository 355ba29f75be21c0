//! Compact binary encoding of items for storage.
//!
//! An item is `varint(count)` followed by `varint(name length) name value` per attribute, in name
//! order. A value is a tag byte followed by its payload:
//!
//! | tag | type | payload |
//! |-----|------|---------|
//! | 1 | `S` | `varint(len)` UTF-8 bytes |
//! | 2 | `N` | [`Number::encode_ordered`] (self-delimiting) |
//! | 3 | `B` | `varint(len)` bytes |
//! | 4 / 5 | `BOOL` false / true | — |
//! | 6 | `NULL` | — |
//! | 7 | `M` | an item, as above |
//! | 8 | `L` | `varint(count)` values |
//! | 9 / 10 / 11 | `SS` / `NS` / `BS` | `varint(count)` elements as for `S` / `N` / `B` |
//!
//! Varints are LEB128 (7 bits per byte, low first). [`decode_item`] rejects any malformed or
//! truncated input with a [`CodecError`]; it never panics and never allocates more than the input
//! could hold.

use crate::{AttributeValue, Item, Number};

const TAG_S: u8 = 1;
const TAG_N: u8 = 2;
const TAG_B: u8 = 3;
const TAG_FALSE: u8 = 4;
const TAG_TRUE: u8 = 5;
const TAG_NULL: u8 = 6;
const TAG_M: u8 = 7;
const TAG_L: u8 = 8;
const TAG_SS: u8 = 9;
const TAG_NS: u8 = 10;
const TAG_BS: u8 = 11;

/// Deepest nesting [`decode_item`] accepts; DynamoDB allows 32 levels, this leaves headroom while
/// bounding recursion on corrupt input.
const MAX_DECODE_DEPTH: usize = 64;

/// Why stored bytes are not a valid encoded item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended in the middle of a value.
    #[error("encoded item is truncated")]
    Truncated,
    /// An unknown type tag.
    #[error("unknown value tag {tag:#04x} at offset {offset}")]
    UnknownTag { tag: u8, offset: usize },
    /// A varint longer than 10 bytes or above `usize`.
    #[error("invalid length varint at offset {offset}")]
    BadVarint { offset: usize },
    /// A string or attribute name that is not UTF-8.
    #[error("invalid UTF-8 at offset {offset}")]
    BadUtf8 { offset: usize },
    /// A number that is not a canonical [`Number::encode_ordered`] encoding.
    #[error("invalid number at offset {offset}")]
    BadNumber { offset: usize },
    /// The same attribute name twice in one map.
    #[error("duplicate attribute name at offset {offset}")]
    DuplicateName { offset: usize },
    /// Nesting deeper than the decoder accepts.
    #[error("nesting too deep at offset {offset}")]
    TooDeep { offset: usize },
    /// Bytes left over after the item.
    #[error("{0} trailing bytes after the item")]
    TrailingBytes(usize),
}

/// Appends the encoding of `item` to `out`.
pub fn encode_item(item: &Item, out: &mut Vec<u8>) {
    write_varint(item.len(), out);
    for (name, v) in item {
        write_bytes(name.as_bytes(), out);
        encode_value(v, out);
    }
}

/// Appends the encoding of one value (tag and payload) to `out`.
pub fn encode_value(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => {
            out.push(TAG_S);
            write_bytes(s.as_bytes(), out);
        }
        AttributeValue::N(n) => {
            out.push(TAG_N);
            n.encode_ordered(out);
        }
        AttributeValue::B(b) => {
            out.push(TAG_B);
            write_bytes(b, out);
        }
        AttributeValue::Bool(false) => out.push(TAG_FALSE),
        AttributeValue::Bool(true) => out.push(TAG_TRUE),
        AttributeValue::Null => out.push(TAG_NULL),
        AttributeValue::M(m) => {
            out.push(TAG_M);
            encode_item(m, out);
        }
        AttributeValue::L(l) => {
            out.push(TAG_L);
            write_varint(l.len(), out);
            for v in l {
                encode_value(v, out);
            }
        }
        AttributeValue::Ss(ss) => {
            out.push(TAG_SS);
            write_varint(ss.len(), out);
            for s in ss {
                write_bytes(s.as_bytes(), out);
            }
        }
        AttributeValue::Ns(ns) => {
            out.push(TAG_NS);
            write_varint(ns.len(), out);
            for n in ns {
                n.encode_ordered(out);
            }
        }
        AttributeValue::Bs(bs) => {
            out.push(TAG_BS);
            write_varint(bs.len(), out);
            for b in bs {
                write_bytes(b, out);
            }
        }
    }
}

/// Decodes an item encoded by [`encode_item`]; the whole input must be one item.
///
/// # Errors
/// A [`CodecError`] for truncated, malformed or trailing data.
pub fn decode_item(bytes: &[u8]) -> Result<Item, CodecError> {
    let mut r = Reader { bytes, pos: 0 };
    let item = r.item(0)?;
    let rest = bytes.len().saturating_sub(r.pos);
    if rest != 0 {
        return Err(CodecError::TrailingBytes(rest));
    }
    Ok(item)
}

/// Decodes one value encoded by [`encode_value`] at the start of `bytes`, returning it and the
/// number of bytes consumed.
///
/// # Errors
/// A [`CodecError`] for truncated or malformed data.
pub fn decode_value(bytes: &[u8]) -> Result<(AttributeValue, usize), CodecError> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

fn write_varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_varint(b.len(), out);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.bytes.get(self.pos).ok_or(CodecError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<usize, CodecError> {
        let offset = self.pos;
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(CodecError::BadVarint { offset });
            }
            n |= low << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| CodecError::BadVarint { offset });
            }
        }
        Err(CodecError::BadVarint { offset })
    }

    /// A count of elements that each take at least one byte: bounded by the remaining input.
    fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        if n > self.bytes.len().saturating_sub(self.pos) {
            return Err(CodecError::Truncated);
        }
        Ok(n)
    }

    fn slice(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.varint()?;
        let end = self.pos.checked_add(len).ok_or(CodecError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(CodecError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let offset = self.pos;
        let s = self.slice()?;
        std::str::from_utf8(s)
            .map(str::to_string)
            .map_err(|_| CodecError::BadUtf8 { offset })
    }

    fn number(&mut self) -> Result<Number, CodecError> {
        let offset = self.pos;
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let (n, used) = Number::decode_ordered(rest).ok_or(CodecError::BadNumber { offset })?;
        self.pos += used;
        Ok(n)
    }

    fn item(&mut self, depth: usize) -> Result<Item, CodecError> {
        let count = self.count()?;
        let mut item = Item::new();
        for _ in 0..count {
            let offset = self.pos;
            let name = self.string()?;
            let v = self.value(depth)?;
            if item.insert(name, v).is_some() {
                return Err(CodecError::DuplicateName { offset });
            }
        }
        Ok(item)
    }

    fn value(&mut self, depth: usize) -> Result<AttributeValue, CodecError> {
        let offset = self.pos;
        let tag = self.byte()?;
        let nested = || {
            if depth >= MAX_DECODE_DEPTH {
                Err(CodecError::TooDeep { offset })
            } else {
                Ok(depth + 1)
            }
        };
        Ok(match tag {
            TAG_S => AttributeValue::S(self.string()?),
            TAG_N => AttributeValue::N(self.number()?),
            TAG_B => AttributeValue::B(self.slice()?.to_vec()),
            TAG_FALSE => AttributeValue::Bool(false),
            TAG_TRUE => AttributeValue::Bool(true),
            TAG_NULL => AttributeValue::Null,
            TAG_M => AttributeValue::M(self.item(nested()?)?),
            TAG_L => {
                let depth = nested()?;
                let count = self.count()?;
                let mut l = Vec::with_capacity(count);
                for _ in 0..count {
                    l.push(self.value(depth)?);
                }
                AttributeValue::L(l)
            }
            TAG_SS => {
                let count = self.count()?;
                let mut v = Vec::with_capacity(count);
                for _ in 0..count {
                    v.push(self.string()?);
                }
                AttributeValue::Ss(v)
            }
            TAG_NS => {
                let count = self.count()?;
                let mut v = Vec::with_capacity(count);
                for _ in 0..count {
                    v.push(self.number()?);
                }
                AttributeValue::Ns(v)
            }
            TAG_BS => {
                let count = self.count()?;
                let mut v = Vec::with_capacity(count);
                for _ in 0..count {
                    v.push(self.slice()?.to_vec());
                }
                AttributeValue::Bs(v)
            }
            tag => return Err(CodecError::UnknownTag { tag, offset }),
        })
    }
}

#[cfg(test)]
mod tests;
