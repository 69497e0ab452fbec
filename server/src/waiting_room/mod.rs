//! Waiting rooms: a fair opening for a phase that has one.
//!
//! From the phase's `prequeue_opens_at` a person with a booking token queues once and
//! gets a signed ticket ([`ticket`]), the same on every device and instance. At
//! `opens_at` the pre-queue is closed with a fresh random seed and ordered by each
//! person's lottery number, `HMAC-SHA256(seed, phase ‖ id)`: a uniformly random
//! permutation that nobody could know before the opening, and that anyone holding the
//! seed (recorded, `GET /v1/admin/phases/{phase}/queue`) and the pre-queue can recompute.
//! Later arrivals queue behind in arrival order. Positions `1..=admitted` may book.
//!
//! Polls cost no store round trip: each instance mirrors every active room (its state
//! every tick, and after the shuffle the sorted lottery numbers, read once), and answers
//! positions from the mirror. One tick a second, some instance's controller raises
//! `admitted`: it keeps the admitted people who have not booked yet within a window that
//! grows by a quarter each second while the booking path keeps up and halves when it
//! does not (requests in flight near the shedding limit), never beyond one and a half
//! times the seats left; at sell-out it stops admitting and the room says so.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::availability::Snapshot;
use crate::domain::{IdNumber, PhaseId};
use crate::metrics as m;
use crate::store::StoreError;
use crate::store::rooms::{Lane, RoomState, RoomStore};

pub mod ticket;

pub use ticket::TicketKey;

/// The controller's smallest window, and its additive step.
pub const MIN_WINDOW: u64 = 50;
/// The largest window: more people booking at once than any node admits.
pub const MAX_WINDOW: u64 = 1_000_000;
/// Admission-rate samples kept for the wait estimate.
const RATE_SPAN: Duration = Duration::from_secs(10);
/// How long an admission counts against the window: someone admitted this long ago who
/// has not booked (no seat to their liking, gave up after `slot-full`s, the tab closed) no
/// longer holds a place in it, so abandoners cannot stall admission before sell-out for
/// longer than this. Their ticket still books. A minute is time enough to pick a slot and
/// book (the drill's people book within seconds of admission); with five minutes, the
/// drill's last seats waited five minutes behind the people who had given up.
pub const ADMISSION_LIFETIME_SECS: i64 = 60;

/// A person's lottery number in a room shuffled with `seed`: ascending numbers go first.
pub fn lottery(seed: &[u8; 16], phase: &str, person: IdNumber) -> u64 {
    let mut m = Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes keys of any length");
    m.update(&(phase.len() as u32).to_be_bytes());
    m.update(phase.as_bytes());
    m.update(&person.packed().to_be_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&m.finalize().into_bytes()[..8]);
    u64::from_be_bytes(first)
}

/// The controller's step: the new window and the admitted count to propose, from the
/// room's state, the people done with their admission (`settled`: the seats booked, or
/// the admitted count of [`ADMISSION_LIFETIME_SECS`] ago if larger), the seats left and
/// whether the booking path is overloaded.
pub fn step(state: &RoomState, settled: u64, seats_left: u64, overloaded: bool) -> (u64, u64) {
    let window = state.window.max(MIN_WINDOW);
    let window = if overloaded {
        (window / 2).max(MIN_WINDOW)
    } else {
        (window + (window / 4).max(MIN_WINDOW)).min(MAX_WINDOW)
    };
    if seats_left == 0 {
        return (window, state.admitted);
    }
    let in_flight = window.min(seats_left + seats_left / 2 + 10);
    let admitted = state
        .admitted
        .max(settled.saturating_add(in_flight))
        .min(state.total());
    (window, admitted)
}

/// Where a person stands in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// 1-based; `None` before the shuffle.
    pub position: Option<u64>,
    /// People before this one not yet admitted; `None` before the shuffle.
    pub ahead: Option<u64>,
    pub admitted: bool,
    /// `None` while unknown (before the shuffle, or before any admission).
    pub estimated_wait_seconds: Option<u64>,
    /// Whether the pre-queue has been shuffled.
    pub shuffled: bool,
    /// Whether the room knows this person: `false` for a ticket of a room that was
    /// emptied since (an embedded store restarted during the opening): queue again.
    pub member: bool,
}

