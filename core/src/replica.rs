//! Reads on a streaming replica within a bounded staleness, and
//! read-your-writes (docs/architecture.md, "Read replica").
//!
//! - **Lag**: a monitor task asks the primary for its flushed WAL position
//!   and then the replica for its replayed position, every poll interval.
//!   Each primary answer is an *anchor*: "everything committed before this
//!   instant lies at or below this position". The latest anchor the replica
//!   has replayed bounds its staleness: it holds every write committed
//!   before that anchor's instant. With an idle primary the position does
//!   not move, the anchor's instant is renewed at every poll and the lag
//!   stays 0: no heartbeat writes are needed.
//! - **Routing**: a query reads the replica while the measured lag plus the
//!   age of the measurement is within `SALESOPS_READ_MAX_LAG_MS`, and the
//!   primary otherwise (replica behind, unreachable, or not measured
//!   lately).
//! - **Read-your-writes**: after a mutation the primary's flushed position
//!   is remembered for the principal and returned in the
//!   `Salesops-Read-After` header. A later query of that principal (in this
//!   process), or one carrying the header (any process), reads the replica
//!   only once it has replayed that position, and the primary until then.
//!
//! A read database that is not in recovery (not a physical standby) has no
//! replay position: it is taken as current. SQLite has no WAL positions:
//! without a lag source the replica is always read, as before.
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::warm_connections::WarmConnections;
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// A WAL position (PostgreSQL's `pg_lsn`) as a byte offset.
pub type Lsn = u64;

/// The request and response header carrying a write's position.
pub const READ_AFTER_HEADER: &str = "salesops-read-after";

/// `pg_lsn`'s text form: two hexadecimal halves, `16/B374D848`.
pub fn format_lsn(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.trim().split_once('/')?;
    let half = |s: &str| {
        (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some(((half(hi)? as u64) << 32) | half(lo)? as u64)
}

/// Where the read database stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaPos {
    /// A standby, with the WAL position it has replayed.
    Standby(Lsn),
    /// Not in recovery: it is its own primary and always current.
    NotStandby,
}

/// Measures positions. [`PgLagSource`] asks the databases; tests use
/// [`ManualLag`].
pub trait LagSource: Send + Sync + std::fmt::Debug {
    /// The primary's flushed WAL position: every committed write lies at or
    /// below it.
    fn primary_position(&self) -> BoxFuture<'_, Result<Lsn, String>>;
    /// The read database's replayed position.
    fn replica_position(&self) -> BoxFuture<'_, Result<ReplicaPos, String>>;
}

/// Positions from PostgreSQL, over a small pool of its own on each side (so
/// a busy request pool never delays a measurement; a few connections, since
/// every mutation and read-after check asks too).
#[derive(Debug)]
pub struct PgLagSource {
    primary: DatabaseConnection,
    replica: DatabaseConnection,
}

impl PgLagSource {
    /// Over the two small pools (`db::connect` with [`LAG_POOL`] on each
    /// side; connected by the caller, so this module stays below `db`).
    pub fn new(primary: DatabaseConnection, replica: DatabaseConnection) -> Self {
        Self { primary, replica }
    }
}

/// The pool of each side of a [`PgLagSource`]: (max connections,
/// acquire timeout, statement timeout).
pub const LAG_POOL: (u32, Duration, Duration) = (4, Duration::from_secs(2), Duration::from_secs(2));

/// `pg_lsn` minus `0/0` is the position as a number of bytes.
async fn query_lsn(
    db: &DatabaseConnection,
    sql: &str,
) -> Result<(Option<i64>, Option<bool>), String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?;
    let lsn: Option<i64> = row.try_get("", "lsn").map_err(|e| e.to_string())?;
    let recovering: Option<bool> = row.try_get("", "recovering").ok();
    Ok((lsn, recovering))
}

