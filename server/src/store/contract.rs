//! The store contract: behaviour every [`Store`] backend must show, as reusable checks.
//!
//! Each check takes a fresh, empty store, loads [`fixture`], and panics with a message
//! on the first deviation. Backends run all of them with [`run_all`] from their tests,
//! so the embedded store (the executable specification) and Redis are held to one text.

use std::future::Future;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{CancelOutcome, Change, ChangeOutcome, Idempotency, Reserve, ReserveOutcome, Store};
use crate::domain::{
    BookingStatus, Calendar, Channel, IdNumber, Phase, PhaseId, Site, SiteId, Slot, SlotId,
    synthetic_id,
};

/// The open phase of the fixture.
pub const OPEN: &str = "P1";
/// A phase that requires an invitation.
pub const INVITED_ONLY: &str = "P2";

fn id<T>(parse: fn(&str) -> Result<T, crate::domain::IdError>, raw: &str) -> T {
    parse(raw).expect("fixture ids are valid")
}

/// Two sites; phase `P1` (open, no invitation) with slots `A`..`E` of capacity 1, 1, 5,
/// 50, 100; phase `P2` (open, invitation required) with slot `Q` of capacity 10.
pub fn fixture(now: OffsetDateTime) -> Calendar {
    let site = |n: &str, district: &str| Site {
        id: id(SiteId::parse, n),
        name: format!("site {n}"),
        county: "臺北市".into(),
        district: district.into(),
        address: String::new(),
    };
    let slot = |n: &str, cap: u32| Slot {
        id: id(SlotId::parse, n),
        site: id(SiteId::parse, "S1"),
        date: "2021-07-16".into(),
        period: "09:00-12:00".into(),
        vaccine: "AZ".into(),
        capacity: cap,
    };
    let phase = |n: &str, invitation_required, slots| Phase {
        id: id(PhaseId::parse, n),
        name: format!("phase {n}"),
        vaccines: vec!["AZ".into()],
        opens_at: now - Duration::hours(1),
        closes_at: now + Duration::hours(24),
        invitation_required,
        registration_required: false,
        eligibility: None,
        doses: None,
        waiting_room: None,
        slots,
    };
    Calendar {
        sites: vec![site("S1", "中正區"), site("S2", "大安區")],
        phases: vec![
            phase(
                OPEN,
                false,
                vec![
                    slot("A", 1),
                    slot("B", 1),
                    slot("C", 5),
                    slot("D", 50),
                    slot("E", 100),
                ],
            ),
            phase(INVITED_ONLY, true, vec![slot("Q", 10)]),
        ],
    }
}

/// A reservation of `slot` in its phase of the fixture for `person`.
pub fn reserve<S: Store>(store: &S, person: IdNumber, slot: &str) -> Reserve {
    let catalog = store.catalog();
    let index = catalog.slot_index(slot).expect("fixture slot");
    let phase = &catalog.phases[catalog.slot(index).phase].phase;
    Reserve {
        phase: phase.id.clone(),
        slot: id(SlotId::parse, slot),
        slot_index: index,
        invitation_required: phase.invitation_required,
        person,
        channel: Channel::Web,
        partner: None,
        idempotency: None,
        now: OffsetDateTime::now_utc(),
    }
}

/// A change of `booking` to `slot` (and that slot's phase) for `person`.
pub fn change<S: Store>(
    store: &S,
    person: IdNumber,
    booking: &crate::domain::Booking,
    slot: &str,
) -> Change {
    let catalog = store.catalog();
    let index = catalog.slot_index(slot).expect("fixture slot");
    Change {
        person,
        booking: booking.booking.clone(),
        slot: id(SlotId::parse, slot),
        slot_index: index,
        // The phase of the new slot: the store refuses a move across phases.
        phase: catalog.phases[catalog.slot(index).phase].phase.id.clone(),
        idempotency: None,
    }
}

/// Free seats of a fixture slot, from the store's counters.
pub fn remaining_of<S: Store>(store: &S, slot: &str) -> u32 {
    remaining(store, slot)
}

fn remaining<S: Store>(store: &S, slot: &str) -> u32 {
    store
        .inventory()
        .remaining(store.catalog().slot_index(slot).expect("fixture slot"))
}

