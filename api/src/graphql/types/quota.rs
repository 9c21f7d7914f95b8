use crate::graphql::eager::ReadyFields;
use crate::graphql::errors::{Extend as _, ResultExt as _};
use async_graphql::{Context, Object, Result, ID};
use rust_decimal::Decimal;

use entity::quota;

use super::org::Rep;
use crate::domain::money::from_cents;
use crate::error::AppError;
use crate::graphql::loaders::rep_in_scope;
use crate::graphql::principal;
use crate::graphql::scalars::Date;
use crate::graphql::scalars::Period;
use crate::service::access::RepData;

pub struct Quota(pub quota::Model);

impl ReadyFields for Quota {}

#[Object]
impl Quota {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn rep(&self, ctx: &Context<'_>) -> Result<Rep> {
        Rep::referenced(ctx, self.0.rep_id).await
    }
    /// The quota's range in its most specific spelling ("2026-07", "2026-Q3", ...).
    async fn period(&self) -> Result<Period> {
        crate::domain::period::Period::canonical(self.0.start_date, self.0.end_date)
            .map(Period)
            .ok_or_else(|| AppError::internal("stored quota range is empty").extend())
    }
    async fn start(&self) -> Date {
        Date(self.0.start_date)
    }
    /// The first day after the quota (exclusive).
    async fn end(&self) -> Date {
        Date(self.0.end_date)
    }
    // Compensation data: checked here as well as on every path that lists
    // quotas, so a new path cannot leak it.
    async fn amount(&self, ctx: &Context<'_>) -> Result<Decimal> {
        let in_scope = rep_in_scope(ctx, self.0.rep_id).await?;
        principal(ctx)?
            .may_read_rep(RepData::Compensation, in_scope)
            .extend()?;
        Ok(from_cents(self.0.amount_cents))
    }
}
