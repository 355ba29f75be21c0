//! Exact addition and subtraction of [`Number`]s.
//!
//! The exact result is computed (never through floats, never rounded); it is then rejected with
//! DynamoDB's errors if it needs more than 38 significant digits or leaves the supported range.

use std::cmp::Ordering;

use super::{MAX_DIGITS, Number, NumberError, digit_count, pow10};

impl Number {
    /// The exact sum `self + other`.
    ///
    /// # Errors
    /// [`NumberError::TooManyDigits`] if the exact sum needs more than 38 significant digits
    /// (e.g. `1E+38 + 1`), [`NumberError::Overflow`] / [`NumberError::Underflow`] if it is outside
    /// DynamoDB's range.
    pub fn checked_add(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(*other);
        }
        if other.is_zero() {
            return Ok(*self);
        }
        let e_min = self.exponent.min(other.exponent);
        let shift_a =
            u32::try_from(i32::from(self.exponent) - i32::from(e_min)).unwrap_or(u32::MAX);
        let shift_b =
            u32::try_from(i32::from(other.exponent) - i32::from(e_min)).unwrap_or(u32::MAX);
        let fits =
            |n: &Number, shift: u32| n.significant_digits().saturating_add(shift) <= MAX_DIGITS;
        if fits(self, shift_a) && fits(other, shift_b) {
            // Both aligned magnitudes are below 10^38, so their sum is below 2^128.
            let a = self.mantissa * pow10(shift_a);
            let b = other.mantissa * pow10(shift_b);
            let (negative, magnitude) = combine(self.negative, a, other.negative, b);
            return Number::from_parts(negative, magnitude, i64::from(e_min));
        }
        slow_add(self, shift_a, other, shift_b, i64::from(e_min))
    }

    /// The exact difference `self - other`.
    ///
    /// # Errors
    /// As [`Number::checked_add`].
    pub fn checked_sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.checked_add(&other.negated())
    }
}

/// Signed sum of two magnitudes whose sum cannot overflow.
fn combine(neg_a: bool, a: u128, neg_b: bool, b: u128) -> (bool, u128) {
    if neg_a == neg_b {
        (neg_a, a + b)
    } else if a >= b {
        (neg_a, a - b)
    } else {
        (neg_b, b - a)
    }
}

/// Little-endian decimal digits of `m`, preceded by `shift` zeros.
fn digits_le(m: u128, shift: u32) -> Vec<u8> {
    let mut out = vec![0u8; usize::try_from(shift).unwrap_or(0)];
    let mut m = m;
    while m > 0 {
        out.push(u8::try_from(m % 10).unwrap_or(0));
        m /= 10;
    }
    out
}

fn cmp_le(a: &[u8], b: &[u8]) -> Ordering {
    // Neither has high zeros (the top digit of a non-zero mantissa is non-zero).
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

/// Exact addition through decimal digit vectors, for operands too far apart for `u128`.
fn slow_add(
    a: &Number,
    shift_a: u32,
    b: &Number,
    shift_b: u32,
    e_min: i64,
) -> Result<Number, NumberError> {
    let da = digits_le(a.mantissa, shift_a);
    let db = digits_le(b.mantissa, shift_b);
    let (negative, mut digits) = if a.negative == b.negative {
        let len = da.len().max(db.len()) + 1;
        let mut out = Vec::with_capacity(len);
        let mut carry = 0u8;
        for i in 0..len {
            let s = da.get(i).copied().unwrap_or(0) + db.get(i).copied().unwrap_or(0) + carry;
            out.push(s % 10);
            carry = s / 10;
        }
        (a.negative, out)
    } else {
        let (big, small, negative) = match cmp_le(&da, &db) {
            Ordering::Equal => return Ok(Number::ZERO),
            Ordering::Greater => (&da, &db, a.negative),
            Ordering::Less => (&db, &da, b.negative),
        };
        let mut out = Vec::with_capacity(big.len());
        let mut borrow = 0i8;
        for (i, &d) in big.iter().enumerate() {
            let mut v = i8::try_from(d).unwrap_or(0)
                - i8::try_from(small.get(i).copied().unwrap_or(0)).unwrap_or(0)
                - borrow;
            borrow = 0;
            if v < 0 {
                v += 10;
                borrow = 1;
            }
            out.push(u8::try_from(v).unwrap_or(0));
        }
        (negative, out)
    };
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let low_zeros = digits.iter().take_while(|&&d| d == 0).count();
    let significant = digits.get(low_zeros..).unwrap_or_default();
    if significant.is_empty() {
        return Ok(Number::ZERO);
    }
    if significant.len() > usize::try_from(MAX_DIGITS).unwrap_or(usize::MAX) {
        return Err(NumberError::TooManyDigits);
    }
    let mantissa = significant
        .iter()
        .rev()
        .fold(0u128, |m, &d| m * 10 + u128::from(d));
    debug_assert_eq!(
        usize::try_from(digit_count(mantissa)).ok(),
        Some(significant.len())
    );
    let exponent = e_min.saturating_add(i64::try_from(low_zeros).unwrap_or(i64::MAX));
    Number::from_parts(negative, mantissa, exponent)
}
