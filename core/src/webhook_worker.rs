//! The background worker that delivers the webhook outbox.
//!
//! A dispatcher claims due deliveries and hands each to its own task, which
//! POSTs it (outside any transaction, with a timeout) and records the attempt
//! in a short transaction of its own. The dispatcher claims again as soon as a
//! task finishes (or after a poll while idle), so a slow receiver never holds
//! back the others.
//!
//! - Claiming: a claim sets a lease (`locked_until`, `locked_by`) in a short
//!   write transaction. On PostgreSQL the candidate rows are selected `FOR
//!   UPDATE SKIP LOCKED` and the lease is checked again on the locked row
//!   (a claim committed after the statement began is seen), so two workers
//!   never claim the same row (tests/api/scale_out.rs runs four); on
//!   SQLite the write lock taken at BEGIN serializes claims. A worker that
//!   dies leaves its lease to expire (twice the HTTP timeout plus a second),
//!   after which the delivery is claimed again: delivery is at-least-once,
//!   and a receiver de-duplicates by the event id header.
//! - Isolation: at most `max_in_flight` deliveries are in flight, and at most
//!   `per_receiver` to any one webhook (counted from the live leases, so it
//!   holds across workers): a dead receiver with a backlog occupies only its
//!   own slots until its requests time out.
//! - Order: only the oldest pending delivery of each (webhook, entity) is
//!   ever claimable, so a deal's later event never overtakes an earlier one
//!   that is still being retried (one that exhausted its attempts and is
//!   FAILED no longer holds the others back).
//! - Retries: a non-2xx answer or a transport error schedules the next
//!   attempt after an exponential backoff; after the configured number of
//!   attempts the delivery is FAILED. Every attempt is a `webhook_attempt`
//!   row whose error is a class of failure (`HTTP 503`, `timeout`, ...),
//!   never a receiver's body or a transport message.
//! - Destinations: the URL is checked against the destination policy before
//!   each attempt, and every address a host name resolves to is checked by
//!   the client's resolver, which hands the connector only checked
//!   addresses; redirects are not followed and no proxy is used.
//! - Restarts: all state is in the database; nothing is lost between the
//!   commit of a change and its delivery.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use entity::{webhook, webhook_attempt, webhook_delivery};

use crate::clock;
use crate::config::Config;
use crate::db::{begin_write, insert_models, Dialect, Sql};
use crate::domain::webhook::policy::{DestinationPolicy, PolicyError};
use crate::domain::webhook::{backoff, signature, Failure};
use crate::error::{AppError, AppResult};
use crate::service::webhook::{seal_legacy_secrets, WebhookSettings};

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
    /// Deliveries in flight at once, over all receivers.
    pub max_in_flight: usize,
    /// Deliveries in flight at once to one webhook.
    pub per_receiver: usize,
    /// Destination policy and the key of the stored secrets.
    pub hooks: WebhookSettings,
}

impl WorkerSettings {
    pub fn from_config(cfg: &Config, hooks: WebhookSettings) -> Self {
        Self {
            poll: Duration::from_millis(cfg.webhook_poll_ms.max(10)),
            backoff_base: Duration::from_millis(cfg.webhook_backoff_ms.max(1)),
            backoff_max: Duration::from_millis(cfg.webhook_backoff_max_ms.max(1)),
            timeout: Duration::from_millis(cfg.webhook_timeout_ms.max(100)),
            max_attempts: cfg.webhook_max_attempts.max(1),
            max_in_flight: cfg.webhook_max_in_flight.max(1),
            per_receiver: cfg.webhook_max_in_flight_per_receiver.max(1),
            hooks,
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
        let client = http_client(settings.timeout, settings.hooks.policy.clone())?;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(db, Arc::new(settings), client, rx));
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

    /// Asks the worker to stop and waits for the deliveries in flight.
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

/// An HTTP client for webhook receivers (rustls with the ring provider and
/// the Mozilla roots), with a timeout, no redirects, no proxy, and a
/// resolver that enforces the destination policy.
fn http_client(
    timeout: Duration,
    policy: Arc<DestinationPolicy>,
) -> Result<reqwest::Client, String> {
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
        // A proxy would resolve the name itself, past the policy.
        .no_proxy()
        .dns_resolver(PolicyResolver { policy })
        .user_agent(concat!("salesops-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// The name did not resolve (or to no address).
#[derive(Debug, thiserror::Error)]
#[error("dns")]
struct DnsFailed;

/// Resolves with the system resolver, then refuses the host when any of its
/// addresses is refused by the policy. The connector only ever sees the
/// addresses returned here, so a name cannot be checked against one answer
/// and connected to another (DNS rebinding).
struct PolicyResolver {
    policy: Arc<DestinationPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Box::new(DnsFailed) as BoxError)?
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(DnsFailed) as BoxError);
            }
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            if let Err(e) = policy.check_resolved(&host, &ips) {
                tracing::warn!(host = %host, reason = %e, "webhook destination refused at delivery");
                return Err(Box::new(e) as BoxError);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(
    db: DatabaseConnection,
    settings: Arc<WorkerSettings>,
    client: reqwest::Client,
    mut stop: watch::Receiver<bool>,
) {
    let me = format!("worker-{}", uuid::Uuid::new_v4().simple());
    tracing::info!(worker = %me, "webhook worker started");
    if let Some(key) = &settings.hooks.key {
        match seal_legacy_secrets(&db, key).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sealed = n, "encrypted plaintext webhook secrets"),
            Err(e) => tracing::warn!(error = %e, "could not encrypt plaintext webhook secrets"),
        }
    }
    let mut tasks: JoinSet<()> = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = settings.max_in_flight.saturating_sub(tasks.len());
        if free > 0 {
            if let Err(e) = dispatch(&db, &settings, &client, &me, free, &mut tasks).await {
                tracing::warn!(error = %e, "webhook claim failed");
            }
        }
        // Claim again when a delivery finishes (a slot is free), after the
        // poll interval, or stop.
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                log_panic(done);
                while let Some(done) = tasks.try_join_next() {
                    log_panic(done);
                }
            }
            _ = tokio::time::sleep(settings.poll) => {}
            _ = stop.changed() => {}
        }
    }
    while let Some(done) = tasks.join_next().await {
        log_panic(done);
    }
    tracing::info!(worker = %me, "webhook worker stopped");
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "webhook delivery task failed");
    }
}

