//! Table set-up and tear-down (DescribeTable, CreateTable, DeleteTable) and the preload.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use crate::client::{CallError, Conn, Endpoint, Target};
use crate::workload::{Requests, Schema};

/// How long to wait for a table to become ACTIVE or to disappear.
const TABLE_WAIT: Duration = Duration::from_secs(120);

async fn call_json(conn: &mut Conn, target: Target, body: &Value) -> Result<Value, CallError> {
    let bytes = conn.call(target, body.to_string().as_bytes()).await?;
    serde_json::from_slice(bytes).map_err(|e| CallError::Service {
        kind: "InvalidResponse".into(),
        message: e.to_string(),
    })
}

/// The table's key schema and status, or `None` if it does not exist.
async fn describe(conn: &mut Conn, table: &str) -> anyhow::Result<Option<(Schema, String)>> {
    let answer = match call_json(conn, Target::DescribeTable, &json!({ "TableName": table })).await
    {
        Ok(v) => v,
        Err(CallError::Service { kind, .. }) if kind == "ResourceNotFoundException" => {
            return Ok(None);
        }
        Err(e) => return Err(e).context("DescribeTable"),
    };
    let t = &answer["Table"];
    let status = t["TableStatus"].as_str().unwrap_or_default().to_string();
    let mut hash = None;
    let mut range = None;
    for k in t["KeySchema"].as_array().into_iter().flatten() {
        let name = k["AttributeName"].as_str().map(str::to_string);
        match k["KeyType"].as_str() {
            Some("HASH") => hash = name,
            Some("RANGE") => range = name,
            _ => {}
        }
    }
    let hash = hash.context("DescribeTable answer has no HASH key")?;
    for d in t["AttributeDefinitions"].as_array().into_iter().flatten() {
        let name = d["AttributeName"].as_str();
        if (name == Some(hash.as_str()) || name == range.as_deref())
            && d["AttributeType"].as_str() != Some("S")
        {
            anyhow::bail!(
                "table {table}: key attribute {} is not of type S; the bench writes string keys",
                name.unwrap_or_default()
            );
        }
    }
    Ok(Some((Schema { hash, range }, status)))
}

