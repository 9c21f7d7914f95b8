//! A deterministic synthetic sales organisation: territories over three
//! segments, a management tree, accounts, playbooks, deals whose stage
//! histories move through the pipeline (won, lost, or still open), and
//! monthly quotas set from what each segment actually closes. The same seed
//! and day give the same organisation.
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::start_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Smb,
    Mid,
    Ent,
}

impl Seg {
    pub fn db(self) -> &'static str {
        match self {
            Seg::Smb => "SMB",
            Seg::Mid => "MID_MARKET",
            Seg::Ent => "ENTERPRISE",
        }
    }
    /// Mean days a deal spends in each open stage.
    fn stage_days(self) -> f64 {
        match self {
            Seg::Smb => 6.0,
            Seg::Mid => 12.0,
            Seg::Ent => 24.0,
        }
    }
    /// Deal size range in dollars (log-uniform).
    fn size(self) -> (f64, f64) {
        match self {
            Seg::Smb => (4_000.0, 30_000.0),
            Seg::Mid => (20_000.0, 120_000.0),
            Seg::Ent => (80_000.0, 600_000.0),
        }
    }
    /// Relative deal volume per rep.
    fn volume(self) -> f64 {
        match self {
            Seg::Smb => 1.6,
            Seg::Mid => 1.0,
            Seg::Ent => 0.5,
        }
    }
}

pub struct Params {
    pub seed: u64,
    /// The day the data ends (deals open until now stay open).
    pub today: NaiveDate,
    pub months: u32,
    pub reps_per_territory: usize,
    pub leaf_territories: usize,
    pub accounts: usize,
    pub deals: usize,
}

impl Params {
    pub fn demo(today: NaiveDate) -> Self {
        Self {
            seed: 42,
            today,
            months: 24,
            reps_per_territory: 5,
            leaf_territories: 7,
            accounts: 320,
            deals: 3_200,
        }
    }

    /// A large data set for benchmarks: about 2,000 reps at 1,000,000 deals.
    pub fn synthetic(today: NaiveDate, deals: usize, seed: u64) -> Self {
        let leaves = (deals / 5_000).clamp(7, 400);
        let per = ((deals / 500) / leaves).clamp(5, 50);
        Self {
            seed,
            today,
            months: 24,
            reps_per_territory: per,
            leaf_territories: leaves,
            accounts: (deals / 10).max(320),
            deals,
        }
    }
}

pub struct Territory {
    pub id: i64,
    pub name: String,
    pub segment: Option<Seg>,
    pub region: String,
    pub parent_id: Option<i64>,
}

pub struct Rep {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub title: String,
    pub territory_id: Option<i64>,
    pub manager_id: Option<i64>,
    pub hired_at: NaiveDate,
    pub active: bool,
    pub ramp_months: i32,
    pub commission_rate_ppm: i64,
    /// Carries a quota and owns deals.
    pub seller: bool,
    pub segment: Option<Seg>,
    skill: f64,
}

pub struct Account {
    pub id: i64,
    pub name: String,
    pub industry: String,
    pub segment: Seg,
    pub territory_id: i64,
}

pub struct Playbook {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub segment: Seg,
    /// (title, guidance, stage position)
    pub steps: Vec<(&'static str, &'static str, i32)>,
}

pub struct Deal {
    pub id: i64,
    pub name: String,
    pub amount_cents: i64,
    pub owner_id: i64,
    pub account_id: i64,
    pub territory_id: i64,
    /// Stage position: 1..=5 open, 6 won, 7 lost.
    pub stage: i32,
    pub forecast_category: &'static str,
    pub source: &'static str,
    pub playbook_id: Option<i64>,
    pub opened_at: DateTime<Utc>,
    pub expected_close_date: Option<NaiveDate>,
    pub closed_at: Option<DateTime<Utc>>,
    pub lost_reason: Option<&'static str>,
    pub updated_at: DateTime<Utc>,
    /// (from position, to position, at)
    pub history: Vec<(Option<i32>, i32, DateTime<Utc>)>,
    /// Edits of amount or close date while open, in time order: the deal's
    /// fields above are its state after the last one.
    pub edits: Vec<Edit>,
}

