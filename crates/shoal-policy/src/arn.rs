//! The ARNs of Shoal's resources and its own (non-DynamoDB) actions.

/// `arn:aws:dynamodb:<region>:<account>:table/<table>`.
pub fn table(region: &str, account: &str, table: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{account}:table/{table}")
}

/// `arn:aws:dynamodb:<region>:<account>:table/<table>/index/<index>`.
pub fn index(region: &str, account: &str, table: &str, index: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{account}:table/{table}/index/{index}")
}

/// The resource of account-wide actions (`ListTables`): `arn:aws:dynamodb:<region>:<account>:table/*`.
pub fn all_tables(region: &str, account: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{account}:table/*")
}

/// The resource of Shoal's cluster administration actions: `arn:aws:shoal:<region>:<account>:cluster`.
pub fn cluster(region: &str, account: &str) -> String {
    format!("arn:aws:shoal:{region}:{account}:cluster")
}

/// Decommissioning a node (`POST /cluster/remove`, `shoal cluster remove`).
pub const ACTION_REMOVE_NODE: &str = "shoal:RemoveNode";
/// Reading `GET /status` (and the console's cluster page).
pub const ACTION_READ_STATUS: &str = "shoal:ReadStatus";
/// Reading `GET /metrics` with a signed request.
pub const ACTION_READ_METRICS: &str = "shoal:ReadMetrics";
/// Managing access keys and rotating keys over the network; reserved: `shoal keys` speaks only
/// to the node's local control socket today, which file permissions guard.
pub const ACTION_MANAGE_KEYS: &str = "shoal:ManageKeys";
