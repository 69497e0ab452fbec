//! `Mirror`: this instance's copy of the calendar and of the seat counters held in Redis.
//!
//! The copy is advisory. Only the Lua scripts take seats, so a stale counter can make
//! this instance answer "full" early or call a script that then answers "full"; it can
//! never overbook. What the mirror does guarantee is that it moves forward in Redis
//! order: every script that changes a seat counter also bumps one revision counter in
//! Redis (`{prefix}:rev`) and replies with it, and a periodic snapshot reads the revision
//! before the counters. A value is written into the [`Inventory`] only if it is newer
//! than what the slot already shows, so a slow reply or an old snapshot never rolls a
//! counter back past a newer one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::catalog::Catalog;
use crate::inventory::{Inventory, SlotIndex};

/// One slot's counters in a snapshot; `None` where Redis had no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counters {
    pub capacity: Option<u32>,
    pub remaining: Option<u32>,
}

/// Revisions of what the inventory shows.
#[derive(Debug, Default)]
struct Revisions {
    /// Slots written from a script reply newer than the last snapshot, with that reply's
    /// revision. A slot not listed shows the state as of `snapshot` (or newer).
    replies: HashMap<SlotIndex, u64>,
    /// The revision read before the counters of the last snapshot applied.
    snapshot: u64,
}

/// The calendar and seat counters as this instance knows them.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    pub catalog: ArcSwap<Catalog>,
    pub inventory: Inventory,
    /// The calendar version the catalog reflects (`{prefix}:calendar:version`). Written
    /// only under the store's calendar lock; `Relaxed` because readers use it only to
    /// decide whether to take that lock and reload.
    version: AtomicU64,
    /// Serialises writes into `inventory` so that the check "is this newer?" and the write
    /// are one step. Held for a map lookup and two atomic stores per slot, never across an
    /// `.await`; a reply takes it once per Redis round trip, which costs a thousand times
    /// more than the lock.
    order: Mutex<Revisions>,
}

impl Mirror {
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// The revision of the last snapshot applied.
    #[cfg(test)]
    pub(super) fn snapshot_revision(&self) -> u64 {
        self.order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot
    }

    pub(super) fn set_version(&self, version: u64) {
        self.version.store(version, Ordering::Relaxed);
    }

    /// Writes a slot's remaining seats from a script reply of revision `rev`; older news
    /// than the slot already shows is dropped. A negative `remaining` means "not read".
    pub(super) fn apply_reply(&self, slot: SlotIndex, rev: u64, remaining: i64) {
        let Ok(remaining) = u32::try_from(remaining) else {
            return;
        };
        let mut order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        let shown = order
            .replies
            .get(&slot)
            .copied()
            .unwrap_or(0)
            .max(order.snapshot);
        // At equal revisions the slot already shows that state (or, from a snapshot, newer).
        if rev > shown {
            self.inventory
                .overwrite(slot, self.inventory.capacity(slot), remaining);
            order.replies.insert(slot, rev);
        }
    }

    /// Applies a snapshot whose revision `rev` was read before its counters.
    ///
    /// Capacities are always written: they change only with a calendar version, and a
    /// snapshot with capacities is taken under the calendar lock right after the change.
    /// Remaining seats are written unless a reply newer than `rev` already set them; the
    /// counters were read after `rev`, so they are at least as new as anything at `rev`.
    pub(super) fn apply_snapshot(
        &self,
        rev: u64,
        counters: impl IntoIterator<Item = (SlotIndex, Counters)>,
    ) {
        let mut order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        if rev < order.snapshot {
            // Snapshots are taken one at a time, each reading the revision after the last
            // was applied, so a lower one means Redis lost writes (a crash under the fast
            // profile, a flush). What this snapshot read is the truth now; the revisions
            // remembered are from a history Redis no longer has.
            order.replies.clear();
            order.snapshot = rev;
        }
        for (slot, c) in counters {
            let newer_reply = order.replies.get(&slot).is_some_and(|&r| r > rev);
            let capacity = c.capacity.unwrap_or_else(|| self.inventory.capacity(slot));
            let remaining = match c.remaining {
                Some(r) if !newer_reply => r,
                _ => self.inventory.remaining(slot),
            };
            self.inventory.overwrite(slot, capacity, remaining);
        }
        // Replies at or below `rev` are covered by this snapshot; forgetting them keeps
        // the map to the slots that changed in the last refresh interval.
        order.replies.retain(|_, r| *r > rev);
        order.snapshot = order.snapshot.max(rev);
    }
}

