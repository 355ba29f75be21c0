//! DescribeEndpoints and DescribeLimits.

use serde_json::{Value, json};

use crate::error::ApiError;

/// `DescribeEndpoints`: the node's API addresses, cached by clients for a day.
pub fn describe_endpoints(ctx: &super::Ctx<'_>) -> Result<Value, ApiError> {
    let endpoints: Vec<Value> = ctx
        .backend
        .endpoints()
        .into_iter()
        .map(|address| json!({"Address": address, "CachePeriodInMinutes": 1440}))
        .collect();
    Ok(json!({ "Endpoints": endpoints }))
}

/// `DescribeLimits`: DynamoDB's default account and table quotas (Shoal does not throttle below them).
pub fn describe_limits() -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}
