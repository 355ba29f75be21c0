//! Command-line flags of `shoal bench` ([`BenchArgs`]) and their value types.

use std::time::Duration;

/// What each request does.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// PutItem of one item (overwrites).
    Put,
    /// GetItem of one item (`--consistent` for strongly consistent reads).
    Get,
    /// UpdateItem replacing the payload attribute of one item.
    Update,
    /// Query of one partition with `Limit = --query-limit` (table with a range key).
    Query,
    /// Scan of one page with `Limit = --query-limit`, starting after a random key.
    Scan,
    /// BatchWriteItem of `--batch-size` puts (at most 25).
    BatchWrite,
    /// BatchGetItem of `--batch-size` keys (at most 100).
    BatchGet,
    /// TransactWriteItems of `--batch-size` puts of consecutive items (at most 100).
    TransactWrite,
    /// TransactGetItems of `--batch-size` consecutive keys (at most 100).
    TransactGet,
    /// YCSB A: 50% GetItem, 50% UpdateItem.
    YcsbA,
    /// YCSB B: 95% GetItem, 5% UpdateItem.
    YcsbB,
    /// YCSB C: 100% GetItem.
    YcsbC,
}

impl Workload {
    /// The flag spelling (`batch-write`, `ycsb-a`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Update => "update",
            Workload::Query => "query",
            Workload::Scan => "scan",
            Workload::BatchWrite => "batch-write",
            Workload::BatchGet => "batch-get",
            Workload::TransactWrite => "transact-write",
            Workload::TransactGet => "transact-get",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
        }
    }

    /// Whether a table created for this workload gets a range key (`sk`).
    pub fn wants_range_key(self) -> bool {
        self == Workload::Query
    }
}

/// How keys are chosen.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian with theta 0.99 (YCSB's default), hot keys scattered over the key space.
    Zipfian,
}

/// Flags of `shoal bench`: a load generator for any DynamoDB-compatible endpoint.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The endpoint URL (plain HTTP only), e.g. http://127.0.0.1:8000.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,
    /// The region in the SigV4 credential scope.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Access key id used to sign requests.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: String,
    /// Secret access key used to sign requests.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: String,
    /// The workload to run.
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    pub workload: Workload,
    /// Strongly consistent reads (GetItem, Query, Scan, BatchGetItem).
    #[arg(long)]
    pub consistent: bool,
    /// How keys are chosen.
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,
    /// Item size in bytes (DynamoDB's item size: attribute names plus values).
    #[arg(long, default_value_t = 1024)]
    pub item_size: usize,
    /// Number of distinct items (the key space).
    #[arg(long, default_value_t = 100_000)]
    pub items: u64,
    /// Items per partition key on tables with a range key (what a query reads from).
    #[arg(long, default_value_t = 100)]
    pub items_per_partition: u64,
    /// Write the whole key space with BatchWriteItem before the run.
    #[arg(long)]
    pub preload: bool,
    /// The table; created if missing (PAY_PER_REQUEST, hash key `pk` S, plus range key `sk` S
    /// for `query`). An existing table is used with its own key schema (string keys).
    #[arg(long, default_value = "shoal-bench")]
    pub table: String,
    /// Keep a table this run created (by default it is deleted at the end; an existing table
    /// is never deleted).
    #[arg(long)]
    pub keep_table: bool,
    /// Number of workers, each with one keep-alive HTTP/1.1 connection.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long to run, e.g. 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Open loop: send this many requests per second on a fixed schedule and measure latency
    /// from each request's scheduled time (no coordinated omission). Without it the run is a
    /// closed loop (each worker sends its next request when the previous one completes).
    #[arg(long)]
    pub rate: Option<f64>,
    /// `Limit` of each Query and Scan.
    #[arg(long, default_value_t = 10)]
    pub query_limit: u32,
    /// Requests per BatchWriteItem (at most 25), keys per BatchGetItem (at most 100), or
    /// actions per TransactWriteItems / TransactGetItems (at most 100).
    #[arg(long, default_value_t = 25)]
    pub batch_size: usize,
    /// Also report this process's CPU time per operation (from /proc/PID/stat), e.g. the
    /// server's when it runs on the same machine.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl BenchArgs {
    /// Checks flag combinations that clap cannot.
    ///
    /// # Errors
    /// A message naming the bad flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        anyhow::ensure!(self.items >= 1, "--items must be at least 1");
        anyhow::ensure!(
            self.items_per_partition >= 1,
            "--items-per-partition must be at least 1"
        );
        anyhow::ensure!(self.query_limit >= 1, "--query-limit must be at least 1");
        anyhow::ensure!(
            !self.duration.is_zero(),
            "--duration must be longer than zero"
        );
        if let Some(rate) = self.rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of requests per second"
            );
        }
        let max_batch = match self.workload {
            Workload::BatchGet | Workload::TransactWrite | Workload::TransactGet => 100,
            _ => 25,
        };
        anyhow::ensure!(
            (1..=max_batch).contains(&self.batch_size),
            "--batch-size must be between 1 and {max_batch} for {}",
            self.workload.name()
        );
        anyhow::ensure!(
            self.table.len() >= 3
                && self.table.len() <= 255
                && self
                    .table
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)),
            "--table must be 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
        );
        Ok(())
    }
}

/// Parses `30s`, `500ms`, `2m`, `1h`, `1.5s` or a plain number of seconds.
///
/// # Errors
/// When the number or unit is not understood.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 500ms, 2m"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("invalid duration unit {other:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_common_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
