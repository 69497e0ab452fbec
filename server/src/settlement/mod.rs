//! Settlement: which registrants a phase invites, in what order, and the report of it.
//! No HTTP; only [`settle`] touches the stores, through their traits.
//!
//! - [`Registrant`]: a live registration joined with the registry, packed into 40 bytes
//!   so that ten million fit in memory and sort in seconds.
//! - [`Rules`]: a phase's [`Eligibility`](crate::domain::Eligibility) compiled to masks.
//! - [`plan`]: the ordered choice (priority category, then age, oldest first, then
//!   serial) up to the doses, skipping who is already invited or holds a booking.
//! - [`Report`]: counts by county, category, age band and brand; JSON and Markdown.
//! - [`settle`]: one run against the stores: registrants, bookings and the invited set
//!   in, invitations with their messages out.
//! - [`audit`]: the journey's invariants across the stores; [`contract`]: a run's
//!   behaviour, checked on every backend.

pub mod audit;
pub mod contract;
mod plan;
mod registrant;
mod report;
mod rules;
mod run;

pub use plan::{Plan, Standing, plan};
pub use registrant::{Registrant, julian_day};
pub use report::{Report, age_band};
pub use rules::Rules;
pub use run::{SettleError, Settlement, settle};
