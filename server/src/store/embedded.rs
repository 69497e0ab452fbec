//! `EmbeddedStore`: bookings in memory, seats in the [`Inventory`], durability in a journal.
//!
//! Each person's record sits in a sharded map; a write locks that one person's shard
//! entry, so the per-person rules (one live booking per phase, idempotency keys) and
//! the seat counter are decided together, while other people book in parallel.
//!
//! Journal order is what replay trusts, so records are queued *while the person's
//! entry is locked* and by this rule: a seat is taken before its record is queued, and
//! a seat is released only after its record is queued. Whoever takes a released seat
//! therefore queues after the release's record, and replay never sees a slot overfull.
//! The answer waits for the group commit after the lock is dropped (no lock across an
//! `.await`). While the journal fails (a write or fsync error, or an fsync stalled past
//! two seconds) every write answers `Unavailable` at once and the store is unready; the
//! writer keeps the records it could not write and writes them again until the disk
//! takes them, so memory and disk agree again and writes resume by themselves. After a
//! restart the journal, which holds only what was acknowledged or was about to be, is
//! the truth.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use dashmap::mapref::entry::Entry;
use dashmap::{DashMap, DashSet};
use serde::{Deserialize, Serialize};

use super::journal::{Ack, Journal};
use super::outbox::{Book, Delivery, MessageState};
use super::{
    AttendOutcome, CancelOutcome, Change, ChangeOutcome, CloseOut, Idempotency, LoadReport,
    Reserve, ReserveOutcome, Store, StoreError,
};
use crate::audit::{AuditReport, audit};
use crate::catalog::{Catalog, apply_raises};
use crate::domain::{
    Booking, BookingId, BookingStatus, Calendar, IdNumber, PhaseId, SlotId, sequence_of_code,
};
use crate::inventory::Inventory;
use std::sync::PoisonError;
use time::OffsetDateTime;

mod held;
mod snapshot;

use held::{Held, Partners, booking_id};

/// The person maps' hasher: keys are packed ID numbers, hashed on every request.
type Fast = foldhash::fast::RandomState;

pub use snapshot::SnapshotReport;

/// The longest a write waits for its record to be durable before it answers 503.
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Idempotency keys remembered per person; older ones are forgotten.
const KEYS_PER_PERSON: usize = 16;
/// Invitations per journal record.
const INVITES_PER_RECORD: usize = 100_000;

/// How long an idempotency key is remembered: a retry a day later is a new request.
const KEY_LIFETIME_SECS: i64 = 24 * 3600;
/// Cancelled bookings kept per person (their history, paged by `GET /v1/me/bookings`);
/// older ones are forgotten, so that a person who books and cancels again and again
/// holds at most this many (1.5 KiB) rather than growing without bound.
const CANCELLED_KEPT: usize = 64;

#[derive(Debug, Default)]
struct Person {
    bookings: Vec<Held>,
    /// Remembered idempotency keys, newest last.
    keys: Vec<Key>,
}

/// An idempotency key and the booking it made or changed: 40 bytes, no allocation. The
/// key is kept as a 128-bit SHA-256 digest (a person has at most [`KEYS_PER_PERSON`]
/// keys: two would collide once in 2^121), the request's fingerprint as a 96-bit one.
#[derive(Debug, Clone)]
struct Key {
    key: Digest,
    fingerprint: [u8; 12],
    /// When it was used, Unix seconds (to 2106).
    at: u32,
    seq: u64,
}

const _: () = assert!(std::mem::size_of::<Key>() == 40);

type Digest = [u8; 16];

fn fingerprint_of(text: &str) -> [u8; 12] {
    let mut out = [0u8; 12];
    out.copy_from_slice(&digest(text)[..12]);
    out
}

/// Unix seconds as a key holds them.
fn secs(at: i64) -> u32 {
    u32::try_from(at.max(0)).unwrap_or(u32::MAX)
}

impl Key {
    /// Whether the key is still remembered at `now` (Unix seconds).
    fn live_at(&self, now: i64) -> bool {
        i64::from(self.at) > now - KEY_LIFETIME_SECS
    }
}

fn digest(text: &str) -> Digest {
    use sha2::Digest as _;
    let full = sha2::Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn to_hex(d: &[u8]) -> String {
    hex::encode(d)
}

fn from_hex(text: &str) -> Option<Digest> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl Person {
    /// Remembers a key used at `at` (Unix seconds) for booking `seq`, forgetting expired
    /// keys and, past [`KEYS_PER_PERSON`], the oldest.
    fn remember(&mut self, idem: Option<&Idempotency>, seq: u64, at: i64) {
        if let Some(i) = idem {
            self.keys.retain(|k| k.live_at(at));
            if self.keys.len() >= KEYS_PER_PERSON {
                self.keys.remove(0);
            }
            // Exactly one more: most people use one key (a vector's default growth
            // would reserve four).
            self.keys.reserve_exact(1);
            self.keys.push(Key {
                key: digest(&i.key),
                fingerprint: fingerprint_of(&i.fingerprint),
                at: secs(at),
                seq,
            });
        }
    }

    /// `Some(Ok(booking))` for a replay, `Some(Err(()))` for a key reused with another
    /// request, `None` for a new key (or one that expired before `now`, Unix seconds).
    fn replay(&self, idem: Option<&Idempotency>, now: i64) -> Option<Result<&Held, ()>> {
        let idem = idem?;
        let k = self
            .keys
            .iter()
            .find(|k| k.key == digest(&idem.key) && k.live_at(now))?;
        if k.fingerprint != fingerprint_of(&idem.fingerprint) {
            return Some(Err(()));
        }
        self.bookings.iter().find(|b| b.seq == k.seq).map(Ok)
    }

    /// Forgets the oldest cancelled bookings beyond the newest [`CANCELLED_KEPT`], except
    /// one that a key still unexpired at `now` (Unix seconds) names, so that its retry
    /// answers it again; returns the sequence numbers forgotten. The same rule runs when a
    /// booking is cancelled and when its record is replayed (later, so with at least as
    /// many keys expired: a restart may forget more, never less).
    fn forget_old_cancelled(&mut self, now: i64) -> Vec<u64> {
        let mut cancelled: Vec<u64> = self
            .bookings
            .iter()
            .filter(|b| b.status == BookingStatus::Cancelled)
            .map(|b| b.seq)
            .collect();
        if cancelled.len() <= CANCELLED_KEPT {
            return Vec::new();
        }
        cancelled.sort_unstable();
        let keyed = |seq: u64| self.keys.iter().any(|k| k.seq == seq && k.live_at(now));
        let old = &cancelled[..cancelled.len() - CANCELLED_KEPT];
        let forgotten: Vec<u64> = old.iter().copied().filter(|&s| !keyed(s)).collect();
        self.bookings.retain(|b| !forgotten.contains(&b.seq));
        forgotten
    }

    /// Restores the keys a snapshot wrote with booking `seq`: the person's keys stay
    /// ordered by their time of use, newest last, at most [`KEYS_PER_PERSON`].
    fn restore_keys(&mut self, seq: u64, keys: &[(String, String, i64)]) {
        for (key, fingerprint, at) in keys {
            let (Some(key), Some(full)) = (from_hex(key), from_hex(&format!("{fingerprint:0<32}")))
            else {
                continue;
            };
            if self.keys.iter().any(|k| k.key == key) {
                continue;
            }
            let mut fp = [0u8; 12];
            fp.copy_from_slice(&full[..12]);
            self.keys.reserve_exact(1);
            self.keys.push(Key {
                key,
                fingerprint: fp,
                at: secs(*at),
                seq,
            });
        }
        self.keys.sort_by_key(|k| k.at);
        let extra = self.keys.len().saturating_sub(KEYS_PER_PERSON);
        self.keys.drain(..extra);
    }

    /// Whether `key` is remembered and unexpired at `at` (Unix seconds).
    fn knows_key(&self, key: &str, at: i64) -> bool {
        self.keys
            .iter()
            .any(|k| k.key == digest(key) && k.live_at(at))
    }

    fn held_mut(&mut self, id: &BookingId) -> Option<&mut Held> {
        let seq = held::sequence_of(id)?;
        self.bookings.iter_mut().find(|b| b.seq == seq)
    }
}

/// Booking records replay cannot apply yet, in order: a booking, or a change, naming a
/// slot that no calendar record has named so far, and every later record of those
/// bookings. A snapshot written by an earlier version could hold a booking ahead of the
/// calendar record (in the segment after it) that adds its slot.
#[derive(Default)]
struct Deferred {
    records: Vec<Record>,
    bookings: std::collections::HashSet<BookingId>,
}

impl Deferred {
    fn wants(&mut self, record: &Record, catalog: &Catalog) -> bool {
        let unknown = |slot: &SlotId| catalog.slot_index(slot.as_str()).is_none();
        let (booking, ahead_of_its_slot) = match record {
            Record::Booked { booking, .. } => (&booking.booking, unknown(&booking.slot)),
            Record::Changed { booking, slot, .. } => (booking, unknown(slot)),
            Record::Cancelled { booking, .. }
            | Record::Attended { booking, .. }
            | Record::NoShow { booking, .. } => (booking, false),
            _ => return false,
        };
        if ahead_of_its_slot || self.bookings.contains(booking) {
            self.bookings.insert(booking.clone());
            return true;
        }
        false
    }
}

/// What the journal holds, one record per acknowledged change.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub(super) enum Record {
    Calendar {
        calendar: Calendar,
    },
    Invited {
        phase: PhaseId,
        people: Vec<IdNumber>,
    },
    Booked {
        seq: u64,
        booking: Booking,
        key: Option<(String, String)>,
        /// In snapshots: the remembered keys that name this booking, as hex digests of
        /// the key and the fingerprint, with the time each was used (Unix seconds).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<(String, String, i64)>,
    },
    Changed {
        person: IdNumber,
        booking: BookingId,
        slot: SlotId,
        key: Option<(String, String)>,
        /// When, Unix seconds: a key's age counts from it (absent in older journals).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<i64>,
    },
    Cancelled {
        person: IdNumber,
        booking: BookingId,
    },
    Attended {
        person: IdNumber,
        booking: BookingId,
    },
    NoShow {
        person: IdNumber,
        booking: BookingId,
    },
    /// Settled invitations, each with its queued message `(person, mobile, message seq)`.
    Settled {
        phase: PhaseId,
        at: i64,
        invites: Vec<(IdNumber, String, u64)>,
    },
    /// What became of message sends.
    Sms {
        outcomes: Vec<SmsOutcome>,
    },
    /// Numbers of cancelled bookings forgotten (snapshots only): a snapshot lacks their
    /// records, and repair must not count them as lost.
    Forgotten {
        seqs: Vec<u64>,
    },
    /// A person's remembered idempotency keys, oldest first (snapshots only).
    Keys {
        person: IdNumber,
        keys: Vec<(String, String, BookingId)>,
        /// When each was used, Unix seconds (absent in older snapshots: the replay's time).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        at: Vec<i64>,
        /// Whether keys and fingerprints are hex digests (older snapshots: the texts).
        #[serde(default)]
        digests: bool,
    },
}

