//! The members of TransactWriteItems and TransactGetItems: the `TransactItems` list, each
//! action's model constraints, and its expressions (parsed as the single-item operations parse
//! them, before any table is looked up).

use serde_json::Value;
use shoal_expr::{ConditionKind, ExprContext, Projection};
use shoal_storage::TxOp;
use shoal_types::Item;

use super::super::item::placeholders;
use super::super::validate::{enum_value, table_name};
use crate::error::{ApiError, Violations};
use crate::input::{Input, nested};

/// At most this many actions in one transaction (`TransactItems`).
pub const MAX_ACTIONS: usize = 100;

/// The `TransactItems` list: required, 1 to [`MAX_ACTIONS`] entries.
pub(super) fn transact_items<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<&'a [Value], ApiError> {
    match input.array("TransactItems")? {
        None => v.missing("transactItems"),
        Some(l) if l.is_empty() => v.constraint(
            "[]",
            "transactItems",
            "Member must have length greater than or equal to 1",
        ),
        Some(l) if l.len() > MAX_ACTIONS => v.constraint(
            "[...]",
            "transactItems",
            &format!("Member must have length less than or equal to {MAX_ACTIONS}"),
        ),
        Some(l) => return Ok(l),
    }
    Ok(&[])
}

/// What one action of TransactWriteItems does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    ConditionCheck,
    Put,
    Delete,
    Update,
}

impl ActionKind {
    /// In the model's order.
    const ALL: [ActionKind; 4] = [
        ActionKind::ConditionCheck,
        ActionKind::Put,
        ActionKind::Delete,
        ActionKind::Update,
    ];

    /// The member of `TransactWriteItem` that holds the action.
    pub fn member(self) -> &'static str {
        match self {
            ActionKind::ConditionCheck => "ConditionCheck",
            ActionKind::Put => "Put",
            ActionKind::Delete => "Delete",
            ActionKind::Update => "Update",
        }
    }

    /// The member as DynamoDB's constraint messages write it.
    fn field(self) -> &'static str {
        match self {
            ActionKind::ConditionCheck => "conditionCheck",
            ActionKind::Put => "put",
            ActionKind::Delete => "delete",
            ActionKind::Update => "update",
        }
    }

    /// The IAM action that authorizes it (`dynamodb:ConditionCheckItem` for a condition check,
    /// the single-item operation's otherwise).
    pub fn iam_action(self) -> &'static str {
        match self {
            ActionKind::ConditionCheck => "dynamodb:ConditionCheckItem",
            ActionKind::Put => "dynamodb:PutItem",
            ActionKind::Delete => "dynamodb:DeleteItem",
            ActionKind::Update => "dynamodb:UpdateItem",
        }
    }

    /// The members of a `TransactWriteItem` entry that are given (not absent or `null`).
    pub fn given(entry: &Value) -> Vec<ActionKind> {
        ActionKind::ALL
            .into_iter()
            .filter(|k| entry.get(k.member()).is_some_and(|v| !v.is_null()))
            .collect()
    }
}

/// One write action with its model constraints checked.
pub(super) struct RawWrite<'a> {
    pub kind: ActionKind,
    pub input: Input<'a>,
    pub table: &'a str,
    /// The item of a `Put`, the key of the others.
    pub item: Item,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    pub return_old: bool,
}

/// The entries of TransactWriteItems, model constraints recorded in `v` under
/// `transactItems.<n>.member.<action>.<member>`. An entry with no action or more than one is
/// refused outright, after the model constraints of the whole request.
pub(super) fn write_actions<'a>(
    list: &'a [Value],
    v: &mut Violations,
) -> Result<Vec<RawWrite<'a>>, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    let mut malformed = false;
    for (i, entry) in list.iter().enumerate() {
        nested(entry)?;
        let kinds = ActionKind::given(entry);
        let [kind] = kinds.as_slice() else {
            malformed = true;
            continue;
        };
        let kind = *kind;
        let input = nested(entry.get(kind.member()).unwrap_or(&Value::Null))?;
        let prefix = format!("transactItems.{}.member.{}.", i + 1, kind.field());
        let table = table_name(input.str("TableName")?, &format!("{prefix}tableName"), v);
        let item_member = if kind == ActionKind::Put {
            "Item"
        } else {
            "Key"
        };
        let item = match input.item(item_member)? {
            Some(item) => item,
            None => {
                v.missing(&format!(
                    "{prefix}{}",
                    crate::input::member_field(item_member)
                ));
                Item::new()
            }
        };
        if kind == ActionKind::Update && input.str("UpdateExpression")?.is_none() {
            v.missing(&format!("{prefix}updateExpression"));
        }
        if kind == ActionKind::ConditionCheck && input.str("ConditionExpression")?.is_none() {
            v.missing(&format!("{prefix}conditionExpression"));
        }
        let rv = enum_value(
            input.str("ReturnValuesOnConditionCheckFailure")?,
            &format!("{prefix}returnValuesOnConditionCheckFailure"),
            &["ALL_OLD", "NONE"],
            v,
        );
        out.push(RawWrite {
            kind,
            input,
            table: table.unwrap_or(""),
            item,
            return_old: rv == Some("ALL_OLD"),
        });
    }
    if malformed {
        v.take_result()?;
        return Err(ApiError::validation(
            "TransactItems can only contain one of Check, Put, Update or Delete",
        ));
    }
    Ok(out)
}

