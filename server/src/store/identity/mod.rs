//! Identity stores: the insured-person registry, intent registrations, single-use marks,
//! login failure counts and kiosk partners, behind one trait shaped like that domain.
//!
//! - [`IdentityStore`]: the trait; object-safe, so the edge holds `Arc<dyn IdentityStore>`
//!   whatever the booking store is. None of it is on the booking hot path.
//! - [`EmbeddedIdentity`]: in memory, journaled to its own log (`identity.log`).
//! - [`RedisIdentity`]: Redis, sharing the booking store's connection; a Lua script per
//!   registration write.
//! - [`contract`]: the behaviour every backend shows, as a suite any backend runs.
//!
//! Registrations are decided per person, atomically: one live registration at most,
//! serials unique, increasing and never reused, every change appended to the person's
//! history before it is acknowledged.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use time::OffsetDateTime;

use super::StoreError;
use crate::domain::IdNumber;
use crate::identity::login::{Failures, Gate, LoginPolicy};
use crate::identity::partner::Partner;
use crate::identity::{
    InsuredPerson, NhiCard, RegisterOutcome, Registration, RegistrationEvent, RegistrationForm,
};

pub mod contract;
mod embedded;
mod redis;

pub use self::redis::RedisIdentity;
pub use embedded::{EmbeddedIdentity, lost_serials};

/// A boxed future: the trait is used as `dyn IdentityStore`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an upsert of insured persons ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// Every person was written.
    Written(u64),
    /// The person at this index of the batch carries a card number that belongs to
    /// another person; nothing of the batch was written.
    CardTaken { index: usize },
}

/// What the registration audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistrationAudit {
    pub ok: bool,
    pub persons: u64,
    pub events: u64,
    pub live: u64,
    pub cancelled: u64,
    /// The highest serial issued.
    pub last_serial: u64,
    pub breaches: Vec<String>,
}

/// Checks a set of per-person histories: each person's events replay to their current
/// registration, a serial belongs to one registration only, a modify keeps its serial, a
/// new registration gets a serial above every earlier one of that person, and no serial
/// is above the last one issued.
pub fn audit_histories<'a>(
    histories: impl Iterator<Item = (IdNumber, &'a [RegistrationEvent], Option<&'a Registration>)>,
    last_serial: u64,
    persons: u64,
) -> RegistrationAudit {
    let mut a = RegistrationAudit {
        last_serial,
        persons,
        ..RegistrationAudit::default()
    };
    let mut serials = std::collections::HashMap::new();
    for (person, events, current) in histories {
        let mut state: Option<&Registration> = None;
        for e in events {
            a.events += 1;
            let r = e.registration();
            if r.person != person {
                a.breaches.push(format!(
                    "serial {}: event filed under another person",
                    r.serial
                ));
            }
            if r.serial > last_serial {
                a.breaches.push(format!(
                    "serial {} is above the last issued {last_serial}",
                    r.serial
                ));
            }
            match e {
                RegistrationEvent::Registered { .. } => {
                    if state.is_some_and(Registration::is_live) {
                        a.breaches
                            .push(format!("serial {}: registered while live", r.serial));
                    }
                    if state.is_some_and(|s| s.serial >= r.serial) {
                        a.breaches
                            .push(format!("serial {}: not above the previous one", r.serial));
                    }
                    if serials.insert(r.serial, person).is_some() {
                        a.breaches.push(format!("serial {} issued twice", r.serial));
                    }
                }
                RegistrationEvent::Modified { .. } | RegistrationEvent::Cancelled { .. } => {
                    match state {
                        Some(s) if s.is_live() && s.serial == r.serial => {}
                        _ => a
                            .breaches
                            .push(format!("serial {}: changed while not live", r.serial)),
                    }
                }
            }
            state = Some(r);
        }
        if state != current {
            a.breaches.push(format!(
                "a person's history does not replay to their registration (serial {:?})",
                current.map(|r| r.serial)
            ));
        }
        match current {
            Some(r) if r.is_live() => a.live += 1,
            Some(_) => a.cancelled += 1,
            None => {}
        }
    }
    a.ok = a.breaches.is_empty();
    a
}

