//! The HTTP edge: a thin layer over the service and the store.
//!
//! - [`server::run`]: accept loop and graceful shutdown; `admission`: the connection cap
//!   after accept, its overflow lane for probes and the cap per address; `connection`:
//!   each connection's header, idle and overflow clocks.
//! - [`router`]: the route table and per-request envelope (shedding, metrics).
//! - `booking`, `admin`, `ops`: booking and operations handlers; `registration` (captcha,
//!   intent registration), `login` (booking and kiosk logins, partners), `registry`
//!   (insured-person import): identity handlers; `settlement` (settling a phase, the SMS
//!   outbox, close-out) and `check_in` (staff at a site): the day itself; `request`: body,
//!   token and query parsing.
//! - [`problem`]: every error as `application/problem+json`; `i18n`: its titles.
//! - `cors`: browser frontends on the configured origins (`--cors-origin`); `address`:
//!   the client's address (behind `--trusted-proxies`) and its token bucket.

mod address;
mod admin;
mod admission;
mod booking;
mod check_in;
mod connection;
mod cors;
mod i18n;
mod login;
mod ops;
pub mod problem;
mod queue;
mod registration;
mod registry;
mod request;
pub mod request_id;
pub mod router;
mod server;
mod settlement;
mod telemetry;
mod web;

pub use address::{AddressLimits, Cidr};
pub use cors::valid_origin;
pub use i18n::Lang;
pub use ops::OPENAPI;
pub use problem::{Code, Problem};
pub use router::{ROUTES, RouteSpec, handle};
pub use server::{PeerAddr, run};
pub use web::count as web_files;
