//! `shoal bench`: a load generator for any DynamoDB-compatible endpoint.
//!
//! - [`BenchArgs`] — the flags (endpoint, credentials, [`Workload`], key [`Distribution`],
//!   item size and count, preload, closed loop `--concurrency`/`--duration` or open loop
//!   `--rate`, `--server-pid`).
//! - [`run`] — sets up the table, optionally preloads it, runs the workload, prints a progress
//!   line per second and a human summary to stderr and one JSON line to stdout, and returns the
//!   [`Report`].
//! - [`sigv4::Signer`] — the request signer (AWS SigV4 on aws-lc-rs, signing key cached per
//!   day), checked against the official `aws-sigv4` crate in tests.
//! - [`keys::KeyGen`] — uniform or YCSB-style scrambled zipfian key choice.
//! - [`runner`] — the measurement loop; in the open loop latency is measured from each
//!   request's scheduled send time, so there is no coordinated omission.
//!
//! Each worker owns one HTTP/1.1 keep-alive connection (TCP_NODELAY) and reuses its request
//! buffer; request bodies are written with `write!`, payloads are slices of one pre-generated
//! random buffer, so the bench spends little CPU per request (it reports its own CPU time per
//! operation to prove it).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     bench: shoal_bench::BenchArgs,
//! }
//! let cli = Cli::parse_from(["bench", "--endpoint", "http://127.0.0.1:8000",
//!     "--access-key-id", "AKID", "--secret-access-key", "secret",
//!     "--workload", "ycsb-a", "--preload", "--concurrency", "16", "--duration", "10s"]);
//! let report = shoal_bench::run(cli.bench).await?;
//! println!("{} ops/s, p99 {} µs", report.ops_per_s, report.latency_us.p99);
//! # Ok(()) }
//! ```

mod args;
pub mod client;
pub mod cpu;
pub mod keys;
mod report;
pub mod runner;
pub mod sigv4;
pub mod table;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

pub use args::{BenchArgs, Distribution, Workload, parse_duration};
pub use report::{Latency, Report};

use client::{Conn, Endpoint};
use keys::KeyGen;
use runner::{Caller, Pacing, Plan};
use workload::{Op, Requests, Shape};

/// One worker: a connection, its own random generator and request buffer.
struct BenchCaller {
    conn: Conn,
    requests: Arc<Requests>,
    keys: Arc<KeyGen>,
    workload: Workload,
    rng: SmallRng,
    body: String,
}

impl Caller for BenchCaller {
    async fn call(&mut self) -> Result<(), String> {
        let op = Op::pick(self.workload, &mut self.rng);
        let i = self.keys.next(&mut self.rng);
        let target = self.requests.write(op, i, &mut self.rng, &mut self.body);
        match self.conn.call(target, self.body.as_bytes()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.kind().to_string()),
        }
    }
}

/// Runs one benchmark as `args` describes.
///
/// Steps: resolve the endpoint; make sure the table exists (created if missing); preload the
/// key space if `--preload`; open `--concurrency` connections; run the workload for
/// `--duration` (closed loop, or open loop at `--rate`) with a progress line on stderr about
/// once a second; delete the table if this run created it and `--keep-table` is not set;
/// print the human summary to stderr and the [`Report`] as one JSON line to stdout.
///
/// Request errors do not stop the run; they are counted by error type in the report.
///
/// # Errors
/// Invalid flags, an unreachable endpoint, table set-up or preload failures, and
/// `--server-pid` naming a process whose `/proc/PID/stat` cannot be read.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    args.validate()?;
    let endpoint = Arc::new(
        Endpoint::resolve(
            &args.endpoint,
            &args.access_key_id,
            &args.secret_access_key,
            &args.region,
        )
        .await?,
    );
    let mut admin = Conn::connect(Arc::clone(&endpoint)).await?;
    let (schema, created) =
        table::ensure_table(&mut admin, &args.table, args.workload.wants_range_key()).await?;

    let result = bench(&args, &endpoint, schema).await;

    if created
        && !args.keep_table
        && let Err(e) = table::delete_table(&mut admin, &args.table).await
    {
        eprintln!("warning: could not delete table {}: {e:#}", args.table);
    }
    let report = result?;
    eprint!("{}", report.summary());
    println!("{}", report.to_json_line());
    Ok(report)
}

