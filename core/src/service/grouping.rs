//! Grouping deals by a `Dimension`, shared by every metric and forecast.
//!
//! Each dimension is one BIGINT expression over the `deal` table (aliased
//! `deal`) plus the join it needs, so an aggregate query groups in SQL:
//!
//! ```text
//! SELECT {key_sql} AS group_id, SUM(...) FROM deal {join_sql} WHERE ... GROUP BY {key_sql}
//! ```
//!
//! Enum-valued dimensions (segment, source, forecast category) map to small
//! integers with a CASE so every key has one type on both databases.
//! Free-text dimensions (a lost deal's reason, an account's industry) join
//! a dictionary numbering the distinct values in order (`dictionary_sql`),
//! rebuilt the same way when the keys are labelled. `labels` then turns the
//! keys of a result into readable `GroupKey`s in one query.
use std::collections::{HashMap, HashSet};

use sea_orm::{ActiveEnum, ConnectionTrait, EntityTrait, FromQueryResult, Iterable};

use entity::enums::{DealSource, ForecastCategory, Segment};
use entity::{playbook, rep, stage, territory};

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
    /// The deal's stage.
    Stage,
    /// The deal's forecast category.
    ForecastCategory,
    /// A lost deal's reason; other deals, and lost deals without one, are
    /// "none".
    LostReason,
    /// The industry of the deal's account.
    Industry,
}

/// The distinct lost reasons (of deals and of their revisions, so an as-of
/// state finds its reason too) numbered in text order, as `(reason, code)`.
const LOST_REASONS: &str = "(SELECT lr.reason AS reason, ROW_NUMBER() OVER (ORDER BY lr.reason) AS code FROM \
     (SELECT d_lr.lost_reason AS reason FROM deal d_lr WHERE d_lr.status = 'LOST' AND d_lr.lost_reason <> '' \
     UNION SELECT r_lr.lost_reason FROM deal_revision r_lr WHERE r_lr.status = 'LOST' AND r_lr.lost_reason <> '') lr)";

/// The distinct account industries numbered in text order, as
/// `(industry, code)`.
const INDUSTRIES: &str =
    "(SELECT i.industry AS industry, ROW_NUMBER() OVER (ORDER BY i.industry) AS code FROM \
     (SELECT DISTINCT a_i.industry AS industry FROM account a_i WHERE a_i.industry <> '') i)";

/// The dictionary of a free-text dimension, as (text column, relation).
fn dictionary_sql(dim: Dimension) -> Option<(&'static str, &'static str)> {
    match dim {
        Dimension::LostReason => Some(("reason", LOST_REASONS)),
        Dimension::Industry => Some(("industry", INDUSTRIES)),
        _ => None,
    }
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
    /// `g_territory`, `g_owner`, `g_account`, `g_industry` and `g_reason`
    /// are reserved for it.
    pub fn join_sql(self) -> String {
        match self {
            Dimension::Segment => {
                " LEFT JOIN territory g_territory ON g_territory.id = deal.territory_id".to_owned()
            }
            Dimension::Manager => " JOIN rep g_owner ON g_owner.id = deal.owner_id".to_owned(),
            Dimension::LostReason => format!(
                " LEFT JOIN {LOST_REASONS} g_reason ON deal.status = 'LOST' AND g_reason.reason = deal.lost_reason"
            ),
            Dimension::Industry => format!(
                " LEFT JOIN account g_account ON g_account.id = deal.account_id \
                 LEFT JOIN {INDUSTRIES} g_industry ON g_industry.industry = g_account.industry"
            ),
            _ => String::new(),
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
            Dimension::Stage => "deal.stage_id".to_owned(),
            Dimension::ForecastCategory => case_codes::<ForecastCategory>("deal.forecast_category"),
            Dimension::LostReason => "g_reason.code".to_owned(),
            Dimension::Industry => "g_industry.code".to_owned(),
        }
    }

    /// Appends ` GROUP BY key` (nothing for NONE, which is one row).
    pub fn push_group_by(self, sql: &mut Sql) {
        if self != Dimension::None {
            sql.push(" GROUP BY ").push(&self.key_sql());
        }
    }
}

/// `CAST(CASE col WHEN 'A' THEN 1 WHEN 'B' THEN 2 ... END AS BIGINT)`: an
/// enum column as the 1-based position of its value (NULL stays NULL), a
/// BIGINT on both backends (PostgreSQL types the bare CASE as integer,
/// which a forecast's 64-bit group key would not read).
pub(crate) fn case_codes<E: ActiveEnum<Value = String> + Iterable>(col: &str) -> String {
    let mut s = format!("CAST(CASE {col}");
    for (i, v) in E::iter().enumerate() {
        s.push_str(&format!(" WHEN '{}' THEN {}", v.to_value(), i + 1));
    }
    s.push_str(" END AS BIGINT)");
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

fn category_label(c: ForecastCategory) -> &'static str {
    match c {
        ForecastCategory::Pipeline => "Pipeline",
        ForecastCategory::BestCase => "Best case",
        ForecastCategory::Commit => "Commit",
        ForecastCategory::Closed => "Closed",
        ForecastCategory::Omitted => "Omitted",
    }
}

pub(crate) fn missing_label(dim: Dimension) -> &'static str {
    match dim {
        Dimension::None => "All",
        Dimension::Rep => "No owner",
        Dimension::Territory => "No territory",
        Dimension::Segment => "No segment",
        Dimension::Manager => "No manager",
        Dimension::Source => "No source",
        Dimension::Playbook => "No playbook",
        Dimension::Stage => "No stage",
        Dimension::ForecastCategory => "No category",
        Dimension::LostReason => "none",
        Dimension::Industry => "No industry",
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

/// The texts of a free-text dimension's codes, from the same dictionary
/// the aggregate joined.
async fn dictionary(
    db: &impl ConnectionTrait,
    dim: Dimension,
    ids: &[i64],
) -> AppResult<HashMap<i64, String>> {
    let Some((text, relation)) = dictionary_sql(dim) else {
        return Ok(HashMap::new());
    };
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new(format!(
        "SELECT CAST(g.code AS BIGINT) AS id, g.{text} AS name FROM {relation} g"
    ));
    if ids.len() <= MAX_LISTED_KEYS {
        sql.push(" WHERE g.code IN ").bind_list(ids.iter().copied());
    }
    let wanted: HashSet<i64> = ids.iter().copied().collect();
    Ok(
        NameRow::find_by_statement(sql.statement(db.get_database_backend()))
            .all(db)
            .await?
            .into_iter()
            .filter(|r| wanted.contains(&r.id))
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
        Dimension::Stage => names::<stage::Entity>(db, &ids).await?,
        Dimension::LostReason | Dimension::Industry => dictionary(db, dim, &ids).await?,
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
        Dimension::ForecastCategory => match enum_at::<ForecastCategory>(code) {
            Some(c) => (c.to_value(), category_label(c).to_owned()),
            None => return missing(),
        },
        // The text is the key's id and its label.
        Dimension::LostReason | Dimension::Industry => match named.get(&code) {
            Some(text) => (text.clone(), text.clone()),
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
