//! A booking as the embedded store holds it in memory: 24 bytes, where the
//! [`Booking`] it answers with is about 130 plus two small allocations. Its id and code
//! derive from its sequence number, its phase from its slot, its person from the map
//! entry that holds it, and its kiosk partner is a number in a small table.

use std::sync::{PoisonError, RwLock};

use time::OffsetDateTime;

use super::StoreError;
use crate::catalog::Catalog;
use crate::domain::{Booking, BookingId, BookingStatus, Channel, IdNumber, human_code};
use crate::inventory::SlotIndex;

/// One booking, packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    pub seq: u64,
    /// `booked_at` in Unix nanoseconds (1677 to 2262).
    pub at: i64,
    pub slot: SlotIndex,
    /// 0: none; otherwise the partner's place in [`Partners`], plus one.
    pub partner: u16,
    pub channel: Channel,
    pub status: BookingStatus,
}

const _: () = assert!(std::mem::size_of::<Held>() == 24);

impl Held {
    /// The phase (its catalog index) of the booking's slot.
    pub fn phase(&self, catalog: &Catalog) -> Option<usize> {
        catalog.slots.get(self.slot as usize).map(|s| s.phase)
    }
}

/// Booking ids of the embedded store: `b` and the sequence number in hex.
pub(super) fn booking_id(seq: u64) -> BookingId {
    // Hex digits and a letter are always a valid id.
    BookingId::parse(&format!("b{seq:x}")).expect("hex is a valid id")
}

/// The sequence number of an id made by [`booking_id`]; `None` for any other id.
pub(super) fn sequence_of(id: &BookingId) -> Option<u64> {
    let hex = id.as_str().strip_prefix('b')?;
    // Only the canonical spelling: no sign, no leading zero, lower case.
    if hex.is_empty() || hex.starts_with('0') || hex.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|&s| s > 0)
}

/// Kiosk partners named by bookings, numbered in order of first use (a country has a
/// handful: one per chain of stores, not one per store).
#[derive(Debug, Default)]
pub(super) struct Partners(RwLock<Vec<String>>);

impl Partners {
    /// The number of `partner` (0 for none), adding it on first use.
    pub fn number(&self, partner: Option<&str>) -> Result<u16, StoreError> {
        let Some(name) = partner else { return Ok(0) };
        let find = |names: &[String]| names.iter().position(|n| n == name);
        if let Some(i) = find(&self.0.read().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(i as u16 + 1);
        }
        let mut names = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = find(&names) {
            return Ok(i as u16 + 1);
        }
        if names.len() >= usize::from(u16::MAX) {
            return Err(StoreError::Internal(format!(
                "more than {} kiosk partners have booked",
                u16::MAX
            )));
        }
        names.push(name.to_string());
        Ok(names.len() as u16)
    }

    /// The partner numbered `n`.
    pub fn name(&self, n: u16) -> Option<String> {
        let names = self.0.read().unwrap_or_else(PoisonError::into_inner);
        n.checked_sub(1)
            .and_then(|i| names.get(usize::from(i)))
            .cloned()
    }
}

/// Spells a held booking out, as answers and records show it. `None` only if its slot
/// is not in `catalog` (an older catalog than the booking's).
pub(super) fn spell(
    catalog: &Catalog,
    partners: &Partners,
    person: IdNumber,
    h: &Held,
) -> Option<Booking> {
    let info = catalog.slots.get(h.slot as usize)?;
    Some(Booking {
        booking: booking_id(h.seq),
        code: human_code(h.seq),
        phase: catalog.phases[info.phase].phase.id.clone(),
        slot: info.slot.id.clone(),
        person,
        channel: h.channel,
        partner: partners.name(h.partner),
        status: h.status,
        booked_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.at))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}

/// Packs `b`, whose slot is `slot` in the catalog. Refused if its id or code is not the
/// one its sequence number makes, or its time is outside what 64 bits of nanoseconds
/// hold: this store never writes such a booking.
pub(super) fn pack(
    partners: &Partners,
    seq: u64,
    slot: SlotIndex,
    b: &Booking,
) -> Result<Held, StoreError> {
    if sequence_of(&b.booking) != Some(seq) || b.code != human_code(seq) {
        return Err(StoreError::Internal(format!(
            "booking {} (code {}) does not match sequence number {seq}",
            b.booking, b.code
        )));
    }
    let at = i64::try_from(b.booked_at.unix_timestamp_nanos()).map_err(|_| {
        StoreError::Internal(format!(
            "booking {} is booked at {}",
            b.booking, b.booked_at
        ))
    })?;
    Ok(Held {
        seq,
        at,
        slot,
        partner: partners.number(b.partner.as_deref())?,
        channel: b.channel,
        status: b.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_only_canonical_ones_have_a_sequence() {
        for seq in [1u64, 9, 10, 255, 1 << 40, u64::MAX] {
            assert_eq!(sequence_of(&booking_id(seq)), Some(seq));
        }
        for other in ["b0", "b01", "bA", "bx", "r1", "b", "1"] {
            let id = BookingId::parse(other).expect("id");
            assert_eq!(sequence_of(&id), None, "{other}");
        }
    }

    #[test]
    fn a_record_whose_id_or_code_is_not_its_numbers_is_refused() {
        let partners = Partners::default();
        let booking = |id: &str, code: String| Booking {
            booking: BookingId::parse(id).expect("id"),
            code,
            phase: crate::domain::PhaseId::parse("P1").expect("id"),
            slot: crate::domain::SlotId::parse("A").expect("id"),
            person: crate::domain::synthetic_id(1),
            channel: Channel::Web,
            partner: Some("7-11".into()),
            status: BookingStatus::Booked,
            booked_at: OffsetDateTime::UNIX_EPOCH,
        };
        let held = pack(&partners, 10, 3, &booking("ba", human_code(10))).expect("whole");
        assert_eq!((held.seq, held.slot, held.partner), (10, 3, 1));
        assert!(
            pack(&partners, 10, 3, &booking("ba", human_code(11))).is_err(),
            "code"
        );
        assert!(
            pack(&partners, 10, 3, &booking("bb", human_code(10))).is_err(),
            "id"
        );
    }

    #[test]
    fn partners_are_numbered_once_in_order_of_first_use() {
        let p = Partners::default();
        assert_eq!(p.number(None).expect("none"), 0);
        assert_eq!(p.number(Some("7-11")).expect("first"), 1);
        assert_eq!(p.number(Some("family")).expect("second"), 2);
        assert_eq!(p.number(Some("7-11")).expect("again"), 1);
        assert_eq!(p.name(0), None);
        assert_eq!(p.name(1).as_deref(), Some("7-11"));
        assert_eq!(p.name(2).as_deref(), Some("family"));
        assert_eq!(p.name(3), None);
    }
}
