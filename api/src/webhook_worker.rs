//! The background worker that delivers the webhook outbox.
//!
//! Each round claims a batch of due deliveries, POSTs them concurrently
//! (outside any transaction, with a timeout), and records every attempt.
//!
//! - Claiming: a claim sets a lease (`locked_until`, `locked_by`) in a short
//!   write transaction. On PostgreSQL the candidate rows are selected `FOR
//!   UPDATE SKIP LOCKED`, so two workers never claim the same row; on
//!   SQLite the write lock taken at BEGIN serializes claims. A worker that
//!   dies leaves its lease to expire (twice the HTTP timeout plus a second),
//!   after which the delivery is claimed again: delivery is at-least-once,
//!   and a receiver de-duplicates by the event id header.
//! - Order: only the oldest pending delivery of each (webhook, entity) is
//!   ever claimable, so a deal's later event never overtakes an earlier one
//!   that is still being retried (one that exhausted its attempts and is
//!   FAILED no longer holds the others back).
//! - Retries: a non-2xx answer or a transport error schedules the next
//!   attempt after an exponential backoff; after the configured number of
//!   attempts the delivery is FAILED. Every attempt is a `webhook_attempt`
//!   row.
//! - Restarts: all state is in the database; nothing is lost between the
//!   commit of a change and its delivery.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    Value as SqlValue,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use entity::{webhook, webhook_delivery};

use crate::clock;
use crate::config::Config;
use crate::db::{begin_write, insert_rows, ColType, Dialect, Sql};
use crate::domain::webhook::{backoff, signature};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Wait between polls while the outbox is empty.
    pub poll: Duration,
    /// First retry delay; doubled after each failed attempt.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per-request timeout (connect, send, answer).
    pub timeout: Duration,
    /// Attempts before a delivery is given up as FAILED.
    pub max_attempts: u32,
    /// Deliveries claimed (and sent concurrently) per round.
    pub batch: u64,
}

impl WorkerSettings {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            poll: Duration::from_millis(cfg.webhook_poll_ms.max(10)),
            backoff_base: Duration::from_millis(cfg.webhook_backoff_ms.max(1)),
            backoff_max: Duration::from_millis(cfg.webhook_backoff_max_ms.max(1)),
            timeout: Duration::from_millis(cfg.webhook_timeout_ms.max(100)),
            max_attempts: cfg.webhook_max_attempts.max(1),
            batch: 32,
        }
    }

    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }
}

/// A running worker.
pub struct Worker {
    stop: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

/// Stops a worker from elsewhere (tests, shutdown).
#[derive(Clone)]
pub struct WorkerControl {
    stop: Arc<watch::Sender<bool>>,
    abort: tokio::task::AbortHandle,
}

impl WorkerControl {
    /// Finishes the deliveries in flight, then stops.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops at once, as if the process died: deliveries in flight are
    /// dropped and will be claimed again when their lease expires.
    pub fn kill(&self) {
        self.abort.abort();
    }
}

impl Worker {
    pub fn spawn(db: DatabaseConnection, settings: WorkerSettings) -> Result<Self, String> {
        let client = http_client(settings.timeout)?;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(db, settings, client, rx));
        Ok(Self {
            stop: Arc::new(tx),
            task,
        })
    }

    pub fn control(&self) -> WorkerControl {
        WorkerControl {
            stop: self.stop.clone(),
            abort: self.task.abort_handle(),
        }
    }