/// One message's new state, as journaled.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SmsOutcome {
    pub(super) id: String,
    pub(super) state: MessageState,
    pub(super) attempts: u32,
    pub(super) due_ms: i64,
    pub(super) error: Option<String>,
}

impl SmsOutcome {
    pub(super) fn copy(&self) -> Self {
        Self {
            id: self.id.clone(),
            state: self.state,
            attempts: self.attempts,
            due_ms: self.due_ms,
            error: self.error.clone(),
        }
    }

    pub(super) fn of(id: &str, d: &Delivery) -> Self {
        let (state, attempts, due_ms, error) = match d {
            Delivery::Sent => (MessageState::Sent, 0, 0, None),
            Delivery::Retry {
                attempts,
                due_ms,
                error,
            } => (
                MessageState::Failed,
                *attempts,
                *due_ms,
                Some(error.clone()),
            ),
            Delivery::Dead { attempts, error } => {
                (MessageState::Dead, *attempts, 0, Some(error.clone()))
            }
        };
        Self {
            id: id.to_string(),
            state,
            attempts,
            due_ms,
            error,
        }
    }

    pub(super) fn delivery(&self) -> Delivery {
        let error = self.error.clone().unwrap_or_default();
        match self.state {
            MessageState::Failed => Delivery::Retry {
                attempts: self.attempts,
                due_ms: self.due_ms,
                error,
            },
            MessageState::Dead => Delivery::Dead {
                attempts: self.attempts,
                error,
            },
            MessageState::Sent | MessageState::Queued => Delivery::Sent,
        }
    }
}

/// The embedded store. See the module documentation for its concurrency rules.
#[derive(Debug)]
pub struct EmbeddedStore {
    pub(super) catalog: ArcSwap<Catalog>,
    inventory: Inventory,
    people: DashMap<u64, Person, Fast>,
    /// `(phase index, person)`.
    pub(super) invited: DashSet<(u32, u64)>,
    /// Settled invitations and their messages. Its lock is held while an invitation
    /// joins `invited` and its record is queued, so the journal orders every outbox
    /// change the way memory saw it.
    pub(super) outbox: std::sync::Mutex<Book>,
    /// Booking sequence number → its person: check-in finds a booking by its code.
    owners: DashMap<u64, u64, Fast>,
    /// Kiosk partners named by bookings (see [`Held`]).
    partners: Partners,
    /// Numbers of the cancelled bookings forgotten (8 bytes each, where a booking held is
    /// 24 plus its share of a vector): snapshots list them for repair.
    forgotten: std::sync::Mutex<Vec<u64>>,
    sequence: AtomicU64,
    journal: Option<Journal>,
    /// Serialises calendar loads (and a snapshot's rotation with them).
    loader: tokio::sync::Mutex<()>,
    compactor: std::sync::Mutex<Option<snapshot::Compactor>>,
}

/// What opening an embedded store found.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenReport {
    pub records: usize,
    pub truncated_bytes: u64,
    /// Whether a calendar was in the journal.
    pub has_calendar: bool,
}

fn idem_pair(i: &Option<Idempotency>) -> Option<(String, String)> {
    i.as_ref().map(|i| (i.key.clone(), i.fingerprint.clone()))
}

impl EmbeddedStore {
    /// A store without a journal: nothing survives the process.
    pub fn ephemeral() -> Self {
        Self::with_journal(None)
    }

    fn with_journal(journal: Option<Journal>) -> Self {
        Self {
            catalog: ArcSwap::from_pointee(Catalog::default()),
            inventory: Inventory::new(),
            // Many shards: each write holds one shard's lock for a few hundred nanoseconds.
            people: DashMap::with_hasher_and_shard_amount(Fast::default(), 256),
            invited: DashSet::new(),
            owners: DashMap::with_hasher(Fast::default()),
            partners: Partners::default(),
            forgotten: std::sync::Mutex::new(Vec::new()),
            outbox: std::sync::Mutex::new(Book::default()),
            sequence: AtomicU64::new(0),
            journal,
            loader: tokio::sync::Mutex::new(()),
            compactor: std::sync::Mutex::new(None),
        }
    }

    /// Opens the journal in `dir` (the newest snapshot and the segments after it),
    /// replays it, and starts its writer.
    pub fn open(dir: &Path, max_batch: usize) -> Result<(Self, OpenReport), StoreError> {
        // Records stream from the files into the store one at a time; the writer starts
        // once they are all in.
        let store = Self::with_journal(None);
        let mut report = OpenReport::default();
        let unavailable = |e: std::io::Error| {
            StoreError::Unavailable(format!("journal in {}: {e}", dir.display()))
        };
        let mut deferred = Deferred::default();
        let opened = Journal::open_with(dir, "journal.log", max_batch, &mut |_, raw| {
            store
                .replay_one(raw, &mut report, &mut deferred)
                .map_err(std::io::Error::other)
        });
        let (journal, truncated) = opened.map_err(unavailable)?;
        report.truncated_bytes = truncated;
        store.apply_deferred(deferred)?;
        store.rebuild_seats();
        Ok((
            Self {
                journal: Some(journal),
                ..store
            },
            report,
        ))
    }

    /// Replays the journal in `dir` into a store without a journal, touching nothing on
    /// disk: for the offline audit, safe beside a running server.
    pub fn open_read_only(dir: &Path) -> Result<(Self, OpenReport), StoreError> {
        let store = Self::ephemeral();
        let mut report = OpenReport::default();
        let mut deferred = Deferred::default();
        let loaded = super::segments::load_with(dir, "journal", &mut |_, raw| {
            store
                .replay_one(raw, &mut report, &mut deferred)
                .map_err(std::io::Error::other)
        })
        .map_err(|e| StoreError::Unavailable(format!("journal in {}: {e}", dir.display())))?;
        store.apply_deferred(deferred)?;
        if loaded.snapshot.is_none() && !loaded.last.1.is_file() {
            return Err(StoreError::Unavailable(format!(
                "no journal at {}",
                loaded.last.1.display()
            )));
        }
        report.truncated_bytes = loaded.total - loaded.valid;
        store.rebuild_seats();
        Ok((store, report))
    }

    /// Applies what replay deferred, in order, once every calendar record is in.
    fn apply_deferred(&self, deferred: Deferred) -> Result<(), StoreError> {
        for record in deferred.records {
            self.apply(record)?;
        }
        Ok(())
    }

