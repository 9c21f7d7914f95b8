//! Leads and activities of a generated organisation (docs/design.md, Leads
//! and activities), deterministic like the rest: every lead and its
//! activities come from their own random stream (by index), so they can be
//! generated again for each table without being held in memory, and the
//! deals, reps and accounts are the same with or without them.
//!
//! Two leads per deal: for 40% of the deals the first is the lead the deal
//! was converted from (created 1-21 days before the deal opened, answered,
//! qualified, converted when the deal opened, owned by the deal's owner),
//! the rest come in over the organisation's months from several sources,
//! are answered within minutes to days (8% never), and move on or are
//! disqualified as they age: about 20% of the leads convert. Activities:
//! one to three on each answered lead (the first is its first response),
//! one to three on each deal while it is open.
use chrono::{DateTime, Duration, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use entity::enums::{ActivityKind, LeadStatus, Segment};
use entity::{activity, lead, lead_status_change};
use sea_orm::ActiveEnum;

use super::generator::{Deal, Org, Rep};

const SOURCES: &[(&str, f64)] = &[
    ("Website", 0.30),
    ("Paid search", 0.20),
    ("Webinar", 0.15),
    ("Event", 0.10),
    ("Referral", 0.10),
    ("Outbound", 0.10),
    ("Partner", 0.05),
];
/// Leads that became deals came more often from webinars and referrals.
const CONVERTED_SOURCES: &[(&str, f64)] = &[
    ("Website", 0.20),
    ("Paid search", 0.10),
    ("Webinar", 0.25),
    ("Event", 0.10),
    ("Referral", 0.25),
    ("Outbound", 0.05),
    ("Partner", 0.05),
];
const TITLES: &[(&str, f64)] = &[
    ("Analyst", 0.25),
    ("Manager", 0.25),
    ("Director of Operations", 0.15),
    ("Head of IT", 0.10),
    ("VP Sales", 0.10),
    ("CFO", 0.05),
    ("Student", 0.10),
];
const CONVERTED_TITLES: &[(&str, f64)] = &[
    ("Analyst", 0.10),
    ("Manager", 0.20),
    ("Director of Operations", 0.25),
    ("Head of IT", 0.15),
    ("VP Sales", 0.20),
    ("CFO", 0.10),
];
const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
    "Wen", "Yara",
];
const LAST: &[&str] = &[
    "Silva", "Okafor", "Martin", "Kowalski", "Nguyen", "Haddad", "Berg", "Rossi", "Tanaka",
    "Moreau", "Schmidt", "Patel", "Cohen", "Ivanova", "Lopez", "Mensah", "Novak", "Walsh",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Retail",
    "Manufacturing",
    "Healthcare",
    "Finance",
    "Logistics",
];
const DISQUALIFY: &[&str] = &[
    "No budget",
    "Not a fit",
    "No response",
    "Competitor",
    "Duplicate",
];

/// The demo's lead-scoring rules (field, operator, value, points).
pub const DEMO_RULES: &[(&str, &str, &str, i32)] = &[
    ("SOURCE", "IN", "webinar,referral", 25),
    ("TITLE", "CONTAINS", "vp", 30),
    ("TITLE", "IN", "cfo,director of operations,head of it", 20),
    ("TITLE", "EQUALS", "student", -40),
    ("SEGMENT", "EQUALS", "enterprise", 15),
    ("EMAIL", "STARTS_WITH", "info@", -10),
];

