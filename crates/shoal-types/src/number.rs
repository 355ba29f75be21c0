//! [`Number`]: DynamoDB's exact decimal number.
//!
//! A `Number` is `±mantissa × 10^exponent` with at most 38 significant digits and a magnitude of 0
//! or within `1E-130 ..= 9.9999999999999999999999999999999999999E+125`, exactly as DynamoDB's `N`.
//! Values are always normalised, so the derived equality and hash are numeric.
//!
//! - parsing and canonical output: this file;
//! - exact addition and subtraction: [`arith`];
//! - the order-preserving byte encoding used in storage keys: [`ordered`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

mod arith;
mod ordered;

/// Most significant digits a DynamoDB number may hold.
pub const MAX_DIGITS: u32 = 38;
/// Largest decimal exponent of the leading digit (`9.99…E+125`).
pub const MAX_ADJUSTED_EXPONENT: i64 = 125;
/// Smallest decimal exponent of the leading digit (`1E-130`).
pub const MIN_ADJUSTED_EXPONENT: i64 = -130;

/// An exact decimal: `±mantissa × 10^exponent`, at most 38 significant digits, magnitude 0 or
/// within 1E-130 ..= 9.9999999999999999999999999999999999999E+125. Normalised (no trailing zeros
/// in the mantissa; zero is `+0 × 10^0`), so derived equality is numeric equality.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    mantissa: u128,
    exponent: i16,
}

/// Why a string is not an acceptable DynamoDB number. `Display` is DynamoDB's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("The parameter cannot be converted to a numeric value: {0}")]
    Invalid(String),
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    Underflow,
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooManyDigits,
}

/// Number of decimal digits of `m` (0 for 0).
fn digit_count(mut m: u128) -> u32 {
    let mut n = 0;
    while m > 0 {
        m /= 10;
        n += 1;
    }
    n
}

/// `10^k` for `k <= 38`.
fn pow10(k: u32) -> u128 {
    10u128.pow(k)
}

impl Number {
    /// The number zero.
    pub const ZERO: Number = Number {
        negative: false,
        mantissa: 0,
        exponent: 0,
    };