/// Claims up to `free` deliveries and starts a task for each; the number
/// started.
async fn dispatch(
    db: &DatabaseConnection,
    settings: &Arc<WorkerSettings>,
    client: &reqwest::Client,
    me: &str,
    free: usize,
    tasks: &mut JoinSet<()>,
) -> AppResult<usize> {
    let claimed = claim(db, settings, me, free).await?;
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
    let n = claimed.len();
    for d in claimed {
        let hook = hooks.get(&d.webhook_id).cloned();
        let (db, settings, client, me) =
            (db.clone(), settings.clone(), client.clone(), me.to_owned());
        tasks.spawn(async move {
            let sent = send(&client, &settings.hooks, hook.as_ref(), &d).await;
            if let Err(e) = record(&db, &settings, &me, &d, &sent).await {
                // The lease expires and the delivery is attempted again.
                tracing::warn!(error = %e, delivery = d.id, "recording a webhook attempt failed");
            }
        });
    }
    Ok(n)
}

/// Leases up to `limit` due deliveries that head their (webhook, entity)
/// queue, at most `per_receiver` in flight per webhook counting the leases
/// already held.
async fn claim(
    db: &DatabaseConnection,
    settings: &WorkerSettings,
    me: &str,
    limit: usize,
) -> AppResult<Vec<webhook_delivery::Model>> {
    let now = clock::now();
    let until = now
        + chrono::Duration::from_std(settings.lease())
            .map_err(|e| AppError::internal(e.to_string()))?;
    let tx = begin_write(db).await?;
    // PostgreSQL refuses FOR UPDATE beside window functions, so the lock is
    // taken one level up.
    let skip_locked = match Dialect::of(&tx) {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let mut sql = Sql::new("UPDATE webhook_delivery SET locked_until = ");
    sql.bind(until)
        .push(", locked_by = ")
        .bind(me.to_owned())
        .push(
            " WHERE id IN (SELECT x.id FROM webhook_delivery x WHERE x.id IN (\
             SELECT c.id FROM (\
             SELECT d.id, d.webhook_id, \
             ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.id) AS rn \
             FROM webhook_delivery d \
             WHERE d.status = 'PENDING' AND d.next_attempt_at <= ",
        )
        .bind(now)
        .push(" AND (d.locked_until IS NULL OR d.locked_until < ")
        .bind(now)
        .push(
            ") AND NOT EXISTS (SELECT 1 FROM webhook_delivery e \
             WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key \
             AND e.status = 'PENDING' AND e.id < d.id)) c \
             LEFT JOIN (SELECT l.webhook_id, COUNT(*) AS n FROM webhook_delivery l \
             WHERE l.status = 'PENDING' AND l.locked_until >= ",
        )
        .bind(now)
        .push(
            " GROUP BY l.webhook_id) busy ON busy.webhook_id = c.webhook_id \
             WHERE c.rn + COALESCE(busy.n, 0) <= ",
        )
        .bind(settings.per_receiver as i64)
        // Checked again on the row itself: under FOR UPDATE, PostgreSQL
        // re-evaluates these on the latest version of a row another worker
        // claimed and committed after this statement's snapshot was taken
        // (the candidates above come from that snapshot and are not
        // re-evaluated), so two workers never lease the same delivery.
        .push(") AND x.status = 'PENDING' AND x.next_attempt_at <= ")
        .bind(now)
        .push(" AND (x.locked_until IS NULL OR x.locked_until < ")
        .bind(now)
        .push(") ORDER BY x.id LIMIT ")
        .bind(limit as i64)
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
    #[allow(dead_code)]
    id: i64,
}

/// What one HTTP attempt came to.
struct Sent {
    started_at: chrono::DateTime<chrono::Utc>,
    duration: Duration,
    status: Option<u16>,
    failure: Option<Failure>,
}

impl Sent {
    fn ok(&self) -> bool {
        self.failure.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

async fn send(
    client: &reqwest::Client,
    hooks: &WebhookSettings,
    hook: Option<&webhook::Model>,
    d: &webhook_delivery::Model,
) -> Sent {
    let started_at = clock::now();
    let started = Instant::now();
    let fail = |failure| Sent {
        started_at,
        duration: started.elapsed(),
        status: None,
        failure: Some(failure),
    };
    let Some(hook) = hook else {
        return fail(Failure::WebhookDeleted);
    };
    // The policy may have changed since the webhook was created, and an
    // address literal never reaches the resolver.
    let allowed = url::Url::parse(&hook.url)
        .ok()
        .is_some_and(|u| hooks.policy.check_url(&u).is_ok());
    if !allowed {
        return fail(Failure::Refused);
    }
    let Ok(secret) = hooks.reveal(&hook.secret) else {
        return fail(Failure::SecretUnreadable);
    };
    let result = client
        .post(&hook.url)
        .header("Content-Type", "application/json")
        .header(
            "X-Salesops-Signature",
            signature(&secret, d.payload.as_bytes()),
        )
        .header("X-Salesops-Event-Id", &d.event_id)
        .header("X-Salesops-Event", &d.event_type)
        .header("X-Salesops-Timestamp", started_at.timestamp().to_string())
        .header("X-Salesops-Attempt", (d.attempts + 1).to_string())
        .body(d.payload.clone())
        .send()
        .await;
    let (status, failure) = match result {
        // The body is never read: it is not ours to store or show.
        Ok(res) => {
            let code = res.status().as_u16();
            (
                Some(code),
                (!res.status().is_success()).then_some(Failure::Status(code)),
            )
        }
        Err(e) => (None, Some(classify(&e))),
    };
    Sent {
        started_at,
        duration: started.elapsed(),
        status,
        failure,
    }
}

/// The class of a transport failure, from the typed errors in its chain.
fn classify(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<PolicyError>() {
            return Failure::Refused;
        }
        if c.is::<DnsFailed>() {
            return Failure::Dns;
        }
        if c.is::<rustls::Error>() {
            return Failure::Tls;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Failure::ConnectionRefused,
                std::io::ErrorKind::TimedOut => return Failure::Timeout,
                _ => {}
            }
            // io::Error::source skips the error it wraps: descend into it.
            if let Some(inner) = io.get_ref() {
                cause = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        cause = c.source();
    }
    Failure::Connection
}

/// Records the attempt and moves the delivery on: DELIVERED, PENDING again
/// after a backoff, or FAILED after the last attempt. A delivery whose lease
/// another worker took over in the meantime keeps that worker's state; one
/// deleted meanwhile (with its webhook) keeps no attempt. One delivery per
/// transaction: holding one delivery row while waiting for another could
/// wait in a cycle with a webhook's cascading delete.
async fn record(
    db: &DatabaseConnection,
    settings: &WorkerSettings,
    me: &str,
    d: &webhook_delivery::Model,
    sent: &Sent,
) -> AppResult<()> {
    let tx = begin_write(db).await?;
    let backend = tx.get_database_backend();
    let now = clock::now();
    let attempt = d.attempts + 1;
    let error = sent.failure.map(|f| f.to_string());
    let mut sql = Sql::new("UPDATE webhook_delivery SET attempts = ");
    sql.bind(attempt)
        .push(", last_attempt_at = ")
        .bind(sent.started_at)
        .push(", last_status_code = ")
        .bind(sent.status.map(i32::from))
        .push(", last_error = ")
        .bind(error.clone())
        .push(", locked_until = NULL, locked_by = NULL, ");
    if sent.ok() {
        sql.push("status = 'DELIVERED', delivered_at = ").bind(now);
    } else if attempt as u32 >= settings.max_attempts {
        sql.push("status = 'FAILED'");
    } else {
        let wait = backoff(settings.backoff_base, attempt as u32, settings.backoff_max);
        let next = now
            + chrono::Duration::from_std(wait).map_err(|e| AppError::internal(e.to_string()))?;
        sql.push("next_attempt_at = ").bind(next);
    }
    sql.push(" WHERE id = ")
        .bind(d.id)
        .push(" AND locked_by = ")
        .bind(me.to_owned());
    let updated = tx
        .execute_raw(sql.statement(backend))
        .await?
        .rows_affected();
    let live = updated > 0 || {
        let mut q = Sql::new("SELECT id FROM webhook_delivery WHERE id = ");
        q.bind(d.id);
        IdRow::find_by_statement(q.statement(backend))
            .one(&tx)
            .await?
            .is_some()
    };
    if live {
        let row = webhook_attempt::Model {
            id: 0,
            delivery_id: d.id,
            attempt,
            started_at: sent.started_at,
            duration_ms: sent.duration.as_millis().min(i32::MAX as u128) as i32,
            status_code: sent.status.map(i32::from),
            error,
            success: sent.ok(),
        };
        insert_models::<webhook_attempt::Entity>(&tx, &[webhook_attempt::Column::Id], &[row])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
