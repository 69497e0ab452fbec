//! `Inventory`: remaining seats per slot in cache-padded atomic counters, indexed densely.
//!
//! Slot `i` lives in chunk `i / CHUNK` at offset `i % CHUNK`. Chunks are allocated once
//! and never move, so a calendar load can add slots while requests reserve seats in
//! others, without a lock and without copying counters. Each counter sits on its own
//! cache line ([`CachePadded`]), so two cores reserving in two different slots never
//! contend on one line.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crossbeam_utils::CachePadded;

const CHUNK: usize = 4096;
/// Room for 16.7 million slots: a national calendar has tens of thousands per phase.
const MAX_CHUNKS: usize = 4096;

/// A dense slot index into the [`Inventory`].
pub type SlotIndex = u32;

/// One slot's counters.
#[derive(Debug, Default)]
pub struct SeatCounter {
    /// Seats still free. The only counter on the hot path.
    remaining: AtomicU32,
    /// Seats in total; changes only under the calendar loader's lock.
    capacity: AtomicU32,
}

/// Why a capacity change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("capacity {requested} is below the {booked} seats already booked")]
pub struct BelowBooked {
    pub requested: u32,
    pub booked: u32,
}

/// One chunk of counters, allocated on first use and never moved.
type Chunk = OnceLock<Box<[CachePadded<SeatCounter>]>>;

/// Per-slot seat counters.
#[derive(Debug)]
pub struct Inventory {
    chunks: Box<[Chunk]>,
}

impl Default for Inventory {
    fn default() -> Self {
        Self::new()
    }
}

