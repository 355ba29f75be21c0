//! The measurement loop: closed loop or open loop, one task per worker, HDR histograms.
//!
//! Closed loop: each worker sends its next request as soon as the previous one completes, until
//! the duration has passed; latency is completion time minus send time.
//!
//! Open loop: requests are scheduled at a fixed rate, request `n` at `start + n / rate`, and
//! workers take the next scheduled slot from a shared counter. A worker sleeps until its slot,
//! or sends at once if the slot has already passed (the system is behind). When behind,
//! latency is measured from the SCHEDULED time, so time a request spent waiting for a free
//! worker counts — a slow server cannot hide its stalls by slowing down the load (no
//! coordinated omission). When a worker slept, latency counts from its actual wake-up, so the
//! timer's 1 ms granularity is not charged to the server. Give the open loop enough workers
//! (`--concurrency` above rate × expected latency). The run ends at the duration; slots that
//! were due but never sent are reported as `unsent`.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// One worker's way of sending a request.
pub trait Caller: Send + 'static {
    /// Sends one request; `Err` carries the error type name it is counted under.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pacing {
    /// Each worker sends back to back.
    Closed,
    /// This many requests per second in total, on a fixed schedule.
    Open { rate: f64 },
}

/// The run's plan.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub pacing: Pacing,
    pub duration: Duration,
    /// Print a progress line about once a second to stderr.
    pub progress: bool,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latencies of successful requests, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Successful requests.
    pub ops: u64,
    /// Failed requests by error type.
    pub errors: BTreeMap<String, u64>,
    /// From the start to the last completed request.
    pub elapsed: Duration,
    /// Open loop: requests scheduled within the duration but never sent.
    pub unsent: Option<u64>,
}

impl Measured {
    /// All failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A new latency histogram in nanoseconds: 1 ns to 1 hour, 3 significant digits.
///
/// # Errors
/// Never in practice (the bounds are constants hdrhistogram accepts).
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?)
}

/// The open-loop schedule: slot `n` is due at `start + n / rate`.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    end: Instant,
    nanos_per_slot: f64,
    next: AtomicU64,
}

impl Schedule {
    /// A schedule of `rate` slots per second from `start` for `duration`.
    pub fn new(start: Instant, duration: Duration, rate: f64) -> Self {
        Schedule {
            start,
            end: start + duration,
            nanos_per_slot: 1e9 / rate,
            next: AtomicU64::new(0),
        }
    }

    /// When slot `n` is due.
    pub fn due(&self, n: u64) -> Instant {
        self.start + Duration::from_nanos((n as f64 * self.nanos_per_slot) as u64)
    }

    /// Takes the next slot; `None` once slots are past the end.
    pub fn take(&self) -> Option<Instant> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.due(n);
        (due < self.end).then_some(due)
    }

    /// Slots due before the end of the schedule.
    pub fn total_slots(&self) -> u64 {
        let span = (self.end - self.start).as_nanos() as f64;
        (span / self.nanos_per_slot).ceil() as u64
    }
}

#[derive(Default)]
struct Live {
    ops: AtomicU64,
    errors: AtomicU64,
    done: AtomicBool,
}

struct WorkerResult {
    histogram: Histogram<u64>,
    ops: u64,
    errors: BTreeMap<String, u64>,
}

/// Runs the plan with one worker per caller and merges what they measured.
///
/// # Errors
/// Only if a histogram cannot be created.
pub async fn run<C: Caller>(plan: Plan, callers: Vec<C>) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let end = start + plan.duration;
    let schedule = match plan.pacing {
        Pacing::Closed => None,
        Pacing::Open { rate } => Some(Arc::new(Schedule::new(start, plan.duration, rate))),
    };
    let live = Arc::new(Live::default());
    let progress = plan
        .progress
        .then(|| tokio::spawn(progress_loop(Arc::clone(&live), start, plan.duration)));

    let mut histogram = new_histogram()?;
    let mut tasks = Vec::with_capacity(callers.len());
    for caller in callers {
        let schedule = schedule.clone();
        let live = Arc::clone(&live);
        let h = new_histogram()?;
        tasks.push(tokio::spawn(worker(caller, h, end, schedule, live)));
    }
    let mut ops = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        match task.await {
            Ok(r) => {
                let _ = histogram.add(&r.histogram);
                ops += r.ops;
                for (k, v) in r.errors {
                    *errors.entry(k).or_default() += v;
                }
            }
            Err(e) => *errors.entry(format!("WorkerPanic: {e}")).or_default() += 1,
        }
    }
    let elapsed = start.elapsed();
    live.done.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    let sent = ops + errors.values().sum::<u64>();
    Ok(Measured {
        histogram,
        ops,
        errors,
        elapsed,
        unsent: schedule.map(|s| s.total_slots().saturating_sub(sent)),
    })
}

