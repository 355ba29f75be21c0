//! The order-preserving, self-delimiting byte encoding of [`Number`].
//!
//! Layout (at most 21 bytes):
//! - class byte: `0x01` negative, `0x02` zero (nothing follows), `0x03` positive;
//! - exponent byte: `adjusted exponent + 130` (0..=255), inverted (`255 - x`) for negatives;
//! - the mantissa's digits from the leading one, in base-100 pairs (the last pair padded with a
//!   `0` digit), each pair `p` as `2p + 1`, except the last as `2p`; inverted for negatives.
//!
//! Comparing encodings byte by byte therefore compares numerically: class, then the position of
//! the leading digit, then the digits; a shorter mantissa ends with an even byte where a longer one
//! with the same prefix continues with the odd byte just above it. No encoding is a prefix of
//! another, so encodings can be concatenated inside larger keys.

use super::{MIN_ADJUSTED_EXPONENT, Number};

const NEGATIVE: u8 = 0x01;
const ZERO: u8 = 0x02;
const POSITIVE: u8 = 0x03;

impl Number {
    /// Appends the order-preserving encoding of `self` to `out` (1 to 21 bytes).
    ///
    /// For any numbers `a` and `b`, the encodings compare (as unsigned bytes) exactly as `a` and
    /// `b` compare numerically, and no encoding is a prefix of another.
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.push(ZERO);
            return;
        }
        let flip = |b: u8| if self.negative { 255 - b } else { b };
        out.push(if self.negative { NEGATIVE } else { POSITIVE });
        let exp = self.adjusted_exponent() - MIN_ADJUSTED_EXPONENT;
        out.push(flip(u8::try_from(exp).unwrap_or(0)));
        // Digits, most significant first.
        let mut digits = [0u8; 40];
        let mut n = 0usize;
        let mut m = self.mantissa;
        while m > 0 && n < digits.len() {
            digits[n] = u8::try_from(m % 10).unwrap_or(0);
            m /= 10;
            n += 1;
        }
        digits[..n].reverse();
        let pairs = n.div_ceil(2);
        for p in 0..pairs {
            let hi = digits[2 * p];
            let lo = digits.get(2 * p + 1).copied().unwrap_or(0);
            let lo = if 2 * p + 1 < n { lo } else { 0 };
            let cont = u8::from(p + 1 < pairs);
            out.push(flip(2 * (hi * 10 + lo) + cont));
        }
    }

    /// Decodes one number encoded by [`Number::encode_ordered`] at the start of `bytes`, returning
    /// it and the number of bytes consumed. `None` if the bytes are not a canonical encoding.
    pub fn decode_ordered(bytes: &[u8]) -> Option<(Number, usize)> {
        let (&class, rest) = bytes.split_first()?;
        let negative = match class {
            ZERO => return Some((Number::ZERO, 1)),
            NEGATIVE => true,
            POSITIVE => false,
            _ => return None,
        };
        let flip = |b: u8| if negative { 255 - b } else { b };
        let (&exp, rest) = rest.split_first()?;
        let adjusted = i64::from(flip(exp)) + MIN_ADJUSTED_EXPONENT;
        let mut mantissa: u128 = 0;
        let mut digits: i64 = 0;
        let mut consumed = 2;
        let mut terminated = false;
        for &b in rest.iter().take(19) {
            let b = flip(b);
            consumed += 1;
            let pair = b / 2;
            if pair > 99 {
                return None;
            }
            mantissa = mantissa * 100 + u128::from(pair);
            digits += 2;
            if b % 2 == 0 {
                terminated = true;
                break;
            }
        }
        if !terminated {
            return None;
        }
        // mantissa × 10^(adjusted - (digits - 1)), then check the bytes were canonical.
        let number = Number::from_parts(negative, mantissa, adjusted - (digits - 1)).ok()?;
        let mut again = Vec::with_capacity(consumed);
        number.encode_ordered(&mut again);
        (again.as_slice() == bytes.get(..consumed)?).then_some((number, consumed))
    }
}
