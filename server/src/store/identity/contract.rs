//! The identity-store contract: behaviour every [`IdentityStore`] backend must show.
//!
//! Each check takes a fresh, empty store and panics on the first deviation. Backends run
//! them all with [`run_all`], so the embedded store and Redis are held to one text.

use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{IdentityStore, Upsert};
use crate::domain::synthetic_id;
use crate::identity::partner::{Partner, PartnerKind, key_hash};
use crate::identity::{
    InsuredPerson, NhiCard, RegisterOutcome, RegistrationEvent, RegistrationForm,
    RegistrationStatus,
};

/// An insured person of the fixture: person `n` has card `100000000000 + n`.
pub fn insured(n: u64) -> InsuredPerson {
    InsuredPerson {
        id_number: synthetic_id(n),
        nhi_card: NhiCard::from_u64(100_000_000_000 + n).expect("12 digits"),
        birth_date: "1960-01-01".into(),
        categories: vec![],
        password_hash: None,
        otp_secret: None,
    }
}

/// A valid form; `vaccines` as given.
pub fn form(name: &str, vaccines: &[&str]) -> RegistrationForm {
    RegistrationForm {
        name: name.into(),
        mobile: "0912345678".into(),
        county: "臺北市".into(),
        district: "中正區".into(),
        vaccines: vaccines.iter().map(|v| (*v).to_string()).collect(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: IdentityStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    registry_finds_people_by_id_and_card(&make().await).await;
    register_modify_cancel_and_register_again(&make().await).await;
    a_second_registration_gets_the_first_back(&make().await).await;
    modify_and_cancel_need_a_live_registration(&make().await).await;
    single_use_marks_are_used_once(&make().await).await;
    failures_count_and_clear(&make().await).await;
    a_partner_key_works_until_rotated(&make().await).await;
    racing_registrations_lose_and_merge_nobody(Arc::new(make().await)).await;
    attempts_are_counted_before_they_are_checked(Arc::new(make().await)).await;
    registrants_are_the_live_registrations_joined_with_the_registry(&make().await).await;
}

/// Settlement's input: every live registration with its person's birth date and
/// categories; cancelled ones and people without a registration are not in it.
pub async fn registrants_are_the_live_registrations_joined_with_the_registry(
    s: &impl IdentityStore,
) {
    let mut people: Vec<InsuredPerson> = (1..=4).map(insured).collect();
    people[1].categories = vec![3];
    people[1].birth_date = "1940-05-06".into();
    s.upsert_persons(people).await.expect("upsert");
    for n in 1..=3 {
        s.register(synthetic_id(n), form("a", &["AZ"]), now())
            .await
            .expect("register");
    }
    s.cancel(synthetic_id(3), now()).await.expect("cancel");
    let mut got = s.registrants().await.expect("registrants");
    got.sort_by_key(|r| r.serial);
    assert_eq!(
        got.iter().map(|r| r.person).collect::<Vec<_>>(),
        vec![synthetic_id(1), synthetic_id(2)]
    );
    assert_eq!(got[1].first_category(), Some(3));
    assert_eq!(got[1].age_on(time::macros::date!(2021 - 07 - 13)), 81);
    assert_eq!(got[0].mobile_number(), "0912345678");
}

/// Login attempts: each counts at once; past the thresholds the gate closes without
/// counting; a clear opens it. Fifty attempts in parallel get exactly `lock_after` tries.
pub async fn attempts_are_counted_before_they_are_checked<S: IdentityStore>(s: Arc<S>) {
    use crate::identity::login::{Gate, LoginPolicy};
    let policy = LoginPolicy {
        throttle_after: 3,
        throttle_seconds: 30,
        lock_after: 5,
        lock_seconds: 600,
        address_throttle_after: 100,
    };
    let t = now().unix_timestamp();
    let subject = || "acct:attempts".to_string();
    for _ in 0..3 {
        assert_eq!(
            s.attempt(subject(), t, policy).await.expect("attempt"),
            Gate::Open
        );
    }
    assert_eq!(
        s.attempt(subject(), t + 10, policy).await.expect("attempt"),
        Gate::Throttled { retry_after: 20 }
    );
    assert_eq!(
        s.failures(subject(), t).await.expect("read").count,
        3,
        "a refusal is not counted"
    );
    assert_eq!(
        s.attempt(subject(), t + 30, policy).await.expect("attempt"),
        Gate::Open
    );
    assert_eq!(
        s.attempt(subject(), t + 60, policy).await.expect("attempt"),
        Gate::Open
    );
    assert_eq!(
        s.attempt(subject(), t + 61, policy).await.expect("attempt"),
        Gate::Locked { retry_after: 599 }
    );
    s.clear_failures(subject()).await.expect("clear");
    assert_eq!(
        s.attempt(subject(), t + 62, policy).await.expect("attempt"),
        Gate::Open
    );

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.attempt("acct:race".into(), t, policy).await })
        })
        .collect();
    let mut open = 0;
    for task in tasks {
        if task.await.expect("task").expect("attempt") == Gate::Open {
            open += 1;
        }
    }
    assert_eq!(
        open, policy.throttle_after,
        "parallel attempts cannot pass the gate"
    );
}

