//! The booking service: resolves ids against the catalog, checks the booking window,
//! and hands the atomic decision to the store. Knows nothing of HTTP.

use time::OffsetDateTime;

use crate::catalog::WindowState;
use crate::domain::{BookingId, Channel, IdNumber, SlotId};
use crate::store::identity::IdentityStore;
use crate::store::{
    CancelOutcome, Change, ChangeOutcome, Idempotency, Reserve, ReserveOutcome, Store, StoreError,
};

/// A request refused before it reached the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no phase {0}")]
    UnknownPhase(String),
    #[error("no slot {0} in this phase")]
    UnknownSlot(String),
    #[error("the booking window opens in {opens_in_secs} s")]
    WindowNotOpen { opens_in_secs: u64 },
    #[error("the booking window has closed")]
    WindowClosed,
    #[error("this phase books only people with a live intent registration")]
    NotRegistered,
    #[error("the registration did not choose the {0} vaccine")]
    VaccineNotChosen(String),
}

/// Why a booking operation did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn window(state: WindowState) -> Result<(), Refusal> {
    match state {
        WindowState::Open => Ok(()),
        WindowState::NotOpen { opens_in_secs } => Err(Refusal::WindowNotOpen { opens_in_secs }),
        WindowState::Closed => Err(Refusal::WindowClosed),
    }
}

/// Who books, and through what: the channel and, at a kiosk, the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booker<'a> {
    pub person: IdNumber,
    pub channel: Channel,
    pub partner: Option<&'a str>,
}

impl Booker<'static> {
    /// A person booking on the web.
    pub fn web(person: IdNumber) -> Self {
        Booker {
            person,
            channel: Channel::Web,
            partner: None,
        }
    }
}

/// Books `slot` of `phase` for the booker.
pub async fn reserve<S: Store>(
    store: &S,
    by: Booker<'_>,
    phase: &str,
    slot: &str,
    idempotency: Option<Idempotency>,
    now: OffsetDateTime,
) -> Result<ReserveOutcome, ServiceError> {
    let catalog = store.catalog();
    let pi = catalog
        .phase_index(phase)
        .ok_or_else(|| Refusal::UnknownPhase(phase.to_string()))?;
    let index = catalog
        .slot_index(slot)
        .filter(|&s| catalog.slot(s).phase == pi)
        .ok_or_else(|| Refusal::UnknownSlot(slot.to_string()))?;
    let p = &catalog.phases[pi];
    window(p.window(now))?;
    let request = Reserve {
        phase: p.phase.id.clone(),
        slot: catalog.slot(index).slot.id.clone(),
        slot_index: index,
        invitation_required: p.phase.invitation_required,
        person: by.person,
        channel: by.channel,
        partner: by.partner.map(str::to_owned),
        idempotency,
        now,
    };
    Ok(store.reserve(request).await?)
}

/// For a phase with `registration_required`: the person needs a live intent
/// registration that chose the slot's vaccine. Unknown phases and slots, and closed
/// windows, pass here and are refused by [`reserve`] or [`change`] with their own code.
pub async fn check_registration<S: Store>(
    store: &S,
    identity: &dyn IdentityStore,
    person: IdNumber,
    slot: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let catalog = store.catalog();
    let Some(index) = catalog.slot_index(slot) else {
        return Ok(());
    };
    let s = catalog.slot(index);
    let p = &catalog.phases[s.phase];
    if !p.phase.registration_required || window(p.window(now)).is_err() {
        return Ok(());
    }
    match identity.registration(person).await? {
        None => Err(Refusal::NotRegistered.into()),
        Some(r) if !r.chose(&s.slot.vaccine) => {
            Err(Refusal::VaccineNotChosen(s.slot.vaccine.clone()).into())
        }
        Some(_) => Ok(()),
    }
}

/// Moves `booking` of `person` to `slot`, inside the window of the slot's phase.
pub async fn change<S: Store>(
    store: &S,
    person: IdNumber,
    booking: BookingId,
    slot: &str,
    idempotency: Option<Idempotency>,
    now: OffsetDateTime,
) -> Result<ChangeOutcome, ServiceError> {
    let catalog = store.catalog();
    let index = catalog
        .slot_index(slot)
        .ok_or_else(|| Refusal::UnknownSlot(slot.to_string()))?;
    let p = &catalog.phases[catalog.slot(index).phase];
    window(p.window(now))?;
    let request = Change {
        person,
        booking,
        slot: SlotId::parse(slot).map_err(|_| Refusal::UnknownSlot(slot.to_string()))?,
        slot_index: index,
        phase: p.phase.id.clone(),
        idempotency,
    };
    Ok(store.change(request).await?)
}

