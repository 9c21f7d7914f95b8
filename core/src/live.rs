//! The live feed behind GraphQL subscriptions: committed deal revisions and
//! forecast calls, read from the database and broadcast to subscribers.
//!
//! Every deal write inserts its `deal_revision` rows in the transaction that
//! writes the deal (as it inserts the webhook outbox rows), and every
//! forecast call is one `forecast_submission` row: a row exists if and only
//! if its change committed, so subscribers see exactly what committed, in
//! commit order, never a change that rolled back.
//!
//! One poller per process reads rows past its cursor every `poll` (only
//! while someone subscribes: an idle server runs no statement for it) and
//! broadcasts each batch. A cursor is not just "the highest id seen": on
//! PostgreSQL ids are handed out at insert and rows can commit out of id
//! order (two concurrent forecast calls), so an id missing below the highest
//! one seen is looked for again on each poll for [`GAP_TIMEOUT`] (longer than
//! any request may run) before it is taken as rolled back. A late commit is
//! then delivered late, never lost. (Deal revisions are already written in
//! commit order, serialised by the change clock: see service::sync.)
//!
//! The broadcast channel holds [`CAPACITY`] batches; a subscriber that falls
//! further behind is told so and dropped (see api::graphql::subscription).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};
use tokio::sync::{broadcast, Mutex};

use entity::{deal_revision, forecast_submission};

use crate::error::AppResult;

/// Batches a subscriber may lag behind before it is dropped.
pub const CAPACITY: usize = 64;
/// How long an id missing below the highest one seen is waited for.
pub const GAP_TIMEOUT: Duration = Duration::from_secs(40);
/// Rows read per table and poll.
const BATCH: u64 = 500;
/// Missing ids tracked at most; a larger hole (a rolled-back bulk write)
/// is skipped at once.
const MAX_GAPS: usize = 2_000;

/// A committed deal revision and the one before it (for what changed).
#[derive(Debug, Clone)]
pub struct DealEvent {
    pub row: deal_revision::Model,
    pub previous: Option<deal_revision::Model>,
}

/// What one poll found, in commit order per table.
#[derive(Debug, Default)]
pub struct Batch {
    pub deals: Vec<DealEvent>,
    pub submissions: Vec<forecast_submission::Model>,
}

/// Which ids of a table were delivered. Every id <= `floor` was delivered
/// or given up; `seen` are the delivered ones above it, `gaps` the missing
/// ones below the highest seen, with when they were first missed.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    floor: i64,
    seen: BTreeSet<i64>,
    gaps: BTreeMap<i64, Instant>,
    /// The highest id examined for gaps.
    scanned: i64,
}

impl Cursor {
    pub fn at(floor: i64) -> Self {
        Self {
            floor,
            scanned: floor,
            ..Default::default()
        }
    }

    /// The highest id delivered (or the floor).
    pub fn high(&self) -> i64 {
        self.seen.last().copied().unwrap_or(self.floor)
    }

    /// Ids still waited for, lowest first, at most `n`.
    pub fn gaps(&self, n: usize) -> Vec<i64> {
        self.gaps.keys().take(n).copied().collect()
    }

    /// Records a delivered id; false when it was delivered before.
    pub fn deliver(&mut self, id: i64) -> bool {
        if id <= self.floor || self.seen.contains(&id) {
            return false;
        }
        self.gaps.remove(&id);
        self.seen.insert(id);
        true
    }

    /// Notes the ids missing below the highest delivered one and moves the
    /// floor over what is delivered or waited for longer than `timeout`.
    pub fn settle(&mut self, now: Instant, timeout: Duration) {
        let high = self.high();
        let mut id = self.floor + 1;
        // Ids between the floor and the highest seen not looked at before:
        // the missing ones are waited for.
        let mut next = (self.scanned + 1).max(id);
        while next < high {
            if !self.seen.contains(&next) {
                self.gaps.insert(next, now);
            }
            next += 1;
            if self.gaps.len() > MAX_GAPS {
                // A hole this large is a rolled-back bulk write: what is
                // still missing up to the next seen id is not waited for.
                next = self.seen.range(next..).next().copied().unwrap_or(high);
            }
        }
        self.scanned = self.scanned.max(high - 1);
        loop {
            if self.seen.remove(&id) {
                self.floor = id;
            } else if self
                .gaps
                .get(&id)
                .is_some_and(|t| now.saturating_duration_since(*t) >= timeout)
            {
                self.gaps.remove(&id);
                self.floor = id;
            } else if self.gaps.contains_key(&id) || id > high {
                break;
            } else {
                // Below high, neither seen nor waited for: part of a hole
                // given up at once (see above).
                self.floor = id;
            }
            id += 1;
        }
    }
}

struct Cursors {
    deals: Cursor,
    submissions: Cursor,
}

/// The process's live feed.
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<Batch>>,
    /// None while nobody listens.
    cursors: Mutex<Option<Cursors>>,
    db: DatabaseConnection,
}

#[derive(FromQueryResult)]
struct MaxId {
    id: Option<i64>,
}

async fn max_id(db: &impl ConnectionTrait, table: &str) -> AppResult<i64> {
    let sql = crate::db::Sql::new(format!("SELECT MAX(id) AS id FROM {table}"));
    Ok(
        MaxId::find_by_statement(sql.statement(db.get_database_backend()))
            .one(db)
            .await?
            .and_then(|r| r.id)
            .unwrap_or(0),
    )
}