impl LagSource for PgLagSource {
    fn primary_position(&self) -> BoxFuture<'_, Result<Lsn, String>> {
        Box::pin(async move {
            let (lsn, _) = query_lsn(
                &self.primary,
                "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint AS lsn",
            )
            .await?;
            Ok(lsn.unwrap_or(0).max(0) as Lsn)
        })
    }

    fn replica_position(&self) -> BoxFuture<'_, Result<ReplicaPos, String>> {
        Box::pin(async move {
            let (lsn, recovering) = query_lsn(
                &self.replica,
                "SELECT pg_is_in_recovery() AS recovering, \
                 (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS lsn",
            )
            .await?;
            Ok(if recovering == Some(true) {
                ReplicaPos::Standby(lsn.unwrap_or(0).max(0) as Lsn)
            } else {
                ReplicaPos::NotStandby
            })
        })
    }
}

/// Positions set by hand (tests): the primary's position, the replica's
/// replayed position, and whether the replica answers.
#[derive(Debug)]
pub struct ManualLag {
    primary: AtomicU64,
    replayed: AtomicU64,
    down: std::sync::atomic::AtomicBool,
}

impl Default for ManualLag {
    fn default() -> Self {
        Self {
            primary: AtomicU64::new(1),
            replayed: AtomicU64::new(1),
            down: Default::default(),
        }
    }
}

impl ManualLag {
    pub fn set(&self, primary: Lsn, replayed: Lsn) {
        self.primary.store(primary, Ordering::SeqCst);
        self.replayed.store(replayed, Ordering::SeqCst);
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    pub fn primary(&self) -> Lsn {
        self.primary.load(Ordering::SeqCst)
    }
}

impl LagSource for ManualLag {
    fn primary_position(&self) -> BoxFuture<'_, Result<Lsn, String>> {
        Box::pin(async move { Ok(self.primary.load(Ordering::SeqCst)) })
    }
    fn replica_position(&self) -> BoxFuture<'_, Result<ReplicaPos, String>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err("replica down".to_owned());
            }
            Ok(ReplicaPos::Standby(self.replayed.load(Ordering::SeqCst)))
        })
    }
}

/// The lag arithmetic, without I/O or a clock of its own.
#[derive(Debug, Default)]
pub struct LagTracker {
    /// (primary position, the last instant the primary was seen there),
    /// positions increasing.
    anchors: VecDeque<(Lsn, Instant)>,
}

/// Anchors kept at most (a poll every 250 ms for 40 minutes); past it the
/// oldest go, which only makes the lag unknown sooner (read the primary).
const MAX_ANCHORS: usize = 10_000;

impl LagTracker {
    /// The primary was at `position` at `at`.
    pub fn primary_at(&mut self, position: Lsn, at: Instant) {
        match self.anchors.back_mut() {
            // Still there: the later instant is the tighter anchor.
            Some(last) if last.0 >= position => last.1 = at,
            _ => {
                self.anchors.push_back((position, at));
                if self.anchors.len() > MAX_ANCHORS {
                    self.anchors.pop_front();
                }
            }
        }
    }

    /// The replica had replayed `replayed` at `at`: how stale it was then
    /// (None: it has replayed no anchor, its staleness is unknown).
    pub fn replica_at(&mut self, replayed: Lsn, at: Instant) -> Option<Duration> {
        // The latest anchor at or below the replayed position, and drop the
        // older ones.
        let covered = self.anchors.iter().take_while(|a| a.0 <= replayed).count();
        if covered == 0 {
            return None;
        }
        self.anchors.drain(..covered - 1);
        Some(at.saturating_duration_since(self.anchors[0].1))
    }
}

/// Why a query read where it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// No read replica configured.
    Primary,
    Replica,
    /// The replica's staleness was past the maximum (or not measured lately).
    PrimaryLag,
    /// The replica did not answer its last measurement.
    PrimaryUnreachable,
    /// The replica had not replayed this principal's last write yet.
    PrimaryReadAfter,
}

