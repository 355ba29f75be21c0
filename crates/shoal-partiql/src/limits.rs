//! The bounds on client-controlled input. Each is checked while parsing, before the work it
//! bounds is done.

/// Longest statement, in characters: the API model's `PartiQLStatement` (`max: 8192`).
pub const MAX_STATEMENT_LEN: usize = 8192;

/// Deepest nesting of parentheses, `NOT`, function arguments and collection literals (lists,
/// tuples, sets). DynamoDB items nest at most 32 levels; 64 leaves room for an item literal at
/// that depth inside a statement, and bounds the parser's recursion (and so its stack use).
pub const MAX_NESTING: usize = 64;

/// Most `?` parameters in one statement. A statement within [`MAX_STATEMENT_LEN`] cannot hold
/// more (each `?` needs a separator), so this never refuses a statement of legal length; it
/// keeps the bound explicit for callers that size buffers from the count.
pub const MAX_PARAMETERS: usize = MAX_STATEMENT_LEN / 2;

/// Most values on the right of `IN`: the operator documentation's limit for non-key
/// attributes. (Its 50-value limit for a partition key depends on the key schema: the executor's
/// check.)
pub const MAX_IN_OPERANDS: usize = 100;

/// Most dereferences (`.name`, `[n]`) in one document path: DynamoDB's limit for expressions.
pub const MAX_PATH_DEPTH: usize = shoal_expr::MAX_PATH_DEPTH;

/// Largest list index in a path (`a[2147483647]`), as in expressions.
pub const MAX_LIST_INDEX: usize = shoal_expr::MAX_LIST_INDEX;
