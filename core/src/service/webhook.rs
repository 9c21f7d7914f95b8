//! Webhook subscriptions (ADMIN only) and the record of their deliveries.
use std::collections::HashMap;
use std::sync::Arc;

use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
};

use entity::{webhook, webhook_attempt, webhook_delivery};

use super::access::WEBHOOK_ADMINS;
use super::audit::{self, Changes};
use super::outbox::EventKind;
use crate::auth::Principal;
use crate::clock;
use crate::config::Config;
use crate::db::{begin_write, Sql};
use crate::domain::webhook::policy::DestinationPolicy;
use crate::domain::webhook::secret::{is_sealed, SecretKey, Unreadable};
use crate::error::{AppError, AppResult};

/// The operator's webhook settings: where deliveries may go and the key
/// that seals secrets at rest.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub policy: Arc<DestinationPolicy>,
    /// SALESOPS_WEBHOOK_KEY, else derived from the JWT secret; None when
    /// there is neither (then no webhook can be created).
    pub key: Option<SecretKey>,
}

impl WebhookSettings {
    pub fn from_config(cfg: &Config) -> Result<Self, String> {
        let policy = DestinationPolicy::new(cfg.webhook_allow_http, &cfg.webhook_allowed_hosts)?;
        let key = match (&cfg.webhook_key, &cfg.jwt_secret) {
            (Some(k), _) if !k.trim().is_empty() => {
                Some(SecretKey::parse(k).map_err(|e| format!("SALESOPS_WEBHOOK_KEY {e}"))?)
            }
            (_, Some(jwt)) if !jwt.is_empty() => Some(SecretKey::derive_from(jwt)),
            _ => None,
        };
        Ok(Self {
            policy: Arc::new(policy),
            key,
        })
    }

    /// The secret of a stored value (a legacy plaintext value as it is).
    pub fn reveal(&self, stored: &str) -> Result<String, Unreadable> {
        match &self.key {
            Some(key) => key.reveal(stored),
            None if !is_sealed(stored) => Ok(stored.to_owned()),
            None => Err(Unreadable),
        }
    }
}

/// An https URL (http only when configured) with a host, at most 2,048
/// characters, without credentials or fragment, whose host the destination
/// policy permits; anything else is BAD_USER_INPUT naming the reason.
pub fn validate_url(raw: &str, policy: &DestinationPolicy) -> AppResult<String> {
    let raw = raw.trim();
    let bad = |why: &str| AppError::bad_input(format!("url: {why}"));
    if raw.len() > 2_048 {
        return Err(bad("must be at most 2048 characters"));
    }
    // The parse error names only the kind of fault, never the input.
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    policy.check_url(&url).map_err(|e| bad(&e.to_string()))?;
    Ok(url.to_string())
}

/// 32 random bytes, hex: the HMAC key of a webhook.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", hex::encode(bytes))
}

#[derive(FromQueryResult)]
struct StoredSecret {
    id: i64,
    secret: String,
}

