//! The webhook outbox: events are written as `webhook_delivery` rows, one
//! per subscribed webhook, in the same transaction as the change they
//! report, so an event exists if and only if its change committed. The
//! worker in `crate::webhook_worker` delivers them.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde_json::{json, Value};

use entity::{deal, webhook_delivery};

use crate::clock;
use crate::db::{insert_models, Sql};
use crate::domain::money::from_cents;
use crate::error::AppResult;

/// What happened. Stored and sent as the SCREAMING_SNAKE name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    SopPlanStageChanged,
    SopPlanApproved,
    LeadCreated,
    LeadConverted,
    ActivityLogged,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::DealCreated,
        EventKind::DealUpdated,
        EventKind::DealStageChanged,
        EventKind::DealWon,
        EventKind::DealLost,
        EventKind::SopPlanStageChanged,
        EventKind::SopPlanApproved,
        EventKind::LeadCreated,
        EventKind::LeadConverted,
        EventKind::ActivityLogged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DealCreated => "DEAL_CREATED",
            EventKind::DealUpdated => "DEAL_UPDATED",
            EventKind::DealStageChanged => "DEAL_STAGE_CHANGED",
            EventKind::DealWon => "DEAL_WON",
            EventKind::DealLost => "DEAL_LOST",
            EventKind::SopPlanStageChanged => "SOP_PLAN_STAGE_CHANGED",
            EventKind::SopPlanApproved => "SOP_PLAN_APPROVED",
            EventKind::LeadCreated => "LEAD_CREATED",
            EventKind::LeadConverted => "LEAD_CONVERTED",
            EventKind::ActivityLogged => "ACTIVITY_LOGGED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event about one entity. Events of the same entity are delivered to
/// each webhook in the order they were enqueued.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub entity_type: String,
    pub entity_id: String,
    /// The event's data (for deals: the deal after the change and the
    /// changed fields).
    pub data: Value,
}

impl Event {
    pub fn new(kind: EventKind, entity_type: &str, entity_id: impl ToString, data: Value) -> Self {
        Self {
            kind,
            entity_type: entity_type.to_owned(),
            entity_id: entity_id.to_string(),
            data,
        }
    }
}

/// Writes one event to the outbox inside the caller's transaction (for
/// example an S&OP plan's stage transition: `SopPlanStageChanged`,
/// `"SopPlan"`, the plan id, and the plan's new state).
pub async fn enqueue(
    tx: &impl ConnectionTrait,
    kind: EventKind,
    entity_type: &str,
    entity_id: impl ToString,
    data: Value,
) -> AppResult<()> {
    enqueue_many(tx, vec![Event::new(kind, entity_type, entity_id, data)]).await
}

#[derive(FromQueryResult)]
struct Subscriber {
    id: i64,
    events: String,
}

/// The body sent for an event: the same bytes on every attempt, so the
/// signature and the event id identify it across retries.
pub fn body(event_id: &str, e: &Event, occurred_at: DateTime<Utc>) -> String {
    json!({
        "id": event_id,
        "type": e.kind.as_str(),
        "occurredAt": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "entityType": e.entity_type,
        "entityId": e.entity_id,
        "data": e.data,
    })
    .to_string()
}

/// The active webhooks and the events each wants.
#[derive(Debug, Default)]
pub struct Subscribers(Vec<(i64, Vec<EventKind>)>);

impl Subscribers {
    pub async fn load(tx: &impl ConnectionTrait) -> AppResult<Self> {
        let mut sql = Sql::new("SELECT id, events FROM webhook WHERE active = ");
        sql.bind(true).push(" ORDER BY id");
        // PostgreSQL: key-share the webhooks written to, so a concurrent
        // deleteWebhook waits for this transaction (or, if first, is seen
        // as gone) instead of failing the foreign-key check of its deliveries.
        if crate::db::Dialect::of(tx) == crate::db::Dialect::Postgres {
            sql.push(" FOR KEY SHARE");
        }
        Ok(Self(
            Subscriber::find_by_statement(sql.statement(tx.get_database_backend()))
                .all(tx)
                .await?
                .into_iter()
                .map(|s| (s.id, parse_events(&s.events)))
                .collect(),
        ))
    }

    /// Whether any webhook listens to this kind of event (callers skip
    /// building events nobody receives).
    pub fn wants(&self, kind: EventKind) -> bool {
        self.0.iter().any(|(_, kinds)| kinds.contains(&kind))
    }
}

/// Writes events to the outbox: one delivery per event and active webhook
/// subscribed to its kind, in one multi-row INSERT. Nothing is written when
/// no webhook listens.
pub async fn enqueue_many(tx: &impl ConnectionTrait, events: Vec<Event>) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let subscribers = Subscribers::load(tx).await?;
    enqueue_to(tx, &subscribers, events).await
}

/// `enqueue_many` to subscribers already loaded in this transaction.
pub async fn enqueue_to(
    tx: &impl ConnectionTrait,
    subscribers: &Subscribers,
    events: Vec<Event>,
) -> AppResult<()> {
    let hooks = &subscribers.0;
    if hooks.is_empty() || events.is_empty() {
        return Ok(());
    }
    let now = clock::now();
    let mut rows = Vec::new();
    for e in &events {
        let event_id = uuid::Uuid::now_v7().to_string();
        let payload = body(&event_id, e, now);
        let key = format!("{}:{}", e.entity_type, e.entity_id);
        for (hook, kinds) in hooks {
            if !kinds.contains(&e.kind) {
                continue;
            }
            rows.push(webhook_delivery::Model {
                id: 0,
                webhook_id: *hook,
                event_id: event_id.clone(),
                event_type: e.kind.as_str().to_owned(),
                entity_type: e.entity_type.clone(),
                entity_id: e.entity_id.clone(),
                payload: payload.clone(),
                status: "PENDING".to_owned(),
                attempts: 0,
                next_attempt_at: now,
                last_attempt_at: None,
                last_status_code: None,
                last_error: None,
                delivered_at: None,
                created_at: now,
                ordering_key: key.clone(),
                locked_until: None,
                locked_by: None,
            });
        }
    }
    insert_models::<webhook_delivery::Entity>(tx, &[webhook_delivery::Column::Id], &rows).await?;
    Ok(())
}

/// The stored comma-separated list of event names.
pub fn parse_events(s: &str) -> Vec<EventKind> {
    s.split(',')
        .filter_map(|e| EventKind::parse(e.trim()))
        .collect()
}

/// A deal as webhook consumers see it (ids as strings, money as a decimal
/// string, enums by their API names).
pub fn deal_json(d: &deal::Model) -> Value {
    use sea_orm::ActiveEnum;
    let id = |v: Option<i64>| v.map(|x| x.to_string());
    json!({
        "id": d.id.to_string(),
        "externalId": d.external_id,
        "name": d.name,
        "amount": from_cents(d.amount_cents).to_string(),
        "currency": d.currency,
        "ownerId": d.owner_id.to_string(),
        "accountId": id(d.account_id),
        "territoryId": id(d.territory_id),
        "stageId": d.stage_id.to_string(),
        "status": d.status.to_value(),
        "forecastCategory": d.forecast_category.to_value(),
        "source": d.source.map(|s| s.to_value()),
        "playbookId": id(d.playbook_id),
        "openedAt": d.opened_at,
        "expectedCloseDate": d.expected_close_date,
        "closedAt": d.closed_at,
        "lostReason": d.lost_reason,
        "version": d.version,
        "updatedAt": d.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(
            parse_events("DEAL_WON, DEAL_LOST,nonsense"),
            vec![EventKind::DealWon, EventKind::DealLost]
        );
    }
}
