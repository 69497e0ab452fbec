//! Settlement: which registrants a phase invites, in what order, and the report of it.
//! No HTTP and no store: the service gathers registrants and standings, this decides.
//!
//! - [`Registrant`]: a live registration joined with the registry, packed into 40 bytes
//!   so that ten million fit in memory and sort in seconds.
//! - [`Rules`]: a phase's [`Eligibility`](crate::domain::Eligibility) compiled to masks.
//! - [`plan`]: the ordered choice (priority category, then age, oldest first, then
//!   serial) up to the doses, skipping who is already invited or holds a booking.
//! - [`Report`]: counts by county, category, age band and brand; JSON and Markdown.

mod plan;
mod registrant;
mod report;
mod rules;

pub use plan::{Plan, Standing, plan};
pub use registrant::{Registrant, julian_day};
pub use report::{Report, age_band};
pub use rules::Rules;