    /// Builds a normalised number from `±mantissa × 10^exponent`.
    ///
    /// # Errors
    /// `TooManyDigits` if the mantissa, without trailing zeros, has more than 38 digits, then
    /// `Overflow` / `Underflow` if the magnitude is outside DynamoDB's range.
    pub(crate) fn from_parts(
        negative: bool,
        mut mantissa: u128,
        mut exponent: i64,
    ) -> Result<Number, NumberError> {
        if mantissa == 0 {
            return Ok(Number::ZERO);
        }
        while mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exponent = exponent.saturating_add(1);
        }
        let digits = digit_count(mantissa);
        if digits > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        let adjusted = exponent.saturating_add(i64::from(digits) - 1);
        if adjusted > MAX_ADJUSTED_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if adjusted < MIN_ADJUSTED_EXPONENT {
            return Err(NumberError::Underflow);
        }
        // In range: -130 - 37 <= exponent <= 125, which fits in i16.
        let exponent = i16::try_from(exponent).map_err(|_| NumberError::Overflow)?;
        Ok(Number {
            negative,
            mantissa,
            exponent,
        })
    }

    /// Parses a DynamoDB number string (same as [`str::parse`]).
    ///
    /// Accepts an optional `+`/`-`, decimal digits with an optional `.`, and an optional exponent
    /// (`e`/`E`, optional sign, digits). Leading and trailing zeros are not significant.
    ///
    /// # Errors
    /// - [`NumberError::Invalid`] for anything else (empty, whitespace, `NaN`, `Infinity`, hex,
    ///   a lone `.`, `1e`);
    /// - [`NumberError::TooManyDigits`] for more than 38 significant digits;
    /// - [`NumberError::Overflow`] / [`NumberError::Underflow`] outside `1E-130 ..= 9.99…E+125`.
    pub fn parse(s: &str) -> Result<Number, NumberError> {
        let invalid = || NumberError::Invalid(s.to_string());
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = bytes.first()
            && (c == b'+' || c == b'-')
        {
            negative = c == b'-';
            i = 1;
        }
        // Mantissa digits: integer part, then fraction part.
        let mut int_len: i64 = 0;
        let mut frac_len: i64 = 0;
        let mut seen_point = false;
        let mut first_nonzero: Option<usize> = None; // index into `bytes`
        let mut last_nonzero: Option<(usize, bool, i64)> = None; // (index, in fraction, frac position)
        let mut sig_digits: i64 = 0; // digits from first non-zero up to the current digit
        let mut sig_at_last_nonzero: i64 = 0;
        while let Some(&c) = bytes.get(i) {
            match c {
                b'0'..=b'9' => {
                    if seen_point {
                        frac_len += 1;
                    } else {
                        int_len += 1;
                    }
                    if first_nonzero.is_some() || c != b'0' {
                        if first_nonzero.is_none() {
                            first_nonzero = Some(i);
                        }
                        sig_digits += 1;
                    }
                    if c != b'0' {
                        last_nonzero = Some((i, seen_point, frac_len));
                        sig_at_last_nonzero = sig_digits;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if int_len + frac_len == 0 {
            return Err(invalid());
        }
        // Optional exponent.
        let mut exp: i64 = 0;
        if let Some(&c) = bytes.get(i) {
            if c != b'e' && c != b'E' {
                return Err(invalid());
            }
            i += 1;
            let mut exp_negative = false;
            if let Some(&c) = bytes.get(i)
                && (c == b'+' || c == b'-')
            {
                exp_negative = c == b'-';
                i += 1;
            }
            let start = i;
            while let Some(&c) = bytes.get(i) {
                if !c.is_ascii_digit() {
                    return Err(invalid());
                }
                // Saturate far beyond any meaningful exponent; the range check rejects it.
                exp = (exp * 10 + i64::from(c - b'0')).min(1_000_000_000_000);
                i += 1;
            }
            if i == start {
                return Err(invalid());
            }
            if exp_negative {
                exp = -exp;
            }
        }
        let Some((last_idx, last_in_fraction, last_frac_pos)) = last_nonzero else {
            return Ok(Number::ZERO);
        };
        let first_idx = first_nonzero.unwrap_or(last_idx);
        if sig_at_last_nonzero > i64::from(MAX_DIGITS) {
            return Err(NumberError::TooManyDigits);
        }
        let mut mantissa: u128 = 0;
        for &c in bytes.get(first_idx..=last_idx).unwrap_or_default() {
            if c.is_ascii_digit() {
                mantissa = mantissa * 10 + u128::from(c - b'0');
            }
        }
        // Power of ten of the last non-zero digit.
        let position = if last_in_fraction {
            -last_frac_pos
        } else {
            // Integer digits after the last non-zero one.
            let int_digits_after = bytes
                .get(last_idx + 1..)
                .unwrap_or_default()
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            i64::try_from(int_digits_after).unwrap_or(i64::MAX)
        };
        Number::from_parts(negative, mantissa, position.saturating_add(exp))
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Whether this is strictly below zero (zero is never negative).
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The exact value of `v`.
    pub fn from_i64(v: i64) -> Number {
        // An i64 has at most 19 digits and an adjusted exponent of at most 18: always in range.
        Number::from_parts(v < 0, u128::from(v.unsigned_abs()), 0).unwrap_or(Number::ZERO)
    }

    /// The value as an `i64`, if it is an integer in `i64`'s range.
    pub fn to_i64(&self) -> Option<i64> {
        if self.exponent < 0 {
            return None;
        }
        let magnitude = self
            .mantissa
            .checked_mul(10u128.checked_pow(u32::try_from(self.exponent).ok()?)?)?;
        if self.negative {
            let min = u128::from(i64::MIN.unsigned_abs());
            if magnitude == min {
                Some(i64::MIN)
            } else {
                i64::try_from(magnitude).ok().map(|m| -m)
            }
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    /// Number of significant digits (leading and trailing zeros trimmed); 0 for zero.
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.mantissa)
    }

    /// The value with the opposite sign (zero stays zero).
    pub fn negated(&self) -> Number {
        Number {
            negative: !self.negative && !self.is_zero(),
            ..*self
        }
    }

    /// The absolute value.
    pub fn abs(&self) -> Number {
        Number {
            negative: false,
            ..*self
        }
    }

    /// Decimal exponent of the leading digit (`adjusted exponent`); meaningless for zero.
    fn adjusted_exponent(&self) -> i64 {
        i64::from(self.exponent) + i64::from(self.significant_digits()) - 1
    }

    /// Compares magnitudes, ignoring signs.
    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let by_exponent = self.adjusted_exponent().cmp(&other.adjusted_exponent());
        if by_exponent != Ordering::Equal {
            return by_exponent;
        }
        // Same leading position: align both mantissas to the same digit count (<= 38 digits).
        let (da, db) = (self.significant_digits(), other.significant_digits());
        let width = da.max(db);
        let a = self.mantissa * pow10(width - da);
        let b = other.mantissa * pow10(width - db);
        a.cmp(&b)
    }
}

impl FromStr for Number {
    type Err = NumberError;

    /// See [`Number::parse`].
    fn from_str(s: &str) -> Result<Number, NumberError> {
        Number::parse(s)
    }
}

impl std::ops::Neg for Number {
    type Output = Number;

    fn neg(self) -> Number {
        self.negated()
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    /// DynamoDB's canonical form: plain decimal notation with no trailing zeros after the
    /// point and `-` only for negative values, except for integers whose plain form would need
    /// more than 38 digits (`1E+125`): those are written `<digits>E+<exponent>` so that clients
    /// with a 38-digit decimal context (boto3) read them exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let digits = self.mantissa.to_string();
        let mut out = String::with_capacity(digits.len() + 160);
        if self.negative {
            out.push('-');
        }
        let exponent = i64::from(self.exponent);
        let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
        if exponent >= 0 && len + exponent > i64::from(MAX_DIGITS) {
            let (first, rest) = digits.split_at(1);
            out.push_str(first);
            if !rest.is_empty() {
                out.push('.');
                out.push_str(rest);
            }
            out.push_str("E+");
            out.push_str(&(exponent + len - 1).to_string());
        } else if exponent >= 0 {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n(
                '0',
                usize::try_from(exponent).unwrap_or(0),
            ));
        } else {
            let frac = -exponent;
            if frac >= len {
                out.push_str("0.");
                out.extend(std::iter::repeat_n(
                    '0',
                    usize::try_from(frac - len).unwrap_or(0),
                ));
                out.push_str(&digits);
            } else {
                let split = usize::try_from(len - frac).unwrap_or(0);
                let (int_part, frac_part) = digits.split_at(split);
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac_part);
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Number {
    /// `Number(1.5)`: the canonical decimal, easier to read in test failures than the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        Number::from_i64(v)
    }
}

impl serde::Serialize for Number {
    /// Serialised as its canonical string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    /// Deserialised from a DynamoDB number string.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Number::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
