//! [`ExprContext`]: the placeholder tables of one request.

use std::collections::{BTreeSet, HashMap};

use shoal_types::AttributeValue;

use crate::ExprError;

/// Longest allowed placeholder (`#name` or `:value`), in bytes.
pub const MAX_PLACEHOLDER_LEN: usize = 255;

/// The `ExpressionAttributeNames` and `ExpressionAttributeValues` of one request, and which
/// entries its expressions used. Parse every expression of the request with the same context,
/// then call [`ExprContext::check_all_used`].
#[derive(Debug)]
pub struct ExprContext<'a> {
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, AttributeValue>>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl<'a> ExprContext<'a> {
    /// A context over the request's tables (`None` when the request did not send one).
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, AttributeValue>>,
    ) -> Self {
        ExprContext {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        }
    }

    /// Resolves `#name`, marking it used. `None` if it is not defined.
    pub(crate) fn name(&mut self, ph: &str) -> Option<String> {
        let v = self.names?.get(ph)?.clone();
        self.used_names.insert(ph.to_string());
        Some(v)
    }

    /// Resolves `:value`, marking it used. `None` if it is not defined.
    pub(crate) fn value(&mut self, ph: &str) -> Option<AttributeValue> {
        let v = self.values?.get(ph)?.clone();
        self.used_values.insert(ph.to_string());
        Some(v)
    }

    /// Checks, after all expressions of the request are parsed, that every placeholder was used.
    ///
    /// # Errors
    /// `Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}` (names
    /// first), or the same for `ExpressionAttributeValues`; keys are listed sorted.
    pub fn check_all_used(&self) -> Result<(), ExprError> {
        if let Some(names) = self.names {
            let mut unused: Vec<&str> = names
                .keys()
                .filter(|k| !self.used_names.contains(k.as_str()))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                unused.sort_unstable();
                return Err(ExprError::new(format!(
                    "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                    unused.join(", ")
                )));
            }
        }
        if let Some(values) = self.values {
            let mut unused: Vec<&str> = values
                .keys()
                .filter(|k| !self.used_values.contains(k.as_str()))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                unused.sort_unstable();
                return Err(ExprError::new(format!(
                    "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                    unused.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Checks the shape of the table keys: each must be a `#`/`:` placeholder of word characters.
    ///
    /// # Errors
    /// `ExpressionAttributeNames contains invalid key: Syntax error; key: "x"` (and the
    /// `ExpressionAttributeValues` variant).
    pub fn check_keys(&self) -> Result<(), ExprError> {
        fn valid(key: &str, sigil: char) -> bool {
            let mut chars = key.chars();
            chars.next() == Some(sigil)
                && key.len() > 1
                && key.len() <= MAX_PLACEHOLDER_LEN
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        if let Some(names) = self.names {
            let mut keys: Vec<&String> = names.keys().collect();
            keys.sort_unstable();
            if let Some(k) = keys.into_iter().find(|k| !valid(k, '#')) {
                return Err(ExprError::new(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
        }
        if let Some(values) = self.values {
            let mut keys: Vec<&String> = values.keys().collect();
            keys.sort_unstable();
            if let Some(k) = keys.into_iter().find(|k| !valid(k, ':')) {
                return Err(ExprError::new(format!(
                    "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
        }
        Ok(())
    }
}