#[derive(Debug)]
struct State {
    /// The last measurement: when, whether the replica answered, how stale
    /// it was (None: unknown), whether it is a standby, its position.
    probed_at: Option<Instant>,
    reachable: bool,
    lag: Option<Duration>,
    standby: bool,
    replayed: Lsn,
    tracker: LagTracker,
    /// Each principal's last write not yet replayed (by subject).
    writes: HashMap<String, Lsn>,
    /// A position every principal waits for (set when `writes` overflows).
    floor: Lsn,
}

/// Principals remembered at most; past it their positions fold into
/// `floor` (every query then waits for the highest, which is correct).
const MAX_WRITERS: usize = 100_000;

#[derive(Debug, Default)]
struct Counters {
    replica: AtomicU64,
    lag: AtomicU64,
    unreachable: AtomicU64,
    read_after: AtomicU64,
}

struct Replica {
    db: DatabaseConnection,
    warm: Option<Arc<WarmConnections>>,
    /// None: the lag is not measured (SQLite); the replica is always read.
    source: Option<Arc<dyn LagSource>>,
    max_lag: Duration,
    probe_timeout: Duration,
    state: Mutex<State>,
    counters: Counters,
}

/// Chooses the connection each request reads through.
pub struct ReadRouter {
    primary: DatabaseConnection,
    /// Each database's connections kept between cheap reads
    /// (warm_connections.rs).
    primary_warm: Option<Arc<WarmConnections>>,
    replica: Option<Replica>,
}

/// The routing settings (`Config::read_max_lag_ms`, `read_lag_poll_ms`).
#[derive(Debug, Clone, Copy)]
pub struct LagSettings {
    pub max_lag: Duration,
    pub poll: Duration,
}

impl ReadRouter {
    /// Reads through the primary only.
    pub fn primary_only(primary: DatabaseConnection) -> Arc<Self> {
        Arc::new(Self {
            primary_warm: WarmConnections::of(&primary),
            primary,
            replica: None,
        })
    }

    /// Reads through `replica` within `settings.max_lag`; with a source,
    /// starts the monitor task (it ends when the router is dropped).
    pub fn new(
        primary: DatabaseConnection,
        replica: DatabaseConnection,
        source: Option<Arc<dyn LagSource>>,
        settings: LagSettings,
    ) -> Arc<Self> {
        let poll = settings.poll.max(Duration::from_millis(10));
        let measured = source.is_some();
        let router = Arc::new(Self {
            primary_warm: WarmConnections::of(&primary),
            primary,
            replica: Some(Replica {
                warm: WarmConnections::of(&replica),
                db: replica,
                source,
                max_lag: settings.max_lag,
                probe_timeout: poll.max(Duration::from_secs(1)),
                state: Mutex::new(State {
                    probed_at: None,
                    reachable: false,
                    lag: None,
                    standby: true,
                    replayed: 0,
                    tracker: LagTracker::default(),
                    writes: HashMap::new(),
                    floor: 0,
                }),
                counters: Counters::default(),
            }),
        });
        if measured {
            tokio::spawn(monitor(Arc::downgrade(&router), poll));
        }
        router
    }

    pub fn primary(&self) -> &DatabaseConnection {
        &self.primary
    }

    /// The warm connections of the database `route` reads.
    pub fn warm(&self, route: Route) -> Option<Arc<WarmConnections>> {
        match (route, &self.replica) {
            (Route::Replica, Some(r)) => r.warm.clone(),
            _ => self.primary_warm.clone(),
        }
    }

