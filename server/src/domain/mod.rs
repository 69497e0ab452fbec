//! The booking domain, free of HTTP and of any store.
//!
//! - [`IdNumber`]: national ID and resident-certificate numbers, checksummed.
//! - [`PhaseId`], [`SiteId`], [`SlotId`], [`BookingId`]: checked opaque ids.
//! - [`Calendar`]: sites, phases and slots as operators write them; a phase's
//!   [`Eligibility`] rules say whom settlement invites.
//! - [`Booking`]: a person's seat, with its [`Channel`] and [`BookingStatus`].
//! - [`Geography`]: Taiwan's counties and districts.

mod booking;
mod calendar;
mod eligibility;
mod geography;
mod id_number;
mod ids;
mod taiwan_time;

pub use booking::{Booking, BookingStatus, Channel};
pub use calendar::{
    Calendar, CalendarError, MAX_SLOT_CAPACITY, Phase, Site, Slot, WaitingRoom, parse_date,
};
pub use eligibility::{Eligibility, MAX_CATEGORY};
pub use geography::{County, District, Geography, Unknown, canonical};
pub use id_number::{IdNumber, IdNumberError, random_serial, synthetic_id};
pub use ids::{BookingId, IdError, PhaseId, SiteId, SlotId, human_code, sequence_of_code};
pub use taiwan_time::{TAIWAN, rfc3339};
