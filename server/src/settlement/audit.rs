//! The journey's invariants, across the booking store, its outbox and the identity store:
//! every settled invitee was eligible at settlement time, every settled invitation has
//! exactly one message and every message an invitation, nobody books an invitation
//! phase uninvited, per slot no more attended than seats taken, and nobody attends twice
//! in a phase.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::{Registrant, Rules};
use crate::catalog::Catalog;
use crate::domain::{Booking, BookingStatus, IdNumber, PhaseId};
use crate::identity::RegistrationEvent;
use crate::store::Store;
use crate::store::StoreError;
use crate::store::identity::IdentityStore;
use crate::store::outbox::{Message, MessageState, Outbox, Settled, message_seq};

/// What the journey audit found in one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JourneyAudit {
    pub ok: bool,
    /// The phase's invited set.
    pub invited: u64,
    /// Of which settled (with a message).
    pub settled: u64,
    pub messages: u64,
    pub sent: u64,
    pub dead: u64,
    pub attended: u64,
    pub no_show: u64,
    pub breaches: Vec<String>,
}

/// Everything the audit reads once for every phase: the settled invitations first, then
/// the messages (see [`audit_phase`] on why that order).
#[derive(Debug)]
pub struct Inputs {
    pub bookings: Vec<Booking>,
    pub settled: Vec<Settled>,
    pub messages: Vec<Message>,
}

impl Inputs {
    pub async fn read<S: Store>(store: &S, outbox: &dyn Outbox) -> Result<Self, StoreError> {
        Ok(Self {
            bookings: store.all_bookings().await?,
            settled: outbox.settled().await?,
            messages: outbox.messages().await?,
        })
    }
}

/// The registration a person had at `at` (unix seconds), from their history.
fn registration_at(
    history: &[RegistrationEvent],
    at: i64,
) -> Option<&crate::identity::Registration> {
    history
        .iter()
        .map(RegistrationEvent::registration)
        .take_while(|r| r.modified_at.unix_timestamp() <= at)
        .last()
}

/// Audits `phase`; `seats_taken` gives each slot's seats taken by its counter.
pub async fn audit_phase<S: Store>(
    store: &S,
    identity: &dyn IdentityStore,
    catalog: &Catalog,
    phase: &PhaseId,
    inputs: &Inputs,
    seats_taken: impl Fn(&str) -> u64,
) -> Result<JourneyAudit, StoreError> {
    let mut a = JourneyAudit::default();
    let Some(info) = catalog.phase(phase.as_str()) else {
        return Ok(a);
    };
    let rules = Rules::of(&info.phase);
    let invited: HashSet<u64> = store
        .invited(phase.clone())
        .await?
        .into_iter()
        .map(IdNumber::packed)
        .collect();
    a.invited = invited.len() as u64;

    // Settled invitations against messages: one each way.
    let settled: Vec<&Settled> = inputs
        .settled
        .iter()
        .filter(|s| &s.phase == phase)
        .collect();
    a.settled = settled.len() as u64;
    // Invitations are read before messages: a message of a settlement that ran between the
    // two reads is newer than every invitation read, and is left to the next audit.
    let cut = settled
        .iter()
        .filter_map(|s| message_seq(&s.message))
        .max()
        .unwrap_or(0);
    let mut by_id: HashMap<&str, &Message> = HashMap::new();
    let mut per_person: HashMap<u64, u32> = HashMap::new();
    for m in inputs
        .messages
        .iter()
        .filter(|m| &m.phase == phase && message_seq(&m.id).is_some_and(|s| s <= cut))
    {
        a.messages += 1;
        match m.state {
            MessageState::Sent => a.sent += 1,
            MessageState::Dead => a.dead += 1,
            _ => {}
        }
        by_id.insert(m.id.as_str(), m);
        *per_person.entry(m.person.packed()).or_default() += 1;
    }
    let settled_people: HashSet<u64> = settled.iter().map(|s| s.person.packed()).collect();
    for (person, n) in &per_person {
        let who = IdNumber::from_packed(*person)
            .map(crate::identity::mask_id)
            .unwrap_or_default();
        if *n > 1 {
            a.breaches
                .push(format!("{who} has {n} messages for one invitation"));
        }
        if !settled_people.contains(person) {
            a.breaches
                .push(format!("a message to {who} belongs to no invitation"));
        }
    }
    for s in &settled {
        let who = crate::identity::mask_id(s.person);
        match by_id.get(s.message.as_str()) {
            Some(m) if m.person == s.person => {}
            _ => a
                .breaches
                .push(format!("the invitation of {who} has no message")),
        }
        if !invited.contains(&s.person.packed()) {
            a.breaches
                .push(format!("{who} was settled but is not in the invited set"));
        }
        // Eligible under the rules, as the registration stood at settlement time.
        let history = identity.history(s.person).await?;
        let person = identity.person_by_id(s.person).await?;
        let eligible = match (registration_at(&history, s.at), person) {
            (Some(r), Some(p)) => Registrant::new(&p, r).is_some_and(|r| rules.admits(&r)),
            _ => false,
        };
        if !eligible {
            a.breaches.push(format!(
                "{who} was invited but was not eligible at settlement time"
            ));
        }
    }

    // Bookings: invitations, attendance per slot and per person.
    let mut attended_in: HashMap<&str, u64> = HashMap::new();
    let mut attended_by: HashMap<u64, u32> = HashMap::new();
    for b in inputs.bookings.iter().filter(|b| &b.phase == phase) {
        if info.phase.invitation_required
            && b.status != BookingStatus::Cancelled
            && !invited.contains(&b.person.packed())
        {
            a.breaches.push(format!(
                "booking {} of {} has no invitation",
                b.booking,
                crate::identity::mask_id(b.person)
            ));
        }
        match b.status {
            BookingStatus::Attended => {
                a.attended += 1;
                *attended_in.entry(b.slot.as_str()).or_default() += 1;
                *attended_by.entry(b.person.packed()).or_default() += 1;
            }
            BookingStatus::NoShow => a.no_show += 1,
            _ => {}
        }
    }
    for (slot, n) in attended_in {
        let taken = seats_taken(slot);
        if n > taken {
            a.breaches
                .push(format!("slot {slot}: {n} attended, {taken} seats taken"));
        }
    }
    for (person, n) in attended_by {
        if n > 1 {
            let who = IdNumber::from_packed(person)
                .map(crate::identity::mask_id)
                .unwrap_or_default();
            a.breaches.push(format!("{who} attended {n} times"));
        }
    }
    a.breaches.sort();
    a.ok = a.breaches.is_empty();
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Registration;
    use crate::settlement::registrant::tests::registration;

    #[test]
    fn the_registration_at_an_instant_is_the_last_change_before_it() {
        let mut first = registration(1, 1, "金門縣", &["AZ"]);
        let at = first.modified_at.unix_timestamp();
        let mut later: Registration = first.clone();
        later.modified_at += time::Duration::seconds(100);
        later.form.county = "臺北市".into();
        first.form.county = "金門縣".into();
        let history = vec![
            RegistrationEvent::Registered {
                registration: first,
            },
            RegistrationEvent::Modified {
                registration: later,
            },
        ];
        assert_eq!(registration_at(&history, at - 1), None);
        assert_eq!(
            registration_at(&history, at).map(|r| r.form.county.as_str()),
            Some("金門縣")
        );
        assert_eq!(
            registration_at(&history, at + 100).map(|r| r.form.county.as_str()),
            Some("臺北市")
        );
    }
}
