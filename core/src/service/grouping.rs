//! Grouping deals by a `Dimension`, shared by every metric and forecast.
//!
//! Each dimension is one BIGINT expression over the `deal` table (aliased
//! `deal`) plus the join it needs, so an aggregate query groups in SQL:
//!
//! ```text
//! SELECT {key_sql} AS group_id, SUM(...) FROM deal {join_sql} WHERE ... GROUP BY {key_sql}
//! ```
//!
//! Enum-valued dimensions (segment, source) map to small integers with a
//! CASE so every key has one type on both databases. `labels` then turns the
//! keys of a result into readable `GroupKey`s in one query.
use std::collections::{HashMap, HashSet};

use sea_orm::{ActiveEnum, ConnectionTrait, EntityTrait, FromQueryResult, Iterable};

use entity::enums::{DealSource, Segment};
use entity::{playbook, rep, territory};

use crate::db::Sql;
use crate::error::AppResult;

/// What metric and forecast rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dimension {
    /// One row for everything.
    #[default]
    None,
    /// The deal's owner.
    Rep,
    /// The deal's territory.
    Territory,
    /// The segment of the deal's territory.
    Segment,
    /// The owner's manager.
    Manager,
    /// The deal's source.
    Source,
    /// The playbook the deal follows.
    Playbook,
}

/// A group's identity and readable label. `id` is the rep, territory or
/// playbook id, the enum name for segments and sources, and None for the
/// NONE dimension and for deals without a value ("No territory").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub dimension: Dimension,
    pub id: Option<String>,
    pub label: String,
}

impl Dimension {
    /// The join this dimension's key needs (empty when none). Aliases
    /// `g_territory` and `g_owner` are reserved for it.
    pub fn join_sql(self) -> &'static str {
        match self {
            Dimension::Segment => {
                " LEFT JOIN territory g_territory ON g_territory.id = deal.territory_id"
            }
            Dimension::Manager => " JOIN rep g_owner ON g_owner.id = deal.owner_id",
            _ => "",
        }
    }

    /// The group key as a nullable BIGINT expression.
    pub fn key_sql(self) -> String {
        match self {
            Dimension::None => "CAST(NULL AS BIGINT)".to_owned(),
            Dimension::Rep => "deal.owner_id".to_owned(),
            Dimension::Territory => "deal.territory_id".to_owned(),
            Dimension::Manager => "g_owner.manager_id".to_owned(),
            Dimension::Playbook => "deal.playbook_id".to_owned(),
            Dimension::Segment => case_codes::<Segment>("g_territory.segment"),
            Dimension::Source => case_codes::<DealSource>("deal.source"),
        }
    }

    /// Appends ` GROUP BY key` (nothing for NONE, which is one row).
    pub fn push_group_by(self, sql: &mut Sql) {
        if self != Dimension::None {
            sql.push(" GROUP BY ").push(&self.key_sql());
        }
    }
}

/// `CASE col WHEN 'A' THEN 1 WHEN 'B' THEN 2 ... END`: an enum column as the
/// 1-based position of its value (NULL stays NULL).
fn case_codes<E: ActiveEnum<Value = String> + Iterable>(col: &str) -> String {
    let mut s = format!("CASE {col}");
    for (i, v) in E::iter().enumerate() {
        s.push_str(&format!(" WHEN '{}' THEN {}", v.to_value(), i + 1));
    }
    s.push_str(" END");
    s
}

fn enum_at<E: ActiveEnum<Value = String> + Iterable>(code: i64) -> Option<E> {
    usize::try_from(code)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| E::iter().nth(i))
}

fn segment_label(s: Segment) -> &'static str {
    match s {
        Segment::Smb => "SMB",
        Segment::MidMarket => "Mid-market",
        Segment::Enterprise => "Enterprise",
    }
}

fn source_label(s: DealSource) -> &'static str {
    match s {
        DealSource::Inbound => "Inbound",
        DealSource::Outbound => "Outbound",
        DealSource::Partner => "Partner",
        DealSource::Referral => "Referral",
        DealSource::Expansion => "Expansion",
    }
}

fn missing_label(dim: Dimension) -> &'static str {
    match dim {
        Dimension::None => "All",
        Dimension::Rep => "No owner",
        Dimension::Territory => "No territory",
        Dimension::Segment => "No segment",
        Dimension::Manager => "No manager",
        Dimension::Source => "No source",
        Dimension::Playbook => "No playbook",
    }
}

#[derive(FromQueryResult)]
struct NameRow {
    id: i64,
    name: String,
}

