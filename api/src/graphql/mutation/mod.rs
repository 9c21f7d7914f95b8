mod deal;
mod org;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(org::OrgMutation, deal::DealMutation);