/// The storage action of `raw`: its expressions parsed with the action's own
/// `ExpressionAttributeNames` and `ExpressionAttributeValues`, every placeholder defined and
/// used.
pub(super) fn write_op(raw: &RawWrite<'_>) -> Result<TxOp, ApiError> {
    let input = &raw.input;
    let condition_text = input.str("ConditionExpression")?;
    let update_text = input.str("UpdateExpression")?;
    let (names, values) = placeholders(
        input,
        condition_text.is_some() || update_text.is_some(),
        true,
    )?;
    let mut ectx = ExprContext::new(names.as_ref(), values.as_ref());
    ectx.check_keys()?;
    let update = update_text
        .map(|t| shoal_expr::parse_update(t, &mut ectx))
        .transpose()?;
    let condition = condition_text
        .map(|c| shoal_expr::parse_condition(c, &mut ectx, ConditionKind::Condition))
        .transpose()?;
    ectx.check_all_used()?;
    let item = raw.item.clone();
    Ok(match raw.kind {
        ActionKind::Put => TxOp::Put { item, condition },
        ActionKind::Delete => TxOp::Delete {
            key: item,
            condition,
        },
        ActionKind::Update => TxOp::Update {
            key: item,
            update: update.unwrap_or_default(),
            condition,
        },
        ActionKind::ConditionCheck => match condition {
            Some(condition) => TxOp::Check {
                key: item,
                condition,
            },
            // Required: refused with the model constraints.
            None => return Err(ApiError::internal("a condition check without a condition")),
        },
    })
}

/// One Get of TransactGetItems, its projection parsed.
pub(super) struct RawGet<'a> {
    pub table: &'a str,
    pub key: Item,
    pub projection: Option<Projection>,
}

/// The entries of TransactGetItems: model constraints recorded in `v`, projections parsed (after
/// the model constraints of the whole request).
pub(super) fn get_actions<'a>(
    list: &'a [Value],
    v: &mut Violations,
) -> Result<Vec<RawGet<'a>>, ApiError> {
    let mut raw = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let entry = nested(entry)?;
        let prefix = format!("transactItems.{}.member.get", i + 1);
        let Some(get) = entry.raw("Get") else {
            v.missing(&prefix);
            continue;
        };
        let get = nested(get)?;
        let table = table_name(get.str("TableName")?, &format!("{prefix}.tableName"), v);
        let key = match get.item("Key")? {
            Some(key) => key,
            None => {
                v.missing(&format!("{prefix}.key"));
                Item::new()
            }
        };
        raw.push((get, table.unwrap_or(""), key));
    }
    v.take_result()?;
    let mut out = Vec::with_capacity(raw.len());
    for (get, table, key) in raw {
        let text = get.str("ProjectionExpression")?;
        let (names, _) = placeholders(&get, text.is_some(), false)?;
        let mut ectx = ExprContext::new(names.as_ref(), None);
        ectx.check_keys()?;
        let projection = text
            .map(|t| shoal_expr::parse_projection(t, &mut ectx))
            .transpose()?;
        ectx.check_all_used()?;
        out.push(RawGet {
            table,
            key,
            projection,
        });
    }
    Ok(out)
}

/// `ClientRequestToken`: 1 to 36 characters.
pub(crate) fn client_token<'a>(
    input: &Input<'a>,
    v: &mut Violations,
) -> Result<Option<&'a str>, ApiError> {
    let token = input.str("ClientRequestToken")?;
    match token {
        Some("") => v.constraint(
            "",
            "clientRequestToken",
            "Member must have length greater than or equal to 1",
        ),
        Some(t) if t.chars().count() > 36 => v.constraint(
            t,
            "clientRequestToken",
            "Member must have length less than or equal to 36",
        ),
        _ => {}
    }
    Ok(token)
}
