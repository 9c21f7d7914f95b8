//! Keyset cursors for deal lists: a cursor names the last row's sort key and
//! id, so a page after it stays correct while rows are inserted or changed
//! (no OFFSET). Cursors are opaque base64 and tied to their order.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use entity::deal;

use crate::db::Sql;
use crate::error::{AppError, AppResult};
use crate::rows::Columns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DealOrder {
    #[default]
    UpdatedDesc,
    UpdatedAsc,
    AmountDesc,
    AmountAsc,
    ExpectedCloseAsc,
    OpenedDesc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Key {
    Int(i64),
    Text(String),
    Null,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    o: DealOrder,
    k: Key,
    i: i64,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Cursor {
    pub fn for_deal(order: DealOrder, d: &deal::Model) -> Self {
        let k = match order {
            DealOrder::UpdatedDesc | DealOrder::UpdatedAsc => Key::Text(ts(d.updated_at)),
            DealOrder::AmountDesc | DealOrder::AmountAsc => Key::Int(d.amount_cents),
            DealOrder::ExpectedCloseAsc => d
                .expected_close_date
                .map(|x| Key::Text(x.to_string()))
                .unwrap_or(Key::Null),
            DealOrder::OpenedDesc => Key::Text(ts(d.opened_at)),
        };
        Self {
            o: order,
            k,
            i: d.id,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str, order: DealOrder) -> AppResult<Self> {
        let bad = || AppError::bad_input("after: not a cursor from this list");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if c.o != order {
            return Err(AppError::bad_input(
                "after: the cursor was made for another orderBy",
            ));
        }
        // Reject keys of the wrong type for the order.
        c.condition().map_err(|_| bad())?;
        Ok(c)
    }

    /// The SQL condition selecting rows strictly after this cursor.
    pub fn condition(&self) -> AppResult<Sql> {
        let bad = || AppError::bad_input("after: not a cursor from this list");
        let time = |s: &str| -> AppResult<DateTime<Utc>> {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad())
        };
        let mut sql = Sql::default();
        match (self.o, &self.k) {
            (DealOrder::UpdatedDesc, Key::Text(t)) => {
                keyset(&mut sql, "deal.updated_at", "<", time(t)?, self.i)
            }
            (DealOrder::UpdatedAsc, Key::Text(t)) => {
                keyset(&mut sql, "deal.updated_at", ">", time(t)?, self.i)
            }
            (DealOrder::OpenedDesc, Key::Text(t)) => {
                keyset(&mut sql, "deal.opened_at", "<", time(t)?, self.i)
            }
            (DealOrder::AmountDesc, Key::Int(a)) => {
                keyset(&mut sql, "deal.amount_cents", "<", *a, self.i)
            }
            (DealOrder::AmountAsc, Key::Int(a)) => {
                keyset(&mut sql, "deal.amount_cents", ">", *a, self.i)
            }
            (DealOrder::ExpectedCloseAsc, Key::Text(d)) => {
                let day = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad())?;
                // Dated rows come first, then the undated ones.
                sql.push("(deal.expected_close_date > ")
                    .bind(day)
                    .push(" OR (deal.expected_close_date = ")
                    .bind(day)
                    .push(" AND deal.id > ")
                    .bind(self.i)
                    .push(") OR deal.expected_close_date IS NULL)");
            }
            (DealOrder::ExpectedCloseAsc, Key::Null) => {
                sql.push("(deal.expected_close_date IS NULL AND deal.id > ")
                    .bind(self.i)
                    .push(")");
            }
            _ => return Err(bad()),
        }
        Ok(sql)
    }
}

fn keyset<V: Into<sea_orm::Value> + Clone>(sql: &mut Sql, col: &str, op: &str, key: V, id: i64) {
    sql.push(&format!("({col} {op} "))
        .bind(key.clone())
        .push(&format!(" OR ({col} = "))
        .bind(key)
        .push(&format!(" AND deal.id {op} "))
        .bind(id)
        .push("))");
}

impl DealOrder {
    /// ORDER BY clause matching the cursor condition.
    pub fn order_by(self) -> &'static str {
        match self {
            DealOrder::UpdatedDesc => "deal.updated_at DESC, deal.id DESC",
            DealOrder::UpdatedAsc => "deal.updated_at ASC, deal.id ASC",
            DealOrder::AmountDesc => "deal.amount_cents DESC, deal.id DESC",
            DealOrder::AmountAsc => "deal.amount_cents ASC, deal.id ASC",
            DealOrder::ExpectedCloseAsc => {
                "CASE WHEN deal.expected_close_date IS NULL THEN 1 ELSE 0 END, deal.expected_close_date ASC, deal.id ASC"
            }
            DealOrder::OpenedDesc => "deal.opened_at DESC, deal.id DESC",
        }
    }

    /// The deal columns a cursor of this order reads (`Cursor::for_deal`):
    /// the id and the sort key.
    pub fn key_columns(self) -> Columns {
        let key = match self {
            DealOrder::UpdatedDesc | DealOrder::UpdatedAsc => "updated_at",
            DealOrder::AmountDesc | DealOrder::AmountAsc => "amount_cents",
            DealOrder::ExpectedCloseAsc => "expected_close_date",
            DealOrder::OpenedDesc => "opened_at",
        };
        Columns::of::<deal::Model>(&["id", key])
    }
}

