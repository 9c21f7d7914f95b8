mod audit;
mod deal;
mod forecast;
mod integration;
mod lead;
mod metrics;
mod org;
mod sop;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    org::OrgQuery,
    deal::DealQuery,
    audit::AuditQuery,
    sop::SopQuery,
    integration::IntegrationQuery,
    lead::LeadQuery,
    forecast::ForecastQuery,
    metrics::MetricsQuery,
);