/// The forecast category the seed gives a deal in a stage position.
pub fn category_of(stage: i32) -> &'static str {
    match stage {
        1 | 2 => "PIPELINE",
        3 | 4 => "BEST_CASE",
        5 => "COMMIT",
        6 => "CLOSED",
        _ => "OMITTED",
    }
}

/// An edit of an open deal: what the field was before `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edit {
    Amount {
        at: DateTime<Utc>,
        before_cents: i64,
    },
    CloseDate {
        at: DateTime<Utc>,
        before: NaiveDate,
    },
}

impl Edit {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Edit::Amount { at, .. } | Edit::CloseDate { at, .. } => *at,
        }
    }
}

/// One or two edits for about a third of the deals (from their own random
/// stream, so the rest of the organisation is the same with or without
/// them): amounts revised by -30%..+30%, close dates pushed by 1-6 weeks,
/// at times while the deal was open.
fn edits_of(seed: u64, d: &Deal, now: DateTime<Utc>) -> Vec<Edit> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (d.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if !rng.random_bool(1.0 / 3.0) {
        return Vec::new();
    }
    let open_until = d.closed_at.unwrap_or(now);
    let span = (open_until - d.opened_at).num_minutes();
    if span < 2 {
        return Vec::new();
    }
    let n = if rng.random_bool(0.5) { 1 } else { 2 };
    let mut times: Vec<DateTime<Utc>> = (0..n)
        .map(|_| d.opened_at + Duration::minutes(rng.random_range(1..span)))
        .collect();
    times.sort();
    let (mut amount, mut close) = (d.amount_cents, d.expected_close_date);
    let mut edits = Vec::with_capacity(n);
    // Built backwards from the final state: each edit records the value
    // before it.
    for at in times.into_iter().rev() {
        match close {
            Some(c) if rng.random_bool(0.5) => {
                let before = c - Duration::days(7 * rng.random_range(1..=6));
                edits.push(Edit::CloseDate { at, before });
                close = Some(before);
            }
            _ => {
                let factor = rng.random_range(70..=130) as i64;
                let before_cents = (amount * factor / 100 / 10_000).max(1) * 10_000;
                edits.push(Edit::Amount { at, before_cents });
                amount = before_cents;
            }
        }
    }
    edits.reverse();
    edits
}

pub struct Quota {
    pub rep_id: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub amount_cents: i64,
}

pub struct Submission {
    pub rep_id: i64,
    pub period: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub category: &'static str,
    pub amount_cents: i64,
    pub submitted_at: DateTime<Utc>,
}

pub struct Org {
    pub territories: Vec<Territory>,
    pub reps: Vec<Rep>,
    pub accounts: Vec<Account>,
    pub playbooks: Vec<Playbook>,
    pub deals: Vec<Deal>,
    pub quotas: Vec<Quota>,
    pub submissions: Vec<Submission>,
}

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Alvarez", "Brooks", "Chen", "Dubois", "Eriksen", "Fischer", "Gupta", "Haddad", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Quiroga", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zimmer",
];
const NAME_A: &[&str] = &[
    "Acme", "Blue", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iron", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nova", "Orbit", "Pine", "Quartz", "River", "Summit", "Tidal",
    "Umber", "Vertex", "Willow", "Zenith",
];
const NAME_B: &[&str] = &[
    "Analytics",
    "Bank",
    "Biotech",
    "Logistics",
    "Foods",
    "Health",
    "Insurance",
    "Labs",
    "Media",
    "Motors",
    "Networks",
    "Retail",
    "Robotics",
    "Software",
    "Systems",
    "Telecom",
    "Travel",
    "Energy",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Logistics",
    "Media",
    "Energy",
    "Education",
    "Telecommunications",
];
const PRODUCTS: &[&str] = &[
    "Platform licence",
    "Expansion",
    "Renewal uplift",
    "Analytics add-on",
    "Pilot",
    "Enterprise agreement",
    "New team rollout",
    "Migration project",
];
const LOST_REASONS: &[&str] = &[
    "Price",
    "Chose a competitor",
    "No budget",
    "No decision",
    "Timing",
    "Missing feature",
];
const SOURCES: &[(&str, f64)] = &[
    ("INBOUND", 0.35),
    ("OUTBOUND", 0.30),
    ("PARTNER", 0.12),
    ("REFERRAL", 0.10),
    ("EXPANSION", 0.13),
];
/// Chance to advance out of each open stage (Discovery .. Final Call) for an
/// average rep; their product is the base win rate (about 24%).
const ADVANCE: [f64; 5] = [0.72, 0.76, 0.72, 0.78, 0.80];

