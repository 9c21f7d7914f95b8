//! Demo and benchmark data.
pub mod generator;
pub mod leads;
pub mod writer;

use sea_orm::DatabaseConnection;

use crate::clock;
use crate::error::AppResult;

pub struct Summary {
    pub territories: usize,
    pub reps: usize,
    pub accounts: usize,
    pub deals: usize,
    pub stage_changes: usize,
    pub leads: usize,
    pub activities: usize,
}

/// Seeds the realistic demo organisation into an empty database.
pub async fn demo(db: &DatabaseConnection, currency: &str) -> AppResult<Summary> {
    seed(db, &generator::Params::demo(clock::today()), currency).await
}

/// Seeds a synthetic organisation of `deals` deals (for benchmarks).
pub async fn synthetic(
    db: &DatabaseConnection,
    deals: usize,
    seed_value: u64,
    currency: &str,
) -> AppResult<Summary> {
    seed(
        db,
        &generator::Params::synthetic(clock::today(), deals, seed_value),
        currency,
    )
    .await
}

async fn seed(
    db: &DatabaseConnection,
    params: &generator::Params,
    currency: &str,
) -> AppResult<Summary> {
    let started = std::time::Instant::now();
    let org = generator::generate(params);
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        deals = org.deals.len(),
        "generated"
    );
    let plan = leads::LeadSeed::new(&org, params.seed, clock::now(), params.months);
    writer::write(db, &org, currency, &plan).await?;
    let (leads, activities) = writer::write_leads(db, &org, &plan).await?;
    Ok(Summary {
        leads,
        activities,
        territories: org.territories.len(),
        reps: org.reps.len(),
        accounts: org.accounts.len(),
        deals: org.deals.len(),
        stage_changes: org.deals.iter().map(|d| d.history.len()).sum(),
    })
}
