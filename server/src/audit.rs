//! The audit: per-slot counts and the invariants, computed from a store's contents.
//!
//! Invariants: per slot, seats taken (capacity − remaining) equals the live bookings
//! and never exceeds capacity; one live booking per person per phase; every booking
//! names a slot of its phase.

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::domain::{Booking, BookingId, PhaseId, SlotId};
use crate::inventory::SlotIndex;

/// One slot's counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SlotAudit {
    pub slot: SlotId,
    pub capacity: u32,
    /// Seats taken according to the counter.
    pub booked: u32,
    /// Live bookings that name this slot.
    pub live_bookings: u32,
    pub remaining: u32,
}

/// Sums over a phase.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub capacity: u64,
    pub booked: u64,
    pub remaining: u64,
    pub live_bookings: u64,
    pub cancelled_bookings: u64,
}

/// One phase's counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PhaseAudit {
    pub phase: PhaseId,
    pub totals: Totals,
    pub slots: Vec<SlotAudit>,
}

/// An invariant that does not hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Breach {
    /// More live bookings than seats.
    Overbooked {
        slot: SlotId,
        capacity: u32,
        live_bookings: u32,
    },
    /// The counter disagrees with the bookings (a leaked or a phantom seat).
    CounterMismatch {
        slot: SlotId,
        booked: u32,
        live_bookings: u32,
    },
    /// A person holds more than one live booking in a phase.
    DoubleBooked {
        person: String,
        phase: PhaseId,
        bookings: Vec<BookingId>,
    },
    /// A booking names a slot the calendar does not have in its phase.
    UnknownSlot { booking: BookingId, slot: SlotId },
    /// A shared store's booking record disagrees with its ledger.
    RecordMismatch { booking: String, detail: String },
}

/// The whole audit.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditReport {
    pub ok: bool,
    pub breaches: Vec<Breach>,
    pub phases: Vec<PhaseAudit>,
}

impl AuditReport {
    /// The report of one phase, if it exists.
    pub fn phase(&self, id: &str) -> Option<&PhaseAudit> {
        self.phases.iter().find(|p| p.phase.as_str() == id)
    }
}

/// Audits `bookings` against the catalog and the counters `(capacity, remaining)`.
pub fn audit<'a>(
    catalog: &Catalog,
    counters: impl Fn(SlotIndex) -> (u32, u32),
    bookings: impl IntoIterator<Item = &'a Booking>,
) -> AuditReport {
    let mut live = vec![0u32; catalog.slots.len()];
    let mut cancelled = vec![0u64; catalog.phases.len()];
    let mut holders: HashMap<(PhaseId, u64), Vec<BookingId>> = HashMap::new();
    let mut breaches = Vec::new();
    for b in bookings {
        let slot = catalog
            .slot_index(b.slot.as_str())
            .filter(|&s| catalog.phases[catalog.slot(s).phase].phase.id == b.phase);
        let Some(slot) = slot else {
            breaches.push(Breach::UnknownSlot {
                booking: b.booking.clone(),
                slot: b.slot.clone(),
            });
            continue;
        };
        if b.status.is_live() {
            live[slot as usize] += 1;
            holders
                .entry((b.phase.clone(), b.person.packed()))
                .or_default()
                .push(b.booking.clone());
        } else {
            cancelled[catalog.slot(slot).phase] += 1;
        }
    }
    let mut double: Vec<_> = holders.into_iter().filter(|(_, v)| v.len() > 1).collect();
    double.sort_by(|a, b| a.0.cmp(&b.0));
    for ((phase, person), bookings) in double {
        breaches.push(Breach::DoubleBooked {
            person: crate::domain::IdNumber::from_packed(person)
                .map(|p| p.to_string())
                .unwrap_or_default(),
            phase,
            bookings,
        });
    }
    let mut phases = Vec::with_capacity(catalog.phases.len());
    for (pi, p) in catalog.phases.iter().enumerate() {
        let mut totals = Totals {
            cancelled_bookings: cancelled[pi],
            ..Totals::default()
        };
        let mut slots = Vec::with_capacity(p.slots.len());
        for &s in &p.slots {
            let (capacity, remaining) = counters(s);
            let booked = capacity.saturating_sub(remaining);
            let live_bookings = live[s as usize];
            let id = catalog.slot(s).slot.id.clone();
            if live_bookings > capacity {
                breaches.push(Breach::Overbooked {
                    slot: id.clone(),
                    capacity,
                    live_bookings,
                });
            }
            if booked != live_bookings || remaining > capacity {
                breaches.push(Breach::CounterMismatch {
                    slot: id.clone(),
                    booked,
                    live_bookings,
                });
            }
            totals.capacity += u64::from(capacity);
            totals.booked += u64::from(booked);
            totals.remaining += u64::from(remaining);
            totals.live_bookings += u64::from(live_bookings);
            slots.push(SlotAudit {
                slot: id,
                capacity,
                booked,
                live_bookings,
                remaining,
            });
        }
        phases.push(PhaseAudit {
            phase: p.phase.id.clone(),
            totals,
            slots,
        });
    }
    AuditReport {
        ok: breaches.is_empty(),
        breaches,
        phases,
    }
}
