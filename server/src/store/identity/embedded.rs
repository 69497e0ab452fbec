//! `EmbeddedIdentity`: the identity store in memory, journaled to `identity.log`.
//!
//! A registration write locks that one person's map entry, decides, takes the next
//! serial and queues its journal record before the lock is dropped, so a person's
//! records are on disk in the order they were decided and replay rebuilds exactly what
//! was acknowledged. The answer waits for the group commit (no lock across an `.await`).
//! Single-use marks and failure counts are not journaled: they matter for minutes, and
//! a restart forgets them (a captcha answered just before a restart could be used once
//! more within its 120 s).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{BoxFuture, IdentityStore, RegistrationAudit, Upsert, audit_histories};
use crate::domain::IdNumber;
use crate::identity::login::{Failures, Gate, LoginPolicy};
use crate::identity::partner::Partner;
use crate::identity::{
    InsuredPerson, NhiCard, RegisterOutcome, Registration, RegistrationEvent, RegistrationForm,
    RegistrationStatus,
};
use crate::store::StoreError;
use crate::store::journal::{Ack, Journal, Replay};

/// Persons per journal record of a registry import.
const PERSONS_PER_RECORD: usize = 20_000;
/// Prune expired single-use marks once this many have been taken since the last prune.
const PRUNE_EVERY: u64 = 4_096;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
enum Record {
    Persons { persons: Vec<InsuredPerson> },
    Registration { event: RegistrationEvent },
    Partner { partner: Partner },
}

/// Registrations whose first record is gone with a journal's damaged records: serials
/// missing between the ones that survive.
pub fn lost_serials(records: &[Vec<u8>]) -> Vec<u64> {
    let mut serials = std::collections::BTreeSet::new();
    for raw in records {
        if let Ok(Record::Registration {
            event: RegistrationEvent::Registered { registration },
        }) = serde_json::from_slice::<Record>(raw)
        {
            serials.insert(registration.serial);
        }
    }
    let last = serials.iter().next_back().copied().unwrap_or(0);
    (1..=last).filter(|s| !serials.contains(s)).collect()
}

#[derive(Debug, Default)]
struct Registrant {
    current: Option<Registration>,
    history: Vec<RegistrationEvent>,
}

/// The embedded identity store.
#[derive(Debug)]
pub struct EmbeddedIdentity {
    persons: DashMap<u64, InsuredPerson>,
    /// Card number → packed id number.
    cards: DashMap<u64, u64>,
    registrants: DashMap<u64, Registrant>,
    serial: AtomicU64,
    /// Single-use key → expiry (unix seconds).
    used: DashMap<String, i64>,
    used_since_prune: AtomicU64,
    failures: DashMap<String, (Failures, i64)>,
    partners: DashMap<String, Partner>,
    journal: Option<Journal>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("identity journal: {e}"))
}

/// Waits for a record to be durable, at most five seconds (a stalled disk answers 503,
/// never a hang; as in the booking store).
async fn durable(ack: Option<Ack>) -> Result<(), StoreError> {
    match ack {
        None => Ok(()),
        Some(ack) => tokio::time::timeout(std::time::Duration::from_secs(5), ack)
            .await
            .map_err(|_| unavailable("the journal did not confirm the write within 5 s"))?
            .map_err(|_| unavailable("the writer stopped"))?
            .map_err(unavailable),
    }
}

impl EmbeddedIdentity {
    /// A store without a journal: nothing survives the process.
    pub fn ephemeral() -> Self {
        Self::with_journal(None)
    }

    fn with_journal(journal: Option<Journal>) -> Self {
        Self {
            persons: DashMap::with_shard_amount(256),
            cards: DashMap::with_shard_amount(256),
            registrants: DashMap::with_shard_amount(256),
            serial: AtomicU64::new(0),
            used: DashMap::new(),
            used_since_prune: AtomicU64::new(0),
            failures: DashMap::new(),
            partners: DashMap::new(),
            journal,
        }
    }

