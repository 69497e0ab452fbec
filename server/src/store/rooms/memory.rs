//! Rooms in memory, beside the embedded store (one node). They are not journaled: a
//! restart during an opening starts the rooms empty, and people queue again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{BoxFuture, Lane, RoomState, RoomStore};
use crate::domain::{IdNumber, PhaseId};
use crate::store::StoreError;

#[derive(Debug, Default)]
struct Room {
    lanes: HashMap<IdNumber, Lane>,
    pre: Vec<IdNumber>,
    state: RoomState,
}

/// Every phase's room, behind one lock: joins are rare next to polls, which read a
/// mirror, not this.
#[derive(Debug, Default)]
pub struct MemoryRooms {
    rooms: Mutex<HashMap<PhaseId, Room>>,
}

impl MemoryRooms {
    fn with<T>(&self, phase: &PhaseId, f: impl FnOnce(&mut Room) -> T) -> T {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        f(rooms.entry(phase.clone()).or_default())
    }
}

impl RoomStore for MemoryRooms {
    fn join(&self, phase: &PhaseId, person: IdNumber) -> BoxFuture<'_, Result<Lane, StoreError>> {
        let lane = self.with(phase, |r| {
            if let Some(l) = r.lanes.get(&person) {
                return *l;
            }
            let lane = if r.state.seed.is_some() {
                r.state.late += 1;
                Lane::Late(r.state.late)
            } else {
                r.pre.push(person);
                r.state.pre += 1;
                Lane::Pre
            };
            r.lanes.insert(person, lane);
            lane
        });
        Box::pin(async move { Ok(lane) })
    }

    fn close(
        &self,
        phase: &PhaseId,
        seed: [u8; 16],
    ) -> BoxFuture<'_, Result<RoomState, StoreError>> {
        let state = self.with(phase, |r| {
            r.state.seed.get_or_insert(seed);
            r.state
        });
        Box::pin(async move { Ok(state) })
    }

    fn state(&self, phase: &PhaseId) -> BoxFuture<'_, Result<RoomState, StoreError>> {
        let state = self.with(phase, |r| r.state);
        Box::pin(async move { Ok(state) })
    }

    fn pre_queue(&self, phase: &PhaseId) -> BoxFuture<'_, Result<Vec<IdNumber>, StoreError>> {
        let pre = self.with(phase, |r| r.pre.clone());
        Box::pin(async move { Ok(pre) })
    }

    fn advance(
        &self,
        phase: &PhaseId,
        tick: i64,
        window: u64,
        admitted: u64,
    ) -> BoxFuture<'_, Result<RoomState, StoreError>> {
        let state = self.with(phase, |r| {
            if tick > r.state.tick {
                r.state.tick = tick;
                r.state.window = window;
                r.state.admitted = r.state.admitted.max(admitted);
            }
            r.state
        });
        Box::pin(async move { Ok(state) })
    }
}
