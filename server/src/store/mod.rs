//! Stores: where bookings are decided and kept, behind one domain-shaped trait.
//!
//! - [`Store`]: reserve, change, cancel, bookings of a person, calendar, invitations,
//!   check-in and close-out, audit.
//! - [`EmbeddedStore`]: in memory with an optional group-committed [`journal`]; the
//!   default and the executable specification of the contract.
//! - [`RedisStore`]: one Redis shared by many instances; Lua scripts decide each write,
//!   a local mirror of the seats answers known-full slots and availability.
//! - [`contract`]: the behaviour every backend must show, as a test suite any backend runs.
//! - [`segments`]: the files of a segmented journal: segments, snapshots, and reading them.
//!
//! The rules that do not depend on the clock live in the store, decided atomically with
//! taking the seat: capacity, one live booking per person per phase, the idempotency
//! key and the invitation. The booking window is checked above, in the service.

use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::audit::AuditReport;
use crate::catalog::Catalog;
use crate::domain::{
    Booking, BookingId, Calendar, CalendarError, Channel, IdNumber, PhaseId, SlotId,
};
use crate::inventory::{Inventory, SlotIndex};

pub mod contract;
mod embedded;
pub mod identity;
pub mod journal;
pub mod outbox;
mod redis;
pub mod rooms;
pub mod segments;

pub use embedded::{EmbeddedStore, Lost, SnapshotReport, lost_in};
// `self::`: a bare `redis::` here would be ambiguous with the `redis` crate.
pub use self::redis::RedisStore;
pub(crate) use self::redis::bounded as redis_bounded;

/// An `Idempotency-Key` with a fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    /// A stable hash of method, route and body: the same key with another request is refused.
    pub fingerprint: String,
}

/// A request to take a seat.
#[derive(Debug, Clone)]
pub struct Reserve {
    pub phase: PhaseId,
    pub slot: SlotId,
    pub slot_index: SlotIndex,
    pub invitation_required: bool,
    pub person: IdNumber,
    pub channel: Channel,
    /// The kiosk partner, for bookings made at a kiosk.
    pub partner: Option<String>,
    pub idempotency: Option<Idempotency>,
    pub now: OffsetDateTime,
}

/// A request to move a booking to another slot of its phase.
#[derive(Debug, Clone)]
pub struct Change {
    pub person: IdNumber,
    pub booking: BookingId,
    pub slot: SlotId,
    pub slot_index: SlotIndex,
    pub phase: PhaseId,
    pub idempotency: Option<Idempotency>,
}

/// How a reservation ended. Expected outcomes are values, not errors.
#[derive(Debug, Clone, PartialEq)]
pub enum ReserveOutcome {
    /// A new booking (201).
    Booked(Booking),
    /// The person already holds exactly this slot: a retry (200).
    AlreadyHeld(Booking),
    /// The same `Idempotency-Key` and request as an earlier success: its answer (201).
    Replayed(Booking),
    SlotFull,
    /// The person holds another live booking in this phase.
    AlreadyBooked(Booking),
    NotInvited,
    /// The `Idempotency-Key` was used with another request.
    KeyReused,
}

/// How a change ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    Changed(Booking),
    /// Already in that slot, or a replay of the same change.
    Unchanged(Booking),
    /// The new slot is full; the old booking is kept.
    SlotFull(Booking),
    UnknownBooking,
    /// The booking is cancelled (or otherwise not live) and cannot change.
    NotLive(Booking),
    /// The slot is not in the booking's phase.
    OtherPhase,
    KeyReused,
}

/// How a cancellation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    Cancelled(Booking),
    /// Already cancelled: cancelling twice is not an error.
    AlreadyCancelled(Booking),
    /// Attended or a no-show: the day has passed for it and its seat stays used.
    Final(Booking),
    UnknownBooking,
}