impl Inventory {
    /// An empty inventory; chunks are allocated as slots are added.
    pub fn new() -> Self {
        Self {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The counters of slot `i`, allocating its chunk on first use.
    ///
    /// # Panics
    /// If `i` is beyond the 16.7 million slots the inventory has room for; the
    /// catalog refuses calendars that large before any index is handed out.
    fn counter(&self, i: SlotIndex) -> &SeatCounter {
        let (c, o) = (i as usize / CHUNK, i as usize % CHUNK);
        let chunk = self.chunks[c].get_or_init(|| {
            (0..CHUNK)
                .map(|_| CachePadded::new(SeatCounter::default()))
                .collect()
        });
        &chunk[o]
    }

    /// The most slots an inventory can hold.
    pub const fn max_slots() -> usize {
        CHUNK * MAX_CHUNKS
    }

    /// Takes one seat of slot `i`; `false` when none is left. Never goes below zero.
    ///
    /// `AcqRel` on success: the decrement must be ordered after any `release` that freed
    /// the seat (so the seat we take really was returned first, which the journal order
    /// relies on), and before what the caller then publishes about the booking.
    /// `Acquire` on failure: a "full" answer observes the latest releases.
    #[inline]
    pub fn try_reserve(&self, i: SlotIndex) -> bool {
        let counter = &self.counter(i).remaining;
        let mut current = counter.load(Ordering::Acquire);
        loop {
            if current == 0 {
                return false;
            }
            match counter.compare_exchange_weak(
                current,
                current - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Returns one seat of slot `i`. `Release`, so whoever takes it next sees everything
    /// the canceller did before (its journal record is queued before this runs).
    ///
    /// The store only calls this for a seat it took, so `remaining` never exceeds
    /// `capacity`; a capacity change and a release never race (see [`Self::set_capacity`]).
    #[inline]
    pub fn release(&self, i: SlotIndex) {
        self.counter(i).remaining.fetch_add(1, Ordering::AcqRel);
    }

    /// Seats still free; advisory the moment it is read.
    #[inline]
    pub fn remaining(&self, i: SlotIndex) -> u32 {
        self.counter(i).remaining.load(Ordering::Acquire)
    }

    /// Seats in total.
    pub fn capacity(&self, i: SlotIndex) -> u32 {
        self.counter(i).capacity.load(Ordering::Acquire)
    }

    /// Sets slot `i`'s capacity. Raising it adds seats at once; lowering it takes the
    /// difference from the free seats with a compare-and-swap, so it can never take a
    /// seat that a concurrent reservation already took: if fewer than the difference
    /// are free, nothing changes and [`BelowBooked`] says how many are booked.
    ///
    /// Callers serialise capacity changes (one calendar loader at a time).
    pub fn set_capacity(&self, i: SlotIndex, capacity: u32) -> Result<(), BelowBooked> {
        let c = self.counter(i);
        let old = c.capacity.load(Ordering::Acquire);
        if capacity >= old {
            c.capacity.store(capacity, Ordering::Release);
            c.remaining.fetch_add(capacity - old, Ordering::AcqRel);
            return Ok(());
        }
        let cut = old - capacity;
        let mut free = c.remaining.load(Ordering::Acquire);
        loop {
            if free < cut {
                return Err(BelowBooked {
                    requested: capacity,
                    booked: old - free,
                });
            }
            match c.remaining.compare_exchange_weak(
                free,
                free - cut,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => free = actual,
            }
        }
        c.capacity.store(capacity, Ordering::Release);
        Ok(())
    }

    /// Overwrites slot `i`'s counters: used when replaying a journal or mirroring a
    /// store that holds the authoritative counts (Redis), never on the booking path.
    pub fn overwrite(&self, i: SlotIndex, capacity: u32, remaining: u32) {
        let c = self.counter(i);
        c.capacity.store(capacity, Ordering::Release);
        c.remaining
            .store(remaining.min(capacity), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn there_is_room_for_sixteen_million_slots_up_to_the_last() {
        assert_eq!(Inventory::max_slots(), 16_777_216);
        let inv = Inventory::new();
        let last = (Inventory::max_slots() - 1) as SlotIndex;
        inv.set_capacity(last, 1).expect("raise");
        assert!(inv.try_reserve(last));
        assert!(!inv.try_reserve(last));
    }

    #[test]
    fn reserve_stops_at_zero() {
        let inv = Inventory::new();
        inv.set_capacity(7, 2).expect("raise");
        assert!(inv.try_reserve(7));
        assert!(inv.try_reserve(7));
        assert!(!inv.try_reserve(7));
        assert_eq!(inv.remaining(7), 0);
        inv.release(7);
        assert_eq!(inv.remaining(7), 1);
    }

    #[test]
    fn many_threads_get_exactly_capacity_seats() {
        const C: u32 = 1_000;
        let inv = Arc::new(Inventory::new());
        inv.set_capacity(CHUNK as u32 + 3, C).expect("raise");
        let wins = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (inv, wins) = (inv.clone(), wins.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        if inv.try_reserve(CHUNK as u32 + 3) {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(wins.load(Ordering::Relaxed), C as usize);
        assert_eq!(inv.remaining(CHUNK as u32 + 3), 0);
    }

    #[test]
    fn concurrent_reserve_and_release_conserve_seats() {
        let inv = Arc::new(Inventory::new());
        inv.set_capacity(0, 10).expect("raise");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let inv = inv.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if inv.try_reserve(0) {
                            inv.release(0);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(inv.remaining(0), 10);
    }

    #[test]
    fn lowering_capacity_below_booked_is_refused() {
        let inv = Inventory::new();
        inv.set_capacity(1, 5).expect("raise");
        for _ in 0..3 {
            assert!(inv.try_reserve(1));
        }
        assert_eq!(
            inv.set_capacity(1, 2),
            Err(BelowBooked {
                requested: 2,
                booked: 3
            })
        );
        assert_eq!((inv.capacity(1), inv.remaining(1)), (5, 2));
        inv.set_capacity(1, 4).expect("above booked");
        assert_eq!((inv.capacity(1), inv.remaining(1)), (4, 1));
        inv.set_capacity(1, 10).expect("raise");
        assert_eq!((inv.capacity(1), inv.remaining(1)), (10, 7));
    }
}