async fn assert_audit_clean<S: Store>(store: &S) {
    let report = store.audit().await.expect("audit runs");
    assert!(report.ok, "audit breaches: {:?}", report.breaches);
}

async fn loaded<S: Store>(store: S) -> S {
    store
        .load_calendar(fixture(OffsetDateTime::now_utc()))
        .await
        .expect("fixture loads");
    store
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    reserve_takes_a_seat_and_keeps_the_booking(loaded(make().await).await).await;
    one_live_booking_per_person_per_phase(loaded(make().await).await).await;
    a_full_slot_says_so_and_keeps_no_booking(loaded(make().await).await).await;
    invitations_gate_invitation_phases(loaded(make().await).await).await;
    idempotency_keys_replay_the_first_answer(loaded(make().await).await).await;
    change_takes_the_new_seat_before_releasing_the_old(loaded(make().await).await).await;
    cancel_returns_the_seat_and_is_idempotent(loaded(make().await).await).await;
    calendar_loads_are_idempotent_and_guard_booked_seats(loaded(make().await).await).await;
    concurrent_people_never_overbook(Arc::new(loaded(make().await).await)).await;
    one_person_racing_for_many_slots_gets_one(Arc::new(loaded(make().await).await)).await;
    a_kiosk_booking_keeps_its_partner(loaded(make().await).await).await;
    a_change_replays_by_key_keeps_a_same_slot_and_refuses_a_cancelled_booking(
        loaded(make().await).await,
    )
    .await;
    check_in_and_close_out_settle_the_day(loaded(make().await).await).await;
    check_ins_racing_a_close_out_each_end_once(Arc::new(loaded(make().await).await)).await;
}

/// A check-in finds the booking by its code and marks it attended, twice is the same;
/// an attended or no-show booking can neither change nor be cancelled; a close-out marks
/// the day's unattended bookings no-show, keeps their seats, is idempotent, and the
/// no-show cannot book again in the phase. Every booking and the invited set read back.
pub async fn check_in_and_close_out_settle_the_day<S: Store>(store: S) {
    let (p1, p2, p3, p4) = (
        synthetic_id(1),
        synthetic_id(2),
        synthetic_id(3),
        synthetic_id(4),
    );
    let book = |p, slot| {
        let r = reserve(&store, p, slot);
        let s = &store;
        async move {
            match s.reserve(r).await.expect("reserve") {
                ReserveOutcome::Booked(b) => b,
                other => panic!("{other:?}"),
            }
        }
    };
    let a = book(p1, "A").await;
    let b = book(p2, "B").await;
    let _c = book(p3, "C").await;
    let d = book(p4, "C").await;
    store.cancel(p4, d.booking.clone()).await.expect("cancel");

    let found = store.booking_by_code(&a.code).await.expect("lookup");
    assert_eq!(found.as_ref().map(|b| &b.booking), Some(&a.booking));
    assert_eq!(store.booking_by_code("AAAAAA").await.expect("lookup"), None);
    match store.attend(p1, a.booking.clone()).await.expect("attend") {
        super::AttendOutcome::Attended(x) => assert_eq!(x.status, BookingStatus::Attended),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.attend(p1, a.booking.clone()).await.expect("attend"),
        super::AttendOutcome::AlreadyAttended(_)
    ));
    assert!(matches!(
        store.attend(p2, a.booking.clone()).await.expect("attend"),
        super::AttendOutcome::UnknownBooking
    ));
    assert!(matches!(
        store.attend(p4, d.booking.clone()).await.expect("attend"),
        super::AttendOutcome::Cancelled(_)
    ));
    assert!(matches!(
        store.cancel(p1, a.booking.clone()).await.expect("cancel"),
        CancelOutcome::Final(_)
    ));
    assert!(matches!(
        store
            .change(change(&store, p1, &a, "D"))
            .await
            .expect("change"),
        ChangeOutcome::NotLive(_)
    ));

    let day: Vec<SlotId> = ["A", "B", "C"]
        .iter()
        .map(|s| id(SlotId::parse, s))
        .collect();
    let open = id(PhaseId::parse, OPEN);
    let first = store
        .close_out(open.clone(), day.clone())
        .await
        .expect("close-out");
    assert_eq!((first.attended, first.no_show), (1, 2));
    let again = store.close_out(open.clone(), day).await.expect("close-out");
    assert_eq!(again, first, "a close-out is idempotent");
    assert_eq!(
        remaining(&store, "B"),
        0,
        "a no-show's seat is not returned"
    );
    let mine = store.bookings_of(p2).await.expect("bookings");
    assert_eq!(mine[0].status, BookingStatus::NoShow);
    match store
        .reserve(reserve(&store, p2, "D"))
        .await
        .expect("reserve")
    {
        ReserveOutcome::AlreadyBooked(x) => assert_eq!(x.booking, b.booking),
        other => panic!("a no-show books again in the phase: {other:?}"),
    }
    assert!(matches!(
        store.cancel(p2, b.booking.clone()).await.expect("cancel"),
        CancelOutcome::Final(_)
    ));
    // Another phase is open to them.
    store
        .invite(id(PhaseId::parse, INVITED_ONLY), vec![p2])
        .await
        .expect("invite");
    assert!(matches!(
        store
            .reserve(reserve(&store, p2, "Q"))
            .await
            .expect("reserve"),
        ReserveOutcome::Booked(_)
    ));
    assert_eq!(
        store
            .invited(id(PhaseId::parse, INVITED_ONLY))
            .await
            .expect("invited"),
        vec![p2]
    );
    let all = store.all_bookings().await.expect("all");
    assert_eq!(all.len(), 5);
    assert_eq!(
        all.iter()
            .filter(|b| b.status == BookingStatus::NoShow)
            .count(),
        2
    );
    assert_audit_clean(&store).await;
}

