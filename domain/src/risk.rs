//! Deal risk (docs/design.md, Deal risk): the signals an open deal shows,
//! each with a sentence naming its evidence, and a score (the share of the
//! six signals present, weighted equally). The same thresholds are written
//! as SQL conditions for `DealFilter.riskSignals`
//! (core/src/service/deal_risk.rs); tests check both agree.
use chrono::{DateTime, NaiveDate, Utc};

/// The risk signals, in the contract's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskKind {
    Stale,
    CloseDatePassed,
    PushedRepeatedly,
    AmountDecreased,
    StuckInStage,
    NoRecentActivity,
}

/// Every kind, for the score's denominator.
pub const ALL_KINDS: [RiskKind; 6] = [
    RiskKind::Stale,
    RiskKind::CloseDatePassed,
    RiskKind::PushedRepeatedly,
    RiskKind::AmountDecreased,
    RiskKind::StuckInStage,
    RiskKind::NoRecentActivity,
];

/// No write for this many days: STALE.
pub const STALE_AFTER_DAYS: i64 = 30;
/// Close-date pushes (later dates while open) from which a deal is PUSHED_REPEATEDLY.
pub const REPEATED_PUSHES: i32 = 2;
/// Days without an activity from which a deal shows NO_RECENT_ACTIVITY.
pub const NO_ACTIVITY_DAYS: i64 = 14;
/// Times the mean days deals spend in a stage after which a deal is STUCK_IN_STAGE.
pub const STUCK_FACTOR: f64 = 1.5;

/// What the signals are computed from (one open deal).
#[derive(Debug, Clone, PartialEq)]
pub struct RiskFacts {
    pub open: bool,
    pub updated_at: DateTime<Utc>,
    pub expected_close_date: Option<NaiveDate>,
    pub push_count: i32,
    /// When the last push happened (the revision that reached push_count).
    pub last_push_at: Option<DateTime<Utc>>,
    pub amount_cents: i64,
    /// The amount of its first revision.
    pub first_amount_cents: Option<i64>,
    pub stage_name: String,
    /// When it entered its current stage.
    pub entered_stage_at: Option<DateTime<Utc>>,
    /// Mean days deals spend in that stage (None: no basis).
    pub stage_mean_days: Option<f64>,
    /// When the deal was opened.
    pub opened_at: DateTime<Utc>,
    /// Its latest activity.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Whether the organisation records activities at all: until it does,
    /// NO_RECENT_ACTIVITY would flag every deal and says nothing.
    pub activities_recorded: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskSignal {
    pub kind: RiskKind,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DealRisk {
    pub score: f64,
    pub signals: Vec<RiskSignal>,
}

fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to.date_naive() - from.date_naive()).num_days()
}

fn money(cents: i64) -> String {
    crate::money::from_cents(cents).to_string()
}

