//! Snapshots of the embedded store: its whole state as journal records, written beside
//! the journal so that a restart reads the snapshot and the short segments after it
//! instead of the whole opening's traffic.
//!
//! A snapshot is taken while writes go on; no write waits for it. The journal is rotated
//! first: every record queued before the rotation goes to the old segments, and its
//! effect is in memory before it was queued (records are queued after the change they
//! describe, under the lock that made it). So the state read after the rotation holds
//! every old record's effect, and perhaps some of the new segment's. Replay applies
//! records as settings (this booking exists, has this slot, this status) rather than
//! changes, so a new-segment record replayed over a snapshot that already holds it
//! changes nothing; seats are recounted from the live bookings once replay ends. A
//! calendar load queues its record before it swaps the catalog, so the rotation and the
//! catalog read happen under the loader lock that calendar loads hold.
//!
//! Steps, each a crash point in the crash tests: rotate (a new segment), write
//! `journal.snapshot.N.tmp` and sync it, rename it into place and sync the directory,
//! then remove the segments and snapshots it stands for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::{EmbeddedStore, Record, SmsOutcome, held};
use crate::domain::{IdNumber, PhaseId};
use crate::store::StoreError;
use crate::store::outbox::{Delivery, MessageState};
use crate::store::segments;

/// What a snapshot wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The segment the snapshot starts (it stands for every segment before it).
    pub segment: u64,
    pub records: u64,
    pub bytes: u64,
    pub bookings: u64,
    /// Files removed: the segments and older snapshots it stands for.
    pub removed: usize,
}

/// The background thread that snapshots when the current segment grows past a size.
#[derive(Debug)]
pub(super) struct Compactor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("snapshot: {e}"))
}

fn encode(r: &Record) -> Vec<u8> {
    // Plain data serialises.
    serde_json::to_vec(r).unwrap_or_default()
}

/// A settled invitee as its journal record holds it: person, mobile, message sequence.
type Invitee = (IdNumber, String, u64);

/// Records per `Invited` record of a snapshot.
const INVITED_PER_RECORD: usize = 100_000;

impl EmbeddedStore {
    /// Writes a snapshot and removes the journal files it stands for. Blocking: call it
    /// from a blocking thread. Without a journal there is nothing to do.
    pub fn snapshot(&self) -> Result<SnapshotReport, StoreError> {
        self.snapshot_with(|| {})
    }

