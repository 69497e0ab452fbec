//! Booking records and ledger entries as Redis holds them, and their decoding.
//!
//! A booking record is a hash of strings: `booking`, `seq`, `phase`, `slot`, `person`,
//! `channel`, `status`, `booked_at` (RFC 3339), and `partner` for kiosk bookings. The human code is not stored: it is
//! [`human_code`] of `seq`, a pure function. A ledger entry has `e` (`booked`,
//! `changed`, `cancelled`, `attended` or `no-show`), `b` (booking) and `p` (person); `booked` adds `seq`, `s`
//! (slot), `c` (channel), `t` (booked at) and `k` (kiosk partner, if any); `changed` adds `s` (new slot) and `f`
//! (old slot); `cancelled` adds `s`.

use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{
    Booking, BookingId, BookingStatus, Channel, IdNumber, PhaseId, SlotId, human_code,
};
use crate::store::StoreError;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("corrupt {what} in Redis: {detail}"))
}

/// The value of `name` in a flat `[field, value, field, value, ...]` list.
fn field<'a>(fields: &'a [String], name: &str) -> Option<&'a str> {
    fields
        .chunks_exact(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str())
}

fn required<'a>(what: &str, fields: &'a [String], name: &str) -> Result<&'a str, StoreError> {
    field(fields, name).ok_or_else(|| corrupt(what, format!("no field {name}")))
}

/// A kebab-case enum from its wire name (`web`, `no-show`).
fn wire<T: DeserializeOwned>(what: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(raw.to_string()))
        .map_err(|e| corrupt(what, format!("{raw:?}: {e}")))
}

/// How `booked_at` is written.
pub(super) fn format_time(t: OffsetDateTime) -> Result<String, StoreError> {
    t.format(&Rfc3339)
        .map_err(|e| StoreError::Internal(format!("cannot format {t}: {e}")))
}

fn parse_common(
    what: &str,
    seq: &str,
    slot: &str,
    person: &str,
    channel: &str,
    booked_at: &str,
) -> Result<(u64, SlotId, IdNumber, Channel, OffsetDateTime), StoreError> {
    Ok((
        seq.parse()
            .map_err(|e| corrupt(what, format!("seq: {e}")))?,
        SlotId::parse(slot).map_err(|e| corrupt(what, e))?,
        IdNumber::parse(person).map_err(|e| corrupt(what, e))?,
        wire(what, channel)?,
        OffsetDateTime::parse(booked_at, &Rfc3339)
            .map_err(|e| corrupt(what, format!("booked_at {booked_at:?}: {e}")))?,
    ))
}

