//! Webhook subscriptions (ADMIN only) and the record of their deliveries.
use std::collections::HashMap;

use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use entity::{webhook, webhook_attempt, webhook_delivery};

use super::access::WEBHOOK_ADMINS;
use super::audit::{self, Changes};
use super::outbox::EventKind;
use crate::auth::Principal;
use crate::clock;
use crate::db::begin_write;
use crate::error::{AppError, AppResult};

/// An http(s) URL with a host, at most 2,048 characters, without
/// credentials; anything else is BAD_USER_INPUT.
pub fn validate_url(raw: &str) -> AppResult<String> {
    let raw = raw.trim();
    let bad = |why: &str| AppError::bad_input(format!("url: {why}"));
    if raw.len() > 2_048 {
        return Err(bad("must be at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    match url.host_str() {
        None | Some("") => return Err(bad("must name a host")),
        Some(_) => {}
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    Ok(url.to_string())
}

/// 32 random bytes, hex: the HMAC key of a webhook.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", hex::encode(bytes))
}

/// Subscribes `url` to `events`; returns the webhook and its secret, which
/// is never shown again.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Principal,
    url: &str,
    events: &[EventKind],
) -> AppResult<(webhook::Model, String)> {
    actor.require(WEBHOOK_ADMINS)?;
    let url = validate_url(url)?;
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
        secret: Set(secret.clone()),
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

/// Deletes a webhook with its pending and past deliveries.
pub async fn delete(db: &DatabaseConnection, actor: &Principal, id: i64) -> AppResult<bool> {
    actor.require(WEBHOOK_ADMINS)?;
    let tx = begin_write(db).await?;
    let found = webhook::Entity::find_by_id(id)
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
    fn urls_must_be_http_with_a_host() {
        assert_eq!(
            validate_url(" https://hooks.example.com/x?y=1 ").unwrap(),
            "https://hooks.example.com/x?y=1"
        );
        assert!(validate_url("http://127.0.0.1:9000/hook").is_ok());
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
        ] {
            assert!(validate_url(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
