use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::error::AppError;
use crate::graphql::eager::Eager;
use crate::graphql::enums::DealOrder;
use crate::graphql::inputs::{filter_of, DealFilterInput};
use crate::graphql::loaders::{feed_by_id, prefetch, Named, NAME_FIELDS};
use crate::graphql::types::{Deal, DealConnection};
use crate::graphql::{list_complexity, lookup_id, page_size, principal, read_db};
use crate::service;
use crate::service::access::DEAL_READERS;
use crate::service::deal::Join;
use crate::service::pagination::Cursor;
use entity::{account, rep, stage};

#[derive(Default)]
pub struct DealQuery;

#[Object]
impl DealQuery {
    /// A deal by id or by externalId; one deal outside the caller's scope is NOT_FOUND.
    async fn deal(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        external_id: Option<String>,
    ) -> Result<Option<Deal>> {
        let p = principal(ctx)?;
        p.require(DEAL_READERS).extend()?;
        let db = read_db(ctx)?;
        let found = match (id, external_id) {
            (Some(id), None) => {
                let id = lookup_id(&id, "deal").extend()?;
                service::deal::get(db, p.scope(), id).await
            }
            (None, Some(ext)) => service::deal::get_by_external_id(db, p.scope(), &ext).await,
            _ => Err(AppError::bad_input("pass exactly one of id and externalId")),
        };
        Ok(Some(Deal(found.extend()?)))
    }

    /// Deals the caller may see, filtered, ordered and paged by cursor.
    #[graphql(complexity = "list_complexity(first, 50, child_complexity)")]
    async fn deals(
        &self,
        ctx: &Context<'_>,
        filter: Option<DealFilterInput>,
        order_by: Option<DealOrder>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Eager<DealConnection>> {
        let p = principal(ctx)?;
        p.require(DEAL_READERS).extend()?;
        let first = page_size(ctx, first, 50)?;
        let filter = filter_of(&filter).extend()?;
        let order = order_by.map(Into::into).unwrap_or_default();
        let cursor = after
            .as_deref()
            .map(|a| Cursor::decode(a, order))
            .transpose()
            .extend()?;
        // The owner and account a page shows come in the page's statement
        // (joined): one statement, not three. Whole rows fill the by-id
        // loaders' cache; when the page shows only their names, only those
        // are read (loaders::Named).
        let join = |field: &str| {
            if !DealConnection::selects_node(ctx, field) {
                Join::No
            } else if DealConnection::selects_node_only(ctx, field, NAME_FIELDS) {
                Join::IdAndName
            } else {
                Join::All
            }
        };
        let joins = service::deal::ToOne {
            owner: join("owner"),
            account: join("account"),
        };
        let (page, more) = service::deal::page(
            read_db(ctx)?,
            p.scope(),
            &filter,
            order,
            first,
            cursor.as_ref(),
            DealConnection::node_columns(ctx),
            joins,
        )
        .await
        .extend()?;
        let mut rows = Vec::with_capacity(page.len());
        let (mut owners, mut accounts) = (Vec::new(), Vec::new());
        for r in page {
            owners.extend(r.owner);
            accounts.extend(r.account);
            rows.push(r.deal);
        }
        match joins.owner {
            Join::IdAndName => Named::keep(ctx, owners),
            _ => feed_by_id::<rep::Entity>(ctx, owners).await?,
        }
        match joins.account {
            Join::IdAndName => Named::keep(ctx, accounts),
            _ => feed_by_id::<account::Entity>(ctx, accounts).await?,
        }
        if DealConnection::selects_node(ctx, "stage") {
            prefetch::<stage::Entity>(ctx, rows.iter().map(|d| d.stage_id)).await?;
        }
        Ok(Eager(DealConnection::top(
            rows,
            more,
            cursor.is_some(),
            order,
            p.scope(),
            filter,
        )))
    }
}
