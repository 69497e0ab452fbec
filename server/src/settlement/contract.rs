//! The settlement contract: one run of [`settle`](super::settle) against a backend's
//! booking store, outbox and identity store, checked for order, idempotency, top-up and
//! the carry-over. Every backend runs it (the embedded stores in unit tests, Redis in the
//! system tests).

use std::collections::HashSet;

use time::OffsetDateTime;

use super::settle;
use crate::domain::{IdNumber, PhaseId, SlotId, synthetic_id};
use crate::store::contract::{INVITED_ONLY, OPEN, reserve};
use crate::store::identity::{IdentityStore, contract as people};
use crate::store::outbox::Outbox;
use crate::store::{AttendOutcome, ReserveOutcome, Store};

fn invited(ids: &[IdNumber]) -> HashSet<IdNumber> {
    ids.iter().copied().collect()
}

async fn book<S: Store>(store: &S, n: u64, slot: &str) -> crate::domain::Booking {
    match store
        .reserve(reserve(store, synthetic_id(n), slot))
        .await
        .expect("reserve")
    {
        ReserveOutcome::Booked(b) => b,
        other => panic!("{other:?}"),
    }
}

/// `store` has the store contract's fixture loaded; `identity` is empty.
///
/// Registrants 1..=12 tick AZ; 2 and 7 are in category 1, 5 in category 3; the rest have
/// none, and birth years fall with the number (1 is the oldest), so the order is 2, 7, 5,
/// then 1, 3, 4, 6, 8, … Person 1 holds a booking in `P1`, 13 ticked Moderna only, 14
/// cancelled: none of them is eligible for `P2` (AZ, ten doses).
pub async fn settlement_orders_invites_once_tops_up_and_carries_over<S: Store + Outbox>(
    store: &S,
    identity: &dyn IdentityStore,
) {
    let now = OffsetDateTime::now_utc();
    let persons = (1..=14)
        .map(|n| {
            let mut p = people::insured(n);
            p.birth_date = format!("{}-01-01", 1930 + n);
            p.categories = match n {
                2 | 7 => vec![1],
                5 => vec![3],
                _ => vec![],
            };
            p
        })
        .collect();
    identity.upsert_persons(persons).await.expect("registry");
    for n in 1..=14 {
        let brands: &[&str] = if n == 13 { &["Moderna"] } else { &["AZ"] };
        identity
            .register(synthetic_id(n), people::form("a", brands), now)
            .await
            .expect("register");
    }
    identity
        .cancel(synthetic_id(14), now)
        .await
        .expect("cancel");
    book(store, 1, "C").await;
    let p2 = PhaseId::parse(INVITED_ONLY).expect("id");

    let dry = settle(store, store, identity, INVITED_ONLY, 0.5, true, now)
        .await
        .expect("dry run");
    assert_eq!((dry.eligible, dry.invited, dry.target), (11, 5, 5));
    assert!(store.invited(p2.clone()).await.expect("read").is_empty());
    let half = settle(store, store, identity, INVITED_ONLY, 0.5, false, now)
        .await
        .expect("settle");
    assert_eq!(half.invited, 5);
    let first: Vec<IdNumber> = [2, 7, 5, 2 + 1, 4]
        .iter()
        .map(|&n| synthetic_id(n))
        .collect();
    assert_eq!(
        invited(&store.invited(p2.clone()).await.expect("read")),
        invited(&first),
        "category first, then the oldest"
    );
    let again = settle(store, store, identity, INVITED_ONLY, 0.5, false, now)
        .await
        .expect("settle");
    assert_eq!((again.invited, again.already_invited), (0, 5), "idempotent");
    let top_up = settle(store, store, identity, INVITED_ONLY, 1.0, false, now)
        .await
        .expect("settle");
    assert_eq!((top_up.invited, top_up.target), (5, 10));
    let all = store.invited(p2.clone()).await.expect("read");
    assert_eq!(all.len(), 10);
    assert!(!all.contains(&synthetic_id(1)), "holds a booking elsewhere");
    assert!(!all.contains(&synthetic_id(13)) && !all.contains(&synthetic_id(14)));
    assert!(
        !all.contains(&synthetic_id(12)),
        "the youngest waits: ten doses"
    );
    assert_eq!(store.messages().await.expect("messages").len(), 10);

    // The day of P2: 2 attends, 7 is a no-show, the others never booked.
    let b2 = book(store, 2, "Q").await;
    book(store, 7, "Q").await;
    assert!(matches!(
        store
            .attend(synthetic_id(2), b2.booking)
            .await
            .expect("attend"),
        AttendOutcome::Attended(_)
    ));
    let day = store
        .close_out(p2, vec![SlotId::parse("Q").expect("id")])
        .await
        .expect("close-out");
    assert_eq!((day.attended, day.no_show), (1, 1));
    // P1 next: the no-show and the never-booked carry over; the attendee and the person
    // holding a P1 booking do not.
    let next = settle(store, store, identity, OPEN, 1.0, false, now)
        .await
        .expect("settle");
    let p1 = invited(
        &store
            .invited(PhaseId::parse(OPEN).expect("id"))
            .await
            .expect("read"),
    );
    assert_eq!(next.eligible, 10);
    assert!(p1.contains(&synthetic_id(7)), "a no-show carries over");
    assert!(
        p1.contains(&synthetic_id(3)),
        "an invitee who never booked carries over"
    );
    assert!(
        p1.contains(&synthetic_id(12)),
        "so does who was not reached"
    );
    assert!(!p1.contains(&synthetic_id(2)), "attended");
    assert!(
        !p1.contains(&synthetic_id(1)),
        "holds a booking in this phase"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;
    use crate::store::identity::EmbeddedIdentity;

    #[tokio::test]
    async fn the_embedded_stores_meet_the_settlement_contract() {
        let store = EmbeddedStore::ephemeral();
        store
            .load_calendar(crate::store::contract::fixture(OffsetDateTime::now_utc()))
            .await
            .expect("fixture");
        settlement_orders_invites_once_tops_up_and_carries_over(
            &store,
            &EmbeddedIdentity::ephemeral(),
        )
        .await;
    }
}
