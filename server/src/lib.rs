//! slotd: a vaccination registration and slot-booking server that takes a national
//! opening burst without overbooking a slot, double-booking a person, or losing an
//! acknowledged booking.
//!
//! - [`domain`]: ids, calendar, bookings; no HTTP, no store.
//! - [`inventory`]: per-slot seat counters (cache-padded atomics, dense index).
//! - [`catalog`]: the loaded calendar compiled for lookups.
//! - [`store`]: the [`Store`](store::Store) trait, the embedded store and its journal.
//! - [`service`]: booking-window rules in front of the store.
//! - [`settlement`]: whom a phase invites, in what order, and the report of it.
//! - [`availability`]: the snapshot that serves availability pages.
//! - [`token`]: signed person tokens. [`rate_limit`]: per-person write limits.
//! - [`http`]: the hyper edge. [`app`]: shared state. [`bootstrap`]: building it from [`config`].
//! - [`log_limit`]: warnings folded when they repeat.
//! - [`sms`]: gateways that carry invitation text messages to a carrier;
//!   [`dispatcher`]: sends the outbox's messages through one.
//! - [`audit`]: the invariants. [`demo`]: the built-in national calendar. [`metrics`]: names.

pub mod app;
pub mod audit;
pub mod availability;
pub mod bootstrap;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod dispatcher;
pub mod domain;
pub mod http;
pub mod identity;
pub mod inventory;
pub mod log_limit;
pub mod metrics;
pub mod rate_limit;
pub mod service;
pub mod settlement;
pub mod sms;
pub mod store;
pub mod token;
pub mod waiting_room;
