//! Admission by cost: the operations executing at once may together cost at
//! most `SALESOPS_MAX_COST_IN_FLIGHT` (the same price the complexity limit
//! checks); the others wait their turn, first come first served, within
//! their request deadline. async-graphql holds every field's future and the
//! whole answer's value tree in memory until the response is written, so a
//! response's memory grows with its cost (measured on 1,000,000 deals at 16
//! clients: about 0.9 to 1 KB per unit for the nested Q5 of bench/peers.py
//! and for its VP dashboard, 13 and 18 MB a request): this bounds the
//! server's peak memory under any number of clients without refusing
//! anyone. On two cores the
//! operations it holds back would only have shared the same CPU and
//! connections. Operations costing at most 1/64 of the budget (937 units by
//! default: answers under a megabyte, such as a page of 50 deals) never wait,
//! so a queue of heavy dashboards never delays a point read.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct CostAdmission {
    permits: Arc<Semaphore>,
    budget: u32,
    /// Operations up to this cost run at once, outside the budget.
    free: u64,
    /// Operations that found the budget spent and waited.
    waited: AtomicU64,
}

/// Held while an admitted operation runs; dropping it returns its cost.
pub struct Admitted(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl CostAdmission {
    /// `budget` 0 admits everything at once (no bound).
    pub fn new(budget: usize) -> Self {
        let budget = budget.min(Semaphore::MAX_PERMITS).min(u32::MAX as usize) as u32;
        Self {
            permits: Arc::new(Semaphore::new(budget as usize)),
            budget,
            free: budget as u64 / 64,
            waited: AtomicU64::new(0),
        }
    }

    /// Waits until `cost` fits beside the operations running. An operation
    /// costing more than the whole budget runs alone rather than never.
    pub async fn admit(&self, cost: u64) -> Admitted {
        if self.budget == 0 || cost <= self.free {
            return Admitted(None);
        }
        let n = cost.min(self.budget as u64) as u32;
        let permit = match self.permits.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(_) => {
                self.waited.fetch_add(1, Ordering::Relaxed);
                self.permits
                    .clone()
                    .acquire_many_owned(n)
                    .await
                    .expect("the admission semaphore is never closed")
            }
        };
        Admitted(Some(permit))
    }

    /// The cost of the operations running now.
    pub fn in_flight(&self) -> u64 {
        (self.budget as usize - self.permits.available_permits()) as u64
    }

    /// Prometheus lines for GET /metrics.
    pub fn render(&self) -> String {
        format!(
            "# HELP salesops_cost_in_flight Cost of the GraphQL operations executing now.\n\
             # TYPE salesops_cost_in_flight gauge\n\
             salesops_cost_in_flight {}\n\
             # HELP salesops_cost_in_flight_limit SALESOPS_MAX_COST_IN_FLIGHT (0: no bound).\n\
             # TYPE salesops_cost_in_flight_limit gauge\n\
             salesops_cost_in_flight_limit {}\n\
             # HELP salesops_admission_waits_total Operations that waited for the in-flight cost budget.\n\
             # TYPE salesops_admission_waits_total counter\n\
             salesops_admission_waits_total {}\n",
            self.in_flight(),
            self.budget,
            self.waited.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn operations_wait_until_their_cost_fits() {
        let a = Arc::new(CostAdmission::new(100));
        let first = a.admit(60).await;
        assert_eq!(a.in_flight(), 60);
        let a2 = a.clone();
        let second = tokio::spawn(async move {
            let _p = a2.admit(60).await;
            a2.in_flight()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "60 + 60 does not fit in 100");
        assert_eq!(a.waited.load(Ordering::Relaxed), 1);
        drop(first);
        assert_eq!(second.await.unwrap(), 60);
        assert_eq!(a.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_operation_above_the_budget_runs_alone() {
        let a = CostAdmission::new(100);
        let big = a.admit(5_000).await;
        assert_eq!(a.in_flight(), 100);
        drop(big);
        let _small = a.admit(2).await;
        assert_eq!(a.in_flight(), 2);
    }

    #[tokio::test]
    async fn cheap_operations_never_wait() {
        let a = CostAdmission::new(6_400);
        let _heavy = a.admit(6_400).await;
        // 100 = 6,400 / 64 runs beside a spent budget, 101 would wait.
        let _cheap = a.admit(100).await;
        assert_eq!(a.in_flight(), 6_400);
        let pending = tokio::time::timeout(Duration::from_millis(50), a.admit(101)).await;
        assert!(pending.is_err());
    }

    #[tokio::test]
    async fn a_zero_budget_bounds_nothing() {
        let a = CostAdmission::new(0);
        let _x = a.admit(1_000_000).await;
        let _y = a.admit(1_000_000).await;
        assert_eq!(a.in_flight(), 0);
    }
}
