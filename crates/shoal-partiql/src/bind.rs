//! Binding: a [`Value`] (literal or `?`) and the request's `Parameters` to an
//! [`AttributeValue`].

use std::collections::HashSet;
use std::hash::Hash;

use shoal_types::{AttributeValue, Item};

use crate::ast::{Insert, Value};
use crate::error::BindError;

/// The DynamoDB type name of `v` (`S`, `N`, `BOOL`, ...), for error messages.
fn type_name(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "M",
        AttributeValue::L(_) => "L",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
    }
}

impl Value {
    /// The attribute value this literal stands for, with each `?` replaced by
    /// `params[n]`. Lists become `L`, tuples `M`, sets `SS`, `NS` or `BS` by their elements'
    /// type (parameters included).
    ///
    /// Recurses once per collection level: parsed values nest at most
    /// [`crate::MAX_NESTING`] levels.
    ///
    /// # Errors
    /// - [`BindError::ParameterCount`] if a `?` has no parameter (check the count first with
    ///   [`crate::Statement::check_parameters`]);
    /// - [`BindError::SetElementType`] for a set whose elements are not all `S`, all `N` or
    ///   all `B`;
    /// - [`BindError::DuplicateSetElement`] for a set holding a value twice.
    pub fn bind(&self, params: &[AttributeValue]) -> Result<AttributeValue, BindError> {
        Ok(match self {
            Value::Str(s) => AttributeValue::S(s.clone()),
            Value::Num(n) => AttributeValue::N(*n),
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::Null => AttributeValue::Null,
            Value::Param(i) => params.get(*i).cloned().ok_or(BindError::ParameterCount {
                expected: i + 1,
                given: params.len(),
            })?,
            Value::List(vs) => AttributeValue::L(
                vs.iter()
                    .map(|v| v.bind(params))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Tuple(entries) => AttributeValue::M(bind_tuple(entries, params)?),
            Value::Set(vs) => bind_set(vs, params)?,
        })
    }
}

/// A tuple's entries as an item.
fn bind_tuple(entries: &[(String, Value)], params: &[AttributeValue]) -> Result<Item, BindError> {
    entries
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.bind(params)?)))
        .collect()
}

fn bind_set(vs: &[Value], params: &[AttributeValue]) -> Result<AttributeValue, BindError> {
    let bound = vs
        .iter()
        .map(|v| v.bind(params))
        .collect::<Result<Vec<_>, _>>()?;
    match bound.first() {
        Some(AttributeValue::S(_)) => Ok(AttributeValue::Ss(distinct(bound, |v| match v {
            AttributeValue::S(s) => Ok(s),
            other => Err(other),
        })?)),
        Some(AttributeValue::N(_)) => Ok(AttributeValue::Ns(distinct(bound, |v| match v {
            AttributeValue::N(n) => Ok(n),
            other => Err(other),
        })?)),
        Some(AttributeValue::B(_)) => Ok(AttributeValue::Bs(distinct(bound, |v| match v {
            AttributeValue::B(b) => Ok(b),
            other => Err(other),
        })?)),
        Some(other) => Err(BindError::SetElementType {
            found: type_name(other),
        }),
        // Parsed sets are never empty; an empty one built by hand is no valid set either.
        None => Err(BindError::SetElementType { found: "nothing" }),
    }
}

/// The elements `take` accepts, refusing the first it does not and any repeat.
fn distinct<T: Eq + Hash + Clone>(
    bound: Vec<AttributeValue>,
    take: impl Fn(AttributeValue) -> Result<T, AttributeValue>,
) -> Result<Vec<T>, BindError> {
    let mut seen = HashSet::with_capacity(bound.len());
    let mut out = Vec::with_capacity(bound.len());
    for v in bound {
        let x = take(v).map_err(|other| BindError::SetElementType {
            found: type_name(&other),
        })?;
        if !seen.insert(x.clone()) {
            return Err(BindError::DuplicateSetElement);
        }
        out.push(x);
    }
    Ok(out)
}

impl Insert {
    /// The item to insert, with parameters bound (see [`Value::bind`]).
    ///
    /// # Errors
    /// As [`Value::bind`].
    pub fn bind_item(&self, params: &[AttributeValue]) -> Result<Item, BindError> {
        bind_tuple(&self.item, params)
    }
}