/// Cursors for lists ordered by id (reps, territories): the last row's id,
/// tagged with its list so a cursor from one list is refused by another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IdCursor {
    l: String,
    i: i64,
}

pub fn encode_id_cursor(list: &str, id: i64) -> String {
    let c = IdCursor {
        l: list.to_owned(),
        i: id,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

pub fn decode_id_cursor(s: &str, list: &str) -> AppResult<i64> {
    let bad = || AppError::bad_input(format!("after: not a cursor from the {list} list"));
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let c: IdCursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.l != list {
        return Err(bad());
    }
    Ok(c.i)
}

#[cfg(test)]
mod id_cursor_tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_lists() {
        let c = encode_id_cursor("reps", 42);
        assert_eq!(decode_id_cursor(&c, "reps").unwrap(), 42);
        assert!(decode_id_cursor(&c, "territories").is_err());
        assert!(decode_id_cursor("not a cursor", "reps").is_err());
    }
}

/// Cursors for lists ordered by a timestamp then id (the leads' and
/// activities' sync feeds, ordered by updated_at): the last row's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TimeCursor {
    l: String,
    t: String,
    i: i64,
}

pub fn encode_time_cursor(list: &str, t: DateTime<Utc>, id: i64) -> String {
    let c = TimeCursor {
        l: list.to_owned(),
        t: ts(t),
        i: id,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

pub fn decode_time_cursor(s: &str, list: &str) -> AppResult<(DateTime<Utc>, i64)> {
    let bad = || AppError::bad_input(format!("after: not a cursor from the {list} list"));
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let c: TimeCursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.l != list {
        return Err(bad());
    }
    let t = DateTime::parse_from_rfc3339(&c.t).map_err(|_| bad())?;
    Ok((t.with_timezone(&Utc), c.i))
}

#[cfg(test)]
mod time_cursor_tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_lists() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.000123Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = encode_time_cursor("leads", t, 7);
        assert_eq!(decode_time_cursor(&c, "leads").unwrap(), (t, 7));
        assert!(decode_time_cursor(&c, "activities").is_err());
        assert!(decode_time_cursor(&encode_id_cursor("leads", 7), "leads").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of deals that reads only the id and the key keeps its cursors
    /// and order: every order's cursor is the same from that partial row as
    /// from the whole one.
    #[test]
    fn an_order_key_holds_what_its_cursor_reads() {
        use crate::rows::Positional;
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let whole = deal::Model {
            id: 42,
            external_id: Some("x".into()),
            name: "n".into(),
            amount_cents: 1234,
            currency: "USD".into(),
            owner_id: 1,
            account_id: None,
            territory_id: None,
            stage_id: 2,
            status: entity::enums::DealStatus::Won,
            forecast_category: entity::enums::ForecastCategory::Closed,
            source: None,
            playbook_id: None,
            opened_at: at("2026-01-02T03:04:05Z"),
            expected_close_date: NaiveDate::from_ymd_opt(2026, 3, 1),
            closed_at: None,
            lost_reason: None,
            version: 3,
            valid_from: at("2026-01-02T03:04:05Z"),
            push_count: 0,
            first_amount_cents: None,
            pushed_at: None,
            stage_entered_at: None,
            last_activity_at: None,
            created_at: at("2026-01-02T03:04:05Z"),
            updated_at: at("2026-02-03T04:05:06Z"),
        };
        for order in [
            DealOrder::UpdatedDesc,
            DealOrder::UpdatedAsc,
            DealOrder::AmountDesc,
            DealOrder::AmountAsc,
            DealOrder::ExpectedCloseAsc,
            DealOrder::OpenedDesc,
        ] {
            let key = order.key_columns();
            assert_eq!(key.count(), 2, "{order:?}");
            // The whole row with every column a cursor could read unread
            // unless it is in the key.
            let epoch = DateTime::<Utc>::UNIX_EPOCH;
            let mut partial = whole.clone();
            for (i, c) in deal::Model::COLUMNS.iter().enumerate() {
                match *c {
                    _ if key.has(i) => {}
                    "updated_at" => partial.updated_at = epoch,
                    "opened_at" => partial.opened_at = epoch,
                    "amount_cents" => partial.amount_cents = 0,
                    "expected_close_date" => partial.expected_close_date = None,
                    _ => {}
                }
            }
            assert_eq!(
                Cursor::for_deal(order, &partial),
                Cursor::for_deal(order, &whole),
                "{order:?}"
            );
        }
    }
}
