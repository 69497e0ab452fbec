//! Shared helpers for the criterion benchmarks: runtimes, calendars and loaded stores.
//!
//! - `inventory`: `Inventory::try_reserve` alone and with two threads on one slot.
//! - `reserve`: `service::reserve` through the embedded store, booked and slot-full.
//! - `snapshot`: `availability::build` and `Snapshot::page` over the demo calendar.
//! - `identity`: argon2id password checks (logins per core), TOTP, captchas, and a
//!   registration against a booking in the same run.
//! - `settlement`: choosing 1.1 million invitees out of 1 and 10 million registrants.
//! - `restart`: reopening after a phase-2-sized opening, from the journal and from a snapshot.
//!
//! Run with `cargo bench --workspace --bench NAME` (see `BENCHMARKS.md`). The crate also
//! builds `open-loop` (`open-loop/`), the fixed-rate HTTP load generator that
//! `scripts/bench-goodput` drives against the release server, and the bench-only servers
//! that `scripts/bench-http` measures slotd against, all behind one HTTP edge (`edge`):
//! `bare` (`bare/`, the bare hyper stack with an atomic per slot) and `peer-postgres`
//! (`peer-postgres/`, one Postgres transaction per booking; feature `peers`).

pub mod edge;

use slotd::domain::{Calendar, MAX_SLOT_CAPACITY};
use slotd::store::{EmbeddedStore, Store};
use time::OffsetDateTime;

/// The phase the demo calendar keeps open now.
pub const OPEN_PHASE: &str = "01";

/// A current-thread runtime: the benches measure one request's work, not a scheduler.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
}

/// One demo site's open-phase slots (twenty), each with `capacity` seats, and no other
/// phase: loads in microseconds, so a bench can take a fresh store per sample.
pub fn one_site_calendar(now: OffsetDateTime, capacity: u32) -> Calendar {
    assert!(capacity <= MAX_SLOT_CAPACITY, "the calendar caps capacity");
    let mut cal = slotd::demo::calendar(now);
    let site = cal.sites[0].id.clone();
    cal.sites.truncate(1);
    cal.phases.truncate(1);
    let open = &mut cal.phases[0];
    open.slots.retain(|s| s.site == site);
    for s in &mut open.slots {
        s.capacity = capacity;
    }
    cal
}

/// The slot ids of the open phase, in calendar order.
pub fn open_slots(cal: &Calendar) -> Vec<String> {
    cal.phases[0]
        .slots
        .iter()
        .map(|s| s.id.as_str().to_owned())
        .collect()
}

/// A journal-less store with `calendar` loaded.
pub fn ephemeral_store(rt: &tokio::runtime::Runtime, calendar: Calendar) -> EmbeddedStore {
    let store = EmbeddedStore::ephemeral();
    rt.block_on(store.load_calendar(calendar))
        .expect("the bench calendar is valid");
    store
}