    /// Replays one record, counting it in `report`.
    fn replay_one(
        &self,
        raw: &[u8],
        report: &mut OpenReport,
        deferred: &mut Deferred,
    ) -> Result<(), StoreError> {
        let record: Record = serde_json::from_slice(raw).map_err(|e| {
            StoreError::Internal(format!(
                "journal record {} does not parse: {e}",
                report.records
            ))
        })?;
        report.records += 1;
        report.has_calendar |= matches!(record, Record::Calendar { .. });
        if deferred.wants(&record, &self.catalog.load()) {
            deferred.records.push(record);
            return Ok(());
        }
        self.apply(record)
    }

    // Replay applies every record as a setting rather than a change, so a record whose
    // effect a snapshot already holds (a snapshot is taken while writes go on: see
    // [`Self::snapshot`]) changes nothing when replayed again; seats are then recounted.

    /// Sets every slot's free seats to its capacity less its live bookings (after a
    /// replay, which does not count seats record by record).
    fn rebuild_seats(&self) {
        let catalog = self.catalog.load();
        let mut taken = vec![0u32; catalog.slots.len()];
        for p in self.people.iter() {
            for b in p.bookings.iter().filter(|b| b.status.is_live()) {
                if let Some(n) = taken.get_mut(b.slot as usize) {
                    *n += 1;
                }
            }
        }
        for (i, n) in taken.into_iter().enumerate() {
            let capacity = self.inventory.capacity(i as u32);
            if n > capacity {
                // A journal written by this store never overfills a slot; should one
                // (edited by hand), the audit reports it rather than replay hiding it.
                tracing::error!(slot = %catalog.slots[i].slot.id, live = n, capacity, "journal replay: a slot holds more live bookings than seats");
            }
            self.inventory
                .overwrite(i as u32, capacity, capacity.saturating_sub(n));
        }
    }