/// Cancels `booking` of `person`; allowed at any time, the seat returns.
pub async fn cancel<S: Store>(
    store: &S,
    person: IdNumber,
    booking: BookingId,
) -> Result<CancelOutcome, ServiceError> {
    Ok(store.cancel(person, booking).await?)
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::domain::synthetic_id;
    use crate::identity::RegisterOutcome;
    use crate::store::EmbeddedStore;
    use crate::store::contract::{OPEN, fixture};
    use crate::store::identity::{EmbeddedIdentity, contract as identity_contract};

    /// The contract fixture, with `P1` moved so that it opens in an hour (`ahead`), has
    /// closed (`behind`), or stays open; `P1` requiring registration when `registered`.
    async fn store(shift: Option<Duration>, registered: bool) -> EmbeddedStore {
        let now = OffsetDateTime::now_utc();
        let mut cal = fixture(now);
        let p1 = &mut cal.phases[0];
        if let Some(d) = shift {
            p1.opens_at += d;
            p1.closes_at = p1.opens_at + Duration::hours(1);
        }
        p1.registration_required = registered;
        let s = EmbeddedStore::ephemeral();
        s.load_calendar(cal).await.expect("fixture");
        s
    }

    async fn book(s: &EmbeddedStore, slot: &str) -> Result<ReserveOutcome, ServiceError> {
        reserve(
            s,
            Booker::web(synthetic_id(1)),
            OPEN,
            slot,
            None,
            OffsetDateTime::now_utc(),
        )
        .await
    }

    #[tokio::test]
    async fn a_booking_outside_the_window_is_refused_with_when_it_opens() {
        let ahead = store(Some(Duration::hours(2)), false).await;
        match book(&ahead, "C").await {
            Err(ServiceError::Refused(Refusal::WindowNotOpen { opens_in_secs })) => {
                assert!((3_500..=3_601).contains(&opens_in_secs), "{opens_in_secs}");
            }
            other => panic!("{other:?}"),
        }
        let behind = store(Some(Duration::hours(-3)), false).await;
        assert!(matches!(
            book(&behind, "C").await,
            Err(ServiceError::Refused(Refusal::WindowClosed))
        ));
        let open = store(None, false).await;
        assert!(matches!(
            book(&open, "C").await,
            Ok(ReserveOutcome::Booked(_))
        ));
    }

    #[tokio::test]
    async fn a_slot_of_another_phase_or_none_is_unknown() {
        let s = store(None, false).await;
        // `Q` belongs to phase P2, not P1.
        assert!(matches!(
            book(&s, "Q").await,
            Err(ServiceError::Refused(Refusal::UnknownSlot(_)))
        ));
        assert!(matches!(
            book(&s, "nope").await,
            Err(ServiceError::Refused(Refusal::UnknownSlot(_)))
        ));
    }

    #[tokio::test]
    async fn a_registration_phase_books_only_registrants_who_chose_the_vaccine() {
        let now = OffsetDateTime::now_utc();
        let who = synthetic_id(1);
        let plain = store(None, false).await;
        let identity = EmbeddedIdentity::ephemeral();
        // A phase without the flag books anyone.
        check_registration(&plain, &identity, who, "C", now)
            .await
            .expect("no registration needed");
        let required = store(None, true).await;
        assert!(matches!(
            check_registration(&required, &identity, who, "C", now).await,
            Err(ServiceError::Refused(Refusal::NotRegistered))
        ));
        let r = identity
            .register(who, identity_contract::form("a", &["Moderna"]), now)
            .await
            .expect("register");
        assert!(matches!(r, RegisterOutcome::Registered(_)));
        // The fixture's slots are AZ; this person chose Moderna only.
        assert!(matches!(
            check_registration(&required, &identity, who, "C", now).await,
            Err(ServiceError::Refused(Refusal::VaccineNotChosen(v))) if v == "AZ"
        ));
        identity
            .modify(who, identity_contract::form("a", &["AZ"]), now)
            .await
            .expect("modify");
        check_registration(&required, &identity, who, "C", now)
            .await
            .expect("registered for AZ");
        // Outside the window the check passes through: the window's own refusal follows.
        let closed = store(Some(Duration::hours(-3)), true).await;
        check_registration(&closed, &EmbeddedIdentity::ephemeral(), who, "C", now)
            .await
            .expect("the window decides");
    }
}