fn pick_weighted<R: Rng>(rng: &mut R, items: &[(&'static str, f64)]) -> &'static str {
    let total: f64 = items.iter().map(|i| i.1).sum();
    let mut x = rng.random::<f64>() * total;
    for (v, w) in items {
        if x < *w {
            return v;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn at_time<R: Rng>(rng: &mut R, day: NaiveDate) -> DateTime<Utc> {
    start_of(day) + Duration::minutes(rng.random_range(8 * 60..19 * 60))
}

pub fn generate(p: &Params) -> Org {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let now = start_of(p.today) + Duration::hours(12);
    let history_start = p
        .today
        .checked_sub_months(Months::new(p.months))
        .unwrap_or(p.today);

    // Territories: regions with segment leaves under them.
    let regions = ["Americas", "EMEA", "APAC"];
    let mut territories = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        territories.push(Territory {
            id: i as i64 + 1,
            name: r.to_string(),
            segment: None,
            region: r.to_string(),
            parent_id: None,
        });
    }
    let segs = [Seg::Ent, Seg::Mid, Seg::Smb];
    for i in 0..p.leaf_territories {
        let region = i % regions.len();
        let seg = segs[(i / regions.len() + i) % 3];
        let seg_name = match seg {
            Seg::Smb => "SMB",
            Seg::Mid => "Mid-Market",
            Seg::Ent => "Enterprise",
        };
        let suffix = if i >= 9 {
            format!(" {}", i / 9 + 1)
        } else {
            String::new()
        };
        territories.push(Territory {
            id: (regions.len() + i) as i64 + 1,
            name: format!("{} {}{}", regions[region], seg_name, suffix),
            segment: Some(seg),
            region: regions[region].to_string(),
            parent_id: Some(region as i64 + 1),
        });
    }

    // People: a VP, a director per region, a manager per leaf, sellers below.
    let mut reps: Vec<Rep> = Vec::new();
    let person = |rng: &mut ChaCha8Rng,
                  reps: &mut Vec<Rep>,
                  title: &str,
                  territory: Option<i64>,
                  manager: Option<i64>,
                  seller: bool,
                  seg: Option<Seg>| {
        let id = reps.len() as i64 + 1;
        let first = FIRST[rng.random_range(0..FIRST.len())];
        let last = LAST[rng.random_range(0..LAST.len())];
        let years_ago = if seller {
            rng.random_range(0..=1500)
        } else {
            rng.random_range(700..=2500)
        };
        let hired_at = p.today - Duration::days(years_ago);
        reps.push(Rep {
            id,
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}.{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                id
            ),
            title: title.to_string(),
            territory_id: territory,
            manager_id: manager,
            hired_at,
            active: true,
            ramp_months: if seg == Some(Seg::Ent) { 6 } else { 3 },
            commission_rate_ppm: match seg {
                Some(Seg::Ent) => 80_000,
                Some(Seg::Mid) => 100_000,
                _ => 120_000,
            },
            seller,
            segment: seg,
            skill: rng.random_range(0.75..1.25),
        });
        id
    };
    let vp = person(&mut rng, &mut reps, "VP Sales", None, None, false, None);
    let mut directors = Vec::new();
    for r in 0..regions.len() {
        directors.push(person(
            &mut rng,
            &mut reps,
            "Regional Director",
            Some(r as i64 + 1),
            Some(vp),
            false,
            None,
        ));
    }
    for t in territories.iter().filter(|t| t.parent_id.is_some()) {
        let director = directors[(t.parent_id.unwrap() - 1) as usize];
        let manager = person(
            &mut rng,
            &mut reps,
            "Sales Manager",
            Some(t.id),
            Some(director),
            false,
            t.segment,
        );
        for _ in 0..p.reps_per_territory {
            let title = match t.segment {
                Some(Seg::Ent) => "Enterprise Account Executive",
                Some(Seg::Mid) => "Account Executive",
                _ => "SMB Account Executive",
            };
            person(
                &mut rng,
                &mut reps,
                title,
                Some(t.id),
                Some(manager),
                true,
                t.segment,
            );
        }
    }
    // Some churn: a few sellers left (inactive), one rep has no territory yet.
    let seller_ids: Vec<i64> = reps.iter().filter(|r| r.seller).map(|r| r.id).collect();
    for id in seller_ids.iter().step_by(17).skip(1) {
        reps[(*id - 1) as usize].active = false;
    }
    if let Some(id) = seller_ids.last() {
        let r = &mut reps[(*id - 1) as usize];
        r.hired_at = p.today - Duration::days(40);
    }

    // Accounts, spread over the leaf territories.
    let leaves: Vec<&Territory> = territories.iter().filter(|t| t.segment.is_some()).collect();
    let accounts: Vec<Account> = (0..p.accounts)
        .map(|i| {
            let t = leaves[i % leaves.len()];
            let a = NAME_A[rng.random_range(0..NAME_A.len())];
            let b = NAME_B[rng.random_range(0..NAME_B.len())];
            Account {
                id: i as i64 + 1,
                name: format!("{a} {b} {}", i + 1),
                industry: INDUSTRIES[rng.random_range(0..INDUSTRIES.len())].to_string(),
                segment: t.segment.unwrap(),
                territory_id: t.id,
            }
        })
        .collect();
    let mut accounts_by_territory: std::collections::HashMap<i64, Vec<usize>> = Default::default();
    for (i, a) in accounts.iter().enumerate() {
        accounts_by_territory
            .entry(a.territory_id)
            .or_default()
            .push(i);
    }

    let playbooks = vec![
        Playbook {
            id: 1,
            name: "Enterprise Land".into(),
            description:
                "Multi-threaded enterprise motion with an executive sponsor and a paid pilot."
                    .into(),
            segment: Seg::Ent,
            steps: vec![
                (
                    "Map the buying committee",
                    "Name the economic buyer, champion and blockers.",
                    1,
                ),
                (
                    "Qualify with MEDDICC",
                    "Metrics, economic buyer, decision criteria and process.",
                    2,
                ),
                (
                    "Tailored demo",
                    "Demo the three use cases the champion ranked highest.",
                    3,
                ),
                (
                    "Paid pilot",
                    "Success criteria signed before the pilot starts.",
                    4,
                ),
                (
                    "Mutual close plan",
                    "Dates for legal, security and signature.",
                    5,
                ),
            ],
        },
        Playbook {
            id: 2,
            name: "Mid-Market Velocity".into(),
            description: "Two-call qualification and a two-week trial.".into(),
            segment: Seg::Mid,
            steps: vec![
                (
                    "Discovery call",
                    "Pain, budget and timeline in the first call.",
                    1,
                ),
                ("Demo to the team", "Include the day-to-day users.", 3),
                ("Two-week trial", "Daily check-ins with the champion.", 4),
                (
                    "Proposal",
                    "Send the order form within 24 hours of the trial review.",
                    5,
                ),
            ],
        },
        Playbook {
            id: 3,
            name: "SMB Quick Close".into(),
            description: "Single-call demo and self-serve trial for small teams.".into(),
            segment: Seg::Smb,
            steps: vec![
                ("Qualify on the first call", "Team size and urgency.", 1),
                ("Live demo", "Fifteen minutes, one use case.", 3),
                (
                    "Close",
                    "Offer the annual discount at the end of the trial.",
                    5,
                ),
            ],
        },
    ];

    // Deals, spread over sellers by segment volume.
    let sellers: Vec<&Rep> = reps.iter().filter(|r| r.seller).collect();
    let weights: Vec<f64> = sellers
        .iter()
        .map(|r| r.segment.map(Seg::volume).unwrap_or(1.0))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let mut deals = Vec::with_capacity(p.deals);
    let mut next_id = 1i64;
    // Cumulative rounding, so the shares add up to exactly p.deals.
    let mut cumulative = 0.0;
    let mut assigned = 0usize;
    for (si, rep) in sellers.iter().enumerate() {
        cumulative += weights[si] / total_weight * p.deals as f64;
        let upto = (cumulative.round() as usize).min(p.deals);
        let n = upto - assigned;
        assigned = upto;
        let seg = rep.segment.unwrap_or(Seg::Mid);
        let pool = &accounts_by_territory[&rep.territory_id.unwrap()];
        let playbook = playbooks
            .iter()
            .find(|pb| pb.segment == seg)
            .map(|pb| pb.id);
        for _ in 0..n {
            if deals.len() >= p.deals {
                break;
            }
            // Open within the history window, after the rep was hired; an
            // inactive rep stopped getting new deals six months ago.
            let last_day = if rep.active || rep.hired_at >= p.today - Duration::days(181) {
                p.today - Duration::days(2)
            } else {
                p.today - Duration::days(180)
            };
            let first_day = history_start
                .max(rep.hired_at)
                .min(last_day - Duration::days(1));
            let day = first_day
                + Duration::days(rng.random_range(0..(last_day - first_day).num_days().max(1)));
            let opened_at = at_time(&mut rng, day).min(now);
            let account = &accounts[*pool.choose(&mut rng).unwrap()];
            let (lo, hi) = seg.size();
            let dollars = (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp();
            let amount_cents = ((dollars / 100.0).round() * 100.0) as i64 * 100;
            let with_playbook = playbook.filter(|_| rng.random_bool(0.6));
            let skill = rep.skill * if with_playbook.is_some() { 1.06 } else { 1.0 };

            let mut history = vec![(None, 1, opened_at)];
            let mut stage = 1;
            let mut t = opened_at;
            let mut closed_at = None;
            let mut lost_reason = None;
            while stage <= 5 {
                let dwell = seg.stage_days() * rng.random_range(0.4..1.6);
                let next_t = t + Duration::minutes((dwell * 24.0 * 60.0) as i64);
                if next_t > now {
                    break;
                }
                let advance = (ADVANCE[(stage - 1) as usize] * skill).min(0.97);
                if rng.random_bool(advance) {
                    history.push((Some(stage), stage + 1, next_t));
                    stage += 1;
                    if stage == 6 {
                        closed_at = Some(next_t);
                    }
                } else {
                    history.push((Some(stage), 7, next_t));
                    lost_reason = Some(LOST_REASONS[rng.random_range(0..LOST_REASONS.len())]);
                    closed_at = Some(next_t);
                    stage = 7;
                }
                t = next_t;
            }
            let expected_days = (seg.stage_days() * 5.0 * rng.random_range(0.7..1.4)) as i64;
            let expected_close_date = if stage <= 5 && rng.random_bool(0.05) {
                None
            } else {
                Some(opened_at.date_naive() + Duration::days(expected_days))
            };
            let forecast_category = category_of(stage);
            let product = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
            deals.push(Deal {
                id: next_id,
                name: format!("{} – {}", account.name, product),
                amount_cents,
                owner_id: rep.id,
                account_id: account.id,
                territory_id: account.territory_id,
                stage,
                forecast_category,
                source: pick_weighted(&mut rng, SOURCES),
                playbook_id: with_playbook,
                opened_at,
                expected_close_date,
                closed_at,
                lost_reason,
                updated_at: history.last().unwrap().2,
                history,
                edits: Vec::new(),
            });
            let d = deals.last_mut().unwrap();
            d.edits = edits_of(p.seed, d, now);
            if let Some(last) = d.edits.last() {
                d.updated_at = d.updated_at.max(last.at());
            }
            next_id += 1;
        }
    }

    // Quotas: each seller's monthly quota is what an average rep of its
    // segment closes per month, so attainment spreads around 100% with skill.
    let months_observed = p.months.max(1) as f64;
    let mut won_by_seg: std::collections::HashMap<&'static str, (i64, usize)> = Default::default();
    for r in &sellers {
        won_by_seg
            .entry(r.segment.unwrap_or(Seg::Mid).db())
            .or_default()
            .1 += 1;
    }
    for d in deals.iter().filter(|d| d.stage == 6) {
        let seg = reps[(d.owner_id - 1) as usize]
            .segment
            .unwrap_or(Seg::Mid)
            .db();
        won_by_seg.entry(seg).or_default().0 += d.amount_cents;
    }
    let mut quotas = Vec::new();
    let first_month =
        NaiveDate::from_ymd_opt(history_start.year(), history_start.month(), 1).unwrap();
    for r in reps.iter().filter(|r| r.seller) {
        let (won, count) = won_by_seg[r.segment.unwrap_or(Seg::Mid).db()];
        let monthly = won as f64 / count.max(1) as f64 / months_observed;
        let quota_cents = ((monthly * 1.05 / 100_000.0).round() as i64).max(1) * 100_000;
        let mut m = first_month
            .max(NaiveDate::from_ymd_opt(r.hired_at.year(), r.hired_at.month(), 1).unwrap());
        let until = if r.active {
            p.today.checked_add_months(Months::new(4)).unwrap()
        } else {
            p.today - Duration::days(180)
        };
        while m < until {
            let next = m.checked_add_months(Months::new(1)).unwrap();
            quotas.push(Quota {
                rep_id: r.id,
                start: m,
                end: next,
                amount_cents: quota_cents,
            });
            m = next;
        }
    }

    // Forecast calls for the current month from every active seller: a
    // commit and a best case, submitted a week ago.
    let month_start = NaiveDate::from_ymd_opt(p.today.year(), p.today.month(), 1).unwrap();
    let month_end = month_start.checked_add_months(Months::new(1)).unwrap();
    // (commit-stage pipeline, won this month) per owner, in one pass.
    let mut by_owner: std::collections::HashMap<i64, (i64, i64)> = Default::default();
    for d in &deals {
        let entry = by_owner.entry(d.owner_id).or_default();
        if d.stage == 5 {
            entry.0 += d.amount_cents;
        } else if d.stage == 6 && d.closed_at.is_some_and(|c| c.date_naive() >= month_start) {
            entry.1 += d.amount_cents;
        }
    }
    let mut submissions = Vec::new();
    for r in reps.iter().filter(|r| r.seller && r.active) {
        let (open, won) = by_owner.get(&r.id).copied().unwrap_or_default();
        let at = (now - Duration::days(7)).max(start_of(month_start));
        for (category, share) in [("COMMIT", 0.5), ("BEST_CASE", 0.9)] {
            submissions.push(Submission {
                rep_id: r.id,
                period: format!("{:04}-{:02}", month_start.year(), month_start.month()),
                start: month_start,
                end: month_end,
                category,
                amount_cents: (won + (open as f64 * share) as i64) / 100 * 100,
                submitted_at: at,
            });
        }
    }

    Org {
        territories,
        reps,
        accounts,
        playbooks,
        deals,
        quotas,
        submissions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_organisation_looks_like_a_sales_team() {
        let org = generate(&Params::demo(
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        ));
        assert!(
            org.territories
                .iter()
                .filter(|t| t.segment.is_some())
                .count()
                >= 6
        );
        assert!(org.reps.len() >= 30);
        assert!(org.accounts.len() >= 300);
        assert_eq!(org.deals.len(), 3_200);
        let won = org.deals.iter().filter(|d| d.stage == 6).count() as f64;
        let lost = org.deals.iter().filter(|d| d.stage == 7).count() as f64;
        let rate = won / (won + lost);
        assert!((0.15..=0.40).contains(&rate), "win rate {rate}");
        // Histories are ordered and end in the deal's stage.
        for d in &org.deals {
            assert!(d.history.windows(2).all(|w| w[0].2 <= w[1].2));
            assert_eq!(d.history.last().unwrap().1, d.stage);
        }
        // Cycles of weeks to months.
        let cycles: Vec<i64> = org
            .deals
            .iter()
            .filter(|d| d.stage == 6)
            .map(|d| (d.closed_at.unwrap() - d.opened_at).num_days())
            .collect();
        let mean = cycles.iter().sum::<i64>() as f64 / cycles.len() as f64;
        assert!((14.0..=150.0).contains(&mean), "mean cycle {mean}");
        assert_eq!(org.playbooks.len(), 3);
    }

    #[test]
    fn synthetic_sizes_are_exact() {
        let org = generate(&Params::synthetic(
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            20_000,
            3,
        ));
        assert_eq!(org.deals.len(), 20_000);
        assert!(org.reps.iter().filter(|r| r.seller).count() >= 35);
    }

    #[test]
    fn generation_is_deterministic() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let a = generate(&Params::demo(day));
        let b = generate(&Params::demo(day));
        assert_eq!(a.deals.len(), b.deals.len());
        assert!(a
            .deals
            .iter()
            .zip(&b.deals)
            .all(|(x, y)| x.amount_cents == y.amount_cents && x.history == y.history));
    }
}
