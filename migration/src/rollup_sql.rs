//! The SQL of the deal rollups (docs/design.md, Rollups), shared by the
//! migration that creates them and by the rebuild command, so both build
//! the same cells.
//!
//! A cell is (month, owner, territory, stage) with the won, lost and open
//! measures of the deals in it: a won or lost deal counts in the UTC month
//! of its closed_at, an open deal in the month of its own expected close
//! date (open deals without one are dated by the won cycle at read time, so
//! they stay out of the cells). `territory_id` is 0 for "no territory", so
//! the key has no NULL.
//!
//! Deal writes never touch `deal_rollup` itself: triggers on `deal` append
//! the change of every statement to `deal_rollup_delta` (new rows minus old
//! rows, in the writer's transaction, so the rollups are exact at every
//! instant), and readers sum both tables. A compaction folds the deltas
//! into the cells now and then; no writer waits on another's cell.
use sea_orm_migration::sea_orm::DatabaseBackend;

/// The measures of a cell, in column order. Amounts are kept as their
/// high and low 32-bit halves (`cents >> 32`, `cents & 0xFFFFFFFF`), each
/// summed apart, so no cell overflows 64 bits whatever the amounts (each
/// half is below 2^32 per deal); readers recombine the sums exactly, as
/// `Dialect::sum_cents` does.
pub const MEASURES: [&str; 10] = [
    "won",
    "won_cents_hi",
    "won_cents_lo",
    "won_days",
    "lost",
    "lost_cents_hi",
    "lost_cents_lo",
    "open_deals",
    "open_cents_hi",
    "open_cents_lo",
];

/// Measures 0..CLOSED are the closed ones (won and lost), 0..WON the won
/// ones, CLOSED.. the open ones.
pub const WON: usize = 4;
pub const CLOSED: usize = 7;

/// The key of a cell, in column order.
pub const KEY: [&str; 4] = ["month", "owner_id", "territory_id", "stage_id"];

