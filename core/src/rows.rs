//! Rows read by position. sea-orm's `FromQueryResult` looks every column up
//! by name (a hash of the name, per column, per row; a `format!` of the
//! prefix for joined columns) and formats an error string for every NULL
//! it reads into an `Option`. The hot reads (pages, nested pages, loaders by
//! id and by parent, attainment's reps) decode the models below by column
//! position instead, from one field list that is also the SELECT's column
//! list, so the two cannot drift apart.
use sea_orm::sqlx::{self, Row as _};
use sea_orm::{ActiveEnum, ConnectionTrait, DbErr, EntityTrait, QueryResult, QueryTrait};

use entity::enums::{
    ActivityKind, DealSource, DealStatus, ForecastCategory, LeadStatus, Segment, SopStage,
    StageKind,
};

/// One column's value at a position.
pub trait Value: Sized {
    fn at(row: &QueryResult, i: usize) -> Result<Self, DbErr>;
}

/// A model read from consecutive columns, in the order of [`Self::COLUMNS`]
/// (the entity's column order: a unit test holds them equal, so a statement
/// sea-orm builds for the entity decodes here too).
pub trait Positional: Sized {
    const COLUMNS: &'static [&'static str];

    /// The model from the columns starting at `at`.
    fn decode(row: &QueryResult, at: usize) -> Result<Self, DbErr>;

    /// The model from the columns of `columns` alone, starting at `at` (in
    /// the order of [`Self::COLUMNS`], as [`Self::select_columns`] lists
    /// them); every other field holds its type's [`Unread`] value.
    fn decode_columns(row: &QueryResult, at: usize, columns: Columns) -> Result<Self, DbErr>;

    /// [`Self::decode_columns`] of an outer join: `None` when its first
    /// column (the id, which `columns` must hold) is NULL.
    fn decode_columns_optional(
        row: &QueryResult,
        at: usize,
        columns: Columns,
    ) -> Result<Option<Self>, DbErr> {
        debug_assert!(columns.has(0), "the id is read");
        match Option::<i64>::at(row, at)? {
            Some(_) => Self::decode_columns(row, at, columns).map(Some),
            None => Ok(None),
        }
    }

    /// `table.c1, table.c2, ...` for a SELECT list.
    fn select_list(table: &str) -> String {
        Self::select_columns(table, Columns::all::<Self>())
    }

    /// `table.c1, ...` of the columns in `columns`, in their model order.
    fn select_columns(table: &str, columns: Columns) -> String {
        let mut s = String::new();
        for (i, c) in Self::COLUMNS.iter().enumerate() {
            if !columns.has(i) {
                continue;
            }
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(table);
            s.push('.');
            s.push_str(c);
        }
        s
    }
}

/// Some of a model's columns (bit `i` is `COLUMNS[i]`), for a read whose
/// answer shows only some fields: a page of deals that shows names and
/// amounts need not read (nor PostgreSQL send, nor the server decode) the
/// other 20 columns. The fields of unread columns hold their type's
/// [`Unread`] value and must not be read: whoever picks the set derives it
/// from the fields the answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Columns(u64);

impl Columns {
    pub const NONE: Self = Self(0);

    /// Every column of `M`.
    pub fn all<M: Positional>() -> Self {
        debug_assert!(M::COLUMNS.len() <= 64);
        Self(u64::MAX >> (64 - M::COLUMNS.len()))
    }

    /// The columns of `M` named in `names`. A name `M` does not have is a
    /// programming error (a unit test builds every set the server uses).
    pub fn of<M: Positional>(names: &[&str]) -> Self {
        names.iter().fold(Self::NONE, |set, name| {
            let i = M::COLUMNS
                .iter()
                .position(|c| c == name)
                .unwrap_or_else(|| panic!("{} has no column {name}", std::any::type_name::<M>()));
            Self(set.0 | 1 << i)
        })
    }

    /// `id` and `name`, for an answer that shows nothing else of a row (a
    /// deal page's owner column, an attainment table's reps).
    pub fn id_and_name<M: Positional>() -> Self {
        Self::of::<M>(&["id", "name"])
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }

