//! Restart after a national opening: phase 2 of 2021 (1.1 million invitations, about
//! 930,000 bookings, change and cancel churn) written through the embedded store's
//! journal, then reopened in a fresh process twice: from the journal alone (the
//! baseline: every record of the opening replayed) and from a snapshot and the short
//! segment after it. Prints the times, the journal and snapshot sizes, and the resident
//! memory per booking of the reopened process.
//!
//! `cargo bench -p slotd-benches --bench restart` (about 3 minutes on 2 cores); add
//! `-- --keys` to give every booking an `Idempotency-Key`, as real frontends do (the store
//! then also remembers a key per booking for a day).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use slotd::domain::{Channel, PhaseId, synthetic_id};
use slotd::store::{EmbeddedStore, Reserve, ReserveOutcome, Store};
use time::OffsetDateTime;

const INVITED: u64 = 1_100_000;
const BOOKINGS: u64 = 930_000;
/// Writers in flight: enough for the group commit to batch thousands per fsync.
const WRITERS: u64 = 256;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn dir_bytes(dir: &Path, part: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains(part))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Reopens `dir` in this (fresh) process and prints one line of figures.
fn reopen(dir: &Path, label: &str) {
    let before = rss_bytes();
    let started = Instant::now();
    let (store, report) = EmbeddedStore::open(dir, 8_192).expect("reopen");
    let took = started.elapsed();
    // Resident memory of the reopened store, before anything below copies bookings.
    let rss = rss_bytes().saturating_sub(before);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let live = rt.block_on(async {
        let all = store.all_bookings().await.expect("bookings");
        all.iter().filter(|b| b.status.is_live()).count()
    });
    println!(
        "restart/{label}: {:.2} s for {} records; {live} live bookings; resident +{} MiB = {} bytes per live booking",
        took.as_secs_f64(),
        report.records,
        rss >> 20,
        rss / live.max(1) as u64
    );
}

async fn write_opening(dir: &Path, keys: bool) {
    let store = Arc::new(EmbeddedStore::open(dir, 8_192).expect("open").0);
    let now = OffsetDateTime::now_utc();
    let mut calendar = slotd::demo::calendar(now);
    for s in &mut calendar.phases[0].slots {
        s.capacity = 30;
    }
    store.load_calendar(calendar).await.expect("calendar");
    let catalog = store.catalog();
    let invited = catalog.phases[1].phase.id.clone();
    let people: Vec<_> = (0..INVITED).map(synthetic_id).collect();
    store.invite(invited, people).await.expect("invite");
    let open: PhaseId = catalog.phases[0].phase.id.clone();
    let slots: Vec<_> = catalog.phases[0].slots.clone();
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, catalog, open, slots) =
                (store.clone(), catalog.clone(), open.clone(), slots.clone());
            tokio::spawn(async move {
                let mut n = w;
                let mut i = 0usize;
                while n < BOOKINGS {
                    let s = slots[(n as usize * 7 + i) % slots.len()];
                    i += 1;
                    let r = Reserve {
                        phase: open.clone(),
                        slot: catalog.slot(s).slot.id.clone(),
                        slot_index: s,
                        invitation_required: false,
                        person: synthetic_id(2_000_000 + n),
                        channel: Channel::Web,
                        partner: None,
                        // A UUID-shaped key and a 24-hex-digit fingerprint, as the HTTP
                        // layer makes them.
                        idempotency: keys.then(|| slotd::store::Idempotency {
                            key: format!("{n:08x}-5f3a-4c1e-9b7d-{:012x}", n * 7919),
                            fingerprint: format!("{:024x}", u128::from(n) * 0x9e37_79b9),
                        }),
                        now: OffsetDateTime::now_utc(),
                    };
                    match store.reserve(r).await.expect("reserve") {
                        ReserveOutcome::Booked(b) => {
                            // Churn: one in ten cancels, one in ten changes slot.
                            if n % 10 == 0 {
                                store.cancel(b.person, b.booking).await.expect("cancel");
                            } else if n % 10 == 1 {
                                let to = slots[(n as usize * 13 + 5) % slots.len()];
                                let c = slotd::store::Change {
                                    person: b.person,
                                    booking: b.booking,
                                    slot: catalog.slot(to).slot.id.clone(),
                                    slot_index: to,
                                    phase: open.clone(),
                                    idempotency: None,
                                };
                                store.change(c).await.expect("change");
                            }
                            n += WRITERS;
                        }
                        ReserveOutcome::SlotFull => continue,
                        other => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    println!(
        "restart/write: {INVITED} invitations, {BOOKINGS} bookings with 10 % cancels and 10 % changes in {:.1} s; journal {} MiB",
        started.elapsed().as_secs_f64(),
        dir_bytes(dir, ".log") >> 20
    );
    store.shutdown().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: `restart reopen DIR LABEL`.
    if let (Some(mode), Some(dir), Some(label)) = (args.get(1), args.get(2), args.get(3))
        && mode == "reopen"
    {
        reopen(Path::new(dir), label);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let keys = args.iter().any(|a| a == "--keys");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("store");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(write_opening(&dir, keys));
    let me = std::env::current_exe().expect("exe");
    let child = |label: &str| {
        let status = std::process::Command::new(&me)
            .args(["reopen", &dir.to_string_lossy(), label])
            .status()
            .expect("child");
        assert!(status.success());
    };
    let with = if keys { ", a key per booking" } else { "" };
    child(&format!("journal only (baseline){with}"));
    // Snapshot, then a little more traffic into the new segment.
    let started = Instant::now();
    let (store, _) = EmbeddedStore::open(&dir, 8_192).expect("open");
    let opened = started.elapsed();
    let started = Instant::now();
    let report = store.snapshot().expect("snapshot");
    println!(
        "restart/snapshot: written in {:.2} s ({} records, {} MiB) after a {:.2} s open; {} journal files removed",
        started.elapsed().as_secs_f64(),
        report.records,
        report.bytes >> 20,
        opened.as_secs_f64(),
        report.removed
    );
    rt.block_on(store.shutdown());
    drop(store);
    child(&format!("snapshot and its segment{with}"));
}
