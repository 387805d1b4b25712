//! Prometheus metrics and health endpoints for operators: requests by
//! operation, decision and status; bytes in and out; total and upstream
//! latency histograms; open connections (in all and per worker); upstream
//! errors; the audit queue;
//! the build; the process (memory, descriptors, CPU).
//! Names follow Prometheus' conventions: the unit last, before `_total`.
//! Series without per-request labels exist from the start at 0; those
//! labelled by operation appear with the first request of that operation
//! (pre-creating ~80 operations × 18-bucket histograms would be thousands
//! of empty lines per scrape).
//! Served on their own address (`metrics_listen`) with `/metrics`,
//! `/healthz` (alive) and `/readyz` (identities loaded, upstream answers).

pub mod endpoint;
mod process;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{OnceLock, PoisonError, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use endpoint::{MetricsServer, serve};

use crate::audit::AuditRecord;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: Cow<'static, str>,
    decision: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~65 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// At most this many operation names are counted apart (S3's operations and
/// the IAM and STS actions are far fewer); requests naming others count as
/// `other`.
const MAX_OPERATIONS: usize = 512;

/// One operation's series in the per-operation families, found together:
/// each family would hash the labels and take its lock again.
struct OperationSeries {
    bytes_in: Counter,
    bytes_out: Counter,
    duration: Histogram,
    /// Made at the operation's first upstream call, as the family would.
    upstream_duration: OnceLock<Histogram>,
    /// This operation's request counters by decision and status, as the
    /// `requests` family holds them: a lookup there hashes the labels with
    /// SipHash on every request, here it compares a few pairs. At most
    /// [`MAX_OUTCOMES`]; past them the family is asked.
    outcomes: RwLock<Vec<(&'static str, u16, Counter)>>,
}

/// Outcomes (decision and status) kept per operation: a handful in practice.
const MAX_OUTCOMES: usize = 32;

impl OperationSeries {
    /// Counts one request of `decision` and `status`; `made` finds its
    /// counter in the family the first time.
    fn count_request(&self, decision: &'static str, status: u16, made: impl FnOnce() -> Counter) {
        let known = self.outcomes.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, counter)) = known
            .iter()
            .find(|(d, s, _)| *s == status && *d == decision)
        {
            counter.inc();
            return;
        }
        let full = known.len() >= MAX_OUTCOMES;
        drop(known);
        let counter = made();
        counter.inc();
        if full {
            return;
        }
        let mut all = self
            .outcomes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Another worker may have kept it meanwhile: the family's counter is the same one.
        if all.len() < MAX_OUTCOMES && !all.iter().any(|(d, s, _)| *s == status && *d == decision) {
            all.push((decision, status, counter));
        }
    }
}

