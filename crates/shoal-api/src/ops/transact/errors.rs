//! How a transaction that did not commit is answered: `TransactionCanceledException` with its
//! `CancellationReasons`, `IdempotentParameterMismatchException`,
//! `TransactionInProgressException`.

use serde_json::{Map, Value, json};
use shoal_catalog::TxReason;
use shoal_types::json::item_to_json;

use crate::error::{ApiError, ErrorKind};

/// `TransactionCanceledException`: the codes of `reasons` in the message, in action order, as
/// DynamoDB formats them, and one `CancellationReasons` entry per action. `return_old(i)` says
/// whether action `i` asked for `ReturnValuesOnConditionCheckFailure: ALL_OLD`: only then does a
/// failed condition's entry carry the item (when there is one).
pub(crate) fn canceled(reasons: Vec<TxReason>, return_old: impl Fn(usize) -> bool) -> ApiError {
    canceled_as(reasons, |i| Shown {
        return_old: return_old(i),
        insert: false,
    })
}

/// How one action's reason is shown.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shown {
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`: a failed condition's entry carries the
    /// item (when there is one).
    pub return_old: bool,
    /// A PartiQL `INSERT`, whose failed condition (an item with its key exists) is
    /// `DuplicateItem`, as `ExecuteStatement` answers it (`DuplicateItemException`).
    pub insert: bool,
}

/// [`canceled`], with each action's reason shown as `shown(i)` says.
pub(crate) fn canceled_as(reasons: Vec<TxReason>, shown: impl Fn(usize) -> Shown) -> ApiError {
    let codes: Vec<&str> = reasons
        .iter()
        .enumerate()
        .map(|(i, r)| code(r, shown(i)))
        .collect();
    let message = format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        codes.join(", ")
    );
    let list: Vec<Value> = reasons
        .into_iter()
        .enumerate()
        .map(|(i, r)| reason(r, shown(i)))
        .collect();
    let mut err = ApiError::new(ErrorKind::TransactionCanceled, message);
    let mut extra = Map::new();
    extra.insert("CancellationReasons".into(), list.into());
    err.extra = Some(extra);
    err
}

/// The `Code` of a reason. A throttled action is `ProvisionedThroughputExceeded` on a
/// provisioned table or index and `ThrottlingError` on an on-demand one (its maximum, or a
/// partition's limit), as the API model lists them.
fn code(r: &TxReason, shown: Shown) -> &'static str {
    match r {
        TxReason::ConditionalCheckFailed { .. } if shown.insert => "DuplicateItem",
        TxReason::ThrottlingError(t) if t.reason.ends_with("ProvisionedThroughputExceeded") => {
            "ProvisionedThroughputExceeded"
        }
        other => other.code(),
    }
}

/// The message of a throttled action, from the API model's list: the provisioned messages of
/// [`shoal_catalog::capacity::Throttled::message`], or the on-demand ones.
fn throttled_message(t: &shoal_catalog::capacity::Throttled) -> String {
    if t.reason.ends_with("ProvisionedThroughputExceeded") {
        t.message().to_string()
    } else if t.reason.starts_with("Index") {
        "Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is automatically scaling your index so please try again shortly.".into()
    } else {
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html.".into()
    }
}

/// One `CancellationReason`: `Code`, DynamoDB's `Message` (none for `None`), and `Item`.
fn reason(r: TxReason, shown: Shown) -> Value {
    let code = code(&r, shown);
    let (message, item) = match r {
        TxReason::None => return json!({ "Code": code }),
        TxReason::ConditionalCheckFailed { .. } if shown.insert => {
            (crate::ops::partiql::DUPLICATE_ITEM.to_string(), None)
        }
        TxReason::ConditionalCheckFailed { item } => (
            "The conditional request failed".to_string(),
            item.filter(|_| shown.return_old),
        ),
        TxReason::TransactionConflict => ("Transaction is ongoing for the item".into(), None),
        TxReason::ValidationError(m) => (m, None),
        TxReason::ItemCollectionSizeLimitExceeded => ("Collection size exceeded.".into(), None),
        TxReason::ThrottlingError(t) => (throttled_message(&t), None),
    };
    let mut out = Map::new();
    if let Some(item) = item {
        out.insert("Item".into(), item_to_json(&item));
    }
    out.insert("Code".into(), code.into());
    out.insert("Message".into(), message.into());
    Value::Object(out)
}

/// A token used within the last 10 minutes for another request.
pub(crate) fn token_mismatch() -> ApiError {
    ApiError::new(
        ErrorKind::IdempotentParameterMismatch,
        "DynamoDB rejected the request because you retried a request with a different payload but with an idempotent token that was already used.",
    )
}

/// A transaction with the same token is still running.
pub(crate) fn in_progress() -> ApiError {
    ApiError::new(
        ErrorKind::TransactionInProgress,
        "The transaction with the given request token is already in progress.",
    )
}

#[cfg(test)]
mod tests {
    use shoal_types::{AttributeValue, Item};

    use super::*;

    #[test]
    fn reasons_are_listed_in_action_order_with_the_old_item_only_when_asked() {
        let item: Item = [("pk".to_string(), AttributeValue::S("a".into()))]
            .into_iter()
            .collect();
        let e = canceled(
            vec![
                TxReason::None,
                TxReason::ConditionalCheckFailed {
                    item: Some(item.clone()),
                },
                TxReason::ConditionalCheckFailed { item: Some(item) },
            ],
            |i| i == 1,
        );
        assert_eq!(e.kind.name(), "TransactionCanceledException");
        assert_eq!(
            e.message,
            "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, ConditionalCheckFailed]"
        );
        let reasons = &e.extra.as_ref().unwrap()["CancellationReasons"];
        assert_eq!(reasons[0], json!({"Code": "None"}));
        assert_eq!(reasons[1]["Item"], json!({"pk": {"S": "a"}}));
        assert_eq!(reasons[1]["Message"], "The conditional request failed");
        assert!(reasons[2].get("Item").is_none());
        let body: Value = serde_json::from_slice(&e.body()).unwrap();
        assert!(body.get("message").is_none());
        assert!(
            body["Message"]
                .as_str()
                .unwrap()
                .starts_with("Transaction cancelled")
        );
    }

    #[test]
    fn a_failed_insert_is_a_duplicate_item() {
        let e = canceled_as(
            vec![
                TxReason::ConditionalCheckFailed { item: None },
                TxReason::ConditionalCheckFailed { item: None },
            ],
            |i| Shown {
                return_old: true,
                insert: i == 0,
            },
        );
        assert!(
            e.message
                .ends_with("[DuplicateItem, ConditionalCheckFailed]")
        );
        let reasons = &e.extra.as_ref().unwrap()["CancellationReasons"];
        assert_eq!(
            reasons[0],
            json!({"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"})
        );
        assert_eq!(reasons[1]["Code"], "ConditionalCheckFailed");
    }

    #[test]
    fn throttled_actions_are_named_by_capacity_mode() {
        use shoal_catalog::capacity::Throttled;
        let provisioned = Throttled {
            reason: "TableWriteProvisionedThroughputExceeded".into(),
            resource: "arn".into(),
        };
        let on_demand = Throttled {
            reason: "TableWriteKeyRangeThroughputExceeded".into(),
            resource: "arn".into(),
        };
        let e = canceled(
            vec![
                TxReason::ThrottlingError(provisioned),
                TxReason::ThrottlingError(on_demand),
            ],
            |_| false,
        );
        assert!(
            e.message
                .ends_with("[ProvisionedThroughputExceeded, ThrottlingError]")
        );
        let reasons = &e.extra.as_ref().unwrap()["CancellationReasons"];
        assert!(
            reasons[0]["Message"]
                .as_str()
                .unwrap()
                .starts_with("The level of configured provisioned throughput for the table")
        );
        assert!(
            reasons[1]["Message"]
                .as_str()
                .unwrap()
                .starts_with("Throughput exceeds the current capacity of your table or index.")
        );
    }
}