pub async fn registry_finds_people_by_id_and_card(s: &impl IdentityStore) {
    let n = s
        .upsert_persons((1..=3).map(insured).collect())
        .await
        .expect("upsert");
    assert_eq!(n, Upsert::Written(3));
    assert_eq!(s.person_count().await.expect("count"), 3);
    let p = s.person_by_id(synthetic_id(2)).await.expect("read");
    assert_eq!(p, Some(insured(2)));
    let by_card = s.person_by_card(insured(3).nhi_card).await.expect("read");
    assert_eq!(by_card.map(|p| p.id_number), Some(synthetic_id(3)));
    assert_eq!(
        s.person_by_card(NhiCard::from_u64(999).expect("card"))
            .await
            .expect("read"),
        None
    );
    // Card numbers keep their leading zeros.
    let mut zero = insured(4);
    zero.nhi_card = NhiCard::parse("000012345678").expect("card");
    s.upsert_persons(vec![zero.clone()]).await.expect("upsert");
    assert_eq!(
        s.person_by_card(zero.nhi_card).await.expect("read"),
        Some(zero)
    );
    // A new card replaces the old one; the person is not duplicated.
    let mut moved = insured(2);
    moved.nhi_card = NhiCard::from_u64(555_555_555_555).expect("card");
    moved.categories = vec![3];
    s.upsert_persons(vec![moved.clone()]).await.expect("upsert");
    assert_eq!(s.person_count().await.expect("count"), 4);
    // Another person's card refuses the whole batch.
    let mut thief = insured(9);
    thief.nhi_card = moved.nhi_card;
    assert_eq!(
        s.upsert_persons(vec![insured(8), thief])
            .await
            .expect("upsert"),
        Upsert::CardTaken { index: 1 }
    );
    assert_eq!(
        s.person_by_id(synthetic_id(8)).await.expect("read"),
        None,
        "nothing written"
    );
    assert_eq!(
        s.person_by_card(moved.nhi_card)
            .await
            .expect("read")
            .map(|p| p.id_number),
        Some(synthetic_id(2))
    );
    assert_eq!(
        s.person_by_card(moved.nhi_card).await.expect("read"),
        Some(moved)
    );
    assert_eq!(
        s.person_by_card(insured(2).nhi_card).await.expect("read"),
        None,
        "the replaced card no longer logs in"
    );
}

pub async fn register_modify_cancel_and_register_again(s: &impl IdentityStore) {
    let who = synthetic_id(10);
    let first = match s
        .register(who, form("王小明", &["AZ", "Moderna"]), now())
        .await
    {
        Ok(RegisterOutcome::Registered(r)) => r,
        other => panic!("register: {other:?}"),
    };
    assert_eq!(first.status, RegistrationStatus::Registered);
    assert!(first.serial > 0);
    let modified = s
        .modify(who, form("王小明", &["Moderna"]), now())
        .await
        .expect("modify")
        .expect("registered");
    assert_eq!(modified.serial, first.serial, "modify keeps the serial");
    assert_eq!(modified.form.vaccines, vec!["Moderna"]);
    assert_eq!(
        s.registration(who)
            .await
            .expect("read")
            .map(|r| r.form.vaccines),
        Some(vec!["Moderna".to_string()])
    );
    let cancelled = s.cancel(who, now()).await.expect("cancel").expect("live");
    assert_eq!(cancelled.status, RegistrationStatus::Cancelled);
    assert_eq!(cancelled.serial, first.serial);
    assert_eq!(s.registration(who).await.expect("read"), None);
    let again = match s.register(who, form("王小明", &["AZ"]), now()).await {
        Ok(RegisterOutcome::Registered(r)) => r,
        other => panic!("register again: {other:?}"),
    };
    assert!(
        again.serial > first.serial,
        "a new registration gets a new serial"
    );
    let history = s.history(who).await.expect("history");
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| match e {
            RegistrationEvent::Registered { .. } => "registered",
            RegistrationEvent::Modified { .. } => "modified",
            RegistrationEvent::Cancelled { .. } => "cancelled",
        })
        .collect();
    assert_eq!(kinds, ["registered", "modified", "cancelled", "registered"]);
    let audit = s.audit().await.expect("audit");
    assert!(audit.ok, "{audit:?}");
    assert_eq!((audit.live, audit.events), (1, 4));
}

pub async fn a_second_registration_gets_the_first_back(s: &impl IdentityStore) {
    let who = synthetic_id(11);
    let first = s
        .register(who, form("a", &["AZ"]), now())
        .await
        .expect("register");
    let RegisterOutcome::Registered(first) = first else {
        panic!("first registration: {first:?}");
    };
    let second = s
        .register(who, form("b", &["Moderna"]), now())
        .await
        .expect("register");
    assert_eq!(second, RegisterOutcome::AlreadyRegistered(first));
}

