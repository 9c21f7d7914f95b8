mod deal;
mod forecast;
mod integration;
mod lead;
mod org;
mod sop;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    org::OrgMutation,
    deal::DealMutation,
    sop::SopMutation,
    integration::IntegrationMutation,
    lead::LeadMutation,
    forecast::ForecastMutation,
);