/// The sorted lottery numbers of a shuffled pre-queue.
#[derive(Debug)]
struct Order {
    seed: [u8; 16],
    sorted: Vec<u64>,
}

/// One instance's view of one room.
#[derive(Debug, Default)]
struct Mirror {
    state: Mutex<RoomState>,
    order: OnceLock<Order>,
    /// `(when, admitted)`, for the admission rate.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    /// `(unix second, admitted)`, one a tick, for [`ADMISSION_LIFETIME_SECS`].
    history: Mutex<VecDeque<(i64, u64)>>,
}

impl Mirror {
    fn state(&self) -> RoomState {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, s: RoomState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = s;
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        samples.push_back((now, s.admitted));
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_SPAN)
        {
            samples.pop_front();
        }
    }

    /// Records the admitted count at `now` (unix seconds) and answers the count of
    /// [`ADMISSION_LIFETIME_SECS`] ago (0 when the room is younger).
    fn admitted_long_ago(&self, now: i64, admitted: u64) -> u64 {
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if h.back().is_none_or(|(t, _)| *t < now) {
            h.push_back((now, admitted));
        }
        let cutoff = now - ADMISSION_LIFETIME_SECS;
        while h.len() > 1 && h.get(1).is_some_and(|(t, _)| *t <= cutoff) {
            h.pop_front();
        }
        match h.front() {
            Some((t, a)) if *t <= cutoff => *a,
            _ => 0,
        }
    }

    /// People admitted per second over the last few seconds.
    fn rate(&self) -> f64 {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        match (samples.front(), samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                b.1.saturating_sub(a.1) as f64 / (b.0 - a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Every waiting room, as this instance sees them.
#[derive(Debug)]
pub struct WaitingRooms {
    pub store: Arc<dyn RoomStore>,
    pub tickets: TicketKey,
    mirrors: DashMap<PhaseId, Arc<Mirror>>,
}

impl WaitingRooms {
    pub fn new(store: Arc<dyn RoomStore>, token_secret: &[u8]) -> Self {
        Self {
            store,
            tickets: TicketKey::new(token_secret),
            mirrors: DashMap::new(),
        }
    }

    fn mirror(&self, phase: &PhaseId) -> Arc<Mirror> {
        self.mirrors.entry(phase.clone()).or_default().clone()
    }

    /// Queues `person` and answers their ticket and lane; refreshes the mirror when the
    /// store says the room changed (a join after a shuffle this instance has not seen).
    pub async fn join(
        &self,
        phase: &PhaseId,
        person: IdNumber,
    ) -> Result<(String, Lane), StoreError> {
        let lane = self.store.join(phase, person).await?;
        let mirror = self.mirror(phase);
        let seen = mirror.state();
        let behind = match lane {
            Lane::Pre => seen.seed.is_none() && seen.pre == 0,
            Lane::Late(n) => seen.seed.is_none() || n > seen.late,
        };
        if behind {
            self.refresh(phase, &mirror).await?;
        }
        metrics::counter!(m::QUEUE_JOINS, "phase" => phase.to_string(), "lane" => match lane {
            Lane::Pre => "pre",
            Lane::Late(_) => "late",
        })
        .increment(1);
        Ok((self.tickets.issue(phase.as_str(), person, Some(lane)), lane))
    }

    /// The room's state as this instance last saw it.
    pub fn state(&self, phase: &PhaseId) -> RoomState {
        self.mirror(phase).state()
    }

    /// Where `person` (in `lane`) stands, from the mirror alone.
    pub fn standing(&self, phase: &PhaseId, person: IdNumber, lane: Lane) -> Standing {
        let mirror = self.mirror(phase);
        let s = mirror.state();
        let mut member = true;
        let position = match (lane, mirror.order.get()) {
            (Lane::Late(n), _) if s.seed.is_some() => Some(s.pre + n),
            (Lane::Pre, Some(order)) => {
                let mine = lottery(&order.seed, phase.as_str(), person);
                let at = order.sorted.partition_point(|&x| x < mine);
                // Only someone in the shuffled pre-queue has a place in it.
                member = order.sorted.get(at) == Some(&mine);
                member.then_some(at as u64 + 1)
            }
            _ => None,
        };
        let admitted = position.is_some_and(|p| p <= s.admitted);
        let ahead = position.map(|p| p.saturating_sub(s.admitted + 1));
        let rate = mirror.rate();
        let estimated_wait_seconds = match ahead {
            Some(0) => Some(0),
            Some(a) if rate > 0.0 => Some((a as f64 / rate).ceil() as u64),
            _ => None,
        };
        Standing {
            position,
            ahead,
            admitted,
            estimated_wait_seconds,
            shuffled: mirror.order.get().is_some(),
            member,
        }
    }

    async fn refresh(&self, phase: &PhaseId, mirror: &Mirror) -> Result<RoomState, StoreError> {
        let s = self.store.state(phase).await?;
        self.seen(phase, mirror, s).await
    }

    /// Takes in a state read from the store; after the shuffle, reads the frozen
    /// pre-queue once and sorts its lottery numbers.
    async fn seen(
        &self,
        phase: &PhaseId,
        mirror: &Mirror,
        s: RoomState,
    ) -> Result<RoomState, StoreError> {
        if let (Some(seed), None) = (s.seed, mirror.order.get()) {
            let pre = self.store.pre_queue(phase).await?;
            let mut sorted: Vec<u64> = pre
                .iter()
                .map(|p| lottery(&seed, phase.as_str(), *p))
                .collect();
            sorted.sort_unstable();
            let _ = mirror.order.set(Order { seed, sorted });
        }
        mirror.set(s);
        Ok(s)
    }

    /// One round of upkeep for every active room: shuffle at the opening, refresh the
    /// mirror, and (once a second per room, whichever instance comes first) a controller
    /// step. Errors are logged; the next tick tries again.
    pub async fn tick(&self, snapshot: &Snapshot, overloaded: bool, now: OffsetDateTime) {
        let catalog = &snapshot.catalog;
        for (index, info) in catalog.phases.iter().enumerate() {
            let phase = &info.phase;
            let Some(room) = &phase.waiting_room else {
                continue;
            };
            if now < room.prequeue_opens_at || now >= phase.closes_at {
                continue;
            }
            let mirror = self.mirror(&phase.id);
            let result = async {
                let mut s = self.store.state(&phase.id).await?;
                if s.seed.is_none() && now >= phase.opens_at {
                    let mut seed = [0u8; 16];
                    getrandom::fill(&mut seed)
                        .map_err(|e| StoreError::Internal(format!("no randomness: {e}")))?;
                    s = self.store.close(&phase.id, seed).await?;
                    tracing::info!(phase = %phase.id, pre = s.pre, "waiting room shuffled");
                }
                let s = self.seen(&phase.id, &mirror, s).await?;
                if s.seed.is_some() && now.unix_timestamp() > s.tick {
                    let capacity: u64 = info
                        .slots
                        .iter()
                        .map(|&x| u64::from(catalog.slot(x).slot.capacity))
                        .sum();
                    let left = snapshot.phase_remaining(index);
                    let long_ago = mirror.admitted_long_ago(now.unix_timestamp(), s.admitted);
                    let settled = capacity.saturating_sub(left).max(long_ago);
                    let (window, admitted) = step(&s, settled, left, overloaded);
                    let s = self
                        .store
                        .advance(&phase.id, now.unix_timestamp(), window, admitted)
                        .await?;
                    mirror.set(s);
                    metrics::gauge!(m::QUEUE_WINDOW, "phase" => phase.id.to_string())
                        .set(s.window as f64);
                }
                Ok::<_, StoreError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(phase = %phase.id, error = %e, "waiting room upkeep failed");
            }
            let s = mirror.state();
            let label = phase.id.to_string();
            let waiting = s.total().saturating_sub(s.admitted);
            metrics::gauge!(m::QUEUE_LENGTH, "phase" => label.clone()).set(waiting as f64);
            metrics::gauge!(m::QUEUE_ADMITTED, "phase" => label.clone()).set(s.admitted as f64);
            let rate = mirror.rate();
            let wait = if rate > 0.0 {
                waiting as f64 / rate
            } else {
                0.0
            };
            metrics::gauge!(m::QUEUE_WAIT_SECONDS, "phase" => label).set(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::synthetic_id;
    use crate::store::rooms::MemoryRooms;

    fn phase() -> PhaseId {
        PhaseId::parse("02").expect("phase")
    }

    /// A room where `n` people queued in order 0..n, shuffled with `seed`: each arrival's
    /// position.
    async fn shuffled_positions(n: u64, seed: [u8; 16]) -> Vec<u64> {
        let rooms = WaitingRooms::new(Arc::new(MemoryRooms::default()), b"secret");
        let p = phase();
        for i in 0..n {
            rooms.join(&p, synthetic_id(i)).await.expect("join");
        }
        rooms.store.close(&p, seed).await.expect("close");
        let mirror = rooms.mirror(&p);
        rooms.refresh(&p, &mirror).await.expect("refresh");
        (0..n)
            .map(|i| {
                rooms
                    .standing(&p, synthetic_id(i), Lane::Pre)
                    .position
                    .expect("a position after the shuffle")
            })
            .collect()
    }

    #[tokio::test]
    async fn the_shuffle_is_a_permutation_with_no_arrival_order_bias() {
        const N: u64 = 10;
        const RUNS: usize = 2_000;
        // counts[arrival][position - 1]
        let mut counts = vec![vec![0u32; N as usize]; N as usize];
        let mut rho_sum = 0.0;
        // A fixed seed per run (any distinct seeds serve: the lottery is an HMAC), so that
        // the statistics below are the same every time rather than failing 1 % of runs.
        for run in 0..RUNS {
            let mut seed = [0u8; 16];
            seed[..8].copy_from_slice(&(run as u64).to_be_bytes());
            let positions = shuffled_positions(N, seed).await;
            let mut sorted = positions.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (1..=N).collect::<Vec<_>>(), "a permutation");
            for (arrival, p) in positions.iter().enumerate() {
                counts[arrival][*p as usize - 1] += 1;
            }
            // Spearman's rho between arrival order and position.
            let d2: f64 = positions
                .iter()
                .enumerate()
                .map(|(a, p)| (a as f64 + 1.0 - *p as f64).powi(2))
                .sum();
            let n = N as f64;
            rho_sum += 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
        }
        // Each arrival lands on each position with probability 1/N: a chi-square test
        // per arrival (9 degrees of freedom; 27.88 is the 0.1 % critical value).
        let expected = RUNS as f64 / N as f64;
        for (arrival, row) in counts.iter().enumerate() {
            let chi2: f64 = row
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < 27.88,
                "arrival {arrival}: chi-square {chi2:.1}, {row:?}"
            );
        }
        // The mean rank correlation is about 0 (its standard error here is ~0.007).
        let rho = rho_sum / RUNS as f64;
        assert!(rho.abs() < 0.04, "mean Spearman rho {rho:.3}");
    }

    #[tokio::test]
    async fn late_arrivals_queue_behind_in_order_and_admission_follows_positions() {
        let rooms = WaitingRooms::new(Arc::new(MemoryRooms::default()), b"secret");
        let p = phase();
        for i in 0..5 {
            rooms.join(&p, synthetic_id(i)).await.expect("join");
        }
        let early = rooms.standing(&p, synthetic_id(0), Lane::Pre);
        assert_eq!(
            (early.position, early.admitted, early.shuffled),
            (None, false, false)
        );
        rooms.store.close(&p, [3; 16]).await.expect("close");
        let (_, late) = rooms.join(&p, synthetic_id(100)).await.expect("late");
        let (_, later) = rooms.join(&p, synthetic_id(101)).await.expect("later");
        assert_eq!((late, later), (Lane::Late(1), Lane::Late(2)));
        assert_eq!(
            rooms.standing(&p, synthetic_id(100), late).position,
            Some(6)
        );
        assert_eq!(
            rooms.standing(&p, synthetic_id(101), later).position,
            Some(7)
        );

        let s = rooms.store.advance(&p, 1, 50, 3).await.expect("advance");
        rooms.mirror(&p).set(s);
        let admitted: Vec<bool> = (0..5)
            .map(|i| rooms.standing(&p, synthetic_id(i), Lane::Pre))
            .map(|s| {
                assert_eq!(s.admitted, s.position.expect("position") <= 3);
                s.admitted
            })
            .collect();
        assert_eq!(admitted.iter().filter(|a| **a).count(), 3);
        let last = rooms.standing(&p, synthetic_id(101), later);
        assert_eq!((last.admitted, last.ahead), (false, Some(3)));
    }

    #[test]
    fn the_controller_grows_while_healthy_halves_when_not_and_stops_at_sell_out() {
        let state = RoomState {
            seed: Some([0; 16]),
            pre: 10_000,
            late: 0,
            admitted: 0,
            window: 0,
            tick: 0,
        };
        let (w, a) = step(&state, 0, 5_000, false);
        assert_eq!((w, a), (100, 100), "starts small");
        let grown = RoomState {
            window: 400,
            admitted: 100,
            ..state
        };
        assert_eq!(step(&grown, 80, 5_000, false), (500, 580), "a quarter more");
        assert_eq!(step(&grown, 80, 5_000, true), (200, 280), "halved");
        assert_eq!(
            step(&grown, 80, 20, false).1,
            120,
            "at most 1.5 x the seats left"
        );
        assert_eq!(
            step(&grown, 5_000, 0, false).1,
            100,
            "sold out: nobody more"
        );
        let few = RoomState { pre: 90, ..grown };
        assert_eq!(step(&few, 80, 5_000, false).1, 90, "never beyond the queue");
        let late = RoomState {
            admitted: 700,
            ..grown
        };
        assert_eq!(step(&late, 0, 5_000, true).1, 700, "admission never falls");
        // Admitted people who never book hold the window only for a while: once their
        // admissions are ADMISSION_LIFETIME_SECS old they count as settled.
        let stalled = RoomState {
            admitted: 25,
            window: 50,
            pre: 100,
            ..state
        };
        assert_eq!(step(&stalled, 0, 10, false).1, 25, "25 in flight, 10 seats");
        assert_eq!(
            step(&stalled, 25, 10, false).1,
            50,
            "moves on once they expire"
        );
    }

    #[test]
    fn admissions_expire_after_their_lifetime() {
        let m = Mirror::default();
        assert_eq!(m.admitted_long_ago(1_000, 10), 0, "a young room");
        assert_eq!(m.admitted_long_ago(1_000, 20), 0, "the same second again");
        let half = ADMISSION_LIFETIME_SECS / 2;
        assert_eq!(m.admitted_long_ago(1_000 + half, 40), 0);
        assert_eq!(
            m.admitted_long_ago(1_000 + ADMISSION_LIFETIME_SECS, 90),
            10,
            "a second counts as first seen"
        );
        assert_eq!(
            m.admitted_long_ago(1_000 + half + ADMISSION_LIFETIME_SECS + 5, 95),
            40
        );
    }

    #[tokio::test]
    async fn a_ticket_of_someone_not_in_the_shuffled_room_places_nobody() {
        let rooms = WaitingRooms::new(Arc::new(MemoryRooms::default()), b"secret");
        let p = phase();
        rooms.join(&p, synthetic_id(1)).await.expect("join");
        rooms.store.close(&p, [5; 16]).await.expect("close");
        let mirror = rooms.mirror(&p);
        rooms.refresh(&p, &mirror).await.expect("refresh");
        let inside = rooms.standing(&p, synthetic_id(1), Lane::Pre);
        assert_eq!((inside.member, inside.position), (true, Some(1)));
        // Person 2 holds a pre-queue ticket from a room since emptied.
        let stale = rooms.standing(&p, synthetic_id(2), Lane::Pre);
        assert_eq!(
            (stale.member, stale.position, stale.admitted),
            (false, None, false)
        );
    }

    #[tokio::test]
    async fn a_join_catches_up_with_what_this_instance_has_not_seen() {
        let store = Arc::new(MemoryRooms::default());
        let here = WaitingRooms::new(store.clone(), b"secret");
        let there = WaitingRooms::new(store.clone(), b"secret");
        let p = phase();
        here.join(&p, synthetic_id(1)).await.expect("join");
        assert_eq!(here.state(&p).total(), 1, "the first to queue is counted");

        // The room is shuffled and someone queues late on the other instance.
        store.close(&p, [4; 16]).await.expect("close");
        let (_, first) = there.join(&p, synthetic_id(2)).await.expect("late");
        assert_eq!(first, Lane::Late(1));
        assert_eq!(there.state(&p).late, 1);
        // This instance has not seen the shuffle: nobody has a place here yet.
        let unseen = here.standing(&p, synthetic_id(2), first);
        assert_eq!((unseen.position, unseen.shuffled), (None, false));

        // A late join here brings the shuffle in; one there, the late count.
        let (_, second) = here.join(&p, synthetic_id(3)).await.expect("late");
        assert_eq!(second, Lane::Late(2));
        assert_eq!(here.standing(&p, synthetic_id(2), first).position, Some(2));
        let (_, third) = there.join(&p, synthetic_id(4)).await.expect("late");
        assert_eq!(third, Lane::Late(3));
        assert_eq!(there.state(&p).late, 3);
    }

    #[test]
    fn the_admission_rate_spans_the_last_ten_seconds() {
        let m = Mirror::default();
        let admitted = |n| RoomState {
            admitted: n,
            ..RoomState::default()
        };
        m.set(admitted(0));
        assert_eq!(m.rate(), 0.0, "one sample is no rate");
        let now = Instant::now();
        let ago = |secs| {
            now.checked_sub(Duration::from_secs(secs))
                .expect("the clock has run 30 s since boot")
        };
        {
            let mut samples = m.samples.lock().expect("samples");
            samples.clear();
            samples.push_back((ago(30), 0));
            samples.push_back((ago(4), 100));
        }
        // 200 more over the last 4 s (a little more by now): the one 30 s old is dropped.
        m.set(admitted(300));
        let rate = m.rate();
        assert!((40.0..=50.0).contains(&rate), "rate {rate}");
    }

    #[tokio::test]
    async fn the_wait_is_estimated_from_the_admission_rate() {
        let rooms = WaitingRooms::new(Arc::new(MemoryRooms::default()), b"secret");
        let p = phase();
        rooms.store.close(&p, [6; 16]).await.expect("close");
        for i in 1..=5 {
            let (_, lane) = rooms.join(&p, synthetic_id(i)).await.expect("late");
            assert_eq!(lane, Lane::Late(i));
        }
        // Nobody admitted yet: the next in line waits no time, the others an unknown time.
        let next = rooms.standing(&p, synthetic_id(1), Lane::Late(1));
        assert_eq!(
            (next.ahead, next.estimated_wait_seconds),
            (Some(0), Some(0))
        );
        let last = rooms.standing(&p, synthetic_id(5), Lane::Late(5));
        assert_eq!((last.ahead, last.estimated_wait_seconds), (Some(4), None));

        // 3 admitted over the last 3.5 s (0.86 a second): one ahead waits 2 s.
        let mirror = rooms.mirror(&p);
        {
            let mut samples = mirror.samples.lock().expect("samples");
            samples.clear();
            let then = Instant::now()
                .checked_sub(Duration::from_millis(3_500))
                .expect("the clock has run 4 s since boot");
            samples.push_back((then, 0));
        }
        mirror.set(rooms.store.advance(&p, 1, 50, 3).await.expect("advance"));
        let last = rooms.standing(&p, synthetic_id(5), Lane::Late(5));
        assert_eq!(
            (last.ahead, last.estimated_wait_seconds),
            (Some(1), Some(2))
        );
        let admitted = rooms.standing(&p, synthetic_id(3), Lane::Late(3));
        assert_eq!(
            (admitted.admitted, admitted.estimated_wait_seconds),
            (true, Some(0))
        );
    }
}