pub async fn modify_and_cancel_need_a_live_registration(s: &impl IdentityStore) {
    let who = synthetic_id(12);
    assert_eq!(
        s.modify(who, form("a", &["AZ"]), now())
            .await
            .expect("modify"),
        None
    );
    assert_eq!(s.cancel(who, now()).await.expect("cancel"), None);
    s.register(who, form("a", &["AZ"]), now())
        .await
        .expect("register");
    assert!(s.cancel(who, now()).await.expect("cancel").is_some());
    assert_eq!(
        s.cancel(who, now()).await.expect("cancel"),
        None,
        "cancelling twice"
    );
    assert_eq!(
        s.modify(who, form("a", &["AZ"]), now())
            .await
            .expect("modify"),
        None
    );
    assert_eq!(s.history(who).await.expect("history").len(), 2);
}

pub async fn single_use_marks_are_used_once(s: &impl IdentityStore) {
    let exp = now().unix_timestamp() + 60;
    assert!(s.use_once("captcha:x".into(), exp).await.expect("mark"));
    assert!(!s.use_once("captcha:x".into(), exp).await.expect("mark"));
    assert!(s.use_once("captcha:y".into(), exp).await.expect("mark"));
}

pub async fn failures_count_and_clear(s: &impl IdentityStore) {
    let t = now().unix_timestamp();
    let subject = || "acct:test".to_string();
    assert_eq!(s.failures(subject(), t).await.expect("read").count, 0);
    for n in 1..=3 {
        let f = s.record_failure(subject(), t, 600).await.expect("record");
        assert_eq!((f.count, f.last_at), (n, t));
    }
    assert_eq!(s.failures(subject(), t).await.expect("read").count, 3);
    assert_eq!(
        s.failures("acct:other".into(), t)
            .await
            .expect("read")
            .count,
        0
    );
    s.clear_failures(subject()).await.expect("clear");
    assert_eq!(s.failures(subject(), t).await.expect("read").count, 0);
}

pub async fn a_partner_key_works_until_rotated(s: &impl IdentityStore) {
    let partner = |key: &str| Partner {
        partner: "seven".into(),
        name: "7-ELEVEN".into(),
        kind: PartnerKind::ConvenienceStore,
        rate_per_second: 50,
        key_hash: key_hash(key),
    };
    s.put_partner(partner("pk_one")).await.expect("put");
    let found = s.partner_by_key(key_hash("pk_one")).await.expect("read");
    assert_eq!(found.map(|p| p.name), Some("7-ELEVEN".to_string()));
    s.put_partner(partner("pk_two")).await.expect("put");
    assert_eq!(
        s.partner_by_key(key_hash("pk_one")).await.expect("read"),
        None
    );
    assert!(
        s.partner_by_key(key_hash("pk_two"))
            .await
            .expect("read")
            .is_some()
    );
}

/// The 2021 regression: a person who cancelled a duplicate registration lost both. Here
/// cancels, modifies and registrations race, for the same person and for many people;
/// afterwards every history replays, serials are unique, and nobody is lost or merged.
pub async fn racing_registrations_lose_and_merge_nobody<S: IdentityStore>(s: Arc<S>) {
    const PEOPLE: u64 = 40;
    let person = |n: u64| synthetic_id(1_000 + n);
    // Twenty registrations of one person at once: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.register(person(0), form(&format!("dup {i}"), &["AZ"]), now())
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if matches!(t.await.expect("task"), Ok(RegisterOutcome::Registered(_))) {
            won += 1;
        }
    }
    assert_eq!(won, 1, "one person, one live registration");
    // Every person: register, then modify / cancel / register race in parallel.
    let mut tasks = Vec::new();
    for n in 1..=PEOPLE {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.register(person(n), form("first", &["AZ"]), now())
                .await
                .expect("register");
            let (a, b, c) = tokio::join!(
                s.modify(person(n), form("modified", &["Moderna"]), now()),
                s.cancel(person(n), now()),
                s.register(person(n), form("again", &["AZ", "Moderna"]), now()),
            );
            a.expect("modify");
            b.expect("cancel");
            c.expect("register");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let mut serials = std::collections::HashSet::new();
    for n in 0..=PEOPLE {
        let history = s.history(person(n)).await.expect("history");
        assert!(
            !history.is_empty(),
            "person {n} lost their registration history"
        );
        for e in &history {
            assert_eq!(e.registration().person, person(n), "histories merged");
            if matches!(e, RegistrationEvent::Registered { .. }) {
                assert!(serials.insert(e.registration().serial), "serial reused");
            }
        }
        let last = history.last().map(|e| e.registration().clone());
        let live = s.registration(person(n)).await.expect("read");
        assert_eq!(live, last.filter(|r| r.is_live()), "person {n}");
    }
    let audit = s.audit().await.expect("audit");
    assert!(audit.ok, "{audit:?}");
    assert!(audit.last_serial >= serials.len() as u64);
}
