use crate::graphql::eager::EagerList;
use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result, ID};

use crate::graphql::types::AuditEntry;
use crate::graphql::{page_size, principal, read_db};
use crate::service;
use crate::service::access::AUDIT_READERS;

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Newest first (OPS and ADMIN).
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        entity_type: Option<String>,
        entity_id: Option<ID>,
        first: Option<i32>,
    ) -> Result<EagerList<AuditEntry>> {
        principal(ctx)?.require(AUDIT_READERS).extend()?;
        let limit = page_size(ctx, first, 100)?;
        let rows = service::audit::list(
            read_db(ctx)?,
            entity_type.as_deref(),
            entity_id.as_ref().map(|i| i.as_str()),
            limit,
        )
        .await
        .extend()?;
        Ok(rows.into_iter().map(AuditEntry).collect())
    }
}
