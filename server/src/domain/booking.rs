//! A booking: one person's seat in one slot of one phase.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::id_number::IdNumber;
use super::ids::{BookingId, PhaseId, SlotId};

/// Where a booking was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Web,
    App,
    Kiosk,
}

impl Channel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Kiosk => "kiosk",
        }
    }
}

/// The life of a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BookingStatus {
    Booked,
    Cancelled,
    Attended,
    NoShow,
}

impl BookingStatus {
    /// A live booking holds its seat and blocks another booking in the same phase:
    /// booked, attended, and a no-show (whose seat is not returned and who waits for
    /// the next phase).
    pub fn is_live(self) -> bool {
        !matches!(self, BookingStatus::Cancelled)
    }

    /// Only a booking that is still just booked may change slot or be cancelled.
    pub fn is_open(self) -> bool {
        matches!(self, BookingStatus::Booked)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Booked => "booked",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Attended => "attended",
            BookingStatus::NoShow => "no-show",
        }
    }
}

/// A booking as the stores keep it; the HTTP layer adds the slot's site details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub booking: BookingId,
    pub code: String,
    pub phase: PhaseId,
    pub slot: SlotId,
    pub person: IdNumber,
    pub channel: Channel,
    /// The kiosk partner whose terminal made the booking (channel `kiosk` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    pub status: BookingStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub booked_at: OffsetDateTime,
}