async fn worker<C: Caller>(
    mut caller: C,
    mut histogram: Histogram<u64>,
    end: Instant,
    schedule: Option<Arc<Schedule>>,
    live: Arc<Live>,
) -> WorkerResult {
    let mut ops = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let sent_at = match &schedule {
            None => now,
            Some(s) => {
                let Some(due) = s.take() else { break };
                if due > now {
                    // The worker was idle: the request waited for nobody but the bench's own
                    // timer (1 ms granularity in tokio), so it counts from when it actually
                    // goes out, not from the slot.
                    tokio::time::sleep_until(due).await;
                    Instant::now().max(due)
                } else {
                    // Behind schedule: the wait since the slot counts (no coordinated omission).
                    due
                }
            }
        };
        let result = caller.call().await;
        let latency = sent_at.elapsed();
        match result {
            Ok(()) => {
                ops += 1;
                let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                histogram.saturating_record(nanos.max(1));
                live.ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(kind) => {
                *errors.entry(kind).or_default() += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    WorkerResult {
        histogram,
        ops,
        errors,
    }
}

/// Shows `ops, ops/s over the last second, errors` about once a second on stderr: an
/// `indicatif` bar over the run's duration on a terminal, one line per second otherwise (logs).
async fn progress_loop(live: Arc<Live>, start: Instant, duration: Duration) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last_ops = 0;
    let mut last_at = start;
    while !live.done.load(Ordering::Relaxed) {
        tick.tick().await;
        if live.done.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let ops = live.ops.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let rate = (ops - last_ops) as f64 / (now - last_at).as_secs_f64().max(1e-9);
        let line = format!("{ops:>10} ops {rate:>10.0} ops/s {errors:>6} errors");
        match &bar {
            Some(bar) => {
                bar.set_position((now - start).as_secs());
                bar.set_message(line);
            }
            None => eprintln!("{:>6.1}s {line}", (now - start).as_secs_f64()),
        }
        last_ops = ops;
        last_at = now;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that takes exactly `service` per request, one at a time per worker.
    struct FixedService {
        service: Duration,
    }

    impl Caller for FixedService {
        async fn call(&mut self) -> Result<(), String> {
            tokio::time::sleep(self.service).await;
            Ok(())
        }
    }

    fn plan(pacing: Pacing, secs: u64) -> Plan {
        Plan {
            pacing,
            duration: Duration::from_secs(secs),
            progress: false,
        }
    }

    fn ms(h: &Histogram<u64>, q: f64) -> f64 {
        h.value_at_quantile(q) as f64 / 1e6
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_under_capacity_measures_the_service_time() {
        // 50 req/s, 10 ms each, 1 worker: never behind.
        let m = run(
            plan(Pacing::Open { rate: 50.0 }, 2),
            vec![FixedService {
                service: Duration::from_millis(10),
            }],
        )
        .await
        .unwrap();
        assert_eq!(m.ops, 100);
        assert_eq!(m.unsent, Some(0));
        assert!(
            (9.9..11.0).contains(&ms(&m.histogram, 0.99)),
            "{}",
            ms(&m.histogram, 0.99)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_counts_queueing_from_the_scheduled_time() {
        // 1000 req/s scheduled, but one worker can only do 100/s: the backlog grows, and
        // request n (sent at 10n ms, due at n ms) waited 9n ms. A closed loop would report 10 ms.
        let m = run(
            plan(Pacing::Open { rate: 1000.0 }, 1),
            vec![FixedService {
                service: Duration::from_millis(10),
            }],
        )
        .await
        .unwrap();
        assert_eq!(m.ops, 100);
        assert_eq!(m.unsent, Some(900));
        let median = ms(&m.histogram, 0.5);
        let max = m.histogram.max() as f64 / 1e6;
        assert!((440.0..470.0).contains(&median), "median {median} ms");
        assert!((890.0..910.0).contains(&max), "max {max} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_measures_each_request_from_its_send() {
        let callers = (0..4)
            .map(|_| FixedService {
                service: Duration::from_millis(10),
            })
            .collect();
        let m = run(plan(Pacing::Closed, 1), callers).await.unwrap();
        assert_eq!(m.ops, 400);
        assert_eq!(m.unsent, None);
        assert!((9.9..11.0).contains(&(m.histogram.max() as f64 / 1e6)));
    }

    #[test]
    fn schedule_slots_are_evenly_spaced_and_end_with_the_duration() {
        let start = Instant::now();
        let s = Schedule::new(start, Duration::from_secs(1), 4.0);
        assert_eq!(s.total_slots(), 4);
        let due: Vec<_> = std::iter::from_fn(|| s.take()).collect();
        assert_eq!(
            due.iter()
                .map(|d| (*d - start).as_millis())
                .collect::<Vec<_>>(),
            vec![0, 250, 500, 750]
        );
    }
}
