//! Waiting rooms' shared state: who queued in each phase's room and in which lane, the
//! shuffle's seed, and how many are admitted. One backend per store: in memory beside
//! the embedded store, a Lua script per change in Redis (so every instance sees one
//! room). The per-request work (tickets, positions, admission) is not here: it is
//! computed from a mirror of this state (`crate::waiting_room`).

use std::fmt;

use super::StoreError;
pub use super::identity::BoxFuture;
use crate::domain::{IdNumber, PhaseId};

pub mod contract;
mod memory;
mod redis;

pub use memory::MemoryRooms;
pub use redis::RedisRooms;

/// Where a person queued: before the shuffle (`Pre`, ordered by the lottery) or after
/// it (`Late`, the `n`th to arrive, from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Pre,
    Late(u64),
}

impl Lane {
    /// `p` or `l{n}`: how the Redis backend stores it.
    pub fn encode(self) -> String {
        match self {
            Lane::Pre => "p".into(),
            Lane::Late(n) => format!("l{n}"),
        }
    }

    pub fn decode(raw: &str) -> Option<Lane> {
        match raw.strip_prefix('l') {
            Some(n) => n.parse().ok().filter(|n| *n > 0).map(Lane::Late),
            None if raw == "p" => Some(Lane::Pre),
            None => None,
        }
    }
}

/// A room's shared state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomState {
    /// The shuffle's seed, drawn once when the pre-queue closed; `None` while it is open.
    pub seed: Option<[u8; 16]>,
    /// People in the pre-queue.
    pub pre: u64,
    /// People who queued after the shuffle.
    pub late: u64,
    /// Positions `1..=admitted` may book.
    pub admitted: u64,
    /// The admission window the controller keeps (people admitted beyond those booked).
    pub window: u64,
    /// The last controller tick applied (unix seconds).
    pub tick: i64,
}

impl RoomState {
    pub fn total(&self) -> u64 {
        self.pre + self.late
    }
}

/// Waiting rooms, one per phase.
pub trait RoomStore: Send + Sync + fmt::Debug + 'static {
    /// Queues `person` (once: the same person always gets their first lane back). Before
    /// the room is closed for the shuffle the lane is `Pre`; after, `Late(n)`.
    fn join(&self, phase: &PhaseId, person: IdNumber) -> BoxFuture<'_, Result<Lane, StoreError>>;

    /// Closes the pre-queue with `seed`; only the first close counts, and its seed is
    /// the one every caller gets back in the state.
    fn close(
        &self,
        phase: &PhaseId,
        seed: [u8; 16],
    ) -> BoxFuture<'_, Result<RoomState, StoreError>>;

    /// The room's state (all zero for a room nobody queued in).
    fn state(&self, phase: &PhaseId) -> BoxFuture<'_, Result<RoomState, StoreError>>;

    /// The pre-queue, in the order people joined it (the shuffle orders it).
    fn pre_queue(&self, phase: &PhaseId) -> BoxFuture<'_, Result<Vec<IdNumber>, StoreError>>;

    /// Applies one controller step for tick `tick` unless a later or equal one was
    /// applied: sets the window, and raises `admitted` to `admitted` (it never falls).
    fn advance(
        &self,
        phase: &PhaseId,
        tick: i64,
        window: u64,
        admitted: u64,
    ) -> BoxFuture<'_, Result<RoomState, StoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_reads_back_from_its_stored_form_and_nothing_else_reads_as_a_lane() {
        assert_eq!(
            (Lane::Pre.encode(), Lane::Late(7).encode()),
            ("p".to_string(), "l7".to_string())
        );
        for lane in [
            Lane::Pre,
            Lane::Late(1),
            Lane::Late(42),
            Lane::Late(u64::MAX),
        ] {
            assert_eq!(Lane::decode(&lane.encode()), Some(lane), "{lane:?}");
        }
        // Late numbers start at 1: `l0` is as corrupt as the rest.
        for raw in ["", "P", "q", "pp", "l", "l0", "l-1", "lx", "7"] {
            assert_eq!(Lane::decode(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn a_room_holds_its_pre_queue_and_its_late_arrivals() {
        let s = RoomState {
            pre: 5,
            late: 3,
            ..RoomState::default()
        };
        assert_eq!(s.total(), 8);
    }
}
