//! Counters the server keeps about itself, rendered at GET /metrics in the
//! Prometheus text format.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Operation names come from clients: at most this many distinct labels
/// (the rest count as `other`), each at most `MAX_LABEL_LEN` bytes. 190
/// requests with long names once grew this page to 57 MB; now it is bounded
/// by 200 x 64 bytes of names.
const MAX_OPERATION_LABELS: usize = 200;
const MAX_LABEL_LEN: usize = 64;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
pub struct Metrics {
    statements: AtomicU64,
    statement_errors: AtomicU64,
    statement_seconds_micros: AtomicU64,
    abandoned: AtomicU64,
    export_batches: AtomicU64,
    export_rows: AtomicU64,
    requests: Mutex<BTreeMap<String, Histogram>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn record_statement(&self, elapsed: Duration, failed: bool) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.statement_seconds_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if failed {
            self.statement_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request was dropped before it finished (client gone, deadline,
    /// shutdown) and its SQL cancelled.
    pub fn record_abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// An export read one batch of `rows` rows (api/src/export).
    pub fn record_export_batch(&self, rows: u64) {
        self.export_batches.fetch_add(1, Ordering::Relaxed);
        self.export_rows.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub fn record_request(&self, operation: &str, elapsed: Duration) {
        // GraphQL names are ASCII letters, digits and `_`: anything else is
        // cut, and the rest truncated.
        let end = operation
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map(|(i, _)| i)
            .unwrap_or(operation.len())
            .min(MAX_LABEL_LEN);
        let operation = &operation[..end];
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let label = if map.contains_key(operation) || map.len() < MAX_OPERATION_LABELS {
            operation
        } else {
            "other"
        };
        map.entry(label.to_owned())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_error(&self, code: &str) {
        let mut map = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(code.to_owned()).or_default() += 1;
    }

    /// The Prometheus exposition text; `pool` is (connections, idle).
    pub fn render(&self, pool: Option<(u32, usize)>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP salesops_db_statements_total SQL statements executed."
        );
        let _ = writeln!(out, "# TYPE salesops_db_statements_total counter");
        let _ = writeln!(out, "salesops_db_statements_total {}", self.statements());
        let _ = writeln!(
            out,
            "# HELP salesops_requests_abandoned_total Requests dropped before they finished, their SQL cancelled."
        );
        let _ = writeln!(out, "# TYPE salesops_requests_abandoned_total counter");
        let _ = writeln!(
            out,
            "salesops_requests_abandoned_total {}",
            self.abandoned.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP salesops_export_batches_total Batches of rows read by exports."
        );
        let _ = writeln!(out, "# TYPE salesops_export_batches_total counter");
        let _ = writeln!(
            out,
            "salesops_export_batches_total {}",
            self.export_batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP salesops_export_rows_total Rows read by exports."
        );
        let _ = writeln!(out, "# TYPE salesops_export_rows_total counter");
        let _ = writeln!(
            out,
            "salesops_export_rows_total {}",
            self.export_rows.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP salesops_db_statement_errors_total SQL statements that failed."
        );
        let _ = writeln!(out, "# TYPE salesops_db_statement_errors_total counter");
        let _ = writeln!(
            out,
            "salesops_db_statement_errors_total {}",
            self.statement_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP salesops_db_statement_seconds_total Time spent in SQL statements."
        );
        let _ = writeln!(out, "# TYPE salesops_db_statement_seconds_total counter");
        let _ = writeln!(
            out,
            "salesops_db_statement_seconds_total {}",
            self.statement_seconds_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP salesops_graphql_request_duration_seconds GraphQL requests by operation."
        );
        let _ = writeln!(
            out,
            "# TYPE salesops_graphql_request_duration_seconds histogram"
        );
        for (op, h) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let op = op.replace('\\', "\\\\").replace('"', "\\\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "salesops_graphql_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "salesops_graphql_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(
                out,
                "salesops_graphql_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "salesops_graphql_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP salesops_graphql_errors_total GraphQL errors by extensions.code."
        );
        let _ = writeln!(out, "# TYPE salesops_graphql_errors_total counter");
        for (code, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "salesops_graphql_errors_total{{code=\"{code}\"}} {n}");
        }
        if let Some((size, idle)) = pool {
            let _ = writeln!(
                out,
                "# HELP salesops_db_pool_connections Open connections in the pool."
            );
            let _ = writeln!(out, "# TYPE salesops_db_pool_connections gauge");
            let _ = writeln!(out, "salesops_db_pool_connections {size}");
            let _ = writeln!(
                out,
                "# HELP salesops_db_pool_idle_connections Idle connections in the pool."
            );
            let _ = writeln!(out, "# TYPE salesops_db_pool_idle_connections gauge");
            let _ = writeln!(out, "salesops_db_pool_idle_connections {idle}");
        }
        out
    }
}
