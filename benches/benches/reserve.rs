//! `service::reserve` through the embedded store: a new booking per distinct person into
//! large slots, the slot-full answer an opening mostly gives, and a new booking with the
//! journal on (group commit under many concurrent requests, and alone: one fsync each).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotd::domain::{IdNumber, MAX_SLOT_CAPACITY, synthetic_id};
use slotd::service::{self, Booker};
use slotd::store::{EmbeddedStore, ReserveOutcome, Store};
use slotd_benches::{OPEN_PHASE, ephemeral_store, one_site_calendar, open_slots, runtime};
use time::OffsetDateTime;

/// Requests in flight at once in the journaled bench: what the group commit can batch.
const IN_FLIGHT: u64 = 256;
/// The server's default `--journal-max-batch`.
const MAX_BATCH: usize = 8192;

/// Distinct people, made before the clock starts.
fn people(iters: u64) -> Vec<IdNumber> {
    (0..iters).map(synthetic_id).collect()
}

fn is_booked(r: &Result<ReserveOutcome, service::ServiceError>) -> bool {
    matches!(r, Ok(ReserveOutcome::Booked(_)))
}

fn ephemeral(c: &mut Criterion) {
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let mut g = c.benchmark_group("reserve/ephemeral");
    g.throughput(Throughput::Elements(1));

    // A fresh store per sample keeps memory bounded; its map still grows within a sample,
    // as the server's does during an opening.
    let roomy = one_site_calendar(now, MAX_SLOT_CAPACITY);
    let slots = open_slots(&roomy);
    g.bench_function("booked", |b| {
        b.iter_custom(|iters| {
            let store = ephemeral_store(&rt, roomy.clone());
            let people = people(iters);
            let t = Instant::now();
            let booked = rt.block_on(async {
                let mut booked = 0u64;
                for (i, p) in people.iter().enumerate() {
                    let slot = &slots[i % slots.len()];
                    let r = service::reserve(&store, Booker::web(*p), OPEN_PHASE, slot, None, now)
                        .await;
                    booked += u64::from(is_booked(&r));
                    black_box(r).ok();
                }
                booked
            });
            let elapsed = t.elapsed();
            assert_eq!(booked, iters, "every request books a seat");
            elapsed
        })
    });

    // Every seat taken: each distinct person is told the slot is full.
    let full = one_site_calendar(now, 0);
    let full_slots = open_slots(&full);
    g.bench_function("slot_full", |b| {
        b.iter_custom(|iters| {
            let store = ephemeral_store(&rt, full.clone());
            let people = people(iters);
            let t = Instant::now();
            rt.block_on(async {
                for (i, p) in people.iter().enumerate() {
                    let slot = &full_slots[i % full_slots.len()];
                    let r = service::reserve(&store, Booker::web(*p), OPEN_PHASE, slot, None, now)
                        .await;
                    debug_assert!(matches!(r, Ok(ReserveOutcome::SlotFull)));
                    black_box(r).ok();
                }
            });
            t.elapsed()
        })
    });
    g.finish();
}

/// A journaled store in a fresh directory, with the roomy calendar loaded.
fn journaled(
    rt: &tokio::runtime::Runtime,
    now: OffsetDateTime,
) -> (tempfile::TempDir, Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (store, _) = EmbeddedStore::open(dir.path(), MAX_BATCH).expect("a fresh journal opens");
    rt.block_on(store.load_calendar(one_site_calendar(now, MAX_SLOT_CAPACITY)))
        .expect("the bench calendar is valid");
    (dir, Arc::new(store))
}

fn journal(c: &mut Criterion) {
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let slots: Arc<[String]> = open_slots(&one_site_calendar(now, 1)).into();
    let mut g = c.benchmark_group("reserve/journal");
    g.throughput(Throughput::Elements(1));

    // `IN_FLIGHT` tasks book concurrently; each waits for its group commit.
    g.bench_function("booked_256_in_flight", |b| {
        b.iter_custom(|iters| {
            let (dir, store) = journaled(&rt, now);
            let people: Arc<[IdNumber]> = people(iters).into();
            let t = Instant::now();
            let booked: u64 = rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for first in 0..IN_FLIGHT.min(iters) {
                    let (store, people, slots) = (store.clone(), people.clone(), slots.clone());
                    tasks.spawn(async move {
                        let mut booked = 0u64;
                        for i in (first..iters).step_by(IN_FLIGHT as usize) {
                            let slot = &slots[i as usize % slots.len()];
                            let p = people[i as usize];
                            let r = service::reserve(
                                &*store,
                                Booker::web(p),
                                OPEN_PHASE,
                                slot,
                                None,
                                now,
                            )
                            .await;
                            booked += u64::from(is_booked(&r));
                        }
                        booked
                    });
                }
                tasks.join_all().await.into_iter().sum()
            });
            let elapsed = t.elapsed();
            assert_eq!(booked, iters, "every request books a seat");
            rt.block_on(store.shutdown());
            drop(dir);
            elapsed
        })
    });

    // One request at a time: every booking pays a whole fsync.
    g.sample_size(10);
    g.bench_function("booked_alone", |b| {
        b.iter_custom(|iters| {
            let (dir, store) = journaled(&rt, now);
            let people = people(iters);
            let t = Instant::now();
            rt.block_on(async {
                for (i, p) in people.iter().enumerate() {
                    let slot = &slots[i % slots.len()];
                    let r = service::reserve(&*store, Booker::web(*p), OPEN_PHASE, slot, None, now)
                        .await;
                    assert!(is_booked(&r), "every request books a seat");
                }
            });
            let elapsed = t.elapsed();
            rt.block_on(store.shutdown());
            drop(dir);
            elapsed
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = ephemeral, journal
}
criterion_main!(benches);