/// Every metric s3warden exports.
pub struct Metrics {
    registry: Registry,
    /// `process_*` metrics, which carry no `s3warden_` prefix.
    process_registry: Registry,
    process: process::ProcessMetrics,
    requests: Family<RequestLabels, Counter>,
    bytes_in: Family<OperationLabels, Counter>,
    bytes_out: Family<OperationLabels, Counter>,
    duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    upstream_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    /// Handles on the series above by operation (at most [`MAX_OPERATIONS`]).
    /// foldhash: looked up on every request, and holds at most
    /// [`MAX_OPERATIONS`] names whatever anyone sends.
    operations: RwLock<HashMap<Cow<'static, str>, OperationSeries, foldhash::fast::RandomState>>,
    connections: Gauge<i64, AtomicI64>,
    worker_connections: Family<WorkerLabels, Gauge<i64, AtomicI64>>,
    upstream_errors: Family<KindLabels, Counter>,
    audit_queue: Gauge<i64, AtomicI64>,
    audit_refused: Counter,
    store_up: Gauge<i64, AtomicI64>,
    store_seq: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The identity store's reachability and the change this instance is at.
    pub fn set_identity_store(&self, reachable: bool, applied_seq: i64) {
        self.store_up.set(i64::from(reachable));
        self.store_seq.set(applied_seq);
    }

    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("s3warden");
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes_in = Family::<OperationLabels, Counter>::default();
        let bytes_out = Family::<OperationLabels, Counter>::default();
        let duration =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        let upstream_duration =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        let connections = Gauge::<i64, AtomicI64>::default();
        let upstream_errors = Family::<KindLabels, Counter>::default();
        let audit_queue = Gauge::<i64, AtomicI64>::default();
        let audit_refused = Counter::default();
        registry.register(
            "requests",
            "Requests by operation, decision and status",
            requests.clone(),
        );
        registry.register(
            "request_body_bytes",
            "Request body bytes received from clients",
            bytes_in.clone(),
        );
        registry.register(
            "response_body_bytes",
            "Response body bytes sent to clients",
            bytes_out.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the response",
            duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to its response headers",
            upstream_duration.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections currently open",
            connections.clone(),
        );
        let worker_connections = Family::<WorkerLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "worker_connections",
            "Client connections currently open, by the worker serving them",
            worker_connections.clone(),
        );
        for kind in crate::upstream::UpstreamError::KINDS {
            upstream_errors
                .get_or_create(&KindLabels { kind })
                .inc_by(0);
        }
        registry.register(
            "upstream_errors",
            "Requests that failed at the upstream",
            upstream_errors.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running s3warden's version", build_info);
        let mut process_registry = Registry::default();
        let process = process::ProcessMetrics::register(&mut process_registry);
        registry.register(
            "audit_queue_depth",
            "Audit records waiting for the writer",
            audit_queue.clone(),
        );
        registry.register(
            "audit_refused_requests",
            "Requests refused because the audit queue was full",
            audit_refused.clone(),
        );
        let store_up = Gauge::<i64, AtomicI64>::default();
        let store_seq = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "identity_store_up",
            "1 while the identity store can be reached (a shared store can be lost; requests go on with the last directory)",
            store_up.clone(),
        );
        registry.register(
            "identity_store_applied_seq",
            "The last change of the shared identity store applied by this instance",
            store_seq.clone(),
        );
        store_up.set(1);
        Metrics {
            registry,
            store_up,
            store_seq,
            process_registry,
            process,
            requests,
            bytes_in,
            bytes_out,
            duration,
            upstream_duration,
            operations: Default::default(),
            connections,
            worker_connections,
            upstream_errors,
            audit_queue,
            audit_refused,
        }
    }

    /// Counts a finished request from its audit record: one source of truth.
    pub fn observe(&self, r: &AuditRecord) {
        // Borrowed for S3 operations (static names): no copy per request.
        let name = r.operation.clone().unwrap_or(Cow::Borrowed("none"));
        let decision = match r.decision.as_ref().map(|d| d.allowed) {
            Some(true) => "allow",
            Some(false) => "deny",
            None => "none",
        };
        let count = |operation: &Cow<'static, str>, series: &OperationSeries| {
            series.count_request(decision, r.status, || {
                self.requests
                    .get_or_create(&RequestLabels {
                        operation: operation.clone(),
                        decision,
                        status: r.status,
                    })
                    .clone()
            });
            series.bytes_in.inc_by(r.bytes_in);
            series.bytes_out.inc_by(r.bytes_out);
            series.duration.observe(r.duration_ms / 1000.0);
            if let Some(u) = r.upstream_ms {
                let made = || {
                    let op = OperationLabels {
                        operation: operation.clone(),
                    };
                    self.upstream_duration.get_or_create(&op).clone()
                };
                series
                    .upstream_duration
                    .get_or_init(made)
                    .observe(u / 1000.0);
            }
        };
        let known = self
            .operations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let full = || known.len() >= MAX_OPERATIONS;
        let found = known.get_key_value(&name);
        if let Some((operation, series)) =
            found.or_else(|| known.get_key_value("other").filter(|_| full()))
        {
            return count(operation, series);
        }
        drop(known);
        // The operation's first request: its series are made (or found,
        // had another worker made them meanwhile) under the write lock.
        // Past the bound, a new name counts as `other`: an API call's name
        // comes from its `Action`, read before the caller is authenticated.
        let mut all = self
            .operations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let operation = if all.len() < MAX_OPERATIONS || all.contains_key(&name) {
            name
        } else {
            Cow::Borrowed("other")
        };
        let series = all.entry(operation.clone()).or_insert_with(|| {
            let op = OperationLabels {
                operation: operation.clone(),
            };
            OperationSeries {
                bytes_in: self.bytes_in.get_or_create(&op).clone(),
                bytes_out: self.bytes_out.get_or_create(&op).clone(),
                duration: self.duration.get_or_create(&op).clone(),
                upstream_duration: OnceLock::new(),
                outcomes: RwLock::new(Vec::new()),
            }
        });
        count(&operation, series);
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// The count of connections worker `index` serves, exported as
    /// `s3warden_worker_connections{worker="index"}` (from 0); its keeper
    /// (the workers' balance) counts on the returned handle.
    pub fn worker_connections(&self, index: usize) -> Gauge<i64, AtomicI64> {
        self.worker_connections
            .get_or_create(&WorkerLabels {
                worker: index.to_string(),
            })
            .clone()
    }

    /// An upstream failure of the given kind (`connect`, `timeout`, …).
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    pub fn audit_refused(&self) {
        self.audit_refused.inc();
    }

    /// The text exposition, with the audit queue depth read now.
    pub fn encode(&self, audit_queue_depth: usize) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        self.audit_queue.set(audit_queue_depth as i64);
        self.process.refresh();
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.process_registry))
            .and_then(|()| encode_eof(&mut out));
        if encoded.is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(series))
            .map(|l| l[series.len()..].trim())
    }

    #[test]
    fn each_operations_series_count_its_own_requests() {
        let m = Metrics::new();
        let record = |op: &'static str, bytes_out: u64, upstream: Option<f64>| AuditRecord {
            operation: Some(Cow::Borrowed(op)),
            status: 200,
            bytes_out,
            duration_ms: 2.0,
            upstream_ms: upstream,
            ..AuditRecord::default()
        };
        m.observe(&record("GetObject", 10, Some(1.0)));
        m.observe(&record("GetObject", 5, None));
        m.observe(&record("GetObject", 1, Some(1.0)));
        m.observe(&record("ListBuckets", 7, None));
        let text = m.encode(0);
        let expected = [
            ("response_body_bytes_total", "GetObject", Some("16")),
            ("response_body_bytes_total", "ListBuckets", Some("7")),
            ("request_duration_seconds_count", "GetObject", Some("3")),
            ("upstream_duration_seconds_count", "GetObject", Some("2")),
            // No upstream call, no upstream series, as the family alone had it.
            ("upstream_duration_seconds_count", "ListBuckets", None),
        ];
        for (name, op, count) in expected {
            let series = format!("s3warden_{name}{{operation=\"{op}\"}}");
            assert_eq!(line(&text, &series), count, "{series}");
        }
    }

    /// Requests count under their operation, decision and status, each
    /// pair apart, also past the outcomes an operation keeps apart from the family.
    #[test]
    fn requests_count_by_decision_and_status() {
        let m = Metrics::new();
        let record = |status: u16, allowed: Option<bool>| AuditRecord {
            operation: Some(Cow::Borrowed("GetObject")),
            status,
            decision: allowed.map(|allowed| crate::audit::DecisionInfo {
                allowed,
                ..Default::default()
            }),
            ..AuditRecord::default()
        };
        let statuses: Vec<u16> = (0..MAX_OUTCOMES as u16 + 8).map(|i| 200 + i).collect();
        for (i, status) in statuses.iter().enumerate() {
            for _ in 0..=i % 3 {
                m.observe(&record(*status, Some(true)));
            }
            m.observe(&record(*status, Some(false)));
        }
        m.observe(&record(200, None));
        m.observe(&record(200, None));
        let text = m.encode(0);
        let series = |decision: &str, status: u16| {
            format!(
                "s3warden_requests_total{{operation=\"GetObject\",decision=\"{decision}\",status=\"{status}\"}}"
            )
        };
        for (i, status) in statuses.iter().enumerate() {
            let allowed = (i % 3 + 1).to_string();
            assert_eq!(
                line(&text, &series("allow", *status)),
                Some(allowed.as_str())
            );
            assert_eq!(line(&text, &series("deny", *status)), Some("1"));
        }
        assert_eq!(line(&text, &series("none", 200)), Some("2"));
    }

    #[test]
    fn names_past_the_bound_count_as_other() {
        let m = Metrics::new();
        let record = |op: String| AuditRecord {
            operation: Some(Cow::Owned(op)),
            status: 400,
            bytes_in: 1,
            ..AuditRecord::default()
        };
        for i in 0..MAX_OPERATIONS + 10 {
            m.observe(&record(format!("iam:Made{i}")));
        }
        // A name counted before the bound was reached still counts apart.
        m.observe(&record("iam:Made0".into()));
        let text = m.encode(0);
        let series = |op: &str| format!("s3warden_request_body_bytes_total{{operation=\"{op}\"}}");
        assert_eq!(line(&text, &series("iam:Made0")), Some("2"));
        assert_eq!(
            line(&text, &series(&format!("iam:Made{}", MAX_OPERATIONS - 1))),
            Some("1")
        );
        assert_eq!(
            line(&text, &series(&format!("iam:Made{MAX_OPERATIONS}"))),
            None
        );
        assert_eq!(line(&text, &series("other")), Some("10"));
        let families = text
            .lines()
            .filter(|l| l.starts_with("s3warden_requests_total{"));
        assert_eq!(families.count(), MAX_OPERATIONS + 1);
    }
}
