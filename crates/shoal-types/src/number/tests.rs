//! `Number` against DynamoDB's documented rules, with `bigdecimal` as the exact oracle.

use std::cmp::Ordering;
use std::str::FromStr;

use bigdecimal::{BigDecimal, Zero};
use proptest::prelude::*;

use super::{Number, NumberError};

fn n(s: &str) -> Number {
    s.parse().unwrap()
}

/// DynamoDB's acceptance rules applied to an exact value.
fn dynamo_rules(x: &BigDecimal) -> Result<BigDecimal, NumberError> {
    if x.is_zero() {
        return Ok(BigDecimal::zero());
    }
    let norm = x.normalized();
    let (_, scale) = norm.as_bigint_and_exponent();
    let digits = i64::try_from(norm.digits()).unwrap();
    if digits > 38 {
        return Err(NumberError::TooManyDigits);
    }
    let adjusted = digits - scale - 1;
    if adjusted > 125 {
        return Err(NumberError::Overflow);
    }
    if adjusted < -130 {
        return Err(NumberError::Underflow);
    }
    Ok(norm)
}

fn big(n: &Number) -> BigDecimal {
    BigDecimal::from_str(&n.to_string()).unwrap()
}

fn number_string() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("-"), Just("+")],
        "0{0,3}[0-9]{1,42}",
        proptest::option::of("[0-9]{1,12}"),
        proptest::option::of((
            prop_oneof![Just("e"), Just("E")],
            prop_oneof![Just(""), Just("+"), Just("-")],
            0u32..180,
        )),
    )
        .prop_map(|(sign, int, frac, exp)| {
            let mut s = format!("{sign}{int}");
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, es, v)) = exp {
                s.push_str(&format!("{e}{es}{v}"));
            }
            s
        })
}

/// Valid numbers, biased towards nearby exponents so arithmetic results often fit.
fn number() -> impl Strategy<Value = Number> {
    let near = (any::<bool>(), 1u32..=38, any::<u128>(), -12i64..12);
    let far = (any::<bool>(), 1u32..=38, any::<u128>(), -167i64..=125);
    prop_oneof![3 => near, 1 => far].prop_filter_map("out of range", |(neg, digits, m, e)| {
        Number::from_parts(neg, m % 10u128.pow(digits), e).ok()
    })
}

#[test]
fn display_is_plain_decimal_unless_an_integer_needs_more_than_38_digits() {
    assert_eq!(n("1e3").to_string(), "1000");
    assert_eq!(n("1.50").to_string(), "1.5");
    assert_eq!(n("-0.00100").to_string(), "-0.001");
    assert_eq!(n("1E125").to_string(), "1E+125");
    assert_eq!(n("-1.5E40").to_string(), "-1.5E+40");
    assert_eq!(n("1E37").to_string(), format!("1{}", "0".repeat(37)));
    assert_eq!(n("1E38").to_string(), "1E+38");
    assert_eq!(n("1E-130").to_string(), format!("0.{}1", "0".repeat(129)));
    assert_eq!(n("123.456E1").to_string(), "1234.56");
    assert_eq!(n("0012.3400").to_string(), "12.34");
    assert_eq!(n("+5").to_string(), "5");
    assert_eq!(n(".5").to_string(), "0.5");
    assert_eq!(n("5.").to_string(), "5");
}

#[test]
fn zero_in_every_spelling_is_canonical_zero() {
    for s in [
        "0",
        "-0",
        "+0",
        "0.000",
        "-0.0e10",
        "0e999999999999999999999",
        "00",
    ] {
        let z = n(s);
        assert!(z.is_zero(), "{s}");
        assert!(!z.is_negative(), "{s}");
        assert_eq!(z, Number::ZERO, "{s}");
        assert_eq!(z.to_string(), "0", "{s}");
    }
}