    /// [`Self::snapshot`], running `after_rotation` between the rotation and the reading
    /// of the state (tests change the store there, as concurrent writes would).
    fn snapshot_with(&self, after_rotation: impl FnOnce()) -> Result<SnapshotReport, StoreError> {
        let Some(journal) = &self.journal else {
            return Err(StoreError::Internal(
                "an ephemeral store has no journal".into(),
            ));
        };
        self.check_writable()?;
        let dir = journal
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let (segment, catalog) = {
            let _no_calendar_load = self.loader.blocking_lock();
            let segment = journal
                .rotate()
                .blocking_recv()
                .map_err(|_| io("the journal writer stopped"))?
                .map_err(io)?;
            (segment, self.catalog.load_full())
        };
        segments::crash_point("snapshot-rotated");
        after_rotation();

        let mut head: Vec<Vec<u8>> = vec![encode(&Record::Calendar {
            calendar: catalog.to_calendar(),
        })];
        let mut by_phase: BTreeMap<u32, Vec<IdNumber>> = BTreeMap::new();
        for k in self.invited.iter() {
            if let Some(p) = IdNumber::from_packed(k.1) {
                by_phase.entry(k.0).or_default().push(p);
            }
        }
        for (p, people) in by_phase {
            let Some(info) = catalog.phases.get(p as usize) else {
                continue;
            };
            for chunk in people.chunks(INVITED_PER_RECORD) {
                head.push(encode(&Record::Invited {
                    phase: info.phase.id.clone(),
                    people: chunk.to_vec(),
                }));
            }
        }
        {
            let book = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
            let messages = book.messages();
            let mut settled: BTreeMap<(PhaseId, i64), Vec<Invitee>> = BTreeMap::new();
            let mut outcomes = Vec::new();
            for m in &messages {
                let seq = crate::store::outbox::message_seq(&m.id).unwrap_or(0);
                settled
                    .entry((m.phase.clone(), m.invited_at))
                    .or_default()
                    .push((m.person, m.to.clone(), seq));
                let d = match m.state {
                    MessageState::Queued => continue,
                    MessageState::Sent => Delivery::Sent,
                    MessageState::Failed => Delivery::Retry {
                        attempts: m.attempts,
                        due_ms: m.due_ms,
                        error: m.error.clone().unwrap_or_default(),
                    },
                    MessageState::Dead => Delivery::Dead {
                        attempts: m.attempts,
                        error: m.error.clone().unwrap_or_default(),
                    },
                };
                outcomes.push(SmsOutcome::of(&m.id, &d));
            }
            for ((phase, at), invites) in settled {
                for chunk in invites.chunks(10_000) {
                    head.push(encode(&Record::Settled {
                        phase: phase.clone(),
                        at,
                        invites: chunk.to_vec(),
                    }));
                }
            }
            for chunk in outcomes.chunks(10_000) {
                head.push(encode(&Record::Sms {
                    outcomes: chunk.iter().map(SmsOutcome::copy).collect(),
                }));
            }
        }

        // The people stream from the map into the file: each shard is read-locked only
        // while its own entries are written.
        let mut bookings = 0u64;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut current = Arc::clone(&catalog);
        let people = self.people.iter().flat_map(|entry| {
            let person = IdNumber::from_packed(*entry.key());
            let mut out: Vec<Vec<u8>> = Vec::with_capacity(entry.bookings.len() + 1);
            let Some(person) = person else { return out };
            for h in &entry.bookings {
                // A slot the rotation's catalog lacks was added since (a booking may have
                // moved into it): the calendar as it is now goes first, so that replay
                // knows the slot before the booking. Merging a calendar again is harmless.
                if h.slot as usize >= current.slots.len() {
                    current = self.catalog.load_full();
                    out.push(encode(&Record::Calendar {
                        calendar: current.to_calendar(),
                    }));
                }
                let Some(booking) = held::spell(&current, &self.partners, person, h) else {
                    continue;
                };
                // The person's live keys that name this booking travel with it (a key
                // names a booking the person holds: one that a live key names is never
                // forgotten). Expired keys are left out: they are forgotten.
                let keys = entry
                    .keys
                    .iter()
                    .filter(|k| k.seq == h.seq && k.live_at(now))
                    .map(|k| {
                        (
                            super::to_hex(&k.key),
                            super::to_hex(&k.fingerprint),
                            i64::from(k.at),
                        )
                    })
                    .collect();
                out.push(encode(&Record::Booked {
                    seq: h.seq,
                    booking,
                    key: None,
                    keys,
                }));
            }
            out
        });
        // Read once every person is written: a booking forgotten meanwhile is in one or
        // the other (or in both: its number is then listed and its record kept).
        let forgotten = std::iter::once_with(|| {
            let mut seqs = self
                .forgotten
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            seqs.sort_unstable();
            seqs.dedup();
            seqs.chunks(INVITED_PER_RECORD)
                .map(|c| encode(&Record::Forgotten { seqs: c.to_vec() }))
                .collect::<Vec<_>>()
        })
        .flatten();
        let mut records = head.len() as u64;
        let all = head.into_iter().chain(people.chain(forgotten).inspect(|r| {
            records += 1;
            if r.starts_with(br#"{"t":"booked""#) {
                bookings += 1;
            }
        }));
        let bytes = segments::write_snapshot(&dir, "journal", segment, all).map_err(io)?;
        let removed = segments::prune(&dir, "journal", segment).map_err(io)?;
        Ok(SnapshotReport {
            segment,
            records,
            bytes,
            bookings,
            removed,
        })
    }