    /// Opens `dir/identity.log`, replays it and starts its writer. Answers the store, how
    /// many records it replayed and how many bytes of a torn tail were cut off.
    pub fn open(dir: &Path, max_batch: usize) -> Result<(Self, usize, u64), StoreError> {
        let (
            journal,
            Replay {
                snapshot,
                records,
                truncated_bytes,
            },
        ) = Journal::open_file(dir, "identity.log", max_batch).map_err(|e| {
            StoreError::Unavailable(format!("identity journal in {}: {e}", dir.display()))
        })?;
        let store = Self::with_journal(Some(journal));
        store.replay(&snapshot)?;
        store.replay(&records)?;
        Ok((store, snapshot.len() + records.len(), truncated_bytes))
    }

    /// Replays `dir/identity.log` without touching it (the offline audit).
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let loaded = crate::store::segments::load(dir, "identity").map_err(|e| {
            StoreError::Unavailable(format!("identity journal in {}: {e}", dir.display()))
        })?;
        let store = Self::ephemeral();
        if let Some((_, snapshot)) = &loaded.snapshot {
            store.replay(snapshot)?;
        }
        store.replay(&loaded.records)?;
        Ok(store)
    }

    fn replay(&self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        for (n, raw) in records.iter().enumerate() {
            let record: Record = serde_json::from_slice(raw).map_err(|e| {
                StoreError::Internal(format!("identity journal record {n} does not parse: {e}"))
            })?;
            match record {
                Record::Persons { persons } => self.insert_persons(persons),
                Record::Registration { event } => {
                    let r = event.registration();
                    self.serial.fetch_max(r.serial, Ordering::Relaxed);
                    let mut entry = self.registrants.entry(r.person.packed()).or_default();
                    entry.current = Some(r.clone());
                    entry.history.push(event);
                }
                Record::Partner { partner } => {
                    self.partners.insert(partner.partner.clone(), partner);
                }
            }
        }
        Ok(())
    }

    fn insert_persons(&self, persons: Vec<InsuredPerson>) {
        for p in persons {
            let id = p.id_number.packed();
            let card = p.nhi_card.packed();
            if let Some(old) = self.persons.insert(id, p)
                && old.nhi_card.packed() != card
            {
                self.cards
                    .remove_if(&old.nhi_card.packed(), |_, owner| *owner == id);
            }
            self.cards.insert(card, id);
        }
    }

    fn queue(&self, record: &Record) -> Result<Option<Ack>, StoreError> {
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        if journal.has_failed() {
            return Err(unavailable("an earlier write failed"));
        }
        let raw = serde_json::to_vec(record)
            .map_err(|e| StoreError::Internal(format!("identity record: {e}")))?;
        Ok(Some(journal.append(&raw)))
    }

    /// Applies one registration change to a person's entry, queueing its record while
    /// the entry is locked. `decide` answers the event to append, or `None` to leave the
    /// entry as it is.
    fn change(
        &self,
        person: IdNumber,
        decide: impl FnOnce(Option<&Registration>, &AtomicU64) -> Option<RegistrationEvent>,
    ) -> Result<(Option<Registration>, Option<Ack>, bool), StoreError> {
        if self.journal.as_ref().is_some_and(Journal::has_failed) {
            return Err(unavailable("an earlier write failed"));
        }
        let mut entry = self.registrants.entry(person.packed()).or_default();
        let Some(event) = decide(entry.current.as_ref(), &self.serial) else {
            return Ok((entry.current.clone(), None, false));
        };
        let ack = self.queue(&Record::Registration {
            event: event.clone(),
        })?;
        let r = event.registration().clone();
        entry.current = Some(r.clone());
        entry.history.push(event);
        Ok((Some(r), ack, true))
    }

    fn prune_used(&self, now: i64) {
        if self
            .used_since_prune
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            self.used.retain(|_, exp| *exp > now);
            self.failures.retain(|_, (_, until)| *until > now);
        }
    }
}