/// How a check-in ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttendOutcome {
    /// Now attended (from booked, or from a no-show who came late on the day).
    Attended(Booking),
    /// Checked in before: checking in twice is not an error.
    AlreadyAttended(Booking),
    Cancelled(Booking),
    UnknownBooking,
}

/// What a close-out found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CloseOut {
    /// Bookings of the day that were attended.
    pub attended: u64,
    /// Bookings of the day marked `no-show` (by this run or an earlier one).
    pub no_show: u64,
}

/// What a calendar load changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    pub sites: usize,
    pub phases: usize,
    pub slots: usize,
    /// Slots that are new or whose capacity changed.
    pub capacity_changes: usize,
}

/// A store failed; the request did not take effect.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or cannot persist right now: retry later (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The calendar cannot be applied (422).
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// A bug or corrupt data (500).
    #[error("store failure: {0}")]
    Internal(String),
}

/// The domain-shaped store: the hot path (`reserve`, `change`, `cancel`) and what the
/// operators need around it. Implementations decide each write atomically.
pub trait Store: Send + Sync + 'static {
    /// `embedded` or `redis`, for metrics and logs.
    fn backend(&self) -> &'static str;

    /// The calendar as this instance knows it.
    fn catalog(&self) -> Arc<Catalog>;

    /// Seats per slot: authoritative for the embedded store, a mirror for shared stores.
    fn inventory(&self) -> &Inventory;

    /// Lays a calendar over the loaded one (see [`Catalog::merge`]); idempotent.
    fn load_calendar(
        &self,
        calendar: Calendar,
    ) -> impl Future<Output = Result<LoadReport, StoreError>> + Send;

    /// Adds people to a phase's invited set; answers how many were new.
    fn invite(
        &self,
        phase: PhaseId,
        people: Vec<IdNumber>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Takes a seat for a person, atomically with the per-person rules.
    fn reserve(
        &self,
        r: Reserve,
    ) -> impl Future<Output = Result<ReserveOutcome, StoreError>> + Send;

    /// Moves a booking: the new seat is taken before the old is released.
    fn change(&self, c: Change) -> impl Future<Output = Result<ChangeOutcome, StoreError>> + Send;

    /// Cancels a person's booking; the seat returns.
    fn cancel(
        &self,
        person: IdNumber,
        booking: BookingId,
    ) -> impl Future<Output = Result<CancelOutcome, StoreError>> + Send;

    /// The booking with this human code, if any.
    fn booking_by_code(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Option<Booking>, StoreError>> + Send;

    /// Checks a person's booking in, atomically with its status. The caller has checked
    /// the site and the date.
    fn attend(
        &self,
        person: IdNumber,
        booking: BookingId,
    ) -> impl Future<Output = Result<AttendOutcome, StoreError>> + Send;

    /// Marks every still-booked booking in `slots` (one day of a phase) `no-show`; seats
    /// are not returned. Idempotent.
    fn close_out(
        &self,
        phase: PhaseId,
        slots: Vec<SlotId>,
    ) -> impl Future<Output = Result<CloseOut, StoreError>> + Send;

    /// Every booking the store holds (settlement's exclusions, the joined audit).
    fn all_bookings(&self) -> impl Future<Output = Result<Vec<Booking>, StoreError>> + Send;

    /// The phase's invited set.
    fn invited(
        &self,
        phase: PhaseId,
    ) -> impl Future<Output = Result<Vec<IdNumber>, StoreError>> + Send;

    /// Every booking of a person, in every phase, oldest first.
    fn bookings_of(
        &self,
        person: IdNumber,
    ) -> impl Future<Output = Result<Vec<Booking>, StoreError>> + Send;

    /// Checks the invariants over everything the store holds.
    fn audit(&self) -> impl Future<Output = Result<AuditReport, StoreError>> + Send;

    /// Whether the store can take writes now; if not, why (for `/health/ready`).
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// Makes everything acknowledged durable and stops background work.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}
