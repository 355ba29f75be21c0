//! The result of a run ([`Report`]): the JSON line for scripts and the human summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::args::{BenchArgs, Distribution, Workload};
use crate::runner::Measured;

/// Latency percentiles of successful requests, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// Everything one run measured; serialized as the JSON line on stdout.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The workload flag (`get`, `ycsb-a`, ...).
    pub workload: Workload,
    /// The endpoint URL.
    pub endpoint: String,
    /// The table.
    pub table: String,
    /// Key distribution.
    pub distribution: Distribution,
    /// Strongly consistent reads.
    pub consistent: bool,
    /// Workers (connections).
    pub concurrency: usize,
    /// Open-loop rate in requests/s; `None` for a closed loop.
    pub rate: Option<f64>,
    /// Key space.
    pub items: u64,
    /// Item size in bytes.
    pub item_size: usize,
    /// Measured wall time, from the start to the last completed request, in seconds.
    pub duration_s: f64,
    /// Successful requests (a batch request counts once).
    pub ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// `ops / duration_s`.
    pub ops_per_s: f64,
    /// Latency percentiles of successful requests.
    pub latency_us: Latency,
    /// Failed requests by DynamoDB error type (`ConnectionError` for transport failures).
    pub error_types: BTreeMap<String, u64>,
    /// Open loop: requests due within the duration that were never sent (the endpoint could
    /// not keep up with the rate at this concurrency). `None` for a closed loop.
    pub unsent: Option<u64>,
    /// The bench process's own CPU time (user + system) during the run, in seconds.
    pub bench_cpu_s: f64,
    /// Bench CPU per request (successful or not), in microseconds.
    pub bench_cpu_us_per_op: f64,
    /// `--server-pid`, if given.
    pub server_pid: Option<u32>,
    /// That process's CPU time during the run, in seconds.
    pub server_cpu_s: Option<f64>,
    /// That process's CPU per request, in microseconds.
    pub server_cpu_us_per_op: Option<f64>,
}

impl Report {
    /// Builds the report from the run's measurements and CPU times.
    pub fn new(
        args: &BenchArgs,
        measured: &Measured,
        bench_cpu: Duration,
        server_cpu: Option<Duration>,
    ) -> Self {
        let h = &measured.histogram;
        let us = |nanos: u64| nanos as f64 / 1000.0;
        let q = |quantile: f64| {
            if h.is_empty() {
                0.0
            } else {
                us(h.value_at_quantile(quantile))
            }
        };
        let errors = measured.error_count();
        let requests = (measured.ops + errors).max(1) as f64;
        let secs = measured.elapsed.as_secs_f64();
        Report {
            workload: args.workload,
            endpoint: args.endpoint.clone(),
            table: args.table.clone(),
            distribution: args.distribution,
            consistent: args.consistent,
            concurrency: args.concurrency,
            rate: args.rate,
            items: args.items,
            item_size: args.item_size,
            duration_s: secs,
            ops: measured.ops,
            errors,
            ops_per_s: measured.ops as f64 / secs.max(1e-9),
            latency_us: Latency {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p999: q(0.999),
                max: if h.is_empty() { 0.0 } else { us(h.max()) },
                mean: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            },
            error_types: measured.errors.clone(),
            unsent: measured.unsent,
            bench_cpu_s: bench_cpu.as_secs_f64(),
            bench_cpu_us_per_op: bench_cpu.as_secs_f64() * 1e6 / requests,
            server_pid: args.server_pid,
            server_cpu_s: server_cpu.map(|c| c.as_secs_f64()),
            server_cpu_us_per_op: server_cpu.map(|c| c.as_secs_f64() * 1e6 / requests),
        }
    }

    /// The one-line JSON form.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The multi-line human summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let pacing = match self.rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            s,
            "{} on {} (table {}, {} items of {} B, {:?} keys{}), {} workers, {pacing}, {:.1} s",
            self.workload.name(),
            self.endpoint,
            self.table,
            self.items,
            self.item_size,
            self.distribution,
            if self.consistent {
                ", consistent reads"
            } else {
                ""
            },
            self.concurrency,
            self.duration_s
        );
        let _ = writeln!(
            s,
            "  throughput  {:.0} ops/s ({} ops, {} errors{})",
            self.ops_per_s,
            self.ops,
            self.errors,
            match self.unsent {
                Some(n) if n > 0 => format!(", {n} scheduled but unsent"),
                _ => String::new(),
            }
        );
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "  latency µs  p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}  mean {:.0}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        let _ = writeln!(
            s,
            "  bench CPU   {:.1} µs/op ({:.2} s)",
            self.bench_cpu_us_per_op, self.bench_cpu_s
        );
        if let (Some(pid), Some(cpu), Some(per)) = (
            self.server_pid,
            self.server_cpu_s,
            self.server_cpu_us_per_op,
        ) {
            let _ = writeln!(s, "  server CPU  {per:.1} µs/op ({cpu:.2} s, pid {pid})");
        }
        for (kind, n) in &self.error_types {
            let _ = writeln!(s, "  error       {kind}: {n}");
        }
        s
    }
}