/// The signals of a deal at `now` (none for a closed deal).
/// NO_RECENT_ACTIVITY counts from the latest activity, or from the opening
/// of a deal without one, and only once the organisation records activities.
pub fn assess(f: &RiskFacts, now: DateTime<Utc>) -> DealRisk {
    let mut signals = Vec::new();
    if f.open {
        let idle = days(f.updated_at, now);
        if idle >= STALE_AFTER_DAYS {
            signals.push(RiskSignal {
                kind: RiskKind::Stale,
                detail: format!(
                    "no change for {idle} days (last on {})",
                    f.updated_at.date_naive()
                ),
            });
        }
        if let Some(d) = f.expected_close_date.filter(|d| *d < now.date_naive()) {
            let late = (now.date_naive() - d).num_days();
            signals.push(RiskSignal {
                kind: RiskKind::CloseDatePassed,
                detail: format!("expected to close on {d}, {late} days ago"),
            });
        }
        if f.push_count >= REPEATED_PUSHES {
            let last = f
                .last_push_at
                .map(|t| format!(", last on {}", t.date_naive()))
                .unwrap_or_default();
            signals.push(RiskSignal {
                kind: RiskKind::PushedRepeatedly,
                detail: format!("close date moved later {} times{last}", f.push_count),
            });
        }
        if let Some(first) = f.first_amount_cents.filter(|a| f.amount_cents < *a) {
            signals.push(RiskSignal {
                kind: RiskKind::AmountDecreased,
                detail: format!(
                    "amount {}, down from {} when created",
                    money(f.amount_cents),
                    money(first)
                ),
            });
        }
        if let (Some(entered), Some(mean)) = (f.entered_stage_at, f.stage_mean_days) {
            let stay = days(entered, now);
            if stay as f64 > STUCK_FACTOR * mean {
                signals.push(RiskSignal {
                    kind: RiskKind::StuckInStage,
                    detail: format!(
                        "{stay} days in {}, where deals spend {mean:.1} days on average",
                        f.stage_name
                    ),
                });
            }
        }
        if f.activities_recorded {
            let (since, what) = match f.last_activity_at.filter(|a| *a >= f.opened_at) {
                Some(a) => (a, format!("last activity on {}", a.date_naive())),
                None => (
                    f.opened_at,
                    format!("none since it opened on {}", f.opened_at.date_naive()),
                ),
            };
            let quiet = days(since, now);
            if quiet >= NO_ACTIVITY_DAYS {
                signals.push(RiskSignal {
                    kind: RiskKind::NoRecentActivity,
                    detail: format!("no activity for {quiet} days ({what})"),
                });
            }
        }
    }
    DealRisk {
        score: signals.len() as f64 / ALL_KINDS.len() as f64,
        signals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    fn facts() -> RiskFacts {
        RiskFacts {
            open: true,
            updated_at: at(2026, 12, 1),
            expected_close_date: NaiveDate::from_ymd_opt(2026, 12, 20),
            push_count: 0,
            last_push_at: None,
            amount_cents: 500_000,
            first_amount_cents: Some(500_000),
            stage_name: "Demo".into(),
            entered_stage_at: Some(at(2026, 11, 20)),
            stage_mean_days: Some(20.0),
            opened_at: at(2026, 10, 1),
            last_activity_at: Some(at(2026, 12, 1)),
            activities_recorded: true,
        }
    }

    #[test]
    fn a_healthy_deal_shows_nothing() {
        let r = assess(&facts(), at(2026, 12, 6));
        assert_eq!(r.signals, []);
        assert_eq!(r.score, 0.0);
    }

    #[test]
    fn every_signal_names_its_evidence() {
        let f = RiskFacts {
            updated_at: at(2026, 10, 22),
            expected_close_date: NaiveDate::from_ymd_opt(2026, 11, 30),
            push_count: 3,
            last_push_at: Some(at(2026, 11, 20)),
            amount_cents: 400_000,
            entered_stage_at: Some(at(2026, 10, 22)),
            last_activity_at: Some(at(2026, 11, 1)),
            ..facts()
        };
        let r = assess(&f, at(2026, 12, 6));
        let details: Vec<(RiskKind, &str)> = r
            .signals
            .iter()
            .map(|s| (s.kind, s.detail.as_str()))
            .collect();
        assert_eq!(
            details,
            [
                (
                    RiskKind::Stale,
                    "no change for 45 days (last on 2026-10-22)"
                ),
                (
                    RiskKind::CloseDatePassed,
                    "expected to close on 2026-11-30, 6 days ago"
                ),
                (
                    RiskKind::PushedRepeatedly,
                    "close date moved later 3 times, last on 2026-11-20"
                ),
                (
                    RiskKind::AmountDecreased,
                    "amount 4000.00, down from 5000.00 when created"
                ),
                (
                    RiskKind::StuckInStage,
                    "45 days in Demo, where deals spend 20.0 days on average"
                ),
                (
                    RiskKind::NoRecentActivity,
                    "no activity for 35 days (last activity on 2026-11-01)"
                ),
            ]
        );
        // All six.
        assert!((r.score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn no_recent_activity_counts_from_the_opening_without_activities() {
        // 14 days without an activity is the signal; 13 is not. A deal
        // without activities counts from its opening; an organisation
        // without any activity shows nothing.
        let quiet = |last: Option<DateTime<Utc>>, opened: DateTime<Utc>, recorded: bool| {
            let f = RiskFacts {
                last_activity_at: last,
                opened_at: opened,
                activities_recorded: recorded,
                ..facts()
            };
            assess(&f, at(2026, 12, 6))
                .signals
                .into_iter()
                .find(|s| s.kind == RiskKind::NoRecentActivity)
                .map(|s| s.detail)
        };
        assert_eq!(
            quiet(Some(at(2026, 11, 22)), at(2026, 10, 1), true).as_deref(),
            Some("no activity for 14 days (last activity on 2026-11-22)")
        );
        assert_eq!(quiet(Some(at(2026, 11, 23)), at(2026, 10, 1), true), None);
        assert_eq!(
            quiet(None, at(2026, 11, 1), true).as_deref(),
            Some("no activity for 35 days (none since it opened on 2026-11-01)")
        );
        assert_eq!(quiet(None, at(2026, 11, 30), true), None);
        assert_eq!(quiet(None, at(2026, 11, 1), false), None);
    }

    #[test]
    fn thresholds_are_exclusive_where_the_design_says_so() {
        // 30 days idle is stale; 29 is not. Two pushes are repeated; one is
        // not. 30 days where the mean is 20: exactly 1.5x is not stuck.
        let f = RiskFacts {
            updated_at: at(2026, 11, 6),
            push_count: 2,
            entered_stage_at: Some(at(2026, 11, 6)),
            ..facts()
        };
        let kinds: Vec<RiskKind> = assess(&f, at(2026, 12, 6))
            .signals
            .iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, [RiskKind::Stale, RiskKind::PushedRepeatedly]);
        let f = RiskFacts {
            updated_at: at(2026, 11, 7),
            push_count: 1,
            entered_stage_at: Some(at(2026, 11, 5)),
            ..facts()
        };
        let kinds: Vec<RiskKind> = assess(&f, at(2026, 12, 6))
            .signals
            .iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, [RiskKind::StuckInStage]);
        // A closed deal carries no risk.
        let closed = RiskFacts { open: false, ..f };
        assert_eq!(assess(&closed, at(2026, 12, 6)).signals, []);
    }
}
