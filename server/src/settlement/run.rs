//! `settle`: one settlement run of a phase, from the stores' contents to invitations.

use std::collections::HashSet;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Plan, Registrant, Report, Rules, Standing, plan};
use crate::domain::{BookingStatus, PhaseId};
use crate::store::identity::IdentityStore;
use crate::store::outbox::{Invite, Outbox};
use crate::store::{Store, StoreError};

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Settlement {
    pub phase: PhaseId,
    pub dry_run: bool,
    /// Invited by this run.
    pub invited: u64,
    /// Registrants the rules admit who hold no booking elsewhere and have not attended,
    /// including those invited before.
    pub eligible: u64,
    /// Of the eligible, invited before this run.
    pub already_invited: u64,
    /// The phase's invited set before this run (uploaded lists included).
    pub invited_before: u64,
    /// The doses on offer: the phase's `doses`, else its slots' capacity.
    pub doses: u64,
    /// The share of the doses invited up to.
    pub share: f64,
    /// `floor(doses × share)`: the invited set's size this run fills up to.
    pub target: u64,
    #[serde(flatten)]
    pub report: Report,
}

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no phase {0}")]
    UnknownPhase(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Settles `phase`: invites, in order, the eligible registrants who are not invited yet,
/// until the phase's invited set reaches `doses × share`, each with a queued message.
///
/// Excluded: whoever holds a booked or attended booking in another phase, and whoever
/// holds any booking in this one (booked, attended or no-show). A no-show of an earlier
/// phase, and someone invited earlier who never booked, are eligible again: the
/// carry-over. Runs are idempotent (joining the invited set is the decision) and should
/// not overlap: the caller serialises them.
pub async fn settle<S: Store>(
    store: &S,
    outbox: &dyn Outbox,
    identity: &dyn IdentityStore,
    phase: &str,
    share: f64,
    dry_run: bool,
    now: OffsetDateTime,
) -> Result<Settlement, SettleError> {
    let catalog = store.catalog();
    let info = catalog
        .phase(phase)
        .ok_or_else(|| SettleError::UnknownPhase(phase.to_string()))?;
    let id = info.phase.id.clone();
    let doses = info.phase.doses.unwrap_or_else(|| {
        info.slots
            .iter()
            .map(|&s| u64::from(catalog.slot(s).slot.capacity))
            .sum()
    });
    let target = (doses as f64 * share).floor() as u64;
    let rules = Rules::of(&info.phase);
    let opening_day = info.phase.opens_at.to_offset(crate::domain::TAIWAN).date();

    let registrants = identity.registrants().await?;
    let mut excluded: HashSet<u64> = HashSet::new();
    for b in store.all_bookings().await? {
        let elsewhere =
            b.phase != id && matches!(b.status, BookingStatus::Booked | BookingStatus::Attended);
        let here = b.phase == id && b.status.is_live();
        if elsewhere || here {
            excluded.insert(b.person.packed());
        }
    }
    let invited: HashSet<u64> = store
        .invited(id.clone())
        .await?
        .into_iter()
        .map(|p| p.packed())
        .collect();
    let standing = |r: &Registrant| {
        let p = r.person.packed();
        if excluded.contains(&p) {
            Standing::Excluded
        } else if invited.contains(&p) {
            Standing::Invited
        } else {
            Standing::Open
        }
    };
    let Plan {
        eligible,
        already_invited,
        invite,
    } = plan(&registrants, &rules, standing, invited.len() as u64, target);
    let chosen: Vec<&Registrant> = invite.iter().map(|&i| &registrants[i as usize]).collect();
    let report = Report::of(chosen.iter().copied(), opening_day);
    let invited_now = if dry_run {
        chosen.len() as u64
    } else {
        let invites = chosen
            .iter()
            .map(|r| Invite {
                person: r.person,
                to: r.mobile_number(),
            })
            .collect();
        outbox.settle(id.clone(), now, invites).await?
    };
    Ok(Settlement {
        phase: id,
        dry_run,
        invited: invited_now,
        eligible,
        already_invited,
        invited_before: invited.len() as u64,
        doses,
        share,
        target,
        report,
    })
}
