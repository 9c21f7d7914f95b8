use crate::graphql::errors::ResultExt as _;
use async_graphql::{Context, Object, Result};

use crate::graphql::types::forecast::{ForecastSubmission, SubmitForecastInput};
use crate::graphql::{opt_id, principal, write_db};
use crate::service;
use crate::service::forecast::submission::NewSubmission;

#[derive(Default)]
pub struct ForecastMutation;

#[Object]
impl ForecastMutation {
    /// Records a rep's forecast call or an adjustment of it (never replacing an earlier one).
    /// REP: its own PERSONAL call; MANAGER: itself and its team, PERSONAL or TEAM; OPS, ADMIN,
    /// INTEGRATION: any rep, and only they may backfill submittedAt. kind is CALL when the rep's
    /// own token (or INTEGRATION) submits, ADJUSTMENT otherwise.
    async fn submit_forecast(
        &self,
        ctx: &Context<'_>,
        input: SubmitForecastInput,
    ) -> Result<ForecastSubmission> {
        let p = principal(ctx)?;
        let new = NewSubmission {
            rep_id: opt_id(&input.rep_id, "repId").extend()?,
            period: input.period.0,
            category: input.category.into(),
            amount: input.amount,
            note: input.note,
            submitted_at: input.submitted_at,
            scope: input.scope.map(Into::into),
        };
        Ok(ForecastSubmission(
            service::forecast::submission::submit(write_db(ctx)?, p, new)
                .await
                .extend()?,
        ))
    }
}