    /// How many columns the set's SELECT list names.
    pub fn count(self) -> usize {
        self.0.count_ones() as usize
    }
}

/// The value a field of a column the statement did not read holds.
pub trait Unread {
    fn unread() -> Self;
}

macro_rules! unread_values {
    ($($t:ty => $v:expr),* $(,)?) => {$(
        impl Unread for $t {
            fn unread() -> Self {
                $v
            }
        }
    )*};
}

unread_values!(
    i64 => 0,
    i32 => 0,
    bool => false,
    String => String::new(),
    chrono::NaiveDate => chrono::DateTime::<chrono::Utc>::UNIX_EPOCH.date_naive(),
    chrono::DateTime<chrono::Utc> => chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
);

impl<T> Unread for Option<T> {
    fn unread() -> Self {
        None
    }
}

/// Every row of a result as `M`.
pub fn decode_all<M: Positional>(rows: &[QueryResult]) -> Result<Vec<M>, DbErr> {
    rows.iter().map(|r| M::decode(r, 0)).collect()
}

/// Runs a statement sea-orm built for `E` (`E::find()...`, whose columns
/// are the entity's, in order) and decodes its rows by position.
pub async fn all<E>(
    db: &impl ConnectionTrait,
    select: sea_orm::Select<E>,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Positional,
{
    let rows = db
        .query_all_raw(select.build(db.get_database_backend()))
        .await?;
    decode_all(&rows)
}

/// The value at `i` of a PostgreSQL or SQLite row (`None` for NULL),
/// borrowed from the row where `T` borrows (`&str`).
fn decode<'r, T>(row: &'r QueryResult, i: usize) -> Result<Option<T>, DbErr>
where
    T: sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>,
{
    let got = if let Some(r) = row.try_as_pg_row() {
        r.try_get::<Option<T>, _>(i)
    } else if let Some(r) = row.try_as_sqlite_row() {
        r.try_get::<Option<T>, _>(i)
    } else {
        return Err(DbErr::Custom(
            "rows: a result from a backend other than PostgreSQL or SQLite".into(),
        ));
    };
    got.map_err(|e| DbErr::Type(format!("column {i}: {e}")))
}

fn null(i: usize) -> DbErr {
    DbErr::Type(format!("column {i}: unexpected NULL"))
}

macro_rules! sqlx_values {
    ($($t:ty),* $(,)?) => {$(
        impl Value for $t {
            fn at(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                decode::<$t>(row, i)?.ok_or_else(|| null(i))
            }
        }
        impl Value for Option<$t> {
            fn at(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                decode::<$t>(row, i)
            }
        }
    )*};
}

sqlx_values!(
    i64,
    i32,
    bool,
    String,
    chrono::NaiveDate,
    chrono::DateTime<chrono::Utc>,
);

/// String-backed enums: the stored name, checked against the enum; an
/// unread one holds the enum's first variant.
macro_rules! enum_values {
    ($($t:ty),* $(,)?) => {$(
        impl Unread for $t {
            fn unread() -> Self {
                <$t as sea_orm::Iterable>::iter()
                    .next()
                    .expect("an enum has a variant")
            }
        }
        impl Value for $t {
            fn at(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                Option::<$t>::at(row, i)?.ok_or_else(|| null(i))
            }
        }
        impl Value for Option<$t> {
            fn at(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                // The stored names, once (ActiveEnum::to_value allocates).
                static NAMES: std::sync::OnceLock<Vec<(String, $t)>> = std::sync::OnceLock::new();
                let names = NAMES.get_or_init(|| {
                    <$t as sea_orm::Iterable>::iter().map(|v| (v.to_value(), v)).collect()
                });
                // The stored text, borrowed from the row (no allocation).
                decode::<&str>(row, i)?
                    .map(|s| {
                        names.iter().find(|(n, _)| n == s).map(|(_, v)| *v).ok_or_else(|| {
                            DbErr::Type(format!("column {i}: {s:?} is not a {}", stringify!($t)))
                        })
                    })
                    .transpose()
            }
        }
    )*};
}