#[test]
fn range_limits_are_dynamodbs() {
    let max = "9.9999999999999999999999999999999999999E+125";
    assert_eq!(n(max).significant_digits(), 38);
    assert_eq!(n(&format!("-{max}")).to_string(), format!("-{max}"));
    assert!(Number::parse("1E-130").is_ok());
    assert!(Number::parse("-1E-130").is_ok());
    assert_eq!(Number::parse("1E126"), Err(NumberError::Overflow));
    assert_eq!(Number::parse("10E125"), Err(NumberError::Overflow));
    assert_eq!(Number::parse("-1E126"), Err(NumberError::Overflow));
    assert_eq!(
        Number::parse("1e99999999999999999999"),
        Err(NumberError::Overflow)
    );
    assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
    assert_eq!(Number::parse("0.1E-130"), Err(NumberError::Underflow));
    assert_eq!(
        Number::parse("-1e-99999999999999999999"),
        Err(NumberError::Underflow)
    );
}

#[test]
fn only_significant_digits_count_towards_38() {
    let d38 = "12345678901234567890123456789012345678";
    assert!(Number::parse(d38).is_ok());
    assert!(Number::parse(&format!("000{d38}000")).is_ok());
    assert!(Number::parse(&format!("0.0000{d38}")).is_ok());
    assert_eq!(
        Number::parse(&format!("{d38}9")),
        Err(NumberError::TooManyDigits)
    );
    assert_eq!(
        Number::parse(&format!("1.{d38}")),
        Err(NumberError::TooManyDigits)
    );
    assert_eq!(
        Number::parse(&format!("1{}1", "0".repeat(37))),
        Err(NumberError::TooManyDigits)
    );
}

#[test]
fn malformed_strings_are_invalid_with_the_input_in_the_message() {
    for s in [
        "",
        " ",
        " 1",
        "1 ",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "0x10",
        ".",
        "-.",
        "1e",
        "e5",
        "1e+",
        "1e-",
        "--1",
        "+-1",
        "1.2.3",
        "+",
        "-",
        "1,000",
        "1_000",
        "١",
    ] {
        let err = Number::parse(s).unwrap_err();
        assert_eq!(err, NumberError::Invalid(s.to_string()), "{s:?}");
        assert_eq!(
            err.to_string(),
            format!("The parameter cannot be converted to a numeric value: {s}")
        );
    }
}

