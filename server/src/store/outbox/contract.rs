//! The outbox contract: behaviour every [`Outbox`] backend shows, as reusable checks.
//! Each check takes a fresh store with the store contract's fixture loaded.

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{Delivery, Invite, MessageState, Outbox, OutboxStats};
use crate::domain::{PhaseId, synthetic_id};
use crate::store::contract::{INVITED_ONLY, reserve};
use crate::store::{ReserveOutcome, Store};

fn phase() -> PhaseId {
    PhaseId::parse(INVITED_ONLY).expect("fixture phase")
}

fn invites(range: std::ops::Range<u64>) -> Vec<Invite> {
    range
        .map(|n| Invite {
            person: synthetic_id(n),
            to: format!("09{n:08}"),
        })
        .collect()
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store + Outbox,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    settling_invites_once_with_one_message_each(make().await).await;
    a_claim_leases_and_outcomes_are_final(make().await).await;
    racing_dispatchers_claim_each_message_once(Arc::new(make().await)).await;
}

/// Settlement adds people to the invited set that booking checks, each with one queued
/// message; running it again, or for someone invited by an uploaded list, adds nothing.
pub async fn settling_invites_once_with_one_message_each<S: Store + Outbox>(store: S) {
    let at = OffsetDateTime::now_utc();
    store
        .invite(phase(), vec![synthetic_id(5)])
        .await
        .expect("list");
    assert_eq!(
        store
            .settle(phase(), at, invites(1..8))
            .await
            .expect("settle"),
        6
    );
    assert_eq!(
        store
            .settle(phase(), at, invites(1..10))
            .await
            .expect("settle"),
        2
    );
    let messages = store.messages().await.expect("messages");
    assert_eq!(messages.len(), 8);
    let people: HashSet<_> = messages.iter().map(|m| m.person).collect();
    assert_eq!(people.len(), 8, "one message per person");
    assert!(
        !people.contains(&synthetic_id(5)),
        "listed people get no message"
    );
    for m in &messages {
        let n = (1..10)
            .find(|&n| synthetic_id(n) == m.person)
            .expect("an invited person");
        assert_eq!(m.to, format!("09{n:08}"));
        assert_eq!(
            (m.state, m.invited_at),
            (MessageState::Queued, at.unix_timestamp())
        );
    }
    let settled = store.settled().await.expect("settled");
    assert_eq!(settled.len(), 8);
    let ids: HashSet<_> = messages.iter().map(|m| m.id.clone()).collect();
    assert!(settled.iter().all(|s| ids.contains(&s.message)));
    assert_eq!(
        store.stats().await.expect("stats"),
        OutboxStats {
            queued: 8,
            ..OutboxStats::default()
        }
    );
    assert_eq!(store.invited(phase()).await.expect("invited").len(), 9);
    // The invitation opens booking in the invitation-only phase.
    assert!(matches!(
        store
            .reserve(reserve(&store, synthetic_id(1), "Q"))
            .await
            .expect("reserve"),
        ReserveOutcome::Booked(_)
    ));
}

/// A claim hands out due messages under a lease; they come back only when it runs out.
/// Sent and dead are final; a failure is due again at its time.
pub async fn a_claim_leases_and_outcomes_are_final<S: Store + Outbox>(store: S) {
    let now = 1_700_000_000_000;
    store
        .settle(phase(), OffsetDateTime::now_utc(), invites(1..4))
        .await
        .expect("settle");
    let first = store.claim(now, 10, 30_000).await.expect("claim");
    assert_eq!(first.len(), 3);
    assert!(
        store
            .claim(now + 1, 10, 30_000)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = store.claim(now + 30_000, 2, 30_000).await.expect("claim");
    assert_eq!(again.len(), 2, "a lease that ran out makes the message due");
    let (a, b, c) = (&first[0].id, &first[1].id, &first[2].id);
    store
        .record(vec![
            (a.clone(), Delivery::Sent),
            (
                b.clone(),
                Delivery::Retry {
                    attempts: 1,
                    due_ms: now + 100_000,
                    error: "503".into(),
                },
            ),
            (
                c.clone(),
                Delivery::Dead {
                    attempts: 1,
                    error: "400".into(),
                },
            ),
        ])
        .await
        .expect("record");
    // A late report from another dispatcher does not reopen a final message.
    store
        .record(vec![(
            a.clone(),
            Delivery::Retry {
                attempts: 1,
                due_ms: now,
                error: "late".into(),
            },
        )])
        .await
        .expect("record");
    assert_eq!(
        store.stats().await.expect("stats"),
        OutboxStats {
            queued: 0,
            sent: 1,
            failed: 1,
            dead: 1
        }
    );
    assert!(
        store
            .claim(now + 99_999, 10, 1)
            .await
            .expect("claim")
            .is_empty()
    );
    let retry = store.claim(now + 100_000, 10, 1).await.expect("claim");
    assert_eq!(retry.len(), 1);
    assert_eq!((&retry[0].id, retry[0].attempts), (b, 1));
    assert_eq!(retry[0].state, MessageState::Failed);
    store
        .record(vec![(b.clone(), Delivery::Sent)])
        .await
        .expect("record");
    let s = store.stats().await.expect("stats");
    assert_eq!((s.sent, s.failed, s.dead), (2, 0, 1));
    assert!(
        store
            .claim(i64::MAX / 2, 10, 1)
            .await
            .expect("claim")
            .is_empty()
    );
}

/// Dispatchers claiming at once never get the same message.
pub async fn racing_dispatchers_claim_each_message_once<S: Store + Outbox>(store: Arc<S>) {
    store
        .settle(phase(), OffsetDateTime::now_utc(), invites(1..201))
        .await
        .expect("settle");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim(1_000, 7, 60_000).await.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (200, 200));
}
