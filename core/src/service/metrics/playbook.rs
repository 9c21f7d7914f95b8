//! Playbook effectiveness (docs/design.md, Playbook effectiveness): the deals following a
//! playbook that closed (won or lost) in the period, their win rate and
//! mean won cycle, against the baseline: the deals closed in the same
//! period without this playbook (another playbook or none), within the
//! caller's scope. One statement per period serves every playbook listed.
use std::collections::HashMap;

use sea_orm::ConnectionTrait;

use super::{closed_by_key, ClosedAgg};
use crate::domain::metrics::{mean, win_rate};
use crate::domain::period::Period;
use crate::error::AppResult;
use crate::service::access::DealScope;
use crate::service::deal_filter::DealFilter;
use crate::service::grouping::Dimension;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effectiveness {
    pub deals: i64,
    pub won: i64,
    pub lost: i64,
    pub win_rate: Option<f64>,
    pub baseline_win_rate: Option<f64>,
    pub avg_cycle_days: Option<f64>,
    pub baseline_avg_cycle_days: Option<f64>,
}

/// The pure split of per-playbook aggregates into one playbook and the rest.
pub fn effectiveness(of: &ClosedAgg, all: &[ClosedAgg]) -> Effectiveness {
    let total = all.iter().fold(ClosedAgg::default(), |mut t, r| {
        t.won += r.won;
        t.lost += r.lost;
        t.won_days += r.won_days;
        t
    });
    let (b_won, b_lost, b_days) = (
        total.won - of.won,
        total.lost - of.lost,
        total.won_days - of.won_days,
    );
    Effectiveness {
        deals: of.won + of.lost,
        won: of.won,
        lost: of.lost,
        win_rate: win_rate(of.won, of.lost),
        baseline_win_rate: win_rate(b_won, b_lost),
        avg_cycle_days: mean(of.won_days, of.won),
        baseline_avg_cycle_days: mean(b_days, b_won),
    }
}

/// Effectiveness of many playbooks over one period: one grouped statement.
pub async fn effectiveness_for(
    db: &impl ConnectionTrait,
    scope: DealScope,
    period: &Period,
    playbook_ids: &[i64],
) -> AppResult<HashMap<i64, Effectiveness>> {
    let rows = closed_by_key(
        db,
        scope,
        &DealFilter::default(),
        period,
        Dimension::Playbook,
        super::Cycle::Days,
    )
    .await?;
    Ok(playbook_ids
        .iter()
        .map(|id| {
            let of = rows
                .iter()
                .find(|r| r.group_id == Some(*id))
                .cloned()
                .unwrap_or_default();
            (*id, effectiveness(&of, &rows))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_against_the_rest() {
        let row = |id: Option<i64>, won, lost, won_days| ClosedAgg {
            group_id: id,
            won,
            lost,
            won_days,
            ..Default::default()
        };
        // Playbook 1: 3 won (cycles 10+20+30) and 1 lost; the rest: 1 won
        // (40 days) and 3 lost, with or without a playbook.
        let all = [
            row(Some(1), 3, 1, 60),
            row(Some(2), 1, 1, 40),
            row(None, 0, 2, 0),
        ];
        let e = effectiveness(&all[0], &all);
        assert_eq!((e.deals, e.won, e.lost), (4, 3, 1));
        assert_eq!(e.win_rate, Some(0.75));
        assert_eq!(e.baseline_win_rate, Some(0.25));
        assert_eq!(e.avg_cycle_days, Some(20.0));
        assert_eq!(e.baseline_avg_cycle_days, Some(40.0));
        let none = effectiveness(&ClosedAgg::default(), &[]);
        assert_eq!(none.win_rate, None);
        assert_eq!(none.baseline_avg_cycle_days, None);
    }
}