enum_values!(
    Segment,
    StageKind,
    DealStatus,
    DealSource,
    ForecastCategory,
    SopStage,
    LeadStatus,
    ActivityKind,
);

/// A money sum as the statements spell it (`Dialect::sum_cents`: PostgreSQL's
/// numeric as text, SQLite's "hi:lo"), read from the row's borrowed text.
impl Value for crate::db::SumCents {
    fn at(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        let text = decode::<&str>(row, i)?.ok_or_else(|| null(i))?;
        crate::db::SumCents::parse(text)
            .ok_or_else(|| DbErr::Type(format!("column {i}: not a money sum: {text:?}")))
    }
}

macro_rules! positional {
    ($($model:path { $($field:ident),* $(,)? })*) => {$(
        impl Positional for $model {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            // Fields are evaluated in the order written, which is the
            // order of COLUMNS.
            #[allow(unused_assignments)]
            fn decode(row: &QueryResult, at: usize) -> Result<Self, DbErr> {
                let mut i = at;
                Ok(Self {
                    $($field: {
                        let v = Value::at(row, i)?;
                        i += 1;
                        v
                    }),*
                })
            }

            // `c` walks COLUMNS, `i` the row's columns (the read ones).
            #[allow(unused_assignments)]
            fn decode_columns(row: &QueryResult, at: usize, columns: Columns) -> Result<Self, DbErr> {
                let (mut i, mut c) = (at, 0);
                Ok(Self {
                    $($field: {
                        let v = if columns.has(c) {
                            i += 1;
                            Value::at(row, i - 1)?
                        } else {
                            Unread::unread()
                        };
                        c += 1;
                        v
                    }),*
                })
            }
        }
    )*};
}

use entity::{
    account, deal, deal_stage_change, lead_scoring_rule, lead_status_change, playbook,
    playbook_step, quota, rep, sop_approver, sop_plan, sop_transition, stage, territory,
};