/// The identity store. Implementations decide each registration write atomically per
/// person and acknowledge it only once it is durable.
pub trait IdentityStore: Send + Sync + std::fmt::Debug + 'static {
    /// `embedded` or `redis`.
    fn backend(&self) -> &'static str;

    /// Inserts or replaces insured persons. A person's new card replaces their old one;
    /// a card number that belongs to another person refuses the whole batch.
    fn upsert_persons(
        &self,
        persons: Vec<InsuredPerson>,
    ) -> BoxFuture<'_, Result<Upsert, StoreError>>;

    /// How many insured persons the registry holds.
    fn person_count(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    fn person_by_id(
        &self,
        id: IdNumber,
    ) -> BoxFuture<'_, Result<Option<InsuredPerson>, StoreError>>;

    fn person_by_card(
        &self,
        card: NhiCard,
    ) -> BoxFuture<'_, Result<Option<InsuredPerson>, StoreError>>;

    /// Registers intent; a person with a live registration gets it back instead.
    fn register(
        &self,
        person: IdNumber,
        form: RegistrationForm,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<RegisterOutcome, StoreError>>;

    /// Modifies the live registration, keeping its serial; `None` when there is none.
    fn modify(
        &self,
        person: IdNumber,
        form: RegistrationForm,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>>;

    /// Cancels the live registration (kept, marked cancelled); `None` when there is none.
    fn cancel(
        &self,
        person: IdNumber,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>>;

    /// The person's live registration.
    fn registration(
        &self,
        person: IdNumber,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>>;

    /// Every change of the person's registration, oldest first.
    fn history(
        &self,
        person: IdNumber,
    ) -> BoxFuture<'_, Result<Vec<RegistrationEvent>, StoreError>>;

    /// Marks `key` used until `expires_at` (unix seconds); `true` only for the first use.
    /// Captcha challenges and OTP codes are single-use through this.
    fn use_once(&self, key: String, expires_at: i64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The failures recorded against `subject` (kept `keep_seconds` after the latest).
    fn failures(&self, subject: String, now: i64) -> BoxFuture<'_, Result<Failures, StoreError>>;

    /// Begins a login attempt against an account, atomically: when the account's gate
    /// (by `policy`) is open, the attempt is counted as a failure at once and `Open` is
    /// answered; a success then clears the count. Otherwise nothing is counted and the
    /// gate is answered. Counting before the password is checked is what makes parallel
    /// attempts unable to slip past the lock: each one takes a count of its own.
    fn attempt(
        &self,
        subject: String,
        now: i64,
        policy: LoginPolicy,
    ) -> BoxFuture<'_, Result<Gate, StoreError>>;

    /// Records one more failure; answers the new count.
    fn record_failure(
        &self,
        subject: String,
        now: i64,
        keep_seconds: i64,
    ) -> BoxFuture<'_, Result<Failures, StoreError>>;

    /// Forgets the failures of `subject` (a successful login, an operator's unlock).
    fn clear_failures(&self, subject: String) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Registers or updates a partner; its previous key stops working.
    fn put_partner(&self, partner: Partner) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The partner holding the key with this hash.
    fn partner_by_key(
        &self,
        key_hash: String,
    ) -> BoxFuture<'_, Result<Option<Partner>, StoreError>>;

    /// Every live registration joined with its registry entry, packed for settlement.
    fn registrants(&self) -> BoxFuture<'_, Result<Vec<crate::settlement::Registrant>, StoreError>>;

    /// Checks the registration invariants over everything the store holds.
    fn audit(&self) -> BoxFuture<'_, Result<RegistrationAudit, StoreError>>;

    /// Makes everything acknowledged durable and stops background work.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}