async fn names<E>(db: &impl ConnectionTrait, ids: &[i64]) -> AppResult<HashMap<i64, String>>
where
    E: EntityTrait,
{
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let table = E::default().table_name().to_owned();
    // Many keys: read the whole (small) table instead of binding thousands of
    // ids. A statement of thousands of parameters costs more to prepare and,
    // larger than a socket buffer, is sent in pieces that TCP's Nagle
    // algorithm holds back for a delayed ACK (~40 ms a statement, measured).
    let wanted: Option<HashSet<i64>> =
        (ids.len() > MAX_LISTED_KEYS).then(|| ids.iter().copied().collect());
    let mut sql = Sql::new(format!("SELECT id, name FROM {table}"));
    if wanted.is_none() {
        sql.push(" WHERE id IN ").bind_list(ids.iter().copied());
    }
    Ok(
        NameRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?
            .into_iter()
            .filter(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.id)))
            .map(|r| (r.id, r.name))
            .collect(),
    )
}

/// Keys named with an `IN (...)` list; more read the whole table.
const MAX_LISTED_KEYS: usize = 200;

/// Readable keys for the group ids a query returned, in at most one query.
/// The NONE dimension's single row is labelled "All".
pub async fn labels(
    db: &impl ConnectionTrait,
    dim: Dimension,
    keys: impl IntoIterator<Item = Option<i64>>,
) -> AppResult<HashMap<Option<i64>, GroupKey>> {
    let keys: Vec<Option<i64>> = {
        let mut k: Vec<_> = keys.into_iter().collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    let ids: Vec<i64> = keys.iter().flatten().copied().collect();
    let named = match dim {
        Dimension::Rep | Dimension::Manager => names::<rep::Entity>(db, &ids).await?,
        Dimension::Territory => names::<territory::Entity>(db, &ids).await?,
        Dimension::Playbook => names::<playbook::Entity>(db, &ids).await?,
        _ => HashMap::new(),
    };
    Ok(keys
        .into_iter()
        .map(|k| (k, key_for(dim, k, &named)))
        .collect())
}

fn key_for(dim: Dimension, k: Option<i64>, named: &HashMap<i64, String>) -> GroupKey {
    let missing = || GroupKey {
        dimension: dim,
        id: None,
        label: missing_label(dim).to_owned(),
    };
    let Some(code) = k else {
        return missing();
    };
    let (id, label) = match dim {
        Dimension::None => return missing(),
        Dimension::Segment => match enum_at::<Segment>(code) {
            Some(s) => (s.to_value(), segment_label(s).to_owned()),
            None => return missing(),
        },
        Dimension::Source => match enum_at::<DealSource>(code) {
            Some(s) => (s.to_value(), source_label(s).to_owned()),
            None => return missing(),
        },
        _ => (
            code.to_string(),
            named
                .get(&code)
                .cloned()
                .unwrap_or_else(|| format!("#{code}")),
        ),
    };
    GroupKey {
        dimension: dim,
        id: Some(id),
        label,
    }
}

/// Orders rows by label, the missing group ("No territory") last.
pub fn sort_by_key<T>(rows: &mut [T], key: impl Fn(&T) -> &GroupKey) {
    rows.sort_by(|a, b| {
        let (a, b) = (key(a), key(b));
        (a.id.is_none(), &a.label, &a.id).cmp(&(b.id.is_none(), &b.label, &b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_codes_round_trip() {
        for (i, s) in Segment::iter().enumerate() {
            assert_eq!(enum_at::<Segment>(i as i64 + 1), Some(s));
        }
        assert_eq!(enum_at::<Segment>(0), None);
        assert_eq!(enum_at::<DealSource>(99), None);
        assert!(case_codes::<Segment>("x").contains("WHEN 'MID_MARKET' THEN 2"));
    }

    #[test]
    fn keys_are_labelled() {
        let named = HashMap::from([(7, "Ada".to_owned())]);
        let k = key_for(Dimension::Rep, Some(7), &named);
        assert_eq!((k.id.as_deref(), k.label.as_str()), (Some("7"), "Ada"));
        let k = key_for(Dimension::Segment, Some(2), &named);
        assert_eq!(
            (k.id.as_deref(), k.label.as_str()),
            (Some("MID_MARKET"), "Mid-market")
        );
        let k = key_for(Dimension::Territory, None, &named);
        assert_eq!((k.id, k.label.as_str()), (None, "No territory"));
        let k = key_for(Dimension::None, None, &named);
        assert_eq!(k.label, "All");
    }

    #[test]
    fn missing_group_sorts_last() {
        let mut rows = vec![
            key_for(Dimension::Territory, None, &HashMap::new()),
            GroupKey {
                dimension: Dimension::Territory,
                id: Some("2".into()),
                label: "West".into(),
            },
            GroupKey {
                dimension: Dimension::Territory,
                id: Some("1".into()),
                label: "East".into(),
            },
        ];
        sort_by_key(&mut rows, |k| k);
        let labels: Vec<_> = rows.iter().map(|k| k.label.as_str()).collect();
        assert_eq!(labels, ["East", "West", "No territory"]);
    }
}