    /// Replays one record into memory, without journaling it again.
    fn apply(&self, record: Record) -> Result<(), StoreError> {
        match record {
            Record::Calendar { calendar } => {
                let (next, changes) = self.catalog.load().merge(&calendar)?;
                next.apply_capacities(&self.inventory, &changes)?;
                self.catalog.store(Arc::new(next));
            }
            Record::Invited { phase, people } => {
                if let Some(p) = self.catalog.load().phase_index(phase.as_str()) {
                    for id in people {
                        self.invited.insert((p as u32, id.packed()));
                    }
                }
            }
            Record::Booked {
                seq,
                booking,
                key,
                keys,
            } => {
                let catalog = self.catalog.load();
                let slot = catalog.slot_index(booking.slot.as_str()).ok_or_else(|| {
                    StoreError::Internal(format!(
                        "booking {} is in slot {}, which no calendar record holds",
                        booking.booking, booking.slot
                    ))
                })?;
                let held = held::pack(&self.partners, seq, slot, &booking)?;
                self.sequence.fetch_max(seq, Ordering::Relaxed);
                self.owners.insert(seq, booking.person.packed());
                let mut person = self.people.entry(booking.person.packed()).or_default();
                let at = booking.booked_at.unix_timestamp();
                if let Some((k, f)) = key
                    && !person.knows_key(&k, at)
                {
                    let idem = Idempotency {
                        key: k,
                        fingerprint: f,
                    };
                    person.remember(Some(&idem), seq, at);
                }
                if !keys.is_empty() {
                    person.restore_keys(seq, &keys);
                }
                if !person.bookings.iter().any(|b| b.seq == seq) {
                    // Exactly one more: most people hold one booking.
                    person.bookings.reserve_exact(1);
                    person.bookings.push(held);
                }
            }
            Record::Keys {
                person,
                keys,
                at,
                digests,
            } => {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                // Snapshots write digests; earlier ones wrote the keys themselves.
                let read = |text: &str| {
                    if digests {
                        from_hex(text)
                    } else {
                        Some(digest(text))
                    }
                };
                let read_fingerprint = |text: &str| {
                    if digests {
                        let full = from_hex(&format!("{text:0<32}"))?;
                        let mut out = [0u8; 12];
                        out.copy_from_slice(&full[..12]);
                        Some(out)
                    } else {
                        Some(fingerprint_of(text))
                    }
                };
                self.people.entry(person.packed()).or_default().keys = keys
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, (key, fingerprint, booking))| {
                        Some(Key {
                            key: read(&key)?,
                            fingerprint: read_fingerprint(&fingerprint)?,
                            seq: held::sequence_of(&booking)?,
                            at: secs(at.get(i).copied().unwrap_or(now)),
                        })
                    })
                    .collect();
            }
            Record::Changed {
                person,
                booking,
                slot,
                key,
                at,
            } => {
                let catalog = self.catalog.load();
                let mut p = self.people.entry(person.packed()).or_default();
                let idem = key.map(|(key, fingerprint)| Idempotency { key, fingerprint });
                let at = at.unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp());
                if let (Some(i), Some(seq)) = (&idem, held::sequence_of(&booking))
                    && !p.knows_key(&i.key, at)
                {
                    p.remember(idem.as_ref(), seq, at);
                }
                if let Some(b) = p.held_mut(&booking) {
                    b.slot = catalog.slot_index(slot.as_str()).ok_or_else(|| {
                        StoreError::Internal(format!(
                            "booking {booking} moved to slot {slot}, which no calendar record holds"
                        ))
                    })?;
                }
            }
            Record::Settled { phase, at, invites } => {
                let p = self.catalog.load().phase_index(phase.as_str());
                let mut book = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
                for (person, to, seq) in invites {
                    if let Some(p) = p {
                        self.invited.insert((p as u32, person.packed()));
                    }
                    book.add(phase.clone(), person, to, at, seq);
                }
            }
            Record::Sms { outcomes } => {
                let mut book = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
                for o in outcomes {
                    book.record(&o.id, &o.delivery());
                }
            }
            Record::Attended { person, booking } => {
                let mut p = self.people.entry(person.packed()).or_default();
                if let Some(b) = p.held_mut(&booking).filter(|b| b.status.is_live()) {
                    b.status = BookingStatus::Attended;
                }
            }
            Record::NoShow { person, booking } => {
                let mut p = self.people.entry(person.packed()).or_default();
                if let Some(b) = p.held_mut(&booking).filter(|b| b.status.is_open()) {
                    b.status = BookingStatus::NoShow;
                }
            }
            Record::Cancelled { person, booking } => {
                let mut p = self.people.entry(person.packed()).or_default();
                if let Some(b) = p.held_mut(&booking).filter(|b| b.status.is_open()) {
                    b.status = BookingStatus::Cancelled;
                }
                self.forget(p.forget_old_cancelled(OffsetDateTime::now_utc().unix_timestamp()));
            }
            Record::Forgotten { seqs } => {
                self.forgotten
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(seqs);
            }
        }
        Ok(())
    }

    /// Queues a record; `None` without a journal.
    pub(super) fn log(&self, record: &Record) -> Option<Ack> {
        let journal = self.journal.as_ref()?;
        // Serialising plain data into a Vec cannot fail.
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        Some(journal.append(&bytes))
    }

    /// Refuses writes while the journal cannot take them: a write or fsync failed and is
    /// being retried, or an fsync has stalled (see [`Journal::health`]).
    pub(super) fn check_writable(&self) -> Result<(), StoreError> {
        match &self.journal {
            Some(j) => j.health().map_err(StoreError::Unavailable),
            None => Ok(()),
        }
    }

    /// Waits for a record to be durable, at most [`ACK_WAIT`]: an answer must not hang
    /// on a stalled disk. Past it the write answers 503; its record may still become
    /// durable, as an unacknowledged write may (a retry finds it).
    pub(super) async fn durable(ack: Option<Ack>) -> Result<(), StoreError> {
        match ack {
            None => Ok(()),
            Some(ack) => match tokio::time::timeout(ACK_WAIT, ack).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(StoreError::Unavailable(e.to_string())),
                Ok(Err(_)) => Err(StoreError::Unavailable("journal writer stopped".into())),
                Err(_) => Err(StoreError::Unavailable(format!(
                    "the journal did not confirm the write within {} s",
                    ACK_WAIT.as_secs()
                ))),
            },
        }
    }

    /// Waits until everything queued so far is durable: answers that repeat an earlier
    /// result must not get ahead of that result's record.
    pub(super) async fn barrier(&self) -> Result<(), StoreError> {
        Self::durable(self.journal.as_ref().map(Journal::barrier)).await
    }

    /// Drops what points at forgotten bookings and records their numbers.
    fn forget(&self, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        for seq in &seqs {
            self.owners.remove(seq);
        }
        self.forgotten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(seqs);
    }

    /// Spells out a held booking of `person` against the current catalog, which holds
    /// every slot a booking was ever made in (catalogs only grow).
    fn spell(&self, person: IdNumber, h: &Held) -> Booking {
        held::spell(&self.catalog.load(), &self.partners, person, h)
            .expect("a held booking's slot is in the current catalog")
    }

    /// Spells out every held booking, each shard read-locked while it is read.
    fn spell_all(&self) -> Vec<Booking> {
        let catalog = self.catalog.load_full();
        self.people
            .iter()
            .filter_map(|p| Some((IdNumber::from_packed(*p.key())?, p)))
            .flat_map(|(id, p)| {
                p.bookings
                    .iter()
                    .filter_map(|h| held::spell(&catalog, &self.partners, id, h))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The reservation rules for one person, whose entry the caller holds locked.
    fn decide(
        &self,
        r: &Reserve,
        partner: u16,
        person: &mut Person,
    ) -> (ReserveOutcome, Option<Ack>) {
        let now = r.now.unix_timestamp();
        if let Some(replay) = person.replay(r.idempotency.as_ref(), now) {
            return match replay {
                Ok(b) => (ReserveOutcome::Replayed(self.spell(r.person, b)), None),
                Err(()) => (ReserveOutcome::KeyReused, None),
            };
        }
        let catalog = self.catalog.load();
        let phase = catalog.phase_index(r.phase.as_str());
        if let Some(b) = person
            .bookings
            .iter()
            .find(|b| phase.is_some() && b.phase(&catalog) == phase && b.status.is_live())
        {
            return if b.slot == r.slot_index {
                (ReserveOutcome::AlreadyHeld(self.spell(r.person, b)), None)
            } else {
                (ReserveOutcome::AlreadyBooked(self.spell(r.person, b)), None)
            };
        }
        if r.invitation_required
            && !phase.is_some_and(|p| self.invited.contains(&(p as u32, r.person.packed())))
        {
            return (ReserveOutcome::NotInvited, None);
        }
        if !self.inventory.try_reserve(r.slot_index) {
            return (ReserveOutcome::SlotFull, None);
        }
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let held = Held {
            seq,
            // Nanoseconds fit 64 bits until 2262.
            at: i64::try_from(r.now.unix_timestamp_nanos()).unwrap_or(i64::MAX),
            slot: r.slot_index,
            partner,
            channel: r.channel,
            status: BookingStatus::Booked,
        };
        let booking = self.spell(r.person, &held);
        self.owners.insert(seq, r.person.packed());
        person.remember(r.idempotency.as_ref(), seq, now);
        person.bookings.reserve_exact(1);
        person.bookings.push(held);
        let ack = self.log(&Record::Booked {
            seq,
            booking: booking.clone(),
            key: idem_pair(&r.idempotency),
            keys: Vec::new(),
        });
        (ReserveOutcome::Booked(booking), ack)
    }
}

/// What a journal's surviving records say was lost with its damaged ones.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// Bookings whose `booked` record is gone: their sequence numbers are missing between
    /// the ones that survive. These were acknowledged; their seats are free again.
    pub bookings: Vec<String>,
    /// Changes and cancellations of bookings whose `booked` record is gone.
    pub orphans: Vec<String>,
    /// Whether a calendar record survives (a journal without one starts empty).
    pub has_calendar: bool,
}

/// Reads surviving journal records and names what the damaged ones took with them.
pub fn lost_in(records: &[Vec<u8>]) -> Lost {
    let mut seqs = std::collections::BTreeSet::new();
    // Numbers a snapshot names as forgotten (cancelled history) are not lost.
    let mut forgotten = std::collections::HashSet::new();
    let mut booked = std::collections::HashSet::new();
    let mut touched = Vec::new();
    let mut lost = Lost::default();
    for raw in records {
        match serde_json::from_slice::<Record>(raw) {
            Ok(Record::Calendar { .. }) => lost.has_calendar = true,
            Ok(Record::Forgotten { seqs }) => forgotten.extend(seqs),
            Ok(Record::Booked { seq, booking, .. }) => {
                seqs.insert(seq);
                booked.insert(booking.booking);
            }
            Ok(
                Record::Changed { booking, .. }
                | Record::Cancelled { booking, .. }
                | Record::Attended { booking, .. }
                | Record::NoShow { booking, .. },
            ) => touched.push(booking),
            Ok(
                Record::Invited { .. }
                | Record::Settled { .. }
                | Record::Sms { .. }
                | Record::Keys { .. },
            )
            | Err(_) => {}
        }
    }
    let last = seqs.iter().next_back().copied().unwrap_or(0);
    lost.bookings = (1..=last)
        .filter(|s| !seqs.contains(s) && !forgotten.contains(s))
        .map(|s| booking_id(s).to_string())
        .collect();
    lost.orphans = touched
        .into_iter()
        .filter(|b| !booked.contains(b))
        .map(|b| b.to_string())
        .collect();
    lost.orphans.dedup();
    lost
}

impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    async fn load_calendar(&self, calendar: Calendar) -> Result<LoadReport, StoreError> {
        self.check_writable()?;
        let _one_loader = self.loader.lock().await;
        let (next, changes) = self.catalog.load().merge(&calendar)?;
        // Lowerings, then the record, then the raises: a booking can take a new seat only
        // once the record that creates it is queued ahead of the booking's (replay order).
        let raises = next.apply_lowerings(&self.inventory, &changes)?;
        let report = LoadReport {
            sites: next.sites.len(),
            phases: next.phases.len(),
            slots: next.slots.len(),
            capacity_changes: changes.len(),
        };
        let ack = if changes.is_empty() && self.catalog.load().to_calendar() == next.to_calendar() {
            None
        } else {
            let record = Record::Calendar { calendar };
            if self.journal.is_some() {
                // One calendar is one record, and replay reads records up to MAX_RECORD.
                let size = serde_json::to_vec(&record).map_or(0, |b| b.len());
                if size > super::journal::MAX_RECORD {
                    return Err(StoreError::Calendar(crate::domain::CalendarError(format!(
                        "the calendar is {size} bytes as a journal record; at most {} fit",
                        super::journal::MAX_RECORD
                    ))));
                }
            }
            self.log(&record)
        };
        apply_raises(&self.inventory, &raises);
        // Counters first, then the catalog: a slot is never visible without its seats.
        self.catalog.store(Arc::new(next));
        Self::durable(ack).await?;
        Ok(report)
    }

    async fn invite(&self, phase: PhaseId, people: Vec<IdNumber>) -> Result<u64, StoreError> {
        self.check_writable()?;
        let p = self
            .catalog
            .load()
            .phase_index(phase.as_str())
            .ok_or_else(|| StoreError::Internal(format!("unknown phase {phase}")))?;
        let mut added = 0;
        let mut last = None;
        for chunk in people.chunks(INVITES_PER_RECORD) {
            let mut fresh = Vec::new();
            for id in chunk {
                if self.invited.insert((p as u32, id.packed())) {
                    fresh.push(*id);
                }
            }
            added += fresh.len() as u64;
            if !fresh.is_empty() {
                last = self.log(&Record::Invited {
                    phase: phase.clone(),
                    people: fresh,
                });
            }
        }
        Self::durable(last).await?;
        Ok(added)
    }

    async fn reserve(&self, r: Reserve) -> Result<ReserveOutcome, StoreError> {
        self.check_writable()?;
        // The person's entry stays locked from the checks to the queued record (module
        // docs). Someone without a record gets one only if they book: the refusals that
        // make up most of an opening leave nothing behind.
        let partner = self.partners.number(r.partner.as_deref())?;
        let (outcome, ack) = match self.people.entry(r.person.packed()) {
            Entry::Occupied(mut person) => self.decide(&r, partner, person.get_mut()),
            Entry::Vacant(vacant) => {
                let mut person = Person::default();
                let decided = self.decide(&r, partner, &mut person);
                if matches!(decided.0, ReserveOutcome::Booked(_)) {
                    vacant.insert(person);
                }
                decided
            }
        };
        match outcome {
            ReserveOutcome::Booked(_) => Self::durable(ack).await?,
            // Answers that show a booking wait until it is durable: another request's
            // booking may still be in its group commit.
            ReserveOutcome::Replayed(_)
            | ReserveOutcome::AlreadyHeld(_)
            | ReserveOutcome::AlreadyBooked(_) => self.barrier().await?,
            _ => {}
        }
        Ok(outcome)
    }

    async fn change(&self, c: Change) -> Result<ChangeOutcome, StoreError> {
        self.check_writable()?;
        let catalog = self.catalog.load();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (outcome, ack) = {
            // Someone with no record has no booking to change: no record is made for them.
            let Some(mut person) = self.people.get_mut(&c.person.packed()) else {
                return Ok(ChangeOutcome::UnknownBooking);
            };
            let spell = |h: &Held| self.spell(c.person, h);
            let replay = person
                .replay(c.idempotency.as_ref(), now)
                .map(|r| r.copied());
            let phase = catalog.phase_index(c.phase.as_str());
            match replay {
                Some(Ok(b)) if Some(b.seq) == held::sequence_of(&c.booking) => {
                    (ChangeOutcome::Unchanged(spell(&b)), None)
                }
                Some(_) => (ChangeOutcome::KeyReused, None),
                None => match person.held_mut(&c.booking) {
                    None => (ChangeOutcome::UnknownBooking, None),
                    Some(b) if !b.status.is_open() => (ChangeOutcome::NotLive(spell(b)), None),
                    Some(b) if phase.is_none() || b.phase(&catalog) != phase => {
                        (ChangeOutcome::OtherPhase, None)
                    }
                    Some(b) if b.slot == c.slot_index => (ChangeOutcome::Unchanged(spell(b)), None),
                    Some(b) => {
                        if !self.inventory.try_reserve(c.slot_index) {
                            (ChangeOutcome::SlotFull(spell(b)), None)
                        } else {
                            let old = b.slot;
                            b.slot = c.slot_index;
                            let changed = spell(b);
                            let seq = b.seq;
                            person.remember(c.idempotency.as_ref(), seq, now);
                            let ack = self.log(&Record::Changed {
                                person: c.person,
                                booking: c.booking.clone(),
                                slot: c.slot.clone(),
                                key: idem_pair(&c.idempotency),
                                at: Some(now),
                            });
                            // Released only after the record is queued (module docs).
                            self.inventory.release(old);
                            (ChangeOutcome::Changed(changed), ack)
                        }
                    }
                },
            }
        };
        match outcome {
            ChangeOutcome::Changed(_) => Self::durable(ack).await?,
            ChangeOutcome::Unchanged(_) => self.barrier().await?,
            _ => {}
        }
        Ok(outcome)
    }

    async fn cancel(
        &self,
        person: IdNumber,
        booking: BookingId,
    ) -> Result<CancelOutcome, StoreError> {
        self.check_writable()?;
        let (outcome, ack) = match self.people.get_mut(&person.packed()) {
            None => (CancelOutcome::UnknownBooking, None),
            Some(mut p) => match p.held_mut(&booking) {
                None => (CancelOutcome::UnknownBooking, None),
                Some(b) if b.status == BookingStatus::Cancelled => {
                    (CancelOutcome::AlreadyCancelled(self.spell(person, b)), None)
                }
                Some(b) if !b.status.is_open() => {
                    (CancelOutcome::Final(self.spell(person, b)), None)
                }
                Some(b) => {
                    b.status = BookingStatus::Cancelled;
                    let cancelled = self.spell(person, b);
                    let ack = self.log(&Record::Cancelled {
                        person,
                        booking: booking.clone(),
                    });
                    self.inventory.release(b.slot);
                    self.forget(p.forget_old_cancelled(OffsetDateTime::now_utc().unix_timestamp()));
                    (CancelOutcome::Cancelled(cancelled), ack)
                }
            },
        };
        match outcome {
            CancelOutcome::Cancelled(_) => Self::durable(ack).await?,
            CancelOutcome::AlreadyCancelled(_) | CancelOutcome::Final(_) => self.barrier().await?,
            CancelOutcome::UnknownBooking => {}
        }
        Ok(outcome)
    }

    async fn booking_by_code(&self, code: &str) -> Result<Option<Booking>, StoreError> {
        let Some(seq) = sequence_of_code(code) else {
            return Ok(None);
        };
        let Some(person) = self.owners.get(&seq).map(|p| *p) else {
            return Ok(None);
        };
        let Some(id) = IdNumber::from_packed(person) else {
            return Ok(None);
        };
        let held = self
            .people
            .get(&person)
            .and_then(|p| p.bookings.iter().find(|b| b.seq == seq).copied());
        let found = held.map(|h| self.spell(id, &h));
        if found.is_some() {
            self.barrier().await?;
        }
        Ok(found)
    }

    async fn attend(
        &self,
        person: IdNumber,
        booking: BookingId,
    ) -> Result<AttendOutcome, StoreError> {
        self.check_writable()?;
        let (outcome, ack) = match self.people.get_mut(&person.packed()) {
            None => (AttendOutcome::UnknownBooking, None),
            Some(mut p) => match p.held_mut(&booking) {
                None => (AttendOutcome::UnknownBooking, None),
                Some(b) => match b.status {
                    BookingStatus::Attended => {
                        (AttendOutcome::AlreadyAttended(self.spell(person, b)), None)
                    }
                    BookingStatus::Cancelled => {
                        (AttendOutcome::Cancelled(self.spell(person, b)), None)
                    }
                    BookingStatus::Booked | BookingStatus::NoShow => {
                        b.status = BookingStatus::Attended;
                        let attended = self.spell(person, b);
                        // Queued under the person's lock, as every record (module docs).
                        let ack = self.log(&Record::Attended { person, booking });
                        (AttendOutcome::Attended(attended), ack)
                    }
                },
            },
        };
        match outcome {
            AttendOutcome::Attended(_) => Self::durable(ack).await?,
            AttendOutcome::UnknownBooking => {}
            _ => self.barrier().await?,
        }
        Ok(outcome)
    }

    async fn close_out(&self, phase: PhaseId, slots: Vec<SlotId>) -> Result<CloseOut, StoreError> {
        self.check_writable()?;
        let catalog = self.catalog.load();
        let Some(phase) = catalog.phase_index(phase.as_str()) else {
            return Ok(CloseOut::default());
        };
        let slots: std::collections::HashSet<u32> = slots
            .iter()
            .filter_map(|s| catalog.slot_index(s.as_str()))
            .collect();
        let mut done = CloseOut::default();
        let mut last = None;
        // Each shard is locked while it is walked; each record is queued under that lock,
        // so a check-in or a cancel racing with the close-out is ordered with it.
        for mut p in self.people.iter_mut() {
            let key = *p.key();
            let Some(person) = IdNumber::from_packed(key) else {
                continue;
            };
            for b in p.bookings.iter_mut() {
                if b.phase(&catalog) != Some(phase) || !slots.contains(&b.slot) {
                    continue;
                }
                match b.status {
                    BookingStatus::Attended => done.attended += 1,
                    BookingStatus::NoShow => done.no_show += 1,
                    BookingStatus::Booked => {
                        b.status = BookingStatus::NoShow;
                        done.no_show += 1;
                        if let Some(ack) = self.log(&Record::NoShow {
                            person,
                            booking: booking_id(b.seq),
                        }) {
                            last = Some(ack);
                        }
                    }
                    BookingStatus::Cancelled => {}
                }
            }
        }
        if last.is_some() {
            Self::durable(last).await?;
        } else {
            self.barrier().await?;
        }
        Ok(done)
    }

    async fn all_bookings(&self) -> Result<Vec<Booking>, StoreError> {
        let all = self.spell_all();
        self.barrier().await?;
        Ok(all)
    }

    async fn invited(&self, phase: PhaseId) -> Result<Vec<IdNumber>, StoreError> {
        let Some(p) = self.catalog.load().phase_index(phase.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(self
            .invited
            .iter()
            .filter(|k| k.0 == p as u32)
            .filter_map(|k| IdNumber::from_packed(k.1))
            .collect())
    }

    async fn bookings_of(&self, person: IdNumber) -> Result<Vec<Booking>, StoreError> {
        let held = self
            .people
            .get(&person.packed())
            .map(|p| p.bookings.clone())
            .unwrap_or_default();
        let bookings: Vec<Booking> = held.iter().map(|h| self.spell(person, h)).collect();
        // Shown only once durable: a booking read here may still be in its group commit.
        if !bookings.is_empty() {
            self.barrier().await?;
        }
        Ok(bookings)
    }

    async fn audit(&self) -> Result<AuditReport, StoreError> {
        let bookings = self.spell_all();
        let catalog = self.catalog.load_full();
        Ok(audit(
            &catalog,
            |s| (self.inventory.capacity(s), self.inventory.remaining(s)),
            &bookings,
        ))
    }

    async fn ready(&self) -> Result<(), String> {
        self.check_writable().map_err(|e| e.to_string())
    }

    async fn shutdown(&self) {
        self.stop_compactor().await;
        if let Some(j) = &self.journal {
            let journal_path = j.path().to_path_buf();
            j.close();
            tracing::info!(journal = %journal_path.display(), "journal flushed and closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::synthetic_id;
    use crate::store::contract;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_ephemeral_store_meets_the_contract() {
        contract::run_all(|| async { EmbeddedStore::ephemeral() }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_journaled_store_meets_the_contract() {
        let dirs = std::sync::Mutex::new(Vec::new());
        contract::run_all(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = EmbeddedStore::open(dir.path(), 64).expect("open").0;
            dirs.lock().expect("lock").push(dir);
            async { store }
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopened_journal_restores_bookings_counters_and_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (before, mine) = {
            let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
            let store = contract_loaded(store).await;
            let p = synthetic_id(5);
            let mut r = contract::reserve(&store, p, "C");
            r.idempotency = Some(Idempotency {
                key: "k".into(),
                fingerprint: "f".into(),
            });
            let ReserveOutcome::Booked(b) = store.reserve(r).await.expect("up") else {
                panic!("booked")
            };
            let q = synthetic_id(6);
            let ReserveOutcome::Booked(c) = store
                .reserve(contract::reserve(&store, q, "A"))
                .await
                .expect("up")
            else {
                panic!("booked")
            };
            store.cancel(q, c.booking.clone()).await.expect("up");
            store
                .invite(PhaseId::parse(contract::INVITED_ONLY).expect("id"), vec![q])
                .await
                .expect("up");
            let report = store.audit().await.expect("audit");
            store.shutdown().await;
            (report, b)
        };
        let (store, report) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert!(report.has_calendar);
        assert_eq!(store.audit().await.expect("audit"), before);
        assert_eq!(
            store.bookings_of(synthetic_id(5)).await.expect("up"),
            vec![mine.clone()]
        );
        let mut again = contract::reserve(&store, synthetic_id(5), "C");
        again.idempotency = Some(Idempotency {
            key: "k".into(),
            fingerprint: "f".into(),
        });
        assert_eq!(
            store.reserve(again).await.expect("up"),
            ReserveOutcome::Replayed(mine)
        );
        assert!(matches!(
            store
                .reserve(contract::reserve(&store, synthetic_id(6), "Q"))
                .await
                .expect("up"),
            ReserveOutcome::Booked(_)
        ));
        // New bookings continue the sequence instead of reusing ids.
        let ReserveOutcome::Booked(next) = store
            .reserve(contract::reserve(&store, synthetic_id(7), "E"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        assert_eq!(next.booking.as_str(), "b4");
    }

    /// Raising a full slot's capacity while people book it: the new seats' bookings
    /// must replay after the calendar record that created them (review finding).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn raising_capacity_during_bookings_replays_without_a_breach() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cal = contract::fixture(time::OffsetDateTime::now_utc());
        // Filler slots make each load's record slow to build: the gap the bug needed.
        let filler = cal.phases[0].slots[4].clone();
        for n in 0..5_000 {
            cal.phases[0].slots.push(crate::domain::Slot {
                id: crate::domain::SlotId::parse(&format!("Z{n}")).expect("id"),
                ..filler.clone()
            });
        }
        {
            let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
            let store = std::sync::Arc::new(store);
            store.load_calendar(cal.clone()).await.expect("load");
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let bookers: Vec<_> = (0..4u64)
                .map(|w| {
                    let (store, stop) = (store.clone(), stop.clone());
                    tokio::spawn(async move {
                        let mut n = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let r =
                                contract::reserve(&*store, synthetic_id(10_000 * (w + 1) + n), "A");
                            let _ = store.reserve(r).await.expect("up");
                            n += 1;
                        }
                    })
                })
                .collect();
            for capacity in 2..=21 {
                cal.phases[0].slots[0].capacity = capacity;
                store.load_calendar(cal.clone()).await.expect("raise");
            }
            stop.store(true, Ordering::Relaxed);
            for b in bookers {
                b.await.expect("booker");
            }
            let live = store.audit().await.expect("audit");
            assert!(live.ok, "{:?}", live.breaches);
            store.shutdown().await;
        }
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        let report = store.audit().await.expect("audit");
        assert!(report.ok, "after replay: {:?}", report.breaches);
        assert_eq!(
            contract::remaining_of(&store, "A"),
            0,
            "every raised seat was taken"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_acknowledged_once_the_journal_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
        let store = contract_loaded(store).await;
        let p = synthetic_id(40);
        let ReserveOutcome::Booked(_) = store
            .reserve(contract::reserve(&store, p, "D"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        store.shutdown().await;
        // A new booking cannot be made durable: refused, not acknowledged.
        assert!(matches!(
            store
                .reserve(contract::reserve(&store, synthetic_id(41), "D"))
                .await,
            Err(StoreError::Unavailable(_))
        ));
        // Nor can an answer that repeats a booking wait for its record any more.
        assert!(matches!(
            store.reserve(contract::reserve(&store, p, "D")).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    /// After the journal is closed, an answer that shows a change or a booking cannot
    /// wait for its record any more and is refused; one that shows nothing needs no wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_and_reads_of_bookings_are_refused_once_the_journal_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
        let store = contract_loaded(store).await;
        let p = synthetic_id(42);
        let ReserveOutcome::Booked(b) = store
            .reserve(contract::reserve(&store, p, "D"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        store.shutdown().await;
        assert!(matches!(
            store.change(contract::change(&store, p, &b, "E")).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(
            matches!(
                store.change(contract::change(&store, p, &b, "E")).await,
                Err(StoreError::Unavailable(_))
            ),
            "the same slot again: answered only once durable"
        );
        assert!(matches!(
            store.bookings_of(p).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(
            store.bookings_of(synthetic_id(43)).await.expect("no wait"),
            Vec::new()
        );
        assert_eq!(
            store.attend(p, booking_id(99)).await.expect("no wait"),
            AttendOutcome::UnknownBooking
        );
    }

    /// A close-out settles the listed slots of its phase only: a booking in another slot
    /// of the phase, or in a listed slot of another phase, stays booked.
    #[tokio::test]
    async fn a_person_keeps_the_newest_cancelled_bookings_in_memory_across_restarts_and_snapshots()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = synthetic_id(74);
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
        let store = contract_loaded(store).await;
        let mut made = Vec::new();
        for _ in 0..80 {
            let ReserveOutcome::Booked(b) = store
                .reserve(contract::reserve(&store, p, "C"))
                .await
                .expect("up")
            else {
                panic!("booked")
            };
            store.cancel(p, b.booking.clone()).await.expect("up");
            made.push(b);
        }
        let ReserveOutcome::Booked(live) = store
            .reserve(contract::reserve(&store, p, "C"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        let kept = |bookings: Vec<Booking>| -> Vec<String> {
            bookings.iter().map(|b| b.booking.to_string()).collect()
        };
        let mut expected: Vec<String> = made[16..].iter().map(|b| b.booking.to_string()).collect();
        expected.push(live.booking.to_string());
        assert_eq!(kept(store.bookings_of(p).await.expect("up")), expected);
        assert_eq!(
            store.booking_by_code(&made[0].code).await.expect("up"),
            None,
            "a forgotten booking is not found by its code"
        );
        assert!(
            store
                .booking_by_code(&made[16].code)
                .await
                .expect("up")
                .is_some()
        );
        store.shutdown().await;
        drop(store);

        // Replaying the journal forgets the same ones.
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert_eq!(kept(store.bookings_of(p).await.expect("up")), expected);
        snapshot_and_close(store).await;

        // So does the snapshot, which lists the forgotten numbers for repair.
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert_eq!(kept(store.bookings_of(p).await.expect("up")), expected);
        store.cancel(p, live.booking.clone()).await.expect("up");
        let ReserveOutcome::Booked(next) = store
            .reserve(contract::reserve(&store, p, "C"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        assert!(
            made.iter()
                .chain([&live])
                .all(|b| b.booking != next.booking && b.code != next.code),
            "a number was issued twice"
        );
        let mut forgotten = store
            .forgotten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        forgotten.sort_unstable();
        forgotten.dedup();
        // The sixteen forgotten before the snapshot, and the one its cancel forgot since.
        let numbers: Vec<u64> = made[..17]
            .iter()
            .filter_map(|b| held::sequence_of(&b.booking))
            .collect();
        assert_eq!(
            forgotten, numbers,
            "the forgotten numbers survive the snapshot"
        );
        assert!(store.audit().await.expect("audit").ok);
    }

    /// A journal (or an earlier version's snapshot) that holds a booking ahead of the
    /// calendar record adding its slot: replay applies that booking, and every later
    /// record of it, once the calendar is in.
    #[tokio::test]
    async fn a_booking_ahead_of_the_calendar_record_of_its_slot_is_replayed_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let mut with_n = contract::fixture(now);
        let mut n = with_n.phases[0].slots[0].clone();
        n.id = SlotId::parse("N").expect("id");
        n.capacity = 3;
        with_n.phases[0].slots.push(n);
        let person = synthetic_id(75);
        let booking = |seq: u64, slot: &str| Booking {
            booking: booking_id(seq),
            code: crate::domain::human_code(seq),
            phase: PhaseId::parse(contract::OPEN).expect("id"),
            slot: SlotId::parse(slot).expect("id"),
            person,
            channel: crate::domain::Channel::Web,
            partner: None,
            status: BookingStatus::Booked,
            booked_at: now,
        };
        let records = [
            Record::Calendar {
                calendar: contract::fixture(now),
            },
            Record::Booked {
                seq: 1,
                booking: booking(1, "N"),
                key: None,
                keys: Vec::new(),
            },
            Record::Changed {
                person,
                booking: booking_id(1),
                slot: SlotId::parse("C").expect("id"),
                key: None,
                at: None,
            },
            Record::Cancelled {
                person,
                booking: booking_id(1),
            },
            Record::Calendar { calendar: with_n },
        ];
        let mut bytes = Vec::new();
        for r in &records {
            bytes.extend(crate::store::journal::frame(
                &serde_json::to_vec(r).expect("json"),
            ));
        }
        std::fs::write(dir.path().join("journal.log"), &bytes).expect("write");
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("opens");
        let held = store.bookings_of(person).await.expect("up");
        assert_eq!(held.len(), 1);
        assert_eq!(
            held[0].slot.as_str(),
            "C",
            "the change after it applies too"
        );
        assert_eq!(
            held[0].status,
            BookingStatus::Cancelled,
            "and the cancel after that"
        );
        assert_eq!(contract::remaining_of(&store, "C"), 5);
        assert_eq!(contract::remaining_of(&store, "N"), 3);
        assert!(store.audit().await.expect("audit").ok);
    }

    /// A cancelled booking that an unexpired key names is not forgotten: the key's retry
    /// answers it again, as the key promises.
    #[tokio::test]
    async fn a_cancelled_booking_named_by_a_live_key_is_kept() {
        let store = contract_loaded(EmbeddedStore::ephemeral()).await;
        let p = synthetic_id(76);
        let mut keyed = contract::reserve(&store, p, "C");
        keyed.idempotency = Some(Idempotency {
            key: "first".into(),
            fingerprint: "fp".into(),
        });
        let ReserveOutcome::Booked(first) = store.reserve(keyed.clone()).await.expect("up") else {
            panic!("booked")
        };
        store.cancel(p, first.booking.clone()).await.expect("up");
        for _ in 0..70 {
            let ReserveOutcome::Booked(b) = store
                .reserve(contract::reserve(&store, p, "C"))
                .await
                .expect("up")
            else {
                panic!("booked")
            };
            store.cancel(p, b.booking).await.expect("up");
        }
        let ReserveOutcome::Replayed(again) = store.reserve(keyed).await.expect("up") else {
            panic!("the keyed retry is answered with its booking")
        };
        assert_eq!(again.booking, first.booking);
        assert_eq!(again.status, BookingStatus::Cancelled);
        // The other cancelled ones beyond the newest 64 are forgotten.
        assert_eq!(store.bookings_of(p).await.expect("up").len(), 65);
    }

    /// A key used again after it expired names the newer booking, in memory and after a
    /// restart alike: replay remembers the second use, whose retry then replays it.
    #[tokio::test]
    async fn a_key_used_again_after_it_expired_names_the_newer_booking_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = synthetic_id(77);
        let keyed = |store: &EmbeddedStore, now: OffsetDateTime| {
            let mut r = contract::reserve(store, p, "C");
            r.idempotency = Some(Idempotency {
                key: "same".into(),
                fingerprint: "fp".into(),
            });
            r.now = now;
            r
        };
        let t0 = OffsetDateTime::now_utc() - time::Duration::hours(30);
        let later = t0 + time::Duration::hours(25);
        let second = {
            let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
            let store = contract_loaded(store).await;
            let ReserveOutcome::Booked(first) = store.reserve(keyed(&store, t0)).await.expect("up")
            else {
                panic!("booked")
            };
            store.cancel(p, first.booking).await.expect("up");
            let ReserveOutcome::Booked(second) =
                store.reserve(keyed(&store, later)).await.expect("up")
            else {
                panic!("a new request once the key expired")
            };
            store.shutdown().await;
            second
        };
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert_eq!(
            store
                .reserve(keyed(&store, later + time::Duration::seconds(1)))
                .await
                .expect("up"),
            ReserveOutcome::Replayed(second)
        );
    }

    /// A change's key names the booking it changed: the same key and request sent for
    /// another booking is a reused key, not a replay of the first change.
    #[tokio::test]
    async fn a_change_key_sent_for_another_booking_is_refused() {
        let store = contract_loaded(EmbeddedStore::ephemeral()).await;
        let p = synthetic_id(78);
        store
            .invite(PhaseId::parse(contract::INVITED_ONLY).expect("id"), vec![p])
            .await
            .expect("up");
        let ReserveOutcome::Booked(open) = store
            .reserve(contract::reserve(&store, p, "C"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        let ReserveOutcome::Booked(invited) = store
            .reserve(contract::reserve(&store, p, "Q"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        let key = Some(Idempotency {
            key: "move".into(),
            fingerprint: "same request".into(),
        });
        let mut c = contract::change(&store, p, &open, "D");
        c.idempotency = key.clone();
        assert!(matches!(
            store.change(c).await.expect("up"),
            ChangeOutcome::Changed(_)
        ));
        let mut other = contract::change(&store, p, &invited, "Q");
        other.idempotency = key;
        assert_eq!(
            store.change(other).await.expect("up"),
            ChangeOutcome::KeyReused
        );
    }

    #[tokio::test]
    async fn an_idempotency_key_expires_after_a_day_and_expired_keys_leave_with_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = synthetic_id(71);
        let key = Some(Idempotency {
            key: "k".into(),
            fingerprint: "fp".into(),
        });
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
        let store = contract_loaded(store).await;
        let mut r = contract::reserve(&store, p, "C");
        r.idempotency = key.clone();
        let ReserveOutcome::Booked(first) = store.reserve(r.clone()).await.expect("up") else {
            panic!("booked")
        };
        // Within the day the key replays (to its last second); from a day later it is a
        // new request, which finds the booking it made.
        let made_at = r.now;
        r.now = made_at + time::Duration::seconds(KEY_LIFETIME_SECS - 1);
        assert_eq!(
            store.reserve(r.clone()).await.expect("up"),
            ReserveOutcome::Replayed(first.clone())
        );
        r.now = made_at + time::Duration::seconds(KEY_LIFETIME_SECS);
        assert_eq!(
            store.reserve(r.clone()).await.expect("up"),
            ReserveOutcome::AlreadyHeld(first.clone())
        );
        // Another key, used now, is remembered; the expired one is dropped when it is.
        let mut fresh = contract::reserve(&store, p, "C");
        fresh.idempotency = Some(Idempotency {
            key: "k2".into(),
            fingerprint: "fp2".into(),
        });
        let now = OffsetDateTime::now_utc().unix_timestamp();
        {
            let mut person = store.people.get_mut(&p.packed()).expect("person");
            // Exactly a day old: expired.
            person.keys[0].at = secs(now - KEY_LIFETIME_SECS);
            person.remember(fresh.idempotency.as_ref(), 1, now);
            let kept: Vec<Digest> = person.keys.iter().map(|k| k.key).collect();
            assert_eq!(kept, [digest("k2")], "the expired key is forgotten");
            person.keys[0].at = secs(now - KEY_LIFETIME_SECS - 1);
            // A live key, named by its booking: it survives the snapshot.
            person.remember(fresh.idempotency.as_ref(), first_seq(&first), now);
        }
        snapshot_and_close(store).await;
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        {
            let person = store.people.get(&p.packed()).expect("person");
            let kept: Vec<Digest> = person.keys.iter().map(|k| k.key).collect();
            assert_eq!(
                kept,
                [digest("k2")],
                "the expired key is not in the snapshot; the live one is"
            );
            assert_eq!(person.bookings.len(), 1);
        }
        fresh.now = OffsetDateTime::now_utc();
        assert_eq!(
            store.reserve(fresh).await.expect("up"),
            ReserveOutcome::Replayed(first)
        );
    }

    fn first_seq(b: &Booking) -> u64 {
        held::sequence_of(&b.booking).expect("ours")
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = digest("an idempotency key");
        assert_eq!(from_hex(&to_hex(&d)), Some(d));
        assert_eq!(to_hex(&d).len(), 32);
        assert_eq!(from_hex("not hex at all, but 32 chars ok!"), None);
        assert_eq!(from_hex("00"), None);
        assert_ne!(digest("a"), digest("b"));
    }

    #[tokio::test]
    async fn a_packed_booking_answers_as_it_was_made_after_a_snapshot_and_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = synthetic_id(72);
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
        let store = contract_loaded(store).await;
        let mut r = contract::reserve(&store, p, "C");
        r.channel = crate::domain::Channel::Kiosk;
        r.partner = Some("family-mart".into());
        r.now = OffsetDateTime::from_unix_timestamp_nanos(1_626_141_600_123_456_789).expect("time");
        let ReserveOutcome::Booked(made) = store.reserve(r).await.expect("up") else {
            panic!("booked")
        };
        assert_eq!(made.partner.as_deref(), Some("family-mart"));
        assert_eq!(
            made.booked_at.unix_timestamp_nanos(),
            1_626_141_600_123_456_789
        );
        let other = contract::reserve(&store, synthetic_id(73), "D");
        let ReserveOutcome::Booked(web) = store.reserve(other).await.expect("up") else {
            panic!("booked")
        };
        assert_eq!(web.partner, None);
        snapshot_and_close(store).await;
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert_eq!(store.bookings_of(p).await.expect("up"), vec![made.clone()]);
        assert_eq!(
            store.booking_by_code(&made.code).await.expect("up"),
            Some(made)
        );
        assert_eq!(
            store.bookings_of(synthetic_id(73)).await.expect("up"),
            vec![web]
        );
    }

    #[tokio::test]
    async fn a_close_out_leaves_other_slots_and_other_phases_alone() {
        let store = contract_loaded(EmbeddedStore::ephemeral()).await;
        store
            .invite(
                PhaseId::parse(contract::INVITED_ONLY).expect("id"),
                vec![synthetic_id(81)],
            )
            .await
            .expect("up");
        for (n, slot) in [(80, "A"), (81, "Q"), (82, "D")] {
            let booked = store
                .reserve(contract::reserve(&store, synthetic_id(n), slot))
                .await
                .expect("up");
            assert!(matches!(booked, ReserveOutcome::Booked(_)), "{booked:?}");
        }
        let day = ["A", "Q"].map(|s| SlotId::parse(s).expect("id")).to_vec();
        let done = store
            .close_out(PhaseId::parse(contract::OPEN).expect("id"), day)
            .await
            .expect("up");
        assert_eq!((done.attended, done.no_show), (0, 1));
        for (n, status) in [
            (80, BookingStatus::NoShow),
            (81, BookingStatus::Booked),
            (82, BookingStatus::Booked),
        ] {
            let mine = store.bookings_of(synthetic_id(n)).await.expect("up");
            assert_eq!(mine[0].status, status, "person {n}");
        }
    }

    /// Every idempotency key survives a restart: a person's keys of bookings in two
    /// phases and of a change all replay the first answer, and refuse another request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopened_journal_restores_every_key_of_a_person() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = synthetic_id(70);
        let keyed = |key: &str| {
            Some(Idempotency {
                key: key.into(),
                fingerprint: format!("fp-{key}"),
            })
        };
        let (open, invited, moved) = {
            let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
            let store = contract_loaded(store).await;
            store
                .invite(PhaseId::parse(contract::INVITED_ONLY).expect("id"), vec![p])
                .await
                .expect("up");
            let mut r = contract::reserve(&store, p, "C");
            r.idempotency = keyed("k1");
            let ReserveOutcome::Booked(open) = store.reserve(r).await.expect("up") else {
                panic!("booked")
            };
            let mut r = contract::reserve(&store, p, "Q");
            r.idempotency = keyed("k2");
            let ReserveOutcome::Booked(invited) = store.reserve(r).await.expect("up") else {
                panic!("booked")
            };
            let mut c = contract::change(&store, p, &open, "D");
            c.idempotency = keyed("k3");
            let ChangeOutcome::Changed(moved) = store.change(c).await.expect("up") else {
                panic!("changed")
            };
            store.shutdown().await;
            (open, invited, moved)
        };
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        let mut r = contract::reserve(&store, p, "C");
        r.idempotency = keyed("k1");
        assert_eq!(
            store.reserve(r).await.expect("up"),
            ReserveOutcome::Replayed(moved.clone())
        );
        let mut r = contract::reserve(&store, p, "Q");
        r.idempotency = keyed("k2");
        assert_eq!(
            store.reserve(r).await.expect("up"),
            ReserveOutcome::Replayed(invited)
        );
        // The change's key: another request under it is refused, the same one replays.
        let mut c = contract::change(&store, p, &open, "E");
        c.idempotency = Some(Idempotency {
            key: "k3".into(),
            fingerprint: "another request".into(),
        });
        assert_eq!(store.change(c).await.expect("up"), ChangeOutcome::KeyReused);
        let mut c = contract::change(&store, p, &open, "D");
        c.idempotency = keyed("k3");
        assert_eq!(
            store.change(c).await.expect("up"),
            ChangeOutcome::Unchanged(moved)
        );
    }

    /// While the journal cannot write, a write is refused before it takes a seat and the
    /// store is unready; once the disk is back, writes are taken again.
    #[cfg(feature = "fault-injection")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_journal_refuses_writes_before_they_take_a_seat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
        let store = contract_loaded(store).await;
        let fault = dir.path().join("fault-injection");
        std::fs::write(&fault, "write-eio").expect("fault");
        // The write that meets the failure is not acknowledged (its record is held).
        assert!(matches!(
            store
                .reserve(contract::reserve(&store, synthetic_id(60), "D"))
                .await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(store.ready().await.is_err(), "unready while failing");
        let left = contract::remaining_of(&store, "D");
        assert!(matches!(
            store
                .reserve(contract::reserve(&store, synthetic_id(61), "D"))
                .await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(contract::remaining_of(&store, "D"), left, "no seat taken");
        std::fs::write(&fault, "").expect("clear");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.ready().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "no recovery");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(matches!(
            store
                .reserve(contract::reserve(&store, synthetic_id(61), "D"))
                .await
                .expect("up"),
            ReserveOutcome::Booked(_)
        ));
    }

    #[tokio::test]
    async fn a_calendar_that_only_adds_a_site_is_journaled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = time::OffsetDateTime::now_utc();
        {
            let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("open");
            let store = contract_loaded(store).await;
            let mut cal = contract::fixture(now);
            let mut site = cal.sites[0].clone();
            site.id = crate::domain::SiteId::parse("S9").expect("id");
            cal.sites.push(site);
            let report = store.load_calendar(cal).await.expect("load");
            assert_eq!((report.sites, report.capacity_changes), (3, 0));
            store.shutdown().await;
        }
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert!(
            store.catalog().sites.iter().any(|s| s.id.as_str() == "S9"),
            "the new site survives a restart"
        );
    }

    #[test]
    fn lost_names_the_bookings_whose_records_are_gone() {
        let booked = |seq: u64| {
            serde_json::to_vec(
                &serde_json::json!({"t": "booked", "seq": seq, "key": null, "booking": {
                "booking": format!("b{seq:x}"), "code": "AAAAAA", "phase": "P1", "slot": "A",
                "person": synthetic_id(seq).to_string(), "channel": "web", "status": "booked",
                "booked_at": "2021-07-13T10:00:00+08:00"}}),
            )
            .expect("json")
        };
        let cancelled = |seq: u64| {
            serde_json::to_vec(&serde_json::json!({"t": "cancelled",
                "person": synthetic_id(seq).to_string(), "booking": format!("b{seq:x}")}))
            .expect("json")
        };
        let records = vec![booked(1), booked(2), booked(4), cancelled(3), cancelled(2)];
        let lost = lost_in(&records);
        assert_eq!(lost.bookings, vec!["b3".to_string()]);
        assert_eq!(lost.orphans, vec!["b3".to_string()]);
        assert!(!lost.has_calendar);
        assert_eq!(lost_in(&[booked(1)]).bookings, Vec::<String>::new());
        // A number a snapshot lists as forgotten (cancelled history) is not lost.
        let forgotten =
            serde_json::to_vec(&serde_json::json!({"t": "forgotten", "seqs": [1, 3, 5]}))
                .expect("json");
        let records = vec![forgotten, booked(2), booked(4), booked(7)];
        assert_eq!(lost_in(&records).bookings, vec!["b6".to_string()]);
    }

    #[tokio::test]
    async fn the_embedded_store_names_itself_and_is_ready_until_its_journal_fails() {
        let store = EmbeddedStore::ephemeral();
        assert_eq!(store.backend(), "embedded");
        assert!(store.ready().await.is_ok());
    }

    #[test]
    fn the_offline_reader_needs_a_journal_and_reports_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            EmbeddedStore::open_read_only(dir.path()).is_err(),
            "no journal there"
        );
        let mut bytes =
            crate::store::journal::frame(br#"{"t":"invited","phase":"P1","people":[]}"#);
        bytes.extend([9u8, 0, 0, 0, 1, 2]);
        std::fs::write(dir.path().join("journal.log"), &bytes).expect("write");
        let (_, report) = EmbeddedStore::open_read_only(dir.path()).expect("read");
        assert_eq!((report.records, report.truncated_bytes), (1, 6));
    }

    /// Writes a snapshot (on a blocking thread, as the compactor does) and closes the
    /// store, so that the directory can be reopened.
    async fn snapshot_and_close(store: EmbeddedStore) {
        let store = Arc::new(store);
        let s = Arc::clone(&store);
        tokio::task::spawn_blocking(move || s.snapshot())
            .await
            .expect("join")
            .expect("snapshot");
        store.shutdown().await;
    }

    async fn contract_loaded(store: EmbeddedStore) -> EmbeddedStore {
        store
            .load_calendar(contract::fixture(time::OffsetDateTime::now_utc()))
            .await
            .expect("fixture");
        store
    }
}
