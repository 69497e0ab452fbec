//! The embedded store's outbox: the [`Book`](super::Book) under the store's mutex, each
//! change one journal record queued under that mutex.

use std::sync::PoisonError;

use time::OffsetDateTime;

use super::{BoxFuture, Delivery, Invite, Message, Outbox, OutboxStats, Settled};
use crate::domain::PhaseId;
use crate::store::embedded::{Record, SmsOutcome};
use crate::store::{EmbeddedStore, StoreError};

/// Invitations per journal record: a record stays far below the journal's limit.
const INVITES_PER_RECORD: usize = 10_000;

impl Outbox for EmbeddedStore {
    fn settle(
        &self,
        phase: PhaseId,
        at: OffsetDateTime,
        invites: Vec<Invite>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            self.check_writable()?;
            let p = self
                .catalog
                .load()
                .phase_index(phase.as_str())
                .ok_or_else(|| StoreError::Internal(format!("unknown phase {phase}")))?;
            let at = at.unix_timestamp();
            let mut added = 0;
            let mut last = None;
            for chunk in invites.chunks(INVITES_PER_RECORD) {
                let mut book = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
                let mut fresh = Vec::new();
                for i in chunk {
                    // Someone already invited (by an earlier run or an uploaded list) gets
                    // no second message. Settlement runs hold the book's lock, so no other
                    // run decides between this check and the insert below.
                    if !self.invited.contains(&(p as u32, i.person.packed())) {
                        let seq = book.next_seq();
                        book.add(phase.clone(), i.person, i.to.clone(), at, seq);
                        fresh.push((i.person, i.to.clone(), seq));
                    }
                }
                added += fresh.len() as u64;
                if !fresh.is_empty() {
                    let people: Vec<u64> = fresh.iter().map(|f| f.0.packed()).collect();
                    last = self
                        .log(&Record::Settled {
                            phase: phase.clone(),
                            at,
                            invites: fresh,
                        })
                        .or(last);
                    // The invitations open booking only once their record is queued: a
                    // booking can never be journaled ahead of its invitation.
                    for person in people {
                        self.invited.insert((p as u32, person));
                    }
                }
            }
            Self::durable(last).await?;
            Ok(added)
        })
    }

    fn claim(
        &self,
        now_ms: i64,
        max: usize,
        lease_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<Message>, StoreError>> {
        Box::pin(async move {
            self.check_writable()?;
            let claimed = self
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .claim(now_ms, max, lease_ms);
            // Only what is durable is sent: a message still in its group commit waits.
            if !claimed.is_empty() {
                self.barrier().await?;
            }
            Ok(claimed)
        })
    }

    fn record(&self, outcomes: Vec<(String, Delivery)>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.check_writable()?;
            let ack = {
                let mut book = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
                let changed: Vec<SmsOutcome> = outcomes
                    .iter()
                    .filter(|(id, d)| book.record(id, d))
                    .map(|(id, d)| SmsOutcome::of(id, d))
                    .collect();
                if changed.is_empty() {
                    None
                } else {
                    self.log(&Record::Sms { outcomes: changed })
                }
            };
            Self::durable(ack).await
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        Box::pin(async move {
            Ok(self
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .stats())
        })
    }

    fn messages(&self) -> BoxFuture<'_, Result<Vec<Message>, StoreError>> {
        Box::pin(async move {
            let all = self
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .messages();
            self.barrier().await?;
            Ok(all)
        })
    }

    fn settled(&self) -> BoxFuture<'_, Result<Vec<Settled>, StoreError>> {
        Box::pin(async move {
            let all = self
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .settled();
            self.barrier().await?;
            Ok(all)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::contract::fixture;
    use crate::store::outbox::{Invite, MessageState, contract};

    async fn loaded(store: EmbeddedStore) -> EmbeddedStore {
        store
            .load_calendar(fixture(OffsetDateTime::now_utc()))
            .await
            .expect("fixture");
        store
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_embedded_outbox_meets_the_contract() {
        contract::run_all(|| loaded(EmbeddedStore::ephemeral())).await;
        let dirs = std::sync::Mutex::new(Vec::new());
        contract::run_all(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = EmbeddedStore::open(dir.path(), 64).expect("open").0;
            dirs.lock().expect("lock").push(dir);
            loaded(store)
        })
        .await;
    }

    #[tokio::test]
    async fn a_reopened_journal_restores_invitations_and_delivery_state_without_leases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let phase = PhaseId::parse(crate::store::contract::INVITED_ONLY).expect("id");
        let (stats, messages, settled) = {
            let store = loaded(EmbeddedStore::open(dir.path(), 64).expect("open").0).await;
            let invites = (1..6)
                .map(|n| Invite {
                    person: crate::domain::synthetic_id(n),
                    to: format!("09{n:08}"),
                })
                .collect();
            store
                .settle(phase.clone(), OffsetDateTime::now_utc(), invites)
                .await
                .expect("settle");
            let claimed = store.claim(1, 10, 1_000_000).await.expect("claim");
            store
                .record(vec![
                    (claimed[0].id.clone(), Delivery::Sent),
                    (
                        claimed[1].id.clone(),
                        Delivery::Dead {
                            attempts: 3,
                            error: "x".into(),
                        },
                    ),
                ])
                .await
                .expect("record");
            let before = (
                store.stats().await.expect("stats"),
                store.messages().await.expect("messages"),
                store.settled().await.expect("settled"),
            );
            store.shutdown().await;
            before
        };
        let store = EmbeddedStore::open(dir.path(), 64).expect("reopen").0;
        assert_eq!(store.stats().await.expect("stats"), stats);
        assert_eq!(store.settled().await.expect("settled"), settled);
        let again = store.messages().await.expect("messages");
        assert_eq!(again.len(), messages.len());
        assert_eq!(
            again.iter().map(|m| m.state).collect::<Vec<_>>(),
            messages.iter().map(|m| m.state).collect::<Vec<_>>()
        );
        // Leases are not journaled: the three unsent messages are due at once.
        let due = store.claim(2, 10, 1_000).await.expect("claim");
        assert_eq!(due.len(), 3);
        assert!(due.iter().all(|m| m.state == MessageState::Queued));
        assert_eq!(store.invited(phase).await.expect("invited").len(), 5);
    }
}
