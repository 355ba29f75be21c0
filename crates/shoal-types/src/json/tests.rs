//! The DynamoDB JSON codec: round trips and DynamoDB's error messages.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::json::{
    attribute_value_from_json, attribute_value_to_json, item_from_json, item_to_json,
};
use crate::test_support;
use crate::{AttributeValue as V, TypeError};

fn parse(v: Value) -> Result<V, TypeError> {
    attribute_value_from_json(&v)
}

fn validation(msg: &str) -> Result<V, TypeError> {
    Err(TypeError::Validation(msg.to_string()))
}

fn serialization(msg: &str) -> Result<V, TypeError> {
    Err(TypeError::Serialization(msg.to_string()))
}

const EMPTY: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";

#[test]
fn every_type_parses_and_prints_back() {
    let cases = [
        json!({"S": "x"}),
        json!({"S": ""}),
        json!({"N": "1.5"}),
        json!({"B": "AAEC"}),
        json!({"B": ""}),
        json!({"BOOL": false}),
        json!({"NULL": true}),
        json!({"M": {"a": {"N": "1"}, "b": {"L": []}}}),
        json!({"L": [{"S": "a"}, {"NULL": true}]}),
        json!({"SS": ["b", "a"]}),
        json!({"NS": ["2", "1"]}),
        json!({"BS": ["AQ==", "Ag=="]}),
    ];
    for c in cases {
        let v = parse(c.clone()).unwrap();
        assert_eq!(attribute_value_to_json(&v), c);
    }
    assert_eq!(parse(json!({"B": "AAEC"})), Ok(V::B(vec![0, 1, 2])));
}

#[test]
fn numbers_print_canonically() {
    let v = parse(json!({"N": "1.50e1"})).unwrap();
    assert_eq!(attribute_value_to_json(&v), json!({"N": "15"}));
    let v = parse(json!({"NS": ["-0.00100", "1e3"]})).unwrap();
    assert_eq!(
        attribute_value_to_json(&v),
        json!({"NS": ["-0.001", "1000"]})
    );
}