/// A booking from its record's fields.
pub(super) fn booking(fields: &[String]) -> Result<Booking, StoreError> {
    const WHAT: &str = "booking record";
    let get = |name| required(WHAT, fields, name);
    let (seq, slot, person, channel, booked_at) = parse_common(
        WHAT,
        get("seq")?,
        get("slot")?,
        get("person")?,
        get("channel")?,
        get("booked_at")?,
    )?;
    Ok(Booking {
        booking: BookingId::parse(get("booking")?).map_err(|e| corrupt(WHAT, e))?,
        code: human_code(seq),
        phase: PhaseId::parse(get("phase")?).map_err(|e| corrupt(WHAT, e))?,
        slot,
        person,
        channel,
        partner: field(fields, "partner").map(str::to_owned),
        status: wire(WHAT, get("status")?)?,
        booked_at,
    })
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Event {
    Booked(Booking),
    Changed {
        booking: BookingId,
        slot: SlotId,
        /// The slot it left (`f`).
        from: SlotId,
    },
    Cancelled {
        booking: BookingId,
    },
    /// Checked in (`attended`) or closed out (`no-show`): the seat stays taken.
    Status {
        booking: BookingId,
        status: BookingStatus,
        /// The status before (`w`; a check-in may follow a no-show). Only `booked` can
        /// precede a close-out, which does not name it.
        was: BookingStatus,
    },
}

/// A ledger entry of `phase` from its fields.
pub(super) fn event(phase: &PhaseId, fields: &[String]) -> Result<Event, StoreError> {
    const WHAT: &str = "ledger entry";
    let get = |name| required(WHAT, fields, name);
    let booking = BookingId::parse(get("b")?).map_err(|e| corrupt(WHAT, e))?;
    match get("e")? {
        "booked" => {
            let (seq, slot, person, channel, booked_at) = parse_common(
                WHAT,
                get("seq")?,
                get("s")?,
                get("p")?,
                get("c")?,
                get("t")?,
            )?;
            Ok(Event::Booked(Booking {
                booking,
                code: human_code(seq),
                phase: phase.clone(),
                slot,
                person,
                channel,
                partner: field(fields, "k").map(str::to_owned),
                status: BookingStatus::Booked,
                booked_at,
            }))
        }
        "changed" => Ok(Event::Changed {
            booking,
            slot: SlotId::parse(get("s")?).map_err(|e| corrupt(WHAT, e))?,
            from: SlotId::parse(get("f")?).map_err(|e| corrupt(WHAT, e))?,
        }),
        "cancelled" => Ok(Event::Cancelled { booking }),
        "attended" => Ok(Event::Status {
            booking,
            status: BookingStatus::Attended,
            was: match field(fields, "w") {
                Some(w) => wire(WHAT, w)?,
                None => BookingStatus::Booked,
            },
        }),
        "no-show" => Ok(Event::Status {
            booking,
            status: BookingStatus::NoShow,
            was: BookingStatus::Booked,
        }),
        other => Err(corrupt(WHAT, format!("unknown event {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_record_decodes_with_its_code_from_the_sequence() {
        let fields = strings(&[
            "booking",
            "r1f",
            "seq",
            "31",
            "phase",
            "P1",
            "slot",
            "A",
            "person",
            "A123456789",
            "channel",
            "web",
            "status",
            "no-show",
            "booked_at",
            "2021-07-16T09:00:00Z",
        ]);
        let b = booking(&fields).expect("valid");
        assert_eq!(b.booking.as_str(), "r1f");
        assert_eq!(b.code, human_code(31));
        assert_eq!(b.status, BookingStatus::NoShow);
        assert_eq!(b.channel, Channel::Web);
    }

    #[test]
    fn a_record_without_a_field_is_corrupt() {
        let fields = strings(&["booking", "r1", "seq", "1"]);
        assert!(matches!(booking(&fields), Err(StoreError::Internal(_))));
    }

    #[test]
    fn ledger_events_decode() {
        let phase = PhaseId::parse("P1").expect("id");
        let e = event(
            &phase,
            &strings(&[
                "e",
                "changed",
                "b",
                "r2",
                "p",
                "A123456789",
                "s",
                "B",
                "f",
                "A",
            ]),
        )
        .expect("valid");
        assert_eq!(
            e,
            Event::Changed {
                booking: BookingId::parse("r2").expect("id"),
                slot: SlotId::parse("B").expect("id"),
                from: SlotId::parse("A").expect("id"),
            }
        );
        let status = |raw: &[&str]| event(&phase, &strings(raw)).expect("valid");
        let r2 = || BookingId::parse("r2").expect("id");
        assert_eq!(
            status(&["e", "attended", "b", "r2", "w", "no-show"]),
            Event::Status {
                booking: r2(),
                status: BookingStatus::Attended,
                was: BookingStatus::NoShow,
            }
        );
        // Entries written before the status before was named: a check-in followed `booked`.
        assert_eq!(
            status(&["e", "attended", "b", "r2"]),
            Event::Status {
                booking: r2(),
                status: BookingStatus::Attended,
                was: BookingStatus::Booked,
            }
        );
        assert_eq!(
            status(&["e", "no-show", "b", "r2"]),
            Event::Status {
                booking: r2(),
                status: BookingStatus::NoShow,
                was: BookingStatus::Booked,
            }
        );
        assert!(event(&phase, &strings(&["e", "lost", "b", "r2"])).is_err());
        assert!(event(&phase, &strings(&["e", "changed", "b", "r2", "s", "B"])).is_err());
    }
}