pub struct PlannedLead {
    pub lead: lead::Model,
    pub moves: Vec<lead_status_change::Model>,
    pub activities: Vec<activity::Model>,
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &'a [(&'a str, f64)]) -> &'a str {
    let mut x: f64 = rng.random();
    for (v, w) in items {
        if x < *w {
            return v;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn stream(seed: u64, salt: u64, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ salt ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Minutes to the first response: within the hour, the day, two days or a week.
fn response_minutes(rng: &mut ChaCha8Rng) -> i64 {
    match rng.random_range(0..100) {
        0..35 => rng.random_range(5..60),
        35..65 => rng.random_range(60..8 * 60),
        65..85 => rng.random_range(8 * 60..48 * 60),
        _ => rng.random_range(48 * 60..7 * 24 * 60),
    }
}

fn kind(rng: &mut ChaCha8Rng) -> ActivityKind {
    match rng.random_range(0..100) {
        0..45 => ActivityKind::Email,
        45..80 => ActivityKind::Call,
        80..95 => ActivityKind::Meeting,
        _ => ActivityKind::Task,
    }
}

fn segment(r: &Rep) -> Option<Segment> {
    r.segment
        .and_then(|s| Segment::try_from_value(&s.db().to_owned()).ok())
}

fn activity(
    rep: i64,
    at: DateTime<Utc>,
    k: ActivityKind,
    lead: Option<i64>,
    deal: Option<i64>,
    account: Option<i64>,
    rng: &mut ChaCha8Rng,
) -> activity::Model {
    activity::Model {
        id: 0,
        external_id: None,
        kind: k,
        rep_id: rep,
        at,
        lead_id: lead,
        deal_id: deal,
        account_id: account,
        subject: None,
        outcome: Some(
            if rng.random_bool(0.7) {
                "Connected"
            } else {
                "No answer"
            }
            .to_owned(),
        ),
        duration_minutes: match k {
            ActivityKind::Call => Some(rng.random_range(2..40)),
            ActivityKind::Meeting => Some(30 * rng.random_range(1..=3)),
            _ => None,
        },
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

/// Everything the seed holds about one organisation's leads.
pub struct LeadSeed<'a> {
    org: &'a Org,
    sellers: Vec<&'a Rep>,
    /// Sellers and accounts by id (the deal's owner and account of a
    /// converted lead, looked up for every one of them).
    seller_by_id: std::collections::HashMap<i64, &'a Rep>,
    account_by_id: std::collections::HashMap<i64, &'a super::generator::Account>,
    seed: u64,
    now: DateTime<Utc>,
    months: i64,
}

impl<'a> LeadSeed<'a> {
    pub fn new(org: &'a Org, seed: u64, now: DateTime<Utc>, months: u32) -> Self {
        let sellers: Vec<&Rep> = org.reps.iter().filter(|r| r.seller && r.active).collect();
        Self {
            org,
            seller_by_id: sellers.iter().map(|r| (r.id, *r)).collect(),
            account_by_id: org.accounts.iter().map(|a| (a.id, a)).collect(),
            sellers,
            seed,
            now,
            months: i64::from(months),
        }
    }

    pub fn leads(&self) -> usize {
        if self.sellers.is_empty() {
            0
        } else {
            self.org.deals.len() * 2
        }
    }

    /// Lead `k` (id k + 1) with its status moves and activities.
    pub fn lead(&self, k: usize) -> PlannedLead {
        let mut rng = stream(self.seed, 0x1EAD_5EED, k);
        let deal = &self.org.deals[k / 2];
        let converted = k.is_multiple_of(2)
            && rng.random_bool(0.4)
            && deal.opened_at > self.now - Duration::days(self.months * 30);
        let id = k as i64 + 1;
        let (first, last) = (
            *FIRST.choose(&mut rng).unwrap(),
            *LAST.choose(&mut rng).unwrap(),
        );
        let account = self.org.accounts.choose(&mut rng).unwrap();
        let (owner, created_at, source, title, company) = if converted {
            let owner = self
                .seller_by_id
                .get(&deal.owner_id)
                .copied()
                .unwrap_or(self.sellers[0]);
            let company = self
                .account_by_id
                .get(&deal.account_id)
                .copied()
                .unwrap_or(account);
            (
                owner,
                deal.opened_at - Duration::minutes(rng.random_range(24 * 60..21 * 24 * 60)),
                pick(&mut rng, CONVERTED_SOURCES),
                pick(&mut rng, CONVERTED_TITLES),
                company,
            )
        } else {
            let owner = *self.sellers.choose(&mut rng).unwrap();
            let age = rng.random_range(0..self.months * 30 * 24 * 60);
            (
                owner,
                self.now - Duration::minutes(age),
                pick(&mut rng, SOURCES),
                pick(&mut rng, TITLES),
                account,
            )
        };
        let domain: String = company
            .name
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let email = if rng.random_bool(0.02) {
            format!("info@{domain}.com")
        } else {
            format!(
                "{}.{}@{domain}.com",
                first.to_lowercase(),
                last.to_lowercase()
            )
        };
        let mut l = lead::Model {
            id,
            external_id: None,
            name: format!("{first} {last}"),
            company: Some(company.name.clone()),
            email: Some(email),
            title: Some(title.to_owned()),
            source: Some(source.to_owned()),
            owner_id: owner.id,
            territory_id: owner.territory_id,
            segment: segment(owner),
            industry: Some((*INDUSTRIES.choose(&mut rng).unwrap()).to_owned()),
            status: LeadStatus::New,
            disqualified_reason: None,
            created_at,
            first_response_at: None,
            first_response_given: false,
            worked_at: None,
            qualified_at: None,
            converted_at: None,
            disqualified_at: None,
            deal_id: None,
            account_id: None,
            score: 0,
            score_rule_ids: String::new(),
            version: 1,
            updated_at: created_at,
        };
        let mut moves = vec![(None, LeadStatus::New, created_at)];
        let mut to = |l: &mut lead::Model, s: LeadStatus, at: DateTime<Utc>| {
            moves.push((Some(l.status), s, at));
            l.status = s;
            l.version += 1;
            l.updated_at = at;
        };
        let now = self.now;
        if converted {
            let span = (deal.opened_at - created_at).num_minutes().max(3);
            let answered = created_at + Duration::minutes(response_minutes(&mut rng).min(span / 3));
            let qualified = answered
                + Duration::minutes(
                    rng.random_range(1..(deal.opened_at - answered).num_minutes().max(2)),
                );
            l.first_response_at = Some(answered);
            l.worked_at = Some(answered);
            to(&mut l, LeadStatus::Working, answered);
            l.qualified_at = Some(qualified);
            to(&mut l, LeadStatus::Qualified, qualified);
            l.converted_at = Some(deal.opened_at);
            l.deal_id = Some(deal.id);
            l.account_id = Some(deal.account_id);
            to(&mut l, LeadStatus::Converted, deal.opened_at);
        } else if rng.random_bool(0.92) {
            let answered = created_at + Duration::minutes(response_minutes(&mut rng));
            if answered <= now {
                l.first_response_at = Some(answered);
                l.worked_at = Some(answered);
                to(&mut l, LeadStatus::Working, answered);
                let old = created_at < now - Duration::days(45);
                let mut last_move = answered;
                if rng.random_bool(0.3) {
                    let q = answered + Duration::minutes(rng.random_range(60..10 * 24 * 60));
                    if q <= now {
                        l.qualified_at = Some(q);
                        to(&mut l, LeadStatus::Qualified, q);
                        last_move = q;
                    }
                }
                let p = if l.status == LeadStatus::Qualified {
                    0.5
                } else {
                    0.8
                };
                if old && rng.random_bool(p) {
                    let d =
                        last_move + Duration::minutes(rng.random_range(2 * 24 * 60..30 * 24 * 60));
                    if d <= now {
                        l.disqualified_at = Some(d);
                        l.disqualified_reason =
                            Some((*DISQUALIFY.choose(&mut rng).unwrap()).to_owned());
                        to(&mut l, LeadStatus::Disqualified, d);
                    }
                }
            }
        } else if created_at < now - Duration::days(45) && rng.random_bool(0.7) {
            let d = created_at + Duration::days(rng.random_range(20..40));
            l.disqualified_at = Some(d);
            l.disqualified_reason = Some("No response".to_owned());
            to(&mut l, LeadStatus::Disqualified, d);
        }
        // Activities: the first response, then up to two more before the
        // lead closed (or now).
        let mut activities = Vec::new();
        if let Some(first_at) = l.first_response_at {
            let first_kind = if rng.random_bool(0.5) {
                ActivityKind::Call
            } else {
                ActivityKind::Email
            };
            activities.push(activity(
                l.owner_id,
                first_at,
                first_kind,
                Some(id),
                None,
                None,
                &mut rng,
            ));
            let end = l.converted_at.or(l.disqualified_at).unwrap_or(now);
            let span = (end - first_at).num_minutes();
            for _ in 0..rng.random_range(0..=2) {
                if span > 1 {
                    let at = first_at + Duration::minutes(rng.random_range(1..span));
                    let k = kind(&mut rng);
                    activities.push(activity(l.owner_id, at, k, Some(id), None, None, &mut rng));
                }
            }
        }
        let moves = moves
            .into_iter()
            .map(|(from, to, at)| lead_status_change::Model {
                id: 0,
                lead_id: id,
                from_status: from,
                to_status: to,
                changed_at: at,
                actor: Some("seed".to_owned()),
            })
            .collect();
        PlannedLead {
            lead: l,
            moves,
            activities,
        }
    }

    /// The activities logged on deal `j` while it was open.
    pub fn deal_activities(&self, j: usize) -> Vec<activity::Model> {
        let d: &Deal = &self.org.deals[j];
        let mut rng = stream(self.seed, 0xAC71_7E55, j);
        let end = d.closed_at.unwrap_or(self.now);
        let span = (end - d.opened_at).num_minutes();
        if span < 2 {
            return Vec::new();
        }
        (0..rng.random_range(1..=3))
            .map(|_| {
                let at = d.opened_at + Duration::minutes(rng.random_range(1..span));
                let k = kind(&mut rng);
                activity(
                    d.owner_id,
                    at,
                    k,
                    None,
                    Some(d.id),
                    Some(d.account_id),
                    &mut rng,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::generator::{generate, Params};
    use super::*;

    #[test]
    fn demo_leads_look_like_a_funnel() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let p = Params::demo(today);
        let org = generate(&p);
        let now = crate::clock::start_of(today) + Duration::hours(12);
        let seed = LeadSeed::new(&org, p.seed, now, p.months);
        let leads: Vec<PlannedLead> = (0..seed.leads()).map(|k| seed.lead(k)).collect();
        let n = leads.len() as f64;
        assert_eq!(leads.len(), 6_400);
        let converted = leads
            .iter()
            .filter(|l| l.lead.status == LeadStatus::Converted)
            .count() as f64;
        assert!(
            (0.10..=0.30).contains(&(converted / n)),
            "conversion {}",
            converted / n
        );
        let answered = leads
            .iter()
            .filter(|l| l.lead.first_response_at.is_some())
            .count() as f64;
        assert!(answered / n > 0.8);
        // Response times from minutes to days.
        let hours: Vec<i64> = leads
            .iter()
            .filter_map(|l| {
                l.lead
                    .first_response_at
                    .map(|f| (f - l.lead.created_at).num_minutes())
            })
            .collect();
        assert!(hours.iter().any(|m| *m < 60) && hours.iter().any(|m| *m > 48 * 60));
        let sources: std::collections::BTreeSet<_> =
            leads.iter().filter_map(|l| l.lead.source.clone()).collect();
        assert!(sources.len() >= 5);
        // Every timestamp is in order and not in the future.
        for l in &leads {
            let m = &l.lead;
            assert!(m.created_at <= now);
            for t in [
                m.first_response_at,
                m.qualified_at,
                m.converted_at,
                m.disqualified_at,
            ]
            .into_iter()
            .flatten()
            {
                assert!(t >= m.created_at && t <= now, "lead {} at {t}", m.id);
            }
            assert!(l
                .activities
                .iter()
                .all(|a| a.at >= m.created_at && a.at <= now));
            assert_eq!(l.moves.len() as i32, m.version);
        }
        // Deterministic.
        assert_eq!(seed.lead(17).lead, seed.lead(17).lead);
        let deal_acts: usize = (0..org.deals.len())
            .map(|j| seed.deal_activities(j).len())
            .sum();
        let lead_acts: usize = leads.iter().map(|l| l.activities.len()).sum();
        assert!(
            deal_acts + lead_acts >= 5 * org.deals.len(),
            "{deal_acts} + {lead_acts}"
        );
    }
}
