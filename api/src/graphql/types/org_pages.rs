//! Cursor-paged lists of reps and territories, beside the contract's plain
//! `reps`/`territories` lists (capped at one page) so a whole organisation
//! can be listed. Ordered by id with keyset cursors (no OFFSET).
use crate::graphql::eager::{EagerList, ReadyFields};
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result};

use entity::{rep, territory};

use super::deal::PageInfo;
use super::org::{Rep, Territory};
use crate::graphql::read_db;
use crate::service::access::DealScope;
use crate::service::pagination::encode_id_cursor;
use crate::service::{self, rep::RepFilter};

/// The list names cursors carry, so one list refuses another's cursor.
pub const REP_LIST: &str = "reps";
pub const TERRITORY_LIST: &str = "territories";

pub struct RepEdge(rep::Model);

impl ReadyFields for RepEdge {}

#[Object]
impl RepEdge {
    async fn node(&self) -> Rep {
        Rep(self.0.clone())
    }
    async fn cursor(&self) -> String {
        encode_id_cursor(REP_LIST, self.0.id)
    }
}

/// A page of reps. totalCount counts the whole filtered set and is only
/// computed when selected.
pub struct RepConnection {
    pub rows: Vec<rep::Model>,
    pub has_next: bool,
    pub has_previous: bool,
    pub scope: DealScope,
    pub filter: RepFilter,
}

#[Object]
impl RepConnection {
    async fn edges(&self) -> EagerList<RepEdge> {
        self.rows.iter().cloned().map(RepEdge).collect()
    }
    async fn nodes(&self) -> EagerList<Rep> {
        self.rows.iter().cloned().map(Rep).collect()
    }
    async fn page_info(&self) -> PageInfo {
        page_info(
            self.rows.iter().map(|r| r.id),
            REP_LIST,
            self.has_next,
            self.has_previous,
        )
    }
    /// The size of the whole filtered set, on every page.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = service::rep::count(read_db(ctx)?, self.scope, &self.filter)
            .await
            .extend()?;
        Ok(n as i32)
    }
}

pub struct TerritoryEdge(territory::Model);

impl ReadyFields for TerritoryEdge {}

#[Object]
impl TerritoryEdge {
    async fn node(&self) -> Territory {
        Territory(self.0.clone())
    }
    async fn cursor(&self) -> String {
        encode_id_cursor(TERRITORY_LIST, self.0.id)
    }
}

/// A page of territories. totalCount counts the whole set and is only
/// computed when selected.
pub struct TerritoryConnection {
    pub rows: Vec<territory::Model>,
    pub has_next: bool,
    pub has_previous: bool,
    pub parent_id: Option<i64>,
}

#[Object]
impl TerritoryConnection {
    async fn edges(&self) -> EagerList<TerritoryEdge> {
        self.rows.iter().cloned().map(TerritoryEdge).collect()
    }
    async fn nodes(&self) -> EagerList<Territory> {
        self.rows.iter().cloned().map(Territory).collect()
    }
    async fn page_info(&self) -> PageInfo {
        page_info(
            self.rows.iter().map(|t| t.id),
            TERRITORY_LIST,
            self.has_next,
            self.has_previous,
        )
    }
    /// The size of the whole set, on every page.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = service::territory::count(read_db(ctx)?, self.parent_id)
            .await
            .extend()?;
        Ok(n as i32)
    }
}

fn page_info(
    mut ids: impl DoubleEndedIterator<Item = i64> + Clone,
    list: &str,
    has_next: bool,
    has_previous: bool,
) -> PageInfo {
    PageInfo {
        has_previous_page: has_previous,
        has_next_page: has_next,
        start_cursor: ids.clone().next().map(|id| encode_id_cursor(list, id)),
        end_cursor: ids.next_back().map(|id| encode_id_cursor(list, id)),
    }
}