async fn bench(
    args: &BenchArgs,
    endpoint: &Arc<Endpoint>,
    schema: workload::Schema,
) -> anyhow::Result<Report> {
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let shape = Shape {
        table: args.table.clone(),
        schema,
        items: args.items,
        items_per_partition: args.items_per_partition,
        item_size: args.item_size,
        consistent: args.consistent,
        query_limit: args.query_limit,
        batch_size: args.batch_size,
    };
    let requests = Arc::new(Requests::new(shape, &mut rng));
    if args.preload {
        table::preload(
            Arc::clone(endpoint),
            Arc::clone(&requests),
            args.concurrency,
        )
        .await?;
    }
    let keys = Arc::new(match args.distribution {
        Distribution::Uniform => KeyGen::uniform(args.items),
        Distribution::Zipfian => KeyGen::zipfian(args.items, keys::DEFAULT_THETA),
    });

    let plan = Plan {
        pacing: match args.rate {
            Some(rate) => Pacing::Open { rate },
            None => Pacing::Closed,
        },
        duration: args.duration,
        progress: true,
    };
    let setup = Setup {
        endpoint: Arc::clone(endpoint),
        requests,
        keys,
        workload: args.workload,
        concurrency: args.concurrency,
        body_capacity: args.item_size * 2 + 512,
        seed: rng.random(),
        server: args.server_pid.map(cpu::Process::Pid),
    };
    // The load runs on its own thread with a single-threaded runtime, like wrk or
    // redis-benchmark: no work stealing and no cross-thread wake-ups per request, which on a
    // small machine costs more CPU than the requests themselves.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("shoal-bench-load".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::new)
                .and_then(|rt| rt.block_on(measure(setup, plan)));
            let _ = tx.send(result);
        })?;
    let (measured, bench_cpu, server_cpu) = rx
        .await
        .map_err(|_| anyhow::anyhow!("the load thread ended without a result"))??;
    Ok(Report::new(args, &measured, bench_cpu, server_cpu))
}

/// What the load thread needs.
struct Setup {
    endpoint: Arc<Endpoint>,
    requests: Arc<Requests>,
    keys: Arc<KeyGen>,
    workload: Workload,
    concurrency: usize,
    body_capacity: usize,
    seed: u64,
    server: Option<cpu::Process>,
}

/// Connects the workers and runs the plan; returns the measurements with the bench's and the
/// server's CPU time over the run.
async fn measure(
    setup: Setup,
    plan: Plan,
) -> anyhow::Result<(runner::Measured, Duration, Option<Duration>)> {
    let mut rng = SmallRng::seed_from_u64(setup.seed);
    let mut callers = Vec::with_capacity(setup.concurrency);
    for _ in 0..setup.concurrency {
        callers.push(BenchCaller {
            conn: Conn::connect(Arc::clone(&setup.endpoint)).await?,
            requests: Arc::clone(&setup.requests),
            keys: Arc::clone(&setup.keys),
            workload: setup.workload,
            rng: SmallRng::from_rng(&mut rng),
            body: String::with_capacity(setup.body_capacity),
        });
    }
    let server_before = setup.server.map(cpu::cpu_time).transpose()?;
    let bench_before = cpu::cpu_time(cpu::Process::Current)?;
    let measured = runner::run(plan, callers).await?;
    let bench_cpu = cpu::cpu_time(cpu::Process::Current)?.saturating_sub(bench_before);
    let server_cpu = match (setup.server, server_before) {
        (Some(p), Some(before)) => Some(cpu::cpu_time(p)?.saturating_sub(before)),
        _ => None,
    };
    Ok((measured, bench_cpu, server_cpu))
}