    /// Starts the thread that writes a snapshot whenever the current segment holds more
    /// than `every_bytes`; checked once a second. The store owns it and stops it at
    /// shutdown. Nothing starts for an ephemeral store or `every_bytes` 0.
    pub fn spawn_compactor(self: &Arc<Self>, every_bytes: u64) {
        if self.journal.is_none() || every_bytes == 0 {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let store: Weak<Self> = Arc::downgrade(self);
        let halt = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("slotd-snapshot".into())
            .spawn(move || {
                while !halt.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(200));
                    let Some(store) = store.upgrade() else { return };
                    let Some(journal) = &store.journal else { return };
                    if journal.has_failed() || journal.segment_bytes() < every_bytes {
                        continue;
                    }
                    let started = Instant::now();
                    match store.snapshot() {
                        Ok(r) => tracing::info!(
                            segment = r.segment,
                            records = r.records,
                            bookings = r.bookings,
                            bytes = r.bytes,
                            removed = r.removed,
                            ms = started.elapsed().as_millis() as u64,
                            "snapshot written"
                        ),
                        Err(e) => tracing::error!(error = %e, "snapshot failed; the journal keeps growing"),
                    }
                }
            });
        match spawned {
            Ok(thread) => {
                *self
                    .compactor
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Compactor { stop, thread });
            }
            Err(e) => tracing::error!(error = %e, "cannot start the snapshot thread"),
        }
    }

    /// Stops the compactor, waiting for a snapshot in progress.
    pub(super) async fn stop_compactor(&self) {
        let taken = self
            .compactor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(c) = taken {
            c.stop.store(true, Ordering::Release);
            let _ = tokio::task::spawn_blocking(move || c.thread.join()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{BookingStatus, SlotId, synthetic_id};
    use crate::store::contract::{INVITED_ONLY, OPEN, fixture, remaining_of, reserve};
    use crate::store::outbox::{Invite, Outbox};
    use crate::store::{ReserveOutcome, Store};

    async fn book(s: &EmbeddedStore, n: u64, slot: &str) -> crate::domain::Booking {
        match s
            .reserve(reserve(s, synthetic_id(n), slot))
            .await
            .expect("reserve")
        {
            ReserveOutcome::Booked(b) => b,
            other => panic!("{other:?}"),
        }
    }

    /// Everything a restart must bring back, in a comparable form.
    async fn state(s: &EmbeddedStore) -> (Vec<String>, Vec<u32>, usize, String, usize) {
        let mut bookings: Vec<String> = s
            .all_bookings()
            .await
            .expect("bookings")
            .iter()
            .map(|b| format!("{} {} {} {:?}", b.booking, b.person, b.slot, b.status))
            .collect();
        bookings.sort();
        let seats = ["A", "B", "C", "D", "E", "Q"]
            .iter()
            .map(|x| remaining_of(s, x))
            .collect();
        let invited = s
            .invited(PhaseId::parse(INVITED_ONLY).expect("id"))
            .await
            .expect("invited")
            .len();
        let stats = format!("{:?}", s.stats().await.expect("stats"));
        (
            bookings,
            seats,
            invited,
            stats,
            s.messages().await.expect("m").len(),
        )
    }

    /// A booking made before the rotation and moved, after it, into a slot that a
    /// calendar load added after it: the rotation's catalog lacks the slot, so the
    /// snapshot writes the calendar as it is now ahead of that booking.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_booking_moved_into_a_slot_added_during_a_snapshot_survives_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(EmbeddedStore::open(dir.path(), 64).expect("open").0);
        let now = OffsetDateTime::now_utc();
        store.load_calendar(fixture(now)).await.expect("fixture");
        let moved = book(&store, 1, "A").await;
        let kept = book(&store, 2, "C").await;
        let (s, handle, to_move) = (
            Arc::clone(&store),
            tokio::runtime::Handle::current(),
            moved.clone(),
        );
        tokio::task::spawn_blocking(move || {
            s.snapshot_with(|| {
                handle.block_on(async {
                    let mut cal = fixture(now);
                    let mut slot = cal.phases[0].slots[0].clone();
                    slot.id = SlotId::parse("N").expect("id");
                    slot.capacity = 3;
                    cal.phases[0].slots.push(slot);
                    s.load_calendar(cal).await.expect("adds N");
                    let change =
                        crate::store::contract::change(&*s, synthetic_id(1), &to_move, "N");
                    let outcome = s.change(change).await.expect("change");
                    assert!(matches!(outcome, crate::store::ChangeOutcome::Changed(_)));
                })
            })
        })
        .await
        .expect("join")
        .expect("snapshot");
        store.shutdown().await;
        drop(store);
        let (store, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        let all = store.all_bookings().await.expect("all");
        let slot_of = |id: &crate::domain::BookingId| {
            all.iter()
                .find(|b| &b.booking == id)
                .map(|b| b.slot.to_string())
        };
        assert_eq!(slot_of(&moved.booking).as_deref(), Some("N"));
        assert_eq!(slot_of(&kept.booking).as_deref(), Some("C"));
        assert_eq!(remaining_of(&store, "N"), 2);
        assert_eq!(remaining_of(&store, "A"), 1);
        assert!(store.audit().await.expect("audit").ok);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_from_a_snapshot_and_the_segment_after_it_restores_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(EmbeddedStore::open(dir.path(), 64).expect("open").0);
        store
            .load_calendar(fixture(OffsetDateTime::now_utc()))
            .await
            .expect("fixture");
        let mut made = Vec::new();
        for n in 0..40 {
            made.push(book(&store, n, "E").await);
        }
        for b in &made[..10] {
            store
                .cancel(b.person, b.booking.clone())
                .await
                .expect("cancel");
        }
        store
            .attend(made[10].person, made[10].booking.clone())
            .await
            .expect("attend");
        let invites = (100..110)
            .map(|n| Invite {
                person: synthetic_id(n),
                to: format!("09{n:08}"),
            })
            .collect();
        store
            .settle(
                PhaseId::parse(INVITED_ONLY).expect("id"),
                OffsetDateTime::now_utc(),
                invites,
            )
            .await
            .expect("settle");
        let claimed = store.claim(1, 3, 1_000).await.expect("claim");
        store
            .record(vec![(claimed[0].id.clone(), Delivery::Sent)])
            .await
            .expect("record");

        let s = store.clone();
        let report = tokio::task::spawn_blocking(move || s.snapshot())
            .await
            .expect("task")
            .expect("snapshot");
        assert_eq!(
            (report.segment, report.bookings, report.removed),
            (1, 40, 1)
        );
        assert!(
            !dir.path().join("journal.log").exists(),
            "segment 0 removed"
        );

        // After the snapshot: more churn, into segment 1.
        for b in &made[20..25] {
            store
                .cancel(b.person, b.booking.clone())
                .await
                .expect("cancel");
        }
        book(&store, 100, "Q").await;
        book(&store, 201, "D").await;
        store
            .close_out(
                PhaseId::parse(OPEN).expect("id"),
                vec![SlotId::parse("E").expect("id")],
            )
            .await
            .expect("close-out");
        let before = state(&store).await;
        store.shutdown().await;
        drop(store);

        let (again, report) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert!(report.has_calendar);
        assert_eq!(state(&again).await, before);
        let next = book(&again, 300, "D").await;
        assert!(
            before
                .0
                .iter()
                .all(|b| !b.starts_with(&format!("{} ", next.booking))),
            "booking ids are not reissued"
        );
        let statuses: Vec<BookingStatus> = again
            .bookings_of(made[30].person)
            .await
            .expect("b")
            .iter()
            .map(|b| b.status)
            .collect();
        assert_eq!(statuses, vec![BookingStatus::NoShow]);
        assert!(again.audit().await.expect("audit").ok);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_snapshot_taken_while_people_book_and_cancel_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(EmbeddedStore::open(dir.path(), 64).expect("open").0);
        store
            .load_calendar(fixture(OffsetDateTime::now_utc()))
            .await
            .expect("fixture");
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let s = store.clone();
                tokio::spawn(async move {
                    let mut kept = Vec::new();
                    for i in 0..150u64 {
                        let n = 1_000 + w * 1_000 + i;
                        let slot = if i % 2 == 0 { "D" } else { "E" };
                        if let ReserveOutcome::Booked(b) = s
                            .reserve(reserve(&*s, synthetic_id(n), slot))
                            .await
                            .expect("reserve")
                        {
                            if i % 3 == 0 {
                                s.cancel(b.person, b.booking).await.expect("cancel");
                            } else {
                                kept.push(b.booking);
                            }
                        }
                    }
                    kept
                })
            })
            .collect();
        let mut snapshots = 0;
        for _ in 0..3 {
            let s = store.clone();
            if tokio::task::spawn_blocking(move || s.snapshot())
                .await
                .expect("task")
                .is_ok()
            {
                snapshots += 1;
            }
        }
        let mut kept = Vec::new();
        for w in writers {
            kept.extend(w.await.expect("writer"));
        }
        assert_eq!(snapshots, 3);
        let before = state(&store).await;
        store.shutdown().await;
        drop(store);
        let (again, _) = EmbeddedStore::open(dir.path(), 64).expect("reopen");
        assert_eq!(state(&again).await, before);
        let live: std::collections::HashSet<_> = again
            .all_bookings()
            .await
            .expect("all")
            .into_iter()
            .filter(|b| b.status == BookingStatus::Booked)
            .map(|b| b.booking)
            .collect();
        assert!(
            kept.iter().all(|b| live.contains(b)),
            "every acknowledged booking"
        );
        assert!(again.audit().await.expect("audit").ok);
    }
}