    /// Asks the worker to stop and waits for the round in flight.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Makes rustls' ring provider the process default, for any HTTP client
/// built without an explicit TLS configuration (reqwest is built without a
/// provider of its own). Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for http and https receivers (rustls with the ring
/// provider and the Mozilla roots), with a timeout and no redirects.
fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("salesops-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

async fn run(
    db: DatabaseConnection,
    settings: WorkerSettings,
    client: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) {
    let me = format!("worker-{}", uuid::Uuid::new_v4().simple());
    tracing::info!(worker = %me, "webhook worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        let busy = match round(&db, &settings, &client, &me).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "webhook round failed");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(settings.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
    tracing::info!(worker = %me, "webhook worker stopped");
}

/// One claim-deliver-record round; the number of deliveries attempted.
pub async fn round(
    db: &DatabaseConnection,
    settings: &WorkerSettings,
    client: &reqwest::Client,
    me: &str,
) -> AppResult<usize> {
    let claimed = claim(db, settings, me).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let hooks: HashMap<i64, webhook::Model> = webhook::Entity::find()
        .filter(webhook::Column::Id.is_in(claimed.iter().map(|d| d.webhook_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    let sends = claimed
        .iter()
        .map(|d| send(client, hooks.get(&d.webhook_id), d));
    let results = futures::future::join_all(sends).await;
    record(db, settings, me, &claimed, results).await?;
    Ok(claimed.len())
}

/// Leases the due deliveries that head their (webhook, entity) queue.
async fn claim(
    db: &DatabaseConnection,
    settings: &WorkerSettings,
    me: &str,
) -> AppResult<Vec<webhook_delivery::Model>> {
    let now = clock::now();
    let until = now
        + chrono::Duration::from_std(settings.lease())
            .map_err(|e| AppError::internal(e.to_string()))?;
    let tx = begin_write(db).await?;
    let skip_locked = match Dialect::of(&tx) {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let mut sql = Sql::new("UPDATE webhook_delivery SET locked_until = ");
    sql.bind(until)
        .push(", locked_by = ")
        .bind(me.to_owned())
        .push(
            " WHERE id IN (SELECT d.id FROM webhook_delivery d \
             WHERE d.status = 'PENDING' AND d.next_attempt_at <= ",
        )
        .bind(now)
        .push(" AND (d.locked_until IS NULL OR d.locked_until < ")
        .bind(now)
        .push(
            ") AND NOT EXISTS (SELECT 1 FROM webhook_delivery e \
             WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key \
             AND e.status = 'PENDING' AND e.id < d.id) ORDER BY d.id LIMIT ",
        )
        .bind(settings.batch as i64)
        .push(skip_locked)
        .push(") RETURNING *");
    let rows = webhook_delivery::Entity::find()
        .from_raw_sql(sql.statement(tx.get_database_backend()))
        .all(&tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// What one HTTP attempt came to.
struct Sent {
    started_at: chrono::DateTime<chrono::Utc>,
    duration: Duration,
    status: Option<u16>,
    error: Option<String>,
}

impl Sent {
    fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

async fn send(
    client: &reqwest::Client,
    hook: Option<&webhook::Model>,
    d: &webhook_delivery::Model,
) -> Sent {
    let started_at = clock::now();
    let started = Instant::now();
    let Some(hook) = hook else {
        return Sent {
            started_at,
            duration: started.elapsed(),
            status: None,
            error: Some("the webhook was deleted".into()),
        };
    };
    let result = client
        .post(&hook.url)
        .header("Content-Type", "application/json")
        .header(
            "X-Salesops-Signature",
            signature(&hook.secret, d.payload.as_bytes()),
        )
        .header("X-Salesops-Event-Id", &d.event_id)
        .header("X-Salesops-Event", &d.event_type)
        .header("X-Salesops-Timestamp", started_at.timestamp().to_string())
        .header("X-Salesops-Attempt", (d.attempts + 1).to_string())
        .body(d.payload.clone())
        .send()
        .await;
    let (status, error) = match result {
        Ok(res) => {
            let code = res.status().as_u16();
            let err = (!res.status().is_success()).then(|| format!("HTTP {code}"));
            (Some(code), err)
        }
        Err(e) => (
            e.status().map(|s| s.as_u16()),
            Some(truncate(&error_chain(&e), 500)),
        ),
    };
    Sent {
        started_at,
        duration: started.elapsed(),
        status,
        error,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Records the attempts and moves each delivery on: DELIVERED, PENDING
/// again after a backoff, or FAILED after the last attempt. A delivery whose
/// lease another worker took over in the meantime keeps that worker's state.
async fn record(
    db: &DatabaseConnection,
    settings: &WorkerSettings,
    me: &str,
    claimed: &[webhook_delivery::Model],
    results: Vec<Sent>,
) -> AppResult<()> {
    let tx = begin_write(db).await?;
    let backend = tx.get_database_backend();
    let now = clock::now();
    let mut attempts = Vec::with_capacity(claimed.len());
    for (d, sent) in claimed.iter().zip(&results) {
        let attempt = d.attempts + 1;
        let mut sql = Sql::new("UPDATE webhook_delivery SET attempts = ");
        sql.bind(attempt)
            .push(", last_attempt_at = ")
            .bind(sent.started_at)
            .push(", last_status_code = ")
            .bind(sent.status.map(i32::from))
            .push(", last_error = ")
            .bind(sent.error.clone())
            .push(", locked_until = NULL, locked_by = NULL, ");
        if sent.ok() {
            sql.push("status = 'DELIVERED', delivered_at = ").bind(now);
        } else if attempt as u32 >= settings.max_attempts {
            sql.push("status = 'FAILED'");
        } else {
            let wait = backoff(settings.backoff_base, attempt as u32, settings.backoff_max);
            let next = now
                + chrono::Duration::from_std(wait)
                    .map_err(|e| AppError::internal(e.to_string()))?;
            sql.push("next_attempt_at = ").bind(next);
        }
        sql.push(" WHERE id = ")
            .bind(d.id)
            .push(" AND locked_by = ")
            .bind(me.to_owned());
        tx.execute_raw(sql.statement(backend)).await?;
        attempts.push(vec![
            SqlValue::from(d.id),
            attempt.into(),
            sent.started_at.into(),
            (sent.duration.as_millis().min(i32::MAX as u128) as i32).into(),
            sent.status.map(i32::from).into(),
            sent.error.clone().into(),
            sent.ok().into(),
        ]);
    }
    // A delivery deleted meanwhile (with its webhook) keeps no attempts.
    let mut live = Sql::new("SELECT id FROM webhook_delivery WHERE id IN ");
    live.bind_list(claimed.iter().map(|d| d.id));
    let live: std::collections::HashSet<i64> = IdRow::find_by_statement(live.statement(backend))
        .all(&tx)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    attempts.retain(|row| matches!(row[0], SqlValue::BigInt(Some(id)) if live.contains(&id)));
    insert_rows(
        &tx,
        "webhook_attempt",
        &[
            ("delivery_id", ColType::BigInt),
            ("attempt", ColType::Int),
            ("started_at", ColType::Timestamp),
            ("duration_ms", ColType::Int),
            ("status_code", ColType::Int),
            ("error", ColType::Text),
            ("success", ColType::Bool),
        ],
        attempts,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