fn boxed<'a, T: Send + 'a>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> BoxFuture<'a, T> {
    Box::pin(f)
}

impl IdentityStore for EmbeddedIdentity {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn upsert_persons(
        &self,
        persons: Vec<InsuredPerson>,
    ) -> BoxFuture<'_, Result<Upsert, StoreError>> {
        boxed(async move {
            let n = persons.len() as u64;
            // Imports are an operator's bulk job: two at once could each pass this check
            // for the same new card.
            if let Some(index) = persons.iter().position(|p| {
                self.cards
                    .get(&p.nhi_card.packed())
                    .is_some_and(|owner| *owner != p.id_number.packed())
            }) {
                return Ok(Upsert::CardTaken { index });
            }
            let mut last = None;
            for chunk in persons.chunks(PERSONS_PER_RECORD) {
                last = self.queue(&Record::Persons {
                    persons: chunk.to_vec(),
                })?;
            }
            // Applied once queued: a registry entry grants nothing by itself, and the
            // answer still waits until every chunk is durable.
            self.insert_persons(persons);
            durable(last).await?;
            Ok(Upsert::Written(n))
        })
    }

    fn person_count(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        boxed(async move { Ok(self.persons.len() as u64) })
    }

    fn person_by_id(
        &self,
        id: IdNumber,
    ) -> BoxFuture<'_, Result<Option<InsuredPerson>, StoreError>> {
        boxed(async move { Ok(self.persons.get(&id.packed()).map(|p| p.clone())) })
    }

    fn person_by_card(
        &self,
        card: NhiCard,
    ) -> BoxFuture<'_, Result<Option<InsuredPerson>, StoreError>> {
        boxed(async move {
            let Some(id) = self.cards.get(&card.packed()).map(|id| *id) else {
                return Ok(None);
            };
            Ok(self.persons.get(&id).map(|p| p.clone()))
        })
    }

    fn register(
        &self,
        person: IdNumber,
        form: RegistrationForm,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<RegisterOutcome, StoreError>> {
        boxed(async move {
            let (r, ack, changed) = self.change(person, |current, serial| {
                if current.is_some_and(Registration::is_live) {
                    return None;
                }
                // Taken under the person's entry lock and never handed back: a serial is
                // used once even if the journal write then fails.
                let serial = serial.fetch_add(1, Ordering::Relaxed) + 1;
                Some(RegistrationEvent::Registered {
                    registration: Registration {
                        serial,
                        person,
                        form,
                        status: RegistrationStatus::Registered,
                        registered_at: now,
                        modified_at: now,
                    },
                })
            })?;
            durable(ack).await?;
            let r = r.ok_or_else(|| StoreError::Internal("registration vanished".into()))?;
            Ok(if changed {
                RegisterOutcome::Registered(r)
            } else {
                RegisterOutcome::AlreadyRegistered(r)
            })
        })
    }

    fn modify(
        &self,
        person: IdNumber,
        form: RegistrationForm,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>> {
        boxed(async move {
            let (r, ack, changed) = self.change(person, |current, _| {
                let c = current.filter(|c| c.is_live())?;
                Some(RegistrationEvent::Modified {
                    registration: Registration {
                        form,
                        modified_at: now,
                        ..c.clone()
                    },
                })
            })?;
            durable(ack).await?;
            Ok(r.filter(|_| changed))
        })
    }

    fn cancel(
        &self,
        person: IdNumber,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>> {
        boxed(async move {
            let (r, ack, changed) = self.change(person, |current, _| {
                let c = current.filter(|c| c.is_live())?;
                Some(RegistrationEvent::Cancelled {
                    registration: Registration {
                        status: RegistrationStatus::Cancelled,
                        modified_at: now,
                        ..c.clone()
                    },
                })
            })?;
            durable(ack).await?;
            Ok(r.filter(|_| changed))
        })
    }

    fn registrants(&self) -> BoxFuture<'_, Result<Vec<crate::settlement::Registrant>, StoreError>> {
        boxed(async move {
            let out = self
                .registrants
                .iter()
                .filter_map(|r| {
                    let current = r.current.as_ref().filter(|c| c.is_live())?;
                    let person = self.persons.get(r.key())?;
                    crate::settlement::Registrant::new(&person, current)
                })
                .collect();
            durable(self.journal.as_ref().map(Journal::barrier)).await?;
            Ok(out)
        })
    }

    fn registration(
        &self,
        person: IdNumber,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>> {
        boxed(async move {
            Ok(self
                .registrants
                .get(&person.packed())
                .and_then(|r| r.current.clone())
                .filter(Registration::is_live))
        })
    }

    fn history(
        &self,
        person: IdNumber,
    ) -> BoxFuture<'_, Result<Vec<RegistrationEvent>, StoreError>> {
        boxed(async move {
            Ok(self
                .registrants
                .get(&person.packed())
                .map(|r| r.history.clone())
                .unwrap_or_default())
        })
    }

    fn use_once(&self, key: String, expires_at: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        boxed(async move {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            self.prune_used(now);
            let mut first = false;
            self.used
                .entry(key)
                .and_modify(|exp| {
                    // An expired mark is free again (its challenge has expired anyway).
                    if *exp <= now {
                        *exp = expires_at;
                        first = true;
                    }
                })
                .or_insert_with(|| {
                    first = true;
                    expires_at
                });
            Ok(first)
        })
    }

    fn failures(&self, subject: String, now: i64) -> BoxFuture<'_, Result<Failures, StoreError>> {
        boxed(async move {
            Ok(self
                .failures
                .get(&subject)
                .filter(|f| f.1 > now)
                .map(|f| f.0)
                .unwrap_or_default())
        })
    }

    fn record_failure(
        &self,
        subject: String,
        now: i64,
        keep_seconds: i64,
    ) -> BoxFuture<'_, Result<Failures, StoreError>> {
        boxed(async move {
            self.prune_used(now);
            let mut entry = self.failures.entry(subject).or_default();
            if entry.1 <= now {
                entry.0 = Failures::default();
            }
            entry.0.count += 1;
            entry.0.last_at = now;
            entry.1 = now + keep_seconds;
            Ok(entry.0)
        })
    }

    fn attempt(
        &self,
        subject: String,
        now: i64,
        policy: LoginPolicy,
    ) -> BoxFuture<'_, Result<Gate, StoreError>> {
        boxed(async move {
            self.prune_used(now);
            // The entry's lock makes read, decide and count one step.
            let mut entry = self.failures.entry(subject).or_default();
            if entry.1 <= now {
                entry.0 = Failures::default();
            }
            let gate = policy.account(entry.0, now);
            if gate == Gate::Open {
                entry.0.count += 1;
                entry.0.last_at = now;
                entry.1 = now + policy.keep_seconds();
            }
            Ok(gate)
        })
    }

    fn clear_failures(&self, subject: String) -> BoxFuture<'_, Result<(), StoreError>> {
        boxed(async move {
            self.failures.remove(&subject);
            Ok(())
        })
    }

    fn put_partner(&self, partner: Partner) -> BoxFuture<'_, Result<(), StoreError>> {
        boxed(async move {
            let ack = self.queue(&Record::Partner {
                partner: partner.clone(),
            })?;
            self.partners.insert(partner.partner.clone(), partner);
            durable(ack).await
        })
    }

    fn partner_by_key(
        &self,
        key_hash: String,
    ) -> BoxFuture<'_, Result<Option<Partner>, StoreError>> {
        boxed(async move {
            // A handful of partners: a scan is cheaper than keeping a second index right.
            Ok(self
                .partners
                .iter()
                .find(|p| crate::token::secrets_match(p.key_hash.as_bytes(), key_hash.as_bytes()))
                .map(|p| p.clone()))
        })
    }

    fn audit(&self) -> BoxFuture<'_, Result<RegistrationAudit, StoreError>> {
        boxed(async move {
            let entries: Vec<(IdNumber, Vec<RegistrationEvent>, Option<Registration>)> = self
                .registrants
                .iter()
                .filter_map(|e| {
                    IdNumber::from_packed(*e.key())
                        .map(|id| (id, e.history.clone(), e.current.clone()))
                })
                .collect();
            Ok(audit_histories(
                entries
                    .iter()
                    .map(|(id, h, c)| (*id, h.as_slice(), c.as_ref())),
                self.serial.load(Ordering::Relaxed),
                self.persons.len() as u64,
            ))
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        boxed(async move {
            if let Some(j) = &self.journal {
                let _ = durable(Some(j.barrier())).await;
                j.close();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::synthetic_id;
    use crate::store::identity::contract;

    #[tokio::test]
    async fn the_ephemeral_identity_store_meets_the_contract() {
        contract::run_all(|| async { EmbeddedIdentity::ephemeral() }).await;
    }

    #[tokio::test]
    async fn the_journaled_identity_store_meets_the_contract() {
        let dirs = std::sync::Mutex::new(Vec::new());
        contract::run_all(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedIdentity::open(dir.path(), 64).expect("open").0;
            dirs.lock().expect("lock").push(dir);
            async move { store }
        })
        .await;
    }

    #[tokio::test]
    async fn a_reopened_journal_restores_persons_registrations_serials_and_partners() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = OffsetDateTime::now_utc();
        let (serial, partner_hash) = {
            let (s, _, _) = EmbeddedIdentity::open(dir.path(), 64).expect("open");
            s.upsert_persons((1..=5).map(contract::insured).collect())
                .await
                .expect("upsert");
            let RegisterOutcome::Registered(r) = s
                .register(synthetic_id(1), contract::form("a", &["AZ"]), now)
                .await
                .expect("register")
            else {
                panic!("not registered");
            };
            s.cancel(synthetic_id(1), now).await.expect("cancel");
            s.register(synthetic_id(2), contract::form("b", &["AZ"]), now)
                .await
                .expect("register");
            let hash = crate::identity::partner::key_hash("pk_x");
            s.put_partner(Partner {
                partner: "p1".into(),
                name: "pharmacy".into(),
                kind: crate::identity::partner::PartnerKind::Pharmacy,
                rate_per_second: 5,
                key_hash: hash.clone(),
            })
            .await
            .expect("partner");
            s.shutdown().await;
            (r.serial, hash)
        };
        let (s, _, cut) = EmbeddedIdentity::open(dir.path(), 64).expect("reopen");
        assert_eq!(cut, 0);
        assert_eq!(s.person_count().await.expect("count"), 5);
        assert_eq!(s.registration(synthetic_id(1)).await.expect("read"), None);
        assert_eq!(s.history(synthetic_id(1)).await.expect("history").len(), 2);
        assert!(
            s.registration(synthetic_id(2))
                .await
                .expect("read")
                .is_some()
        );
        assert!(
            s.partner_by_key(partner_hash)
                .await
                .expect("read")
                .is_some()
        );
        // Serials go on from where they were: never reused after a restart.
        let RegisterOutcome::Registered(again) = s
            .register(synthetic_id(1), contract::form("a", &["AZ"]), now)
            .await
            .expect("register")
        else {
            panic!("not registered");
        };
        assert!(again.serial > serial + 1, "{} after {serial}", again.serial);
        assert!(s.audit().await.expect("audit").ok);
        let read_only = EmbeddedIdentity::open_read_only(dir.path()).expect("read only");
        assert_eq!(read_only.audit().await.expect("audit").live, 2);
    }
}
