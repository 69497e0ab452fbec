//! `Inventory::try_reserve`: alone against plain atomics (the floor), and two threads on
//! one slot against two threads on two slots (what sharing one cache line costs).

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotd::inventory::Inventory;

/// Seats enough that no sample runs a counter down to zero.
const HUGE: u32 = u32::MAX;

/// One thread, one slot: the hot path with nothing in its way.
fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("inventory/uncontended");
    g.throughput(Throughput::Elements(1));

    let floor = AtomicU32::new(HUGE);
    g.bench_function("atomic_load", |b| {
        b.iter(|| black_box(&floor).load(Ordering::Acquire))
    });
    g.bench_function("atomic_fetch_sub", |b| {
        b.iter_custom(|iters| {
            floor.store(HUGE, Ordering::Relaxed);
            let t = Instant::now();
            for _ in 0..iters {
                black_box(black_box(&floor).fetch_sub(1, Ordering::AcqRel));
            }
            t.elapsed()
        })
    });

    let inv = Inventory::new();
    g.bench_function("try_reserve", |b| {
        b.iter_custom(|iters| {
            inv.overwrite(0, HUGE, HUGE);
            let t = Instant::now();
            for _ in 0..iters {
                black_box(inv.try_reserve(black_box(0)));
            }
            t.elapsed()
        })
    });
    // A full slot: one load and no write, the answer most of an opening gets.
    inv.overwrite(1, 100, 0);
    g.bench_function("try_reserve_full", |b| {
        b.iter(|| inv.try_reserve(black_box(1)))
    });
    g.finish();
}

/// Runs `op(thread)` `iters` times on each of two threads started together; the time
/// from the common start to the last thread's end.
fn two_threads(iters: u64, op: impl Fn(usize) + Sync) -> Duration {
    let start = Barrier::new(3);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (start, op) = (&start, &op);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..iters {
                        op(t);
                    }
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        for w in workers {
            w.join().expect("a bench thread does not panic");
        }
        t.elapsed()
    })
}

/// The same compare-and-swap loop as `try_reserve`, on a bare counter.
fn take(counter: &AtomicU32) -> bool {
    let mut current = counter.load(Ordering::Acquire);
    while current > 0 {
        match counter.compare_exchange_weak(
            current,
            current - 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(actual) => current = actual,
        }
    }
    false
}

/// Two threads reserving at once. One iteration is one reserve on each thread.
fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("inventory/two_threads");
    g.throughput(Throughput::Elements(2));

    let inv = Inventory::new();
    g.bench_function("one_slot", |b| {
        b.iter_custom(|iters| {
            inv.overwrite(0, HUGE, HUGE);
            two_threads(iters, |_| {
                black_box(inv.try_reserve(black_box(0)));
            })
        })
    });
    // Baseline: each thread on its own slot, so on its own cache line.
    g.bench_function("two_slots", |b| {
        b.iter_custom(|iters| {
            inv.overwrite(0, HUGE, HUGE);
            inv.overwrite(1, HUGE, HUGE);
            two_threads(iters, |t| {
                black_box(inv.try_reserve(black_box(t as u32)));
            })
        })
    });
    // What the padding in `Inventory` avoids: two slots' counters side by side in one
    // cache line contend as if they were one slot (false sharing).
    let neighbours = [AtomicU32::new(HUGE), AtomicU32::new(HUGE)];
    g.bench_function("two_unpadded_neighbours", |b| {
        b.iter_custom(|iters| {
            for n in &neighbours {
                n.store(HUGE, Ordering::Relaxed);
            }
            two_threads(iters, |t| {
                black_box(take(black_box(&neighbours[t])));
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = uncontended, contended
}
criterion_main!(benches);