positional! {
    deal::Model {
        id, external_id, name, amount_cents, currency, owner_id, account_id, territory_id,
        stage_id, status, forecast_category, source, playbook_id, opened_at,
        expected_close_date, closed_at, lost_reason, version, valid_from, push_count,
        first_amount_cents, pushed_at, stage_entered_at, last_activity_at, created_at,
        updated_at,
    }
    rep::Model {
        id, external_id, name, email, title, territory_id, manager_id, hired_at, active,
        ramp_months, commission_rate_ppm, commission_threshold_ppm, created_at, updated_at,
        quota_carrying,
    }
    account::Model {
        id, external_id, name, industry, segment, territory_id, created_at, updated_at,
    }
    stage::Model { id, name, position, probability_ppm, kind, created_at }
    territory::Model { id, name, segment, region, parent_id, created_at, updated_at }
    playbook::Model { id, name, description, segment, active, created_at }
    sop_plan::Model {
        id, name, horizon_start, horizon_months, lookback_months, baseline_lookback_months,
        growth_rate_ppm, stage, revision, previous_revision_id, owner, released_at, version,
        created_at, updated_at, planned_from,
    }
    lead_scoring_rule::Model {
        id, position, field, operator, value, points, created_at, created_by, retired_at,
    }
    lead_status_change::Model { id, lead_id, from_status, to_status, changed_at, actor }
    quota::Model { id, rep_id, start_date, end_date, amount_cents, created_at, updated_at }
    playbook_step::Model { id, playbook_id, position, title, guidance, stage_id }
    deal_stage_change::Model { id, deal_id, from_stage_id, to_stage_id, changed_at, actor }
    sop_transition::Model { id, plan_id, from_stage, to_stage, at, actor, note }
    sop_approver::Model { id, plan_id, approver, approved_version, approved_at, note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{IdenStatic, Iterable};

    /// The entity's column names in its column order.
    fn entity_columns<E: EntityTrait>() -> Vec<&'static str> {
        E::Column::iter().map(|c| c.as_str()).collect()
    }

    /// A model's field list is the entity's column list, in its order: a
    /// statement sea-orm builds for the entity (`E::find()`) decodes by
    /// position, and a column added to the entity fails here (a field
    /// added to the model and not to the list fails to compile).
    #[test]
    fn field_lists_are_the_entities_columns_in_order() {
        fn check<E: sea_orm::EntityTrait>()
        where
            E::Model: Positional,
        {
            assert_eq!(
                <E::Model as Positional>::COLUMNS,
                entity_columns::<E>().as_slice(),
                "{}",
                std::any::type_name::<E>()
            );
        }
        check::<deal::Entity>();
        check::<rep::Entity>();
        check::<account::Entity>();
        check::<stage::Entity>();
        check::<territory::Entity>();
        check::<playbook::Entity>();
        check::<sop_plan::Entity>();
        check::<lead_scoring_rule::Entity>();
        check::<lead_status_change::Entity>();
        check::<quota::Entity>();
        check::<playbook_step::Entity>();
        check::<deal_stage_change::Entity>();
        check::<sop_transition::Entity>();
        check::<sop_approver::Entity>();
    }

    /// Every stored name reads back as its variant; anything else is an
    /// error naming the column.
    #[tokio::test]
    async fn enums_read_back_by_their_stored_names() {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect("sqlite::memory:").await.unwrap();
        for v in <DealSource as Iterable>::iter() {
            let sql = format!("SELECT '{}', NULL, 'NOPE'", v.to_value());
            let row = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(DealSource::at(&row, 0).unwrap(), v);
            assert_eq!(Option::<DealSource>::at(&row, 0).unwrap(), Some(v));
            assert_eq!(Option::<DealSource>::at(&row, 1).unwrap(), None);
            assert!(
                DealSource::at(&row, 1).is_err(),
                "NULL into a required enum"
            );
            let err = DealSource::at(&row, 2).unwrap_err().to_string();
            assert!(err.contains("column 2") && err.contains("NOPE"), "{err}");
        }
    }

    /// A set of columns reads those, in model order, from consecutive
    /// columns of the row; every other field is its unread value.
    #[tokio::test]
    async fn some_columns_decode_from_consecutive_positions() {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect("sqlite::memory:").await.unwrap();
        let columns = Columns::of::<rep::Model>(&["title", "id", "active"]);
        assert_eq!(columns.count(), 3);
        assert_eq!(
            rep::Model::select_columns("r", columns),
            "r.id, r.title, r.active"
        );
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT 'skipped', 7, 'AE', 1, NULL".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        let rep = rep::Model::decode_columns(&row, 1, columns).unwrap();
        assert_eq!(
            (rep.id, rep.title.as_deref(), rep.active),
            (7, Some("AE"), true)
        );
        assert_eq!(
            (rep.name.as_str(), rep.manager_id, rep.ramp_months),
            ("", None, 0)
        );
        assert_eq!(
            rep.hired_at,
            chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
        );
        // An outer join's missing row: the id is NULL.
        let missing = Columns::id_and_name::<account::Model>();
        assert_eq!(
            account::Model::decode_columns_optional(&row, 4, missing).unwrap(),
            None
        );
        assert_eq!(
            Columns::all::<rep::Model>().count(),
            rep::Model::COLUMNS.len()
        );
        assert_eq!(
            Columns::all::<rep::Model>().union(columns),
            Columns::all::<rep::Model>()
        );
    }

    #[test]
    #[should_panic(expected = "has no column nope")]
    fn a_column_the_model_lacks_is_a_programming_error() {
        Columns::of::<deal::Model>(&["id", "nope"]);
    }

    #[test]
    fn select_list_names_every_column_of_the_table() {
        assert_eq!(
            stage::Model::select_list("s"),
            "s.id, s.name, s.position, s.probability_ppm, s.kind, s.created_at"
        );
    }
}