/// Check-ins racing a close-out of their day: every booking ends attended or no-show,
/// the counts add up, and the audit holds.
pub async fn check_ins_racing_a_close_out_each_end_once<S: Store>(store: Arc<S>) {
    let mut booked = Vec::new();
    for n in 0..40 {
        let p = synthetic_id(100 + n);
        match store
            .reserve(reserve(&*store, p, "D"))
            .await
            .expect("reserve")
        {
            ReserveOutcome::Booked(b) => booked.push((p, b)),
            other => panic!("{other:?}"),
        }
    }
    let mut tasks = Vec::new();
    for (p, b) in booked.iter().step_by(2).cloned() {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.attend(p, b.booking).await }));
    }
    let s = store.clone();
    let close = tokio::spawn(async move {
        s.close_out(id(PhaseId::parse, OPEN), vec![id(SlotId::parse, "D")])
            .await
    });
    for t in tasks {
        assert!(matches!(
            t.await.expect("task").expect("attend"),
            super::AttendOutcome::Attended(_)
        ));
    }
    close.await.expect("task").expect("close-out");
    let settled = store
        .close_out(id(PhaseId::parse, OPEN), vec![id(SlotId::parse, "D")])
        .await
        .expect("close-out");
    assert_eq!((settled.attended, settled.no_show), (20, 20));
    assert_audit_clean(&*store).await;
}

/// A change retried with its key answers the change again (and another change under that
/// key is refused); a change to the slot already held changes nothing; a cancelled booking
/// cannot change.
pub async fn a_change_replays_by_key_keeps_a_same_slot_and_refuses_a_cancelled_booking<S: Store>(
    store: S,
) {
    let p = synthetic_id(50);
    let ReserveOutcome::Booked(b) = store.reserve(reserve(&store, p, "C")).await.expect("up")
    else {
        panic!("expected a booking");
    };
    let key = |fp: &str| {
        Some(Idempotency {
            key: "move-1".into(),
            fingerprint: fp.into(),
        })
    };
    let mut to_d = change(&store, p, &b, "D");
    to_d.idempotency = key("fp-d");
    let ChangeOutcome::Changed(moved) = store.change(to_d.clone()).await.expect("up") else {
        panic!("expected a change");
    };
    assert_eq!(
        store.change(to_d).await.expect("up"),
        ChangeOutcome::Unchanged(moved.clone()),
        "a retry under the same key answers the change"
    );
    let mut to_e = change(&store, p, &b, "E");
    to_e.idempotency = key("fp-e");
    assert_eq!(
        store.change(to_e).await.expect("up"),
        ChangeOutcome::KeyReused
    );
    assert_eq!(
        store.change(change(&store, p, &b, "D")).await.expect("up"),
        ChangeOutcome::Unchanged(moved.clone()),
        "already in that slot"
    );
    assert_eq!((remaining(&store, "C"), remaining(&store, "D")), (5, 49));
    store.cancel(p, b.booking.clone()).await.expect("up");
    let cancelled = store.bookings_of(p).await.expect("up");
    assert!(matches!(
        store.change(change(&store, p, &b, "E")).await.expect("up"),
        ChangeOutcome::NotLive(c) if c == cancelled[0]
    ));
    assert_eq!(
        remaining(&store, "E"),
        100,
        "no seat taken for a refused change"
    );
    assert_audit_clean(&store).await;
}