impl LiveFeed {
    /// Starts the poller (it stops when the feed is dropped).
    pub fn spawn(db: DatabaseConnection, poll: Duration) -> Arc<Self> {
        let (tx, _) = broadcast::channel(CAPACITY);
        let feed = Arc::new(Self {
            tx,
            cursors: Mutex::new(None),
            db,
        });
        let weak = Arc::downgrade(&feed);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(feed) = weak.upgrade() else { break };
                if let Err(e) = feed.poll().await {
                    tracing::warn!(error = %e, "live feed: could not read committed changes");
                }
            }
        });
        feed
    }

    /// A receiver of every batch committed from now on.
    pub async fn subscribe(&self) -> AppResult<broadcast::Receiver<Arc<Batch>>> {
        let mut cursors = self.cursors.lock().await;
        if cursors.is_none() {
            let (d, s) = futures::try_join!(
                max_id(&self.db, "deal_revision"),
                max_id(&self.db, "forecast_submission")
            )?;
            *cursors = Some(Cursors {
                deals: Cursor::at(d),
                submissions: Cursor::at(s),
            });
        }
        Ok(self.tx.subscribe())
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    async fn poll(&self) -> AppResult<()> {
        let mut guard = self.cursors.lock().await;
        if self.tx.receiver_count() == 0 {
            *guard = None;
            return Ok(());
        }
        let Some(cursors) = guard.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        let mut batch = Batch::default();

        // Deal revisions past the cursor, and any still missing below it.
        let mut rows = deal_revision::Entity::find()
            .filter(deal_revision::Column::Id.gt(cursors.deals.high()))
            .order_by_asc(deal_revision::Column::Id)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let gaps = cursors.deals.gaps(BATCH as usize);
        if !gaps.is_empty() {
            rows.extend(
                deal_revision::Entity::find()
                    .filter(deal_revision::Column::Id.is_in(gaps))
                    .all(&self.db)
                    .await?,
            );
            rows.sort_by_key(|r| r.id);
        }
        rows.retain(|r| cursors.deals.deliver(r.id));
        cursors.deals.settle(now, GAP_TIMEOUT);
        if !rows.is_empty() {
            let previous = previous_revisions(&self.db, &rows).await?;
            batch.deals = rows
                .into_iter()
                .map(|row| {
                    let previous = previous.get(&(row.deal_id, row.version - 1)).cloned();
                    DealEvent { row, previous }
                })
                .collect();
        }

        let mut subs = forecast_submission::Entity::find()
            .filter(forecast_submission::Column::Id.gt(cursors.submissions.high()))
            .order_by_asc(forecast_submission::Column::Id)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let gaps = cursors.submissions.gaps(BATCH as usize);
        if !gaps.is_empty() {
            subs.extend(
                forecast_submission::Entity::find()
                    .filter(forecast_submission::Column::Id.is_in(gaps))
                    .all(&self.db)
                    .await?,
            );
            subs.sort_by_key(|r| r.id);
        }
        subs.retain(|r| cursors.submissions.deliver(r.id));
        cursors.submissions.settle(now, GAP_TIMEOUT);
        batch.submissions = subs;

        if !batch.deals.is_empty() || !batch.submissions.is_empty() {
            // No receiver left is not an error: the next poll idles.
            let _ = self.tx.send(Arc::new(batch));
        }
        Ok(())
    }
}

/// The revision before each of `rows` (one statement).
async fn previous_revisions(
    db: &impl ConnectionTrait,
    rows: &[deal_revision::Model],
) -> AppResult<std::collections::HashMap<(i64, i32), deal_revision::Model>> {
    use sea_orm::Condition;
    let mut cond = Condition::any();
    let mut any = false;
    for r in rows.iter().filter(|r| r.version > 1) {
        any = true;
        cond = cond.add(
            Condition::all()
                .add(deal_revision::Column::DealId.eq(r.deal_id))
                .add(deal_revision::Column::Version.eq(r.version - 1)),
        );
    }
    if !any {
        return Ok(Default::default());
    }
    Ok(deal_revision::Entity::find()
        .filter(cond)
        .all(db)
        .await?
        .into_iter()
        .map(|r| ((r.deal_id, r.version), r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(40);

    #[test]
    fn in_order_ids_move_the_floor() {
        let now = Instant::now();
        let mut c = Cursor::at(10);
        assert!(c.deliver(11) && c.deliver(12));
        assert!(!c.deliver(12) && !c.deliver(9));
        c.settle(now, T);
        assert_eq!((c.floor, c.high(), c.gaps(10)), (12, 12, vec![]));
    }

    #[test]
    fn a_missing_id_is_waited_for_then_given_up() {
        let now = Instant::now();
        let mut c = Cursor::at(10);
        // 11 is not committed yet; 12 and 13 are.
        c.deliver(12);
        c.deliver(13);
        c.settle(now, T);
        assert_eq!((c.floor, c.gaps(10)), (10, vec![11]));
        assert_eq!(c.high(), 13);
        // It commits late: delivered once, and the floor moves past all.
        assert!(c.deliver(11));
        c.settle(now + Duration::from_secs(1), T);
        assert_eq!((c.floor, c.gaps(10)), (13, vec![]));
        // 14 never commits (rolled back); 15 does.
        c.deliver(15);
        c.settle(now + Duration::from_secs(2), T);
        assert_eq!((c.floor, c.gaps(10)), (13, vec![14]));
        c.settle(now + Duration::from_secs(2) + T, T);
        assert_eq!((c.floor, c.gaps(10)), (15, vec![]));
        // A late 14 after giving up is not delivered twice (nor at all).
        assert!(!c.deliver(14));
    }

    #[test]
    fn a_huge_hole_is_skipped_at_once() {
        let now = Instant::now();
        let mut c = Cursor::at(0);
        c.deliver(1_000_000);
        c.settle(now, T);
        assert!(c.gaps.len() <= MAX_GAPS + 1);
        assert_eq!(c.high(), 1_000_000);
        c.settle(now + T, T);
        assert_eq!((c.floor, c.gaps(1)), (1_000_000, vec![]));
    }
}
