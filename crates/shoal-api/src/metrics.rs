//! The API's Prometheus metrics: requests, errors, latency and consumed capacity per operation
//! and table, and open connections. `GET /metrics` renders them with the node's own metrics
//! ([`crate::backend::Backend::metrics`]) in the OpenMetrics text format.
//!
//! Every label value is bounded by something the operator controls, never by what a client
//! sends: `operation` is one of the operations Shoal knows (else `unknown`), `table` a table
//! this node knows (else empty: a request naming a table that does not exist, or a batch
//! operation touching several), `error` one of DynamoDB's error types.
//!
//! Metric names follow Prometheus' conventions (`shoal_` prefix, `_total`, `_seconds`); every
//! one is listed in docs/METRICS.md.

use std::cell::RefCell;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// `operation`, `table`.
type OpLabels = [(&'static str, String); 2];
/// `operation`, `table`, `error`.
type ErrorLabels = [(&'static str, String); 3];

/// Latency buckets (seconds): 100 µs to about 13 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_1, 2.0, 18)
}

/// The API's metrics (one set per server; nodes in one process do not share them).
pub struct ApiMetrics {
    registry: Registry,
    requests: Family<OpLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<OpLabels, Histogram, fn() -> Histogram>,
    read_units: Family<OpLabels, Counter<f64, AtomicU64>>,
    write_units: Family<OpLabels, Counter<f64, AtomicU64>>,
    pub(crate) connections: Gauge,
    refused_connections: Family<[(&'static str, &'static str); 1], Counter>,
}

impl std::fmt::Debug for ApiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiMetrics").finish_non_exhaustive()
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiMetrics {
    pub fn new() -> ApiMetrics {
        let mut registry = Registry::with_prefix("shoal");
        let requests = Family::<OpLabels, Counter>::default();
        registry.register(
            "requests",
            "DynamoDB API requests answered, by operation and table",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "request_errors",
            "DynamoDB API requests answered with an error, by operation, table and error type",
            errors.clone(),
        );
        let duration: Family<OpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register_with_unit(
            "request_duration",
            "Time from a request's head to its response, by operation and table",
            Unit::Seconds,
            duration.clone(),
        );
        let read_units = Family::<OpLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "consumed_read_capacity_units",
            "Read capacity units consumed, by operation and table (DynamoDB's arithmetic)",
            read_units.clone(),
        );
        let write_units = Family::<OpLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "consumed_write_capacity_units",
            "Write capacity units consumed, by operation and table (DynamoDB's arithmetic)",
            write_units.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open on the API port",
            connections.clone(),
        );
        let refused_connections = Family::default();
        registry.register(
            "refused_connections",
            "Client connections answered 503 ThrottlingException and closed at once, by reason (connection_limit, file_descriptors)",
            refused_connections.clone(),
        );
        ApiMetrics {
            refused_connections,
            registry,
            requests,
            errors,
            duration,
            read_units,
            write_units,
            connections,
        }
    }

    /// Records one answered request: `operation` and `table` already bounded (see the module
    /// docs), `error` the DynamoDB error type when it failed.
    pub fn observe(&self, operation: &str, table: &str, error: Option<&str>, took: Duration) {
        let labels = [
            ("operation", operation.to_string()),
            ("table", table.to_string()),
        ];
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(error) = error {
            let [op, table] = labels;
            self.errors
                .get_or_create(&[op, table, ("error", error.to_string())])
                .inc();
        }
    }

    /// Records a connection refused at accept (`reason`: `connection_limit` or
    /// `file_descriptors`).
    pub(crate) fn refused_connection(&self, reason: &'static str) {
        self.refused_connections
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Records the capacity units a request consumed on `table`.
    pub fn consumed(&self, operation: &str, table: &str, units: f64, write: bool) {
        let labels = [
            ("operation", operation.to_string()),
            ("table", table.to_string()),
        ];
        let family = if write {
            &self.write_units
        } else {
            &self.read_units
        };
        family.get_or_create(&labels).inc_by(units);
    }

    /// The OpenMetrics text of these metrics followed by `node` (the node's own families, in
    /// the same format, without the end marker), then `# EOF`.
    pub fn render(&self, node: &str) -> String {
        let mut out = String::with_capacity(16 * 1024 + node.len());
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        out.push_str(node);
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        let _ = encode_eof(&mut out);
        out
    }
}

/// Capacity units a request consumed on one table: `(table, units, write)`.
pub(crate) type Consumed = (String, f64, bool);

tokio::task_local! {
    /// The capacity units a request consumed, per table and kind (read or write), as the
    /// operation computed them for `ConsumedCapacity` (whether or not the client asked for it).
    static CONSUMED: RefCell<Vec<Consumed>>;
}

/// Runs `f` collecting the capacity it consumes (see [`charge`], [`charge_write`]); returns its
/// output and the units per table and kind.
pub(crate) async fn collecting<F: std::future::Future>(f: F) -> (F::Output, Vec<Consumed>) {
    CONSUMED
        .scope(RefCell::new(Vec::new()), async move {
            let out = f.await;
            let consumed = CONSUMED.with(|c| std::mem::take(&mut *c.borrow_mut()));
            (out, consumed)
        })
        .await
}

/// Notes that the current request consumed `units` of read capacity on `table` (outside
/// [`collecting`]: nothing).
pub(crate) fn charge(table: &str, units: f64) {
    note(table, units, false);
}

/// Notes that the current request consumed `units` of write capacity on `table` (a PartiQL
/// statement writes or reads whatever its operation's name, so the kind is the charge's).
pub(crate) fn charge_write(table: &str, units: f64) {
    note(table, units, true);
}

fn note(table: &str, units: f64, write: bool) {
    let _ = CONSUMED.try_with(|c| {
        let mut c = c.borrow_mut();
        match c.iter_mut().find(|(t, _, w)| t == table && *w == write) {
            Some((_, u, _)) => *u += units,
            None => c.push((table.to_string(), units, write)),
        }
    });
}

/// Appends one gauge sample line in the OpenMetrics text format (for collectors that build their
/// families by hand at scrape time); `labels` are `(name, value)` pairs, escaped here.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"");
            for ch in v.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_the_node_part() {
        let m = ApiMetrics::new();
        m.observe("PutItem", "t", None, Duration::from_millis(2));
        m.observe(
            "PutItem",
            "t",
            Some("ConditionalCheckFailedException"),
            Duration::from_millis(1),
        );
        m.consumed("PutItem", "t", 1.0, true);
        let mut node = String::from("# TYPE shoal_partitions gauge\n");
        sample(&mut node, "shoal_partitions", &[], 3.0);
        let text = m.render(&node);
        assert!(
            text.contains("shoal_requests_total{operation=\"PutItem\",table=\"t\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "shoal_request_errors_total{operation=\"PutItem\",table=\"t\",error=\"ConditionalCheckFailedException\"} 1"
        ));
        assert!(
            text.contains(
                "shoal_request_duration_seconds_count{operation=\"PutItem\",table=\"t\"} 2"
            )
        );
        assert!(text.contains(
            "shoal_consumed_write_capacity_units_total{operation=\"PutItem\",table=\"t\"} 1.0"
        ));
        assert!(text.contains("shoal_partitions 3\n"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn sample_escapes_label_values() {
        let mut out = String::new();
        sample(&mut out, "x", &[("a", "q\"\\\n")], 1.5);
        assert_eq!(out, "x{a=\"q\\\"\\\\\\n\"} 1.5\n");
    }

    #[tokio::test]
    async fn capacity_is_collected_per_table() {
        let ((), consumed) = collecting(async {
            charge("a", 1.0);
            charge("b", 0.5);
            charge("a", 2.0);
            charge_write("a", 4.0);
        })
        .await;
        assert_eq!(
            consumed,
            vec![
                ("a".to_string(), 3.0, false),
                ("b".to_string(), 0.5, false),
                ("a".to_string(), 4.0, true)
            ]
        );
        charge("outside", 1.0);
    }
}