/// A booking made at a kiosk records the channel and the partner, and keeps both.
pub async fn a_kiosk_booking_keeps_its_partner<S: Store>(store: S) {
    let person = synthetic_id(3);
    let mut r = reserve(&store, person, "D");
    r.channel = Channel::Kiosk;
    r.partner = Some("family-mart".into());
    let ReserveOutcome::Booked(b) = store.reserve(r).await.expect("store up") else {
        panic!("expected a booking");
    };
    assert_eq!(
        (b.channel, b.partner.as_deref()),
        (Channel::Kiosk, Some("family-mart"))
    );
    let kept = store.bookings_of(person).await.expect("store up");
    assert_eq!(kept, vec![b], "the partner is kept with the booking");
    let web = store
        .reserve(reserve(&store, synthetic_id(4), "D"))
        .await
        .expect("store up");
    assert!(matches!(web, ReserveOutcome::Booked(b) if b.partner.is_none()));
    assert!(store.audit().await.expect("audit").ok);
}

/// A seat is taken, the booking is the person's, and the audit agrees.
pub async fn reserve_takes_a_seat_and_keeps_the_booking<S: Store>(store: S) {
    let person = synthetic_id(1);
    let outcome = store
        .reserve(reserve(&store, person, "C"))
        .await
        .expect("store up");
    let ReserveOutcome::Booked(b) = outcome else {
        panic!("expected a booking, got {outcome:?}");
    };
    assert_eq!(
        (b.person, b.slot.as_str(), b.status),
        (person, "C", BookingStatus::Booked)
    );
    assert_eq!(b.code.len(), 6);
    assert_eq!(remaining(&store, "C"), 4);
    let mine = store.bookings_of(person).await.expect("store up");
    assert_eq!(mine, vec![b]);
    assert!(
        store
            .bookings_of(synthetic_id(2))
            .await
            .expect("store up")
            .is_empty()
    );
    assert_audit_clean(&store).await;
}

/// Another slot in the same phase is refused with the existing booking; the same slot
/// again is a retry; another phase is free.
pub async fn one_live_booking_per_person_per_phase<S: Store>(store: S) {
    let person = synthetic_id(7);
    let first = match store
        .reserve(reserve(&store, person, "C"))
        .await
        .expect("up")
    {
        ReserveOutcome::Booked(b) => b,
        o => panic!("expected a booking, got {o:?}"),
    };
    assert_eq!(
        store
            .reserve(reserve(&store, person, "D"))
            .await
            .expect("up"),
        ReserveOutcome::AlreadyBooked(first.clone())
    );
    assert_eq!(
        store
            .reserve(reserve(&store, person, "C"))
            .await
            .expect("up"),
        ReserveOutcome::AlreadyHeld(first.clone())
    );
    assert_eq!((remaining(&store, "C"), remaining(&store, "D")), (4, 50));
    assert_audit_clean(&store).await;
}

/// A full slot answers `SlotFull` and keeps nothing of the attempt.
pub async fn a_full_slot_says_so_and_keeps_no_booking<S: Store>(store: S) {
    assert!(matches!(
        store
            .reserve(reserve(&store, synthetic_id(1), "A"))
            .await
            .expect("up"),
        ReserveOutcome::Booked(_)
    ));
    let loser = synthetic_id(2);
    assert_eq!(
        store
            .reserve(reserve(&store, loser, "A"))
            .await
            .expect("up"),
        ReserveOutcome::SlotFull
    );
    assert!(store.bookings_of(loser).await.expect("up").is_empty());
    assert!(matches!(
        store
            .reserve(reserve(&store, loser, "B"))
            .await
            .expect("up"),
        ReserveOutcome::Booked(_)
    ));
    assert_audit_clean(&store).await;
}