#[test]
fn error_messages_are_dynamodbs() {
    assert_eq!(
        NumberError::Overflow.to_string(),
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
    assert_eq!(
        NumberError::Underflow.to_string(),
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    );
    assert_eq!(
        NumberError::TooManyDigits.to_string(),
        "Attempting to store more than 38 significant digits in a Number"
    );
}

#[test]
fn equality_and_order_are_numeric() {
    assert_eq!(n("1"), n("1.0"));
    assert_eq!(n("100"), n("1e2"));
    assert!(n("-1") < n("0"));
    assert!(n("0") < n("0.0001"));
    assert!(n("-10") < n("-9.99"));
    assert!(n("9.99") < n("10"));
    assert!(n("1.2") < n("1.23"));
    assert!(n("-1.23") < n("-1.2"));
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let h = |x: &Number| {
        let mut s = DefaultHasher::new();
        x.hash(&mut s);
        s.finish()
    };
    assert_eq!(h(&n("1.50")), h(&n("15e-1")));
}

#[test]
fn i64_conversion_is_exact() {
    for v in [0, 1, -1, 10, 1000, i64::MAX, i64::MIN, 123_456_789] {
        let x = Number::from_i64(v);
        assert_eq!(x.to_i64(), Some(v));
        assert_eq!(x.to_string(), v.to_string());
    }
    assert_eq!(n("1.5").to_i64(), None);
    assert_eq!(n("9223372036854775808").to_i64(), None);
    assert_eq!(n("-9223372036854775809").to_i64(), None);
    assert_eq!(n("1e30").to_i64(), None);
    assert_eq!(n("1.0e3").to_i64(), Some(1000));
}

#[test]
fn arithmetic_is_exact_or_rejected() {
    assert_eq!(n("0.1").checked_add(&n("0.2")).unwrap(), n("0.3"));
    assert_eq!(
        n("1e38").checked_sub(&n("1")).unwrap().to_string(),
        "9".repeat(38)
    );
    assert_eq!(
        n("1e38").checked_add(&n("1")),
        Err(NumberError::TooManyDigits)
    );
    let max = n("9.9999999999999999999999999999999999999E+125");
    assert_eq!(max.checked_add(&n("1e88")), Err(NumberError::Overflow));
    assert_eq!(
        max.negated().checked_sub(&n("1e88")),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        n("1.1e-130").checked_sub(&n("1e-130")),
        Err(NumberError::Underflow)
    );
    assert_eq!(n("5").checked_sub(&n("5")).unwrap(), Number::ZERO);
    assert_eq!(n("-5").checked_add(&n("5")).unwrap().to_string(), "0");
    assert_eq!(n("1e100").checked_sub(&n("1e100")).unwrap(), Number::ZERO);
}

#[test]
fn ordered_encoding_examples() {
    let mut buf = Vec::new();
    for s in [
        "-1e125", "-1", "-0.5", "0", "1e-130", "0.5", "1", "1.01", "1.1", "2", "1e125",
    ] {
        let mut e = Vec::new();
        n(s).encode_ordered(&mut e);
        assert!(buf < e, "{s}");
        assert_eq!(Number::decode_ordered(&e), Some((n(s), e.len())));
        buf = e;
    }
    assert_eq!(Number::decode_ordered(&[]), None);
    assert_eq!(Number::decode_ordered(&[0x03]), None);
    assert_eq!(Number::decode_ordered(&[0x03, 130, 3]), None); // continues past the end
    assert_eq!(Number::decode_ordered(&[0x03, 130, 0]), None); // zero mantissa is not canonical
    assert_eq!(Number::decode_ordered(&[0x07]), None);
}

proptest! {
    #[test]
    fn parse_matches_dynamodb_rules(s in number_string()) {
        let oracle = dynamo_rules(&BigDecimal::from_str(&s).unwrap());
        match (Number::parse(&s), oracle) {
            (Ok(x), Ok(expected)) => {
                prop_assert_eq!(big(&x), expected);
                // Exponent form only for integers whose plain form exceeds 38 digits.
                let text = x.to_string();
                let norm = big(&x).normalized();
                let scale = norm.fractional_digit_count();
                let big_integer = scale <= 0 && norm.digits() as i64 - scale > 38;
                prop_assert_eq!(text.contains('E'), big_integer, "{}", text);
                prop_assert_eq!(Number::parse(&x.to_string()), Ok(x));
            }
            (Err(e), Err(expected)) => prop_assert_eq!(e, expected),
            (got, expected) => prop_assert!(false, "{s}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn display_round_trips(x in number()) {
        prop_assert_eq!(Number::parse(&x.to_string()), Ok(x));
    }

    #[test]
    fn order_is_numeric_order(a in number(), b in number()) {
        prop_assert_eq!(a.cmp(&b), big(&a).cmp(&big(&b)));
        prop_assert_eq!(a == b, big(&a) == big(&b));
    }

    #[test]
    fn add_and_sub_are_exact(a in number(), b in number()) {
        let sum = dynamo_rules(&(big(&a) + big(&b)));
        prop_assert_eq!(a.checked_add(&b).map(|x| big(&x)), sum);
        let diff = dynamo_rules(&(big(&a) - big(&b)));
        prop_assert_eq!(a.checked_sub(&b).map(|x| big(&x)), diff);
    }

    #[test]
    fn ordered_encoding_preserves_order_and_round_trips(a in number(), b in number()) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        a.encode_ordered(&mut ea);
        b.encode_ordered(&mut eb);
        prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
        prop_assert!(ea.len() <= 21);
        // Self-delimiting: decoding ignores what follows.
        let mut joined = ea.clone();
        joined.extend_from_slice(&eb);
        prop_assert_eq!(Number::decode_ordered(&joined), Some((a, ea.len())));
        if a != b {
            prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
        }
    }

    #[test]
    fn decode_ordered_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        if let Some((x, used)) = Number::decode_ordered(&bytes) {
            let mut e = Vec::new();
            x.encode_ordered(&mut e);
            prop_assert_eq!(&e[..], &bytes[..used]);
        }
    }

    #[test]
    fn i64_round_trips(v in any::<i64>()) {
        prop_assert_eq!(Number::from_i64(v).to_i64(), Some(v));
        prop_assert_eq!(Number::from_i64(v).to_string(), v.to_string());
    }
}

#[test]
fn ordering_consistent_with_sign_of_difference() {
    let a = n("-3.5");
    let b = n("2");
    assert_eq!(a.cmp(&b), Ordering::Less);
    assert!(a.checked_sub(&b).unwrap().is_negative());
}
