//! The HTTP edge of the bench-only servers (`bare`, `peer-postgres`): one hyper stack in
//! front of different booking stores, so that comparing them compares the stores.
//!
//! - `calendar`: the slots of the calendar file, with their phase and site.
//! - `serve`: the accept loop, the one route table and the response bodies.
//!
//! The edge is the bare hyper stack of `shared/bench/ceiling` (hyper-util's auto builder,
//! one task per connection, `GET` any path answers `200 ok`, the same JSON bodies), kept
//! at its cost: it adds only matching the booking path and its phase, a cap on the body
//! and a `Bearer ` prefix check, nanoseconds against microseconds. A change here moves
//! every row of `scripts/bench-http` that is measured against `bare`.

mod calendar;
mod serve;

pub use calendar::{SlotEntry, SlotTable};
pub use serve::serve;

/// What a booking came to; `serve` turns it into a status and a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A seat is the person's: `201` with the booking, numbered by the store.
    Booked(u64),
    /// No seat was left: `409` `slot-full`.
    SlotFull,
    /// The person holds a booking in this phase already: `409` `already-booked`.
    AlreadyBooked,
    /// The store failed: `503`, and the server keeps serving.
    Unavailable,
}

/// A booking store behind the edge. The edge has already matched the slot to the
/// calendar and to the phase in the path, so a store sees only slots that exist.
pub trait Book: Send + Sync + 'static {
    /// Books one seat of `slot` for `person` (the bearer token, as sent).
    fn book(&self, slot: &SlotEntry, person: &[u8]) -> impl Future<Output = Outcome> + Send;
}