/// Nobody books an invitation phase before being invited; inviting twice counts once.
pub async fn invitations_gate_invitation_phases<S: Store>(store: S) {
    let (yes, no) = (synthetic_id(10), synthetic_id(11));
    let phase = id(PhaseId::parse, INVITED_ONLY);
    assert_eq!(
        store
            .invite(phase.clone(), vec![yes, yes])
            .await
            .expect("up"),
        1
    );
    assert_eq!(store.invite(phase, vec![yes]).await.expect("up"), 0);
    assert_eq!(
        store.reserve(reserve(&store, no, "Q")).await.expect("up"),
        ReserveOutcome::NotInvited
    );
    assert!(matches!(
        store.reserve(reserve(&store, yes, "Q")).await.expect("up"),
        ReserveOutcome::Booked(_)
    ));
    assert_eq!(remaining(&store, "Q"), 9);
    assert_audit_clean(&store).await;
}

/// The same key and request answers the first booking; the same key with another
/// request is refused.
pub async fn idempotency_keys_replay_the_first_answer<S: Store>(store: S) {
    let person = synthetic_id(3);
    let key = |fp: &str| Idempotency {
        key: "k-1".into(),
        fingerprint: fp.into(),
    };
    let mut r = reserve(&store, person, "C");
    r.idempotency = Some(key("fp-c"));
    let first = match store.reserve(r.clone()).await.expect("up") {
        ReserveOutcome::Booked(b) => b,
        o => panic!("expected a booking, got {o:?}"),
    };
    assert_eq!(
        store.reserve(r).await.expect("up"),
        ReserveOutcome::Replayed(first)
    );
    let mut other = reserve(&store, person, "D");
    other.idempotency = Some(key("fp-d"));
    assert_eq!(
        store.reserve(other).await.expect("up"),
        ReserveOutcome::KeyReused
    );
    assert_eq!(remaining(&store, "C"), 4);
    // A refusal is not remembered: its key is free for the next request, whatever it asks.
    let late = synthetic_id(30);
    let _ = store
        .reserve(reserve(&store, synthetic_id(31), "A"))
        .await
        .expect("up");
    let mut full = reserve(&store, late, "A");
    full.idempotency = Some(Idempotency {
        key: "k-late".into(),
        fingerprint: "fp-a".into(),
    });
    assert_eq!(
        store.reserve(full).await.expect("up"),
        ReserveOutcome::SlotFull
    );
    let mut roomy = reserve(&store, late, "E");
    roomy.idempotency = Some(Idempotency {
        key: "k-late".into(),
        fingerprint: "fp-e".into(),
    });
    assert!(
        matches!(
            store.reserve(roomy).await.expect("up"),
            ReserveOutcome::Booked(_)
        ),
        "a key first sent with a refused request books another slot"
    );
    assert_audit_clean(&store).await;
}

/// A change to a full slot keeps the old booking; a change to a free one moves it and
/// frees the old seat; a slot of another phase is refused.
pub async fn change_takes_the_new_seat_before_releasing_the_old<S: Store>(store: S) {
    let (p, q) = (synthetic_id(4), synthetic_id(5));
    let _ = store.reserve(reserve(&store, q, "A")).await.expect("up");
    let b = match store.reserve(reserve(&store, p, "C")).await.expect("up") {
        ReserveOutcome::Booked(b) => b,
        o => panic!("expected a booking, got {o:?}"),
    };
    assert_eq!(
        store.change(change(&store, p, &b, "A")).await.expect("up"),
        ChangeOutcome::SlotFull(b.clone())
    );
    assert_eq!(store.bookings_of(p).await.expect("up"), vec![b.clone()]);
    assert_eq!(
        store.change(change(&store, p, &b, "Q")).await.expect("up"),
        ChangeOutcome::OtherPhase
    );
    let moved = match store.change(change(&store, p, &b, "D")).await.expect("up") {
        ChangeOutcome::Changed(m) => m,
        o => panic!("expected a change, got {o:?}"),
    };
    assert_eq!(
        (moved.booking.clone(), moved.slot.as_str()),
        (b.booking.clone(), "D")
    );
    assert_eq!((remaining(&store, "C"), remaining(&store, "D")), (5, 49));
    assert_eq!(
        store.change(change(&store, q, &b, "E")).await.expect("up"),
        ChangeOutcome::UnknownBooking
    );
    assert_audit_clean(&store).await;
}

