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