impl Mirror {
    /// Applies counters of some slots read after revision `rev` (the incremental refresh:
    /// the slots the ledgers named since the last round). Like [`Mirror::apply_snapshot`]
    /// for those slots; the snapshot revision and other slots are left alone.
    pub(super) fn apply_partial(
        &self,
        rev: u64,
        counters: impl IntoIterator<Item = (SlotIndex, u32)>,
    ) {
        let order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        for (slot, remaining) in counters {
            if order.replies.get(&slot).is_some_and(|&r| r > rev) {
                continue;
            }
            self.inventory
                .overwrite(slot, self.inventory.capacity(slot), remaining);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(capacity: u32, remaining: u32) -> Counters {
        Counters {
            capacity: Some(capacity),
            remaining: Some(remaining),
        }
    }

    #[test]
    fn a_partial_read_updates_only_its_slots_and_never_beats_a_newer_reply() {
        let m = Mirror::default();
        m.apply_snapshot(5, [(0, counters(10, 10)), (1, counters(10, 10))]);
        m.apply_reply(0, 9, 3);
        m.apply_partial(7, [(0, 6), (1, 4)]);
        assert_eq!(
            m.inventory.remaining(0),
            3,
            "the reply at 9 is newer than the read at 7"
        );
        assert_eq!(m.inventory.remaining(1), 4);
        assert_eq!(m.snapshot_revision(), 5);
    }

    #[test]
    fn replies_apply_in_revision_order_whatever_order_they_arrive_in() {
        let m = Mirror::default();
        m.apply_snapshot(1, [(0, counters(50, 50))]);
        m.apply_reply(0, 5, 46);
        m.apply_reply(0, 3, 48);
        assert_eq!(m.inventory.remaining(0), 46);
        m.apply_reply(0, 6, 45);
        assert_eq!(m.inventory.remaining(0), 45);
    }

    #[test]
    fn a_snapshot_older_than_a_reply_keeps_the_reply() {
        let m = Mirror::default();
        m.apply_snapshot(1, [(0, counters(5, 5))]);
        m.apply_reply(0, 7, 0);
        m.apply_snapshot(6, [(0, counters(5, 1))]);
        assert_eq!(m.inventory.remaining(0), 0);
        m.apply_snapshot(7, [(0, counters(5, 2))]);
        assert_eq!(m.inventory.remaining(0), 2);
    }

    #[test]
    fn a_reply_older_than_a_snapshot_is_dropped() {
        let m = Mirror::default();
        m.apply_snapshot(10, [(3, counters(5, 4))]);
        m.apply_reply(3, 9, 5);
        assert_eq!((m.inventory.capacity(3), m.inventory.remaining(3)), (5, 4));
    }

    #[test]
    fn a_redis_that_lost_writes_is_believed() {
        let m = Mirror::default();
        m.apply_snapshot(100, [(0, counters(5, 5))]);
        m.apply_reply(0, 120, 0);
        // Redis came back from a crash that lost revisions 91..120.
        m.apply_snapshot(90, [(0, counters(5, 3))]);
        assert_eq!(m.inventory.remaining(0), 3);
        m.apply_reply(0, 91, 2);
        assert_eq!(m.inventory.remaining(0), 2);
    }

    #[test]
    fn snapshots_set_capacity_even_when_a_reply_is_newer() {
        let m = Mirror::default();
        m.apply_snapshot(1, [(0, counters(5, 5))]);
        m.apply_reply(0, 4, 2);
        m.apply_snapshot(3, [(0, counters(8, 5))]);
        assert_eq!((m.inventory.capacity(0), m.inventory.remaining(0)), (8, 2));
    }
}