/// Cancelling returns the seat, twice is harmless, and someone else's booking is unknown.
pub async fn cancel_returns_the_seat_and_is_idempotent<S: Store>(store: S) {
    let (p, q) = (synthetic_id(8), synthetic_id(9));
    let b = match store.reserve(reserve(&store, p, "A")).await.expect("up") {
        ReserveOutcome::Booked(b) => b,
        o => panic!("expected a booking, got {o:?}"),
    };
    assert_eq!(
        store.cancel(q, b.booking.clone()).await.expect("up"),
        CancelOutcome::UnknownBooking
    );
    let CancelOutcome::Cancelled(c) = store.cancel(p, b.booking.clone()).await.expect("up") else {
        panic!("expected a cancellation");
    };
    assert_eq!(c.status, BookingStatus::Cancelled);
    assert_eq!(remaining(&store, "A"), 1);
    assert!(matches!(
        store.cancel(p, b.booking.clone()).await.expect("up"),
        CancelOutcome::AlreadyCancelled(_)
    ));
    assert_eq!(remaining(&store, "A"), 1);
    assert!(matches!(
        store.reserve(reserve(&store, q, "A")).await.expect("up"),
        ReserveOutcome::Booked(_)
    ));
    // The person may book again in the phase once the first is cancelled.
    assert!(matches!(
        store.reserve(reserve(&store, p, "C")).await.expect("up"),
        ReserveOutcome::Booked(_)
    ));
    assert_audit_clean(&store).await;
}

/// Loading the same calendar again changes nothing; raising a capacity adds seats;
/// lowering one below the booked seats is refused and changes nothing.
pub async fn calendar_loads_are_idempotent_and_guard_booked_seats<S: Store>(store: S) {
    let now = OffsetDateTime::now_utc();
    for n in 0..3 {
        let _ = store
            .reserve(reserve(&store, synthetic_id(100 + n), "C"))
            .await
            .expect("up");
    }
    let mut cal = fixture(now);
    let report = store.load_calendar(cal.clone()).await.expect("reload");
    assert_eq!(report.capacity_changes, 0);
    assert_eq!(remaining(&store, "C"), 2);
    cal.phases[0].slots[2].capacity = 8;
    store.load_calendar(cal.clone()).await.expect("raise");
    assert_eq!(remaining(&store, "C"), 5);
    cal.phases[0].slots[2].capacity = 2;
    assert!(store.load_calendar(cal.clone()).await.is_err());
    assert_eq!(remaining(&store, "C"), 5);
    cal.phases[0].slots[2].capacity = 3;
    store.load_calendar(cal).await.expect("lower to booked");
    assert_eq!(remaining(&store, "C"), 0);
    assert_audit_clean(&store).await;
}

/// 200 people race for 50 seats: exactly 50 bookings.
pub async fn concurrent_people_never_overbook<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let r = reserve(&*store, synthetic_id(1_000 + n), "D");
                store.reserve(r).await.expect("up")
            })
        })
        .collect();
    let mut booked = 0;
    for t in tasks {
        match t.await.expect("task") {
            ReserveOutcome::Booked(_) => booked += 1,
            ReserveOutcome::SlotFull => {}
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!(booked, 50);
    assert_eq!(remaining(&*store, "D"), 0);
    assert_audit_clean(&*store).await;
}

/// One person races for five slots at once: one booking, four refusals, no seat leaked.
pub async fn one_person_racing_for_many_slots_gets_one<S: Store>(store: Arc<S>) {
    let person = synthetic_id(42);
    let tasks: Vec<_> = ["A", "B", "C", "D", "E"]
        .into_iter()
        .map(|slot| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .reserve(reserve(&*store, person, slot))
                    .await
                    .expect("up")
            })
        })
        .collect();
    let mut booked = 0;
    for t in tasks {
        match t.await.expect("task") {
            ReserveOutcome::Booked(_) => booked += 1,
            ReserveOutcome::AlreadyBooked(_) => {}
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!(booked, 1);
    let taken: u32 = ["A", "B", "C", "D", "E"]
        .iter()
        .zip([1, 1, 5, 50, 100])
        .map(|(s, cap)| cap - remaining(&*store, s))
        .sum();
    assert_eq!(taken, 1);
    assert_audit_clean(&*store).await;
}