/// Seals the secrets still stored in plaintext (rows written before
/// encryption at rest); the number sealed. Run at worker start.
pub async fn seal_legacy_secrets(db: &DatabaseConnection, key: &SecretKey) -> AppResult<usize> {
    let tx = begin_write(db).await?;
    let backend = tx.get_database_backend();
    let mut sql = Sql::new("SELECT id, secret FROM webhook WHERE secret NOT LIKE ");
    sql.bind("v1:%".to_owned()).push(" ORDER BY id");
    let rows = StoredSecret::find_by_statement(sql.statement(backend))
        .all(&tx)
        .await?;
    for row in &rows {
        let mut up = Sql::new("UPDATE webhook SET secret = ");
        up.bind(key.seal(&row.secret))
            .push(" WHERE id = ")
            .bind(row.id)
            .push(" AND secret = ")
            .bind(row.secret.clone());
        tx.execute_raw(up.statement(backend)).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// Subscribes `url` to `events`; returns the webhook and its secret, which
/// is never shown again.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    settings: &WebhookSettings,
    url: &str,
    events: &[EventKind],
) -> AppResult<(webhook::Model, String)> {
    actor.require(WEBHOOK_ADMINS)?;
    let key = settings.key.as_ref().ok_or_else(|| {
        AppError::forbidden(
            "webhooks need a key to encrypt their secrets: set SALESOPS_WEBHOOK_KEY on the server",
        )
    })?;
    let url = validate_url(url, &settings.policy)?;
    let mut kinds: Vec<EventKind> = Vec::new();
    for e in events {
        if !kinds.contains(e) {
            kinds.push(*e);
        }
    }
    if kinds.is_empty() {
        return Err(AppError::bad_input("events must name at least one event"));
    }
    let names = kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>();
    let secret = new_secret();
    let tx = begin_write(db).await?;
    let model = webhook::ActiveModel {
        url: Set(url),
        secret: Set(key.seal(&secret)),
        events: Set(names.join(",")),
        active: Set(true),
        created_by: Set(actor.subject.clone()),
        created_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let mut c = Changes::new();
    c.created("url", &model.url).created("events", &names);
    audit::record(
        &tx,
        &actor.subject,
        "createWebhook",
        "Webhook",
        model.id,
        &c,
    )
    .await?;
    tx.commit().await?;
    Ok((model, secret))
}

/// Deletes a webhook with its pending and past deliveries (the foreign keys
/// cascade).
///
/// Lock order, PostgreSQL: the webhook row first (FOR UPDATE, so two deletes
/// of one webhook serialize and the second sees NOT_FOUND), then its
/// deliveries through the cascade. Every other writer takes at most one of
/// these: a deal write key-shares the webhook row (outbox subscribers), the
/// worker's claim skips locked deliveries and its record transaction updates
/// one delivery. No transaction waits for a delivery row while holding
/// another, so none can wait in a cycle with this one.
pub async fn delete(db: &DatabaseConnection, actor: &Principal, id: i64) -> AppResult<bool> {
    actor.require(WEBHOOK_ADMINS)?;
    let tx = begin_write(db).await?;
    let found = webhook::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&tx)
        .await?
        .ok_or_else(|| AppError::not_found("webhook"))?;
    webhook::Entity::delete_by_id(id).exec(&tx).await?;
    let mut c = Changes::new();
    c.field("url", &Some(found.url), &None::<String>);
    audit::record(&tx, &actor.subject, "deleteWebhook", "Webhook", id, &c).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn list(db: &DatabaseConnection, actor: &Principal) -> AppResult<Vec<webhook::Model>> {
    actor.require(WEBHOOK_ADMINS)?;
    Ok(webhook::Entity::find()
        .order_by_asc(webhook::Column::Id)
        .all(db)
        .await?)
}

/// Which deliveries to list.
#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    pub webhook_id: Option<i64>,
    pub event_id: Option<String>,
    pub status: Option<Vec<String>>,
}

/// Deliveries, oldest first, each with its attempts (two queries).
pub async fn deliveries(
    db: &DatabaseConnection,
    actor: &Principal,
    filter: &DeliveryFilter,
    limit: u64,
) -> AppResult<Vec<(webhook_delivery::Model, Vec<webhook_attempt::Model>)>> {
    actor.require(WEBHOOK_ADMINS)?;
    let mut q = webhook_delivery::Entity::find();
    if let Some(id) = filter.webhook_id {
        q = q.filter(webhook_delivery::Column::WebhookId.eq(id));
    }
    if let Some(e) = &filter.event_id {
        q = q.filter(webhook_delivery::Column::EventId.eq(e.as_str()));
    }
    if let Some(s) = &filter.status {
        q = q.filter(webhook_delivery::Column::Status.is_in(s.iter().cloned()));
    }
    let rows = q
        .order_by_asc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let mut attempts: HashMap<i64, Vec<webhook_attempt::Model>> = HashMap::new();
    if !rows.is_empty() {
        for a in webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.is_in(rows.iter().map(|d| d.id)))
            .order_by_asc(webhook_attempt::Column::Attempt)
            .all(db)
            .await?
        {
            attempts.entry(a.delivery_id).or_default().push(a);
        }
    }
    Ok(rows
        .into_iter()
        .map(|d| {
            let a = attempts.remove(&d.id).unwrap_or_default();
            (d, a)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_with_a_public_host() {
        let strict = DestinationPolicy::default();
        let validate_url = |u: &str| validate_url(u, &strict);
        assert_eq!(
            validate_url(" https://hooks.example.com/x?y=1 ").unwrap(),
            "https://hooks.example.com/x?y=1"
        );
        let local = DestinationPolicy::new(true, "127.0.0.1").unwrap();
        assert!(super::validate_url("http://127.0.0.1:9000/hook", &local).is_ok());
        assert_eq!(
            validate_url("http://hooks.example.com/")
                .unwrap_err()
                .to_string(),
            "url: must be https (http only when the server allows it: SALESOPS_WEBHOOK_ALLOW_HTTP)"
        );
        assert_eq!(
            validate_url("https://2130706433/").unwrap_err().to_string(),
            "url: destination refused: 127.0.0.1 is a loopback address (permit it with SALESOPS_WEBHOOK_ALLOWED_HOSTS)"
        );
        for bad in [
            "",
            "not a url",
            "ftp://example.com/x",
            "javascript:alert(1)",
            "mailto:ops@example.com",
            "http://",
            "https://user:pw@example.com/",
            "file:///etc/passwd",
            "https://example.com/#frag",
            "http://127.0.0.1:9000/hook",
            "https://169.254.169.254/",
        ] {
            assert!(validate_url(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