/// Makes sure `table` exists and is ACTIVE. Returns its key schema and whether this call
/// created it (hash key `pk` S, plus range key `sk` S if `range_key`, PAY_PER_REQUEST).
///
/// # Errors
/// When the endpoint refuses, or the table does not become ACTIVE within two minutes.
pub async fn ensure_table(
    conn: &mut Conn,
    table: &str,
    range_key: bool,
) -> anyhow::Result<(Schema, bool)> {
    let mut created = false;
    if describe(conn, table).await?.is_none() {
        let mut defs = vec![json!({"AttributeName": "pk", "AttributeType": "S"})];
        let mut keys = vec![json!({"AttributeName": "pk", "KeyType": "HASH"})];
        if range_key {
            defs.push(json!({"AttributeName": "sk", "AttributeType": "S"}));
            keys.push(json!({"AttributeName": "sk", "KeyType": "RANGE"}));
        }
        let body = json!({
            "TableName": table,
            "AttributeDefinitions": defs,
            "KeySchema": keys,
            "BillingMode": "PAY_PER_REQUEST",
        });
        match call_json(conn, Target::CreateTable, &body).await {
            Ok(_) => created = true,
            // Created concurrently by someone else: use it.
            Err(CallError::Service { kind, .. }) if kind == "ResourceInUseException" => {}
            Err(e) => return Err(e).context("CreateTable"),
        }
    }
    let since = Instant::now();
    loop {
        match describe(conn, table).await? {
            Some((schema, status)) if status == "ACTIVE" => return Ok((schema, created)),
            _ if since.elapsed() > TABLE_WAIT => {
                anyhow::bail!("table {table} did not become ACTIVE within {TABLE_WAIT:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Deletes `table` (a missing table is not an error).
///
/// # Errors
/// When the endpoint refuses.
pub async fn delete_table(conn: &mut Conn, table: &str) -> anyhow::Result<()> {
    match call_json(conn, Target::DeleteTable, &json!({ "TableName": table })).await {
        Ok(_) => Ok(()),
        Err(CallError::Service { kind, .. }) if kind == "ResourceNotFoundException" => Ok(()),
        Err(e) => Err(e).context("DeleteTable"),
    }
}

/// Error types worth retrying after a pause during the preload.
fn retryable(e: &CallError) -> bool {
    matches!(e, CallError::Transport(_))
        || matches!(
            e.kind(),
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "HTTP 503"
        )
}

/// Writes items `0..items` with BatchWriteItem (25 per request) on `concurrency` connections,
/// retrying unprocessed items and throttling, with a progress line on stderr.
///
/// # Errors
/// When a batch fails with a non-retryable error or keeps failing after retries.
pub async fn preload(
    endpoint: Arc<Endpoint>,
    requests: Arc<Requests>,
    concurrency: usize,
) -> anyhow::Result<()> {
    const BATCH: u64 = 25;
    let items = requests.shape().items;
    let chunks = items.div_ceil(BATCH);
    let next = Arc::new(AtomicU64::new(0));
    let loaded = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency
        .min(usize::try_from(chunks).unwrap_or(usize::MAX))
        .max(1)
    {
        let endpoint = Arc::clone(&endpoint);
        let requests = Arc::clone(&requests);
        let next = Arc::clone(&next);
        let loaded = Arc::clone(&loaded);
        tasks.spawn(async move {
            let mut conn = Conn::connect(endpoint).await?;
            let mut rng = SmallRng::seed_from_u64(w as u64);
            let mut body = String::with_capacity(32 * 1024);
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    return anyhow::Ok(());
                }
                let first = c * BATCH;
                let last = (first + BATCH).min(items);
                requests.write_batch_write(&mut body, first..last, &mut rng);
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    let outcome = conn.call(Target::BatchWriteItem, body.as_bytes()).await;
                    let done = match &outcome {
                        Ok(answer) => all_processed(answer),
                        Err(e) if retryable(e) => false,
                        Err(e) => anyhow::bail!("preload BatchWriteItem: {e}"),
                    };
                    if done {
                        break;
                    }
                    anyhow::ensure!(
                        attempt < 30,
                        "preload BatchWriteItem still failing after {attempt} attempts: {outcome:?}"
                    );
                    // Unprocessed items are rewritten with the whole batch: puts are idempotent.
                    let pause = Duration::from_millis(5 << attempt.min(7));
                    tokio::time::sleep(pause).await;
                }
                loaded.fetch_add(last - first, Ordering::Relaxed);
            }
        });
    }

    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut result = Ok(());
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => { result = Err(e); tasks.abort_all(); }
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => { result = Err(anyhow::anyhow!("preload worker failed: {e}")); }
            },
            _ = tick.tick() => {
                let n = loaded.load(Ordering::Relaxed);
                let line = format!(
                    "preload {n:>10}/{items} items ({:>3}%) {:>8.0} items/s",
                    n * 100 / items.max(1),
                    n as f64 / started.elapsed().as_secs_f64().max(1e-9)
                );
                if tty { eprint!("\r{line}"); } else { eprintln!("{line}"); }
            }
        }
    }
    result?;
    let secs = started.elapsed().as_secs_f64();
    let line = format!(
        "preload {items} items of {} bytes in {secs:.1}s ({:.0} items/s)",
        requests.shape().item_size,
        items as f64 / secs.max(1e-9)
    );
    if tty {
        eprintln!("\r{line:<60}");
    } else {
        eprintln!("{line}");
    }
    Ok(())
}

/// Whether a BatchWriteItem answer has no unprocessed items.
fn all_processed(answer: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(answer) {
        Ok(v) => v["UnprocessedItems"]
            .as_object()
            .is_none_or(|m| m.values().all(|l| l.as_array().is_none_or(Vec::is_empty))),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprocessed_items_are_detected() {
        assert!(all_processed(br#"{"UnprocessedItems":{}}"#));
        assert!(all_processed(br#"{}"#));
        assert!(!all_processed(
            br#"{"UnprocessedItems":{"t":[{"PutRequest":{"Item":{}}}]}}"#
        ));
    }
}