    /// Whether writes report their position (a measured replica).
    pub fn tracks_writes(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| r.source.is_some())
    }

    /// Measures once (the monitor does this every poll interval).
    pub async fn measure(&self) {
        let Some(r) = &self.replica else { return };
        let Some(source) = &r.source else { return };
        let primary = tokio::time::timeout(r.probe_timeout, source.primary_position()).await;
        let primary_at = Instant::now();
        let replica = tokio::time::timeout(r.probe_timeout, source.replica_position()).await;
        let replica_at = Instant::now();
        let mut st = r.state.lock().unwrap_or_else(|e| e.into_inner());
        match primary {
            Ok(Ok(p)) => st.tracker.primary_at(p, primary_at),
            Ok(Err(e)) => tracing::warn!(error = %e, "primary WAL position unavailable"),
            Err(_) => tracing::warn!("primary WAL position timed out"),
        }
        st.probed_at = Some(replica_at);
        match replica {
            Ok(Ok(ReplicaPos::Standby(replayed))) => {
                st.reachable = true;
                st.standby = true;
                st.replayed = st.replayed.max(replayed);
                st.lag = st.tracker.replica_at(replayed, replica_at);
            }
            Ok(Ok(ReplicaPos::NotStandby)) => {
                st.reachable = true;
                st.standby = false;
                st.lag = Some(Duration::ZERO);
            }
            Ok(Err(e)) => {
                if st.reachable {
                    tracing::warn!(error = %e, "read replica unreachable: reading the primary");
                }
                st.reachable = false;
            }
            Err(_) => {
                if st.reachable {
                    tracing::warn!("read replica timed out: reading the primary");
                }
                st.reachable = false;
            }
        }
        // Writes the replica now holds need no remembering.
        let replayed = st.replayed;
        if st.standby {
            st.writes.retain(|_, lsn| *lsn > replayed);
            if st.floor <= replayed {
                st.floor = 0;
            }
        } else {
            st.writes.clear();
            st.floor = 0;
        }
    }

    /// The connection a query of `subject` reads through. `read_after`:
    /// the position the client says it must see (its last write's).
    pub async fn route(
        &self,
        subject: &str,
        read_after: Option<Lsn>,
    ) -> (DatabaseConnection, Route) {
        let Some(r) = &self.replica else {
            return (self.primary.clone(), Route::Primary);
        };
        let route = self.decide(r, subject, read_after).await;
        let counter = match route {
            Route::Replica | Route::Primary => &r.counters.replica,
            Route::PrimaryLag => &r.counters.lag,
            Route::PrimaryUnreachable => &r.counters.unreachable,
            Route::PrimaryReadAfter => &r.counters.read_after,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let db = if route == Route::Replica {
            r.db.clone()
        } else {
            self.primary.clone()
        };
        (db, route)
    }

    async fn decide(&self, r: &Replica, subject: &str, read_after: Option<Lsn>) -> Route {
        let Some(source) = &r.source else {
            return Route::Replica;
        };
        let need = {
            let st = r.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(probed_at) = st.probed_at else {
                return Route::PrimaryLag;
            };
            if !st.reachable {
                return Route::PrimaryUnreachable;
            }
            if !st.standby {
                return Route::Replica;
            }
            let Some(lag) = st.lag else {
                return Route::PrimaryLag;
            };
            // Stale as measured, plus the time since the measurement.
            if lag + probed_at.elapsed() > r.max_lag {
                return Route::PrimaryLag;
            }
            let need = read_after
                .unwrap_or(0)
                .max(st.writes.get(subject).copied().unwrap_or(0))
                .max(st.floor);
            if need <= st.replayed {
                return Route::Replica;
            }
            need
        };
        // Behind the last measurement: ask the replica where it is now.
        match tokio::time::timeout(r.probe_timeout, source.replica_position()).await {
            Ok(Ok(ReplicaPos::Standby(replayed))) => {
                let mut st = r.state.lock().unwrap_or_else(|e| e.into_inner());
                st.replayed = st.replayed.max(replayed);
                if replayed >= need {
                    Route::Replica
                } else {
                    Route::PrimaryReadAfter
                }
            }
            Ok(Ok(ReplicaPos::NotStandby)) => Route::Replica,
            _ => Route::PrimaryReadAfter,
        }
    }

    /// After a mutation of `subject` committed: the primary's position,
    /// remembered for the subject's next queries and returned for the
    /// `Salesops-Read-After` header. None without a measured replica.
    pub async fn after_write(&self, subject: &str) -> Option<Lsn> {
        let r = self.replica.as_ref()?;
        let source = r.source.as_ref()?;
        let lsn = match tokio::time::timeout(r.probe_timeout, source.primary_position()).await {
            Ok(Ok(lsn)) => lsn,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no WAL position after a write");
                return None;
            }
            Err(_) => {
                tracing::warn!("WAL position after a write timed out");
                return None;
            }
        };
        let mut st = r.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.standby && lsn > st.replayed {
            if st.writes.len() >= MAX_WRITERS && !st.writes.contains_key(subject) {
                let highest = st.writes.drain().map(|(_, l)| l).max().unwrap_or(0);
                st.floor = st.floor.max(highest);
            }
            let e = st.writes.entry(subject.to_owned()).or_insert(0);
            *e = (*e).max(lsn);
        }
        Some(lsn)
    }

    /// The replica's measured lag in seconds (None: no measured replica, or
    /// unknown).
    pub fn lag(&self) -> Option<Duration> {
        let r = self.replica.as_ref()?;
        r.source.as_ref()?;
        let st = r.state.lock().unwrap_or_else(|e| e.into_inner());
        st.lag
    }

    /// The Prometheus lines of the read routing (empty without a replica).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Some(r) = &self.replica else { return out };
        let c = &r.counters;
        let _ = writeln!(
            out,
            "# HELP salesops_reads_total Queries by the database they read and why."
        );
        let _ = writeln!(out, "# TYPE salesops_reads_total counter");
        for (target, reason, n) in [
            ("replica", "fresh", &c.replica),
            ("primary", "lag", &c.lag),
            ("primary", "unreachable", &c.unreachable),
            ("primary", "read_after", &c.read_after),
        ] {
            let _ = writeln!(
                out,
                "salesops_reads_total{{target=\"{target}\",reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        if r.source.is_some() {
            let st = r.state.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                out,
                "# HELP salesops_replica_lag_seconds How stale the read replica was at its last measurement (-1: unknown or unreachable)."
            );
            let _ = writeln!(out, "# TYPE salesops_replica_lag_seconds gauge");
            let lag = match (st.reachable, st.lag) {
                (true, Some(l)) => l.as_secs_f64(),
                _ => -1.0,
            };
            let _ = writeln!(out, "salesops_replica_lag_seconds {lag}");
            let _ = writeln!(
                out,
                "# HELP salesops_replica_max_lag_seconds Staleness past which queries read the primary."
            );
            let _ = writeln!(out, "# TYPE salesops_replica_max_lag_seconds gauge");
            let _ = writeln!(
                out,
                "salesops_replica_max_lag_seconds {}",
                r.max_lag.as_secs_f64()
            );
        }
        out
    }
}