/// Every column of a cell (key, then measures), comma-separated.
pub fn columns() -> String {
    KEY.iter()
        .chain(MEASURES.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// The month of a deal row `t`'s cell (NULL: the row is in no cell).
fn month_sql(b: DatabaseBackend, t: &str) -> String {
    match b {
        DatabaseBackend::Sqlite => format!(
            "(CASE WHEN {t}.status IN ('WON', 'LOST') THEN strftime('%Y-%m-01', {t}.closed_at) \
             WHEN {t}.status = 'OPEN' THEN strftime('%Y-%m-01', {t}.expected_close_date) END)"
        ),
        // A date minus its day of month: no time zone involved.
        _ => format!(
            "(CASE WHEN {t}.status IN ('WON', 'LOST') THEN \
             date_trunc('month', {t}.closed_at AT TIME ZONE 'UTC')::date \
             WHEN {t}.status = 'OPEN' THEN \
             {t}.expected_close_date - (EXTRACT(DAY FROM {t}.expected_close_date)::int - 1) END)"
        ),
    }
}

/// Whole UTC days from opened_at to closed_at of a row (the won cycle).
fn cycle_days_sql(b: DatabaseBackend, t: &str) -> String {
    match b {
        DatabaseBackend::Sqlite => format!(
            "CAST(julianday(date({t}.closed_at)) - julianday(date({t}.opened_at)) AS INTEGER)"
        ),
        _ => format!(
            "(({t}.closed_at AT TIME ZONE 'UTC')::date - ({t}.opened_at AT TIME ZONE 'UTC')::date)"
        ),
    }
}

/// The SELECT list of deal row `t`'s contribution to its cell, each
/// measure multiplied by `sign` (+1 a row that is, -1 a row that was),
/// with the columns of `columns()`.
pub fn contribution(b: DatabaseBackend, t: &str, sign: i64) -> String {
    let when = |status: &str, v: &str| {
        format!("{sign} * (CASE WHEN {t}.status = '{status}' THEN {v} ELSE 0 END)")
    };
    format!(
        "{month} AS month, {t}.owner_id AS owner_id, COALESCE({t}.territory_id, 0) AS territory_id, \
         {t}.stage_id AS stage_id, {m}",
        month = month_sql(b, t),
        m = measures(t, &when, &cycle_days_sql(b, t)),
    )
}

/// The measure columns of one deal row `t` (aliased as in `MEASURES`),
/// each value through `when(status, value)`.
pub fn measures(t: &str, when: &dyn Fn(&str, &str) -> String, cycle_days: &str) -> String {
    let (hi, lo) = (
        format!("({t}.amount_cents >> 32)"),
        format!("({t}.amount_cents & 4294967295)"),
    );
    [
        ("WON", "1"),
        ("WON", hi.as_str()),
        ("WON", lo.as_str()),
        ("WON", cycle_days),
        ("LOST", "1"),
        ("LOST", hi.as_str()),
        ("LOST", lo.as_str()),
        ("OPEN", "1"),
        ("OPEN", hi.as_str()),
        ("OPEN", lo.as_str()),
    ]
    .iter()
    .zip(MEASURES)
    .map(|((status, v), m)| format!("{} AS {m}", when(status, v)))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Whether a row `t` belongs to a cell.
pub fn in_a_cell(b: DatabaseBackend, t: &str) -> String {
    format!("{} IS NOT NULL", month_sql(b, t))
}

/// `SUM(m) AS m` for every measure.
fn summed() -> String {
    MEASURES
        .iter()
        .map(|m| format!("SUM({m}) AS {m}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Some measure of the summed group is not zero.
fn nonzero_sums() -> String {
    MEASURES
        .iter()
        .map(|m| format!("SUM({m}) <> 0"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The cells of the deal table as it is: `SELECT key, measures` grouped.
pub fn cells_of_deals(b: DatabaseBackend) -> String {
    format!(
        "SELECT {key}, {sums} FROM (SELECT {c} FROM deal d WHERE {cell}) x \
         GROUP BY {key} HAVING {nz}",
        key = KEY.join(", "),
        sums = summed(),
        c = contribution(b, "d", 1),
        cell = in_a_cell(b, "d"),
        nz = nonzero_sums(),
    )
}

/// The cells as the rollup tables hold them now (cells plus deltas).
pub fn cells_of_rollups() -> String {
    format!(
        "SELECT {key}, {sums} FROM (SELECT {cols} FROM deal_rollup UNION ALL \
         SELECT {cols} FROM deal_rollup_delta) x GROUP BY {key} HAVING {nz}",
        key = KEY.join(", "),
        sums = summed(),
        cols = columns(),
        nz = nonzero_sums(),
    )
}

/// Fills empty rollups from the deal table.
pub fn fill(b: DatabaseBackend) -> String {
    format!(
        "INSERT INTO deal_rollup ({cols}) {cells}",
        cols = columns(),
        cells = cells_of_deals(b)
    )
}

/// The statements that create the triggers appending every deal change to
/// `deal_rollup_delta`.
pub fn triggers(b: DatabaseBackend) -> Vec<String> {
    let cols = columns();
    match b {
        DatabaseBackend::Sqlite => {
            // Row triggers: one delta row per deal row that is (was) in a cell.
            let append = |t: &str, sign: i64| {
                format!(
                    "INSERT INTO deal_rollup_delta ({cols}) SELECT {c} WHERE {cell};",
                    c = contribution(b, t, sign),
                    cell = in_a_cell(b, t)
                )
            };
            // Only the columns a cell reads fire the update trigger.
            let watched = "status, closed_at, expected_close_date, owner_id, territory_id, \
                           stage_id, amount_cents, opened_at";
            vec![
                format!(
                    "CREATE TRIGGER deal_rollup_insert AFTER INSERT ON deal BEGIN {} END",
                    append("NEW", 1)
                ),
                format!(
                    "CREATE TRIGGER deal_rollup_update AFTER UPDATE OF {watched} ON deal BEGIN {} {} END",
                    append("OLD", -1),
                    append("NEW", 1)
                ),
                format!(
                    "CREATE TRIGGER deal_rollup_delete AFTER DELETE ON deal BEGIN {} END",
                    append("OLD", -1)
                ),
            ]
        }
        _ => {
            // Statement triggers over the transition tables: a bulk write
            // appends one delta row per touched cell, not one per deal.
            let delta = |sources: &[(&str, i64)]| {
                let parts: Vec<String> = sources
                    .iter()
                    .map(|(t, sign)| {
                        format!(
                            "SELECT {c} FROM {t} WHERE {cell}",
                            c = contribution(b, t, *sign),
                            cell = in_a_cell(b, t)
                        )
                    })
                    .collect();
                format!(
                    "INSERT INTO deal_rollup_delta ({cols}) SELECT {key}, {sums} FROM ({u}) x \
                     GROUP BY {key} HAVING {nz} ORDER BY {key};",
                    key = KEY.join(", "),
                    sums = summed(),
                    u = parts.join(" UNION ALL "),
                    nz = nonzero_sums(),
                )
            };
            let function = |name: &str, body: String| {
                format!(
                    "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN {body} RETURN NULL; END $$"
                )
            };
            vec![
                function("deal_rollup_on_insert", delta(&[("new_rows", 1)])),
                function(
                    "deal_rollup_on_update",
                    delta(&[("old_rows", -1), ("new_rows", 1)]),
                ),
                function("deal_rollup_on_delete", delta(&[("old_rows", -1)])),
                "CREATE TRIGGER deal_rollup_insert AFTER INSERT ON deal REFERENCING NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION deal_rollup_on_insert()"
                    .to_owned(),
                "CREATE TRIGGER deal_rollup_update AFTER UPDATE ON deal \
                 REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION deal_rollup_on_update()"
                    .to_owned(),
                "CREATE TRIGGER deal_rollup_delete AFTER DELETE ON deal REFERENCING OLD TABLE AS old_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION deal_rollup_on_delete()"
                    .to_owned(),
            ]
        }
    }
}

/// The statements that drop what `triggers` creates.
pub fn drop_triggers(b: DatabaseBackend) -> Vec<String> {
    let mut out: Vec<String> = [
        "deal_rollup_insert",
        "deal_rollup_update",
        "deal_rollup_delete",
    ]
    .iter()
    .map(|t| match b {
        DatabaseBackend::Sqlite => format!("DROP TRIGGER IF EXISTS {t}"),
        _ => format!("DROP TRIGGER IF EXISTS {t} ON deal"),
    })
    .collect();
    if b != DatabaseBackend::Sqlite {
        for f in [
            "deal_rollup_on_insert",
            "deal_rollup_on_update",
            "deal_rollup_on_delete",
        ] {
            out.push(format!("DROP FUNCTION IF EXISTS {f}()"));
        }
    }
    out
}
