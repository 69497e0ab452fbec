//! `Keys`: the Redis key layout of one prefix (see the table in the parent module).
//!
//! The Lua scripts build three of these names themselves (a booking record, the seat
//! counter of a booking's old slot, the ledger of a cancelled booking's phase): the
//! formats here and in the scripts must stay the same.

use crate::domain::IdNumber;

/// Key names under one prefix. Ids are checked at parse time to `[A-Za-z0-9_-]`, so
/// they never contain the `:` separator and two names never collide.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(super) fn calendar(&self) -> String {
        format!("{}:calendar", self.prefix)
    }

    pub(super) fn calendar_version(&self) -> String {
        format!("{}:calendar:version", self.prefix)
    }

    pub(super) fn sequence(&self) -> String {
        format!("{}:seq", self.prefix)
    }

    pub(super) fn epochs(&self) -> String {
        format!("{}:epochs", self.prefix)
    }

    pub(super) fn revision(&self) -> String {
        format!("{}:rev", self.prefix)
    }

    pub(super) fn capacity(&self, slot: &str) -> String {
        format!("{}:slot:{slot}:capacity", self.prefix)
    }

    pub(super) fn remaining(&self, slot: &str) -> String {
        format!("{}:slot:{slot}:remaining", self.prefix)
    }

    pub(super) fn booking(&self, id: &str) -> String {
        format!("{}:booking:{id}", self.prefix)
    }

    pub(super) fn invited(&self, phase: &str) -> String {
        format!("{}:phase:{phase}:invited", self.prefix)
    }

    pub(super) fn ledger(&self, phase: &str) -> String {
        format!("{}:phase:{phase}:ledger", self.prefix)
    }

    /// Audits in progress: a sorted set of their start times (Redis clock, ms).
    pub(super) fn audit_pins(&self) -> String {
        format!("{}:audit-pins", self.prefix)
    }

    /// Incremented before each `WAIT`, so that the wait covers every write before it.
    pub(super) fn replication_barrier(&self) -> String {
        format!("{}:replication-barrier", self.prefix)
    }

    /// Set once the phase's booking list holds every booking of its ledger.
    pub(super) fn phase_bookings_indexed(&self, phase: &str) -> String {
        format!("{}:phase:{phase}:bookings:indexed", self.prefix)
    }

    /// A phase's booking ids in booking order.
    pub(super) fn phase_bookings(&self, phase: &str) -> String {
        format!("{}:phase:{phase}:bookings", self.prefix)
    }

    pub(super) fn bookings_of(&self, person: IdNumber) -> String {
        format!("{}:person:{person}:bookings", self.prefix)
    }

    pub(super) fn live_of(&self, person: IdNumber) -> String {
        format!("{}:person:{person}:live", self.prefix)
    }

    pub(super) fn keys_of(&self, person: IdNumber) -> String {
        format!("{}:person:{person}:keys", self.prefix)
    }

    pub(super) fn key_order_of(&self, person: IdNumber) -> String {
        format!("{}:person:{person}:keyorder", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::synthetic_id;

    #[test]
    fn names_follow_the_documented_layout() {
        let k = Keys::new("slotd");
        let p = synthetic_id(1);
        assert_eq!(k.remaining("S1-AM"), "slotd:slot:S1-AM:remaining");
        assert_eq!(k.capacity("S1-AM"), "slotd:slot:S1-AM:capacity");
        assert_eq!(k.booking("r1f"), "slotd:booking:r1f");
        assert_eq!(k.ledger("01"), "slotd:phase:01:ledger");
        assert_eq!(k.invited("01"), "slotd:phase:01:invited");
        assert_eq!(k.bookings_of(p), format!("slotd:person:{p}:bookings"));
        assert_eq!(k.calendar_version(), "slotd:calendar:version");
    }
}