async fn monitor(router: Weak<ReadRouter>, poll: Duration) {
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(router) = router.upgrade() else {
            return;
        };
        router.measure().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips() {
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(format_lsn((0x16 << 32) | 0xB374_D848), "16/B374D848");
        assert_eq!(parse_lsn("0/0"), Some(0));
        for bad in ["", "16", "/1", "1/", "x/1", "+1/1", "123456789/0", "1/2/3"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_idle_primary_has_no_lag() {
        let t0 = Instant::now();
        let mut t = LagTracker::default();
        for i in 0..10u64 {
            let at = t0 + Duration::from_secs(i);
            t.primary_at(100, at);
            assert_eq!(
                t.replica_at(100, at + Duration::from_millis(2)),
                Some(Duration::from_millis(2))
            );
        }
        assert_eq!(t.anchors.len(), 1);
    }

    #[test]
    fn lag_is_the_age_of_the_latest_replayed_anchor() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = LagTracker::default();
        t.primary_at(100, t0);
        assert_eq!(t.replica_at(100, t0), Some(s(0)));
        // The primary moves on; replay stops at 100.
        t.primary_at(200, t0 + s(1));
        t.primary_at(300, t0 + s(2));
        assert_eq!(t.replica_at(100, t0 + s(3)), Some(s(3)));
        // Replay reaches 250: it holds what was committed before t0 + 1 s.
        assert_eq!(t.replica_at(250, t0 + s(4)), Some(s(3)));
        // Caught up with the latest anchor.
        t.primary_at(300, t0 + s(5));
        assert_eq!(t.replica_at(300, t0 + s(5)), Some(s(0)));
    }

    #[test]
    fn a_replica_behind_every_anchor_has_unknown_lag() {
        let t0 = Instant::now();
        let mut t = LagTracker::default();
        t.primary_at(100, t0);
        assert_eq!(t.replica_at(99, t0), None);
    }

    async fn sqlite() -> DatabaseConnection {
        sea_orm::Database::connect("sqlite::memory:").await.unwrap()
    }

    fn settings(max_lag_ms: u64) -> LagSettings {
        LagSettings {
            max_lag: Duration::from_millis(max_lag_ms),
            // Measured by hand below.
            poll: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn reads_follow_the_measured_lag() {
        let lag = Arc::new(ManualLag::default());
        let router = ReadRouter::new(
            sqlite().await,
            sqlite().await,
            Some(lag.clone()),
            settings(200),
        );
        // The monitor's first tick runs at once.
        tokio::task::yield_now().await;
        router.measure().await;
        assert_eq!(router.route("a", None).await.1, Route::Replica);
        // The primary moves on, the replica stays: fine until 200 ms.
        lag.set(10, 1);
        router.measure().await;
        assert_eq!(router.route("a", None).await.1, Route::Replica);
        tokio::time::sleep(Duration::from_millis(250)).await;
        router.measure().await;
        assert_eq!(router.route("a", None).await.1, Route::PrimaryLag);
        // Caught up.
        lag.set(10, 10);
        router.measure().await;
        assert_eq!(router.route("a", None).await.1, Route::Replica);
        // Unreachable, then back.
        lag.set_down(true);
        router.measure().await;
        assert_eq!(router.route("a", None).await.1, Route::PrimaryUnreachable);
        lag.set_down(false);
        router.measure().await;
        assert_eq!(router.route("a", None).await.1, Route::Replica);
        let text = router.render();
        assert!(text.contains("salesops_reads_total{target=\"primary\",reason=\"lag\"} 1"));
        assert!(text.contains("salesops_reads_total{target=\"replica\",reason=\"fresh\"} 4"));
        let gauge: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("salesops_replica_lag_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..0.1).contains(&gauge), "{gauge}");
    }

    #[tokio::test]
    async fn a_writer_reads_the_primary_until_the_replica_has_its_write() {
        let lag = Arc::new(ManualLag::default());
        let router = ReadRouter::new(
            sqlite().await,
            sqlite().await,
            Some(lag.clone()),
            settings(60_000),
        );
        router.measure().await;
        // a writes at 50; the replica is at 1.
        lag.set(50, 1);
        assert_eq!(router.after_write("a").await, Some(50));
        assert_eq!(router.route("a", None).await.1, Route::PrimaryReadAfter);
        // Others are not held back, unless they carry the position.
        assert_eq!(router.route("b", None).await.1, Route::Replica);
        assert_eq!(router.route("b", Some(50)).await.1, Route::PrimaryReadAfter);
        assert_eq!(router.route("b", Some(1)).await.1, Route::Replica);
        // The replica replays 50: checked at the query, no measurement needed.
        lag.set(50, 50);
        assert_eq!(router.route("a", None).await.1, Route::Replica);
        assert_eq!(router.route("b", Some(50)).await.1, Route::Replica);
        router.measure().await;
        let st = router.replica.as_ref().unwrap().state.lock().unwrap();
        assert!(st.writes.is_empty());
    }

    #[tokio::test]
    async fn without_a_source_the_replica_is_always_read() {
        let router = ReadRouter::new(sqlite().await, sqlite().await, None, settings(0));
        assert_eq!(router.route("a", Some(u64::MAX)).await.1, Route::Replica);
        assert_eq!(router.after_write("a").await, None);
        let router = ReadRouter::primary_only(sqlite().await);
        assert_eq!(router.route("a", None).await.1, Route::Primary);
        assert_eq!(router.render(), "");
    }
}