#[test]
fn wrong_json_types_are_serialization_errors() {
    assert_eq!(
        parse(json!({"S": 5})),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    assert_eq!(
        parse(json!({"N": 5})),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    assert_eq!(
        parse(json!({"S": true})),
        serialization("TRUE_VALUE cannot be converted to String")
    );
    assert_eq!(
        parse(json!({"S": {"a": 1}})),
        serialization("Start of structure or map found where not expected.")
    );
    assert_eq!(
        parse(json!({"S": ["a"]})),
        serialization("Start of list found where not expected")
    );
    assert_eq!(
        parse(json!({"BOOL": "true"})),
        serialization("STRING_VALUE cannot be converted to Boolean")
    );
    assert_eq!(
        parse(json!({"SS": [1]})),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    assert_eq!(
        parse(json!({"L": {}})),
        serialization("Start of structure or map found where not expected.")
    );
    assert!(matches!(
        parse(json!("x")),
        Err(TypeError::Serialization(_))
    ));
    assert!(matches!(
        parse(json!({"M": []})),
        Err(TypeError::Serialization(_))
    ));
    assert!(matches!(
        parse(json!({"L": ["x"]})),
        Err(TypeError::Serialization(_))
    ));
}

#[test]
fn invalid_base64_is_a_serialization_error() {
    assert_eq!(
        parse(json!({"B": "abcde"})),
        serialization("Base64 encoded length is expected a multiple of 4 bytes but found: 5")
    );
    assert!(matches!(
        parse(json!({"B": "ab!="})),
        Err(TypeError::Serialization(_))
    ));
    assert!(matches!(
        parse(json!({"BS": ["AQ==", "x"]})),
        Err(TypeError::Serialization(_))
    ));
}

#[test]
fn empty_or_unknown_attribute_value_is_empty() {
    assert_eq!(parse(json!({})), validation(EMPTY));
    assert_eq!(parse(json!({"X": "1"})), validation(EMPTY));
    assert_eq!(parse(json!({"S": null})), validation(EMPTY));
    // Unknown members beside a known one are ignored.
    assert_eq!(parse(json!({"S": "a", "X": 1})), Ok(V::S("a".into())));
}

#[test]
fn several_types_set_is_rejected() {
    assert_eq!(
        parse(json!({"S": "a", "N": "1"})),
        validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
        )
    );
}

#[test]
fn null_must_be_true() {
    assert_eq!(
        parse(json!({"NULL": false})),
        validation(
            "One or more parameter values were invalid: Null attribute value types must have the value of true"
        )
    );
}

#[test]
fn empty_sets_are_rejected_with_dynamodbs_double_space() {
    assert_eq!(
        parse(json!({"BS": []})),
        validation("One or more parameter values were invalid: Binary sets should not be empty")
    );
    for (ty, kind) in [("SS", "string"), ("NS", "number")] {
        assert_eq!(
            parse(json!({ty: []})),
            validation(&format!(
                "One or more parameter values were invalid: An {kind} set  may not be empty"
            ))
        );
    }
}

#[test]
fn duplicate_set_elements_are_rejected() {
    assert_eq!(
        parse(json!({"SS": ["a", "a"]})),
        validation(
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
        )
    );
    assert_eq!(
        parse(json!({"NS": ["1", "2", "1.0"]})),
        validation(
            "One or more parameter values were invalid: Input collection [1, 2, 1.0] contains duplicates."
        )
    );
    assert!(matches!(
        parse(json!({"BS": ["AQ==", "AQ=="]})),
        Err(TypeError::Validation(_))
    ));
}

#[test]
fn bad_numbers_report_the_number_error() {
    assert_eq!(
        parse(json!({"N": "abc"})),
        validation("The parameter cannot be converted to a numeric value: abc")
    );
    assert_eq!(
        parse(json!({"N": "1e126"})),
        validation(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        )
    );
    assert_eq!(
        parse(json!({"NS": ["1", ""]})),
        validation("The parameter cannot be converted to a numeric value: ")
    );
}

fn nested_maps(levels: usize) -> Value {
    let mut v = json!({"S": "leaf"});
    for _ in 0..levels {
        v = json!({"M": {"a": v}});
    }
    v
}

fn nested_lists(levels: usize) -> Value {
    let mut v = json!({"S": "leaf"});
    for _ in 0..levels {
        v = json!({"L": [v]});
    }
    v
}

#[test]
fn nesting_is_limited_to_32_levels() {
    let msg = "Nesting Levels have exceeded supported limits";
    assert!(parse(nested_maps(32)).is_ok());
    assert_eq!(parse(nested_maps(33)), validation(msg));
    assert!(parse(nested_lists(32)).is_ok());
    assert_eq!(parse(nested_lists(33)), validation(msg));
    assert_eq!(parse(nested_lists(500)), validation(msg));
}

#[test]
fn nesting_depth_agrees_with_the_parser_limit() {
    // The parser accepts exactly the values whose nesting_depth is at most 32.
    for depth in [0, 1, 2, 31, 32] {
        let maps = item_from_json(&json!({"a": nested_maps(depth)})).unwrap();
        assert_eq!(maps["a"].nesting_depth(), depth);
    }
    assert!(parse(nested_maps(33)).is_err());
    assert_eq!(V::S("x".into()).nesting_depth(), 0);
    assert_eq!(parse(nested_lists(32)).unwrap().nesting_depth(), 32);
}

#[test]
fn attribute_names_longer_than_65535_bytes_are_refused_at_any_level() {
    let msg = "1 validation error detected: Map keys must satisfy constraint: [Member must have length less than or equal to 65535]";
    let ok = "n".repeat(65_535);
    let long = "n".repeat(65_536);
    assert!(item_from_json(&json!({ ok.clone(): {"S": "x"} })).is_ok());
    assert!(parse(json!({"M": { ok: {"S": "x"} }})).is_ok());
    assert_eq!(
        item_from_json(&json!({ long.clone(): {"S": "x"} })),
        Err(TypeError::Validation(msg.into()))
    );
    assert_eq!(
        parse(json!({"L": [{"M": { long: {"S": "x"} }}]})),
        validation(msg)
    );
}

#[test]
fn serialization_errors_win_over_validation_errors() {
    let v = json!({"L": [{"NULL": false}, {"S": 5}]});
    assert_eq!(
        parse(v),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    let item = json!({"a": {}, "b": {"BOOL": 1}});
    assert_eq!(
        item_from_json(&item),
        Err(TypeError::Serialization(
            "NUMBER_VALUE cannot be converted to Boolean".to_string()
        ))
    );
}

#[test]
fn empty_strings_and_binaries_are_allowed_in_values() {
    assert_eq!(parse(json!({"S": ""})), Ok(V::S(String::new())));
    assert_eq!(parse(json!({"B": ""})), Ok(V::B(Vec::new())));
    assert_eq!(parse(json!({"SS": [""]})), Ok(V::Ss(vec![String::new()])));
}

#[test]
fn items_must_be_objects() {
    assert!(matches!(
        item_from_json(&json!([])),
        Err(TypeError::Serialization(_))
    ));
    assert!(matches!(
        item_from_json(&json!("x")),
        Err(TypeError::Serialization(_))
    ));
    assert!(matches!(
        item_from_json(&json!(null)),
        Err(TypeError::Serialization(_))
    ));
    let item = item_from_json(&json!({"id": {"S": "1"}, "n": {"N": "2"}})).unwrap();
    assert_eq!(item.len(), 2);
    assert_eq!(
        item_to_json(&item),
        json!({"id": {"S": "1"}, "n": {"N": "2"}})
    );
    assert_eq!(
        item_from_json(&json!({"a": {"NULL": false}})),
        Err(TypeError::Validation(
            "One or more parameter values were invalid: Null attribute value types must have the value of true"
                .to_string()
        ))
    );
}

proptest! {
    #[test]
    fn values_round_trip_through_json(v in test_support::attribute_value()) {
        let j = attribute_value_to_json(&v);
        let back = parse(j.clone()).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(attribute_value_to_json(&back), j);
    }

    #[test]
    fn items_round_trip_through_json(item in test_support::item()) {
        let back = item_from_json(&item_to_json(&item)).unwrap();
        prop_assert_eq!(back, item);
    }
}

/// Arbitrary JSON shaped loosely like DynamoDB JSON, to shake the parser.
fn loose_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("S"),
        Just("N"),
        Just("B"),
        Just("BOOL"),
        Just("NULL"),
        Just("M"),
        Just("L"),
        Just("SS"),
        Just("NS"),
        Just("BS"),
        Just("X"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("1"),
            Just("1.0"),
            Just("x"),
            Just(""),
            Just("AQ=="),
            Just("1e200")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 48, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..3).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_and_accepted_values_round_trip(v in loose_json()) {
        if let Ok(av) = parse(v) {
            prop_assert_eq!(parse(attribute_value_to_json(&av)), Ok(av));
        }
    }
}
