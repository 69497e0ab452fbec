//! A measurement, not a check (`#[ignore]`): what the `fast` profile (AOF fsynced every
//! second) loses when Redis is killed with SIGKILL under load. Run with
//! `cargo test -p slotd-system-tests --test redis_loss -- --ignored --nocapture`; it
//! prints, for each run, the bookings acknowledged before the kill and how many of them
//! Redis no longer has after it restarted from its AOF.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use slotd::config::Durability;
use slotd::domain::synthetic_id;
use slotd::store::contract;
use slotd::store::{RedisStore, ReserveOutcome, Store};
use slotd_system_tests::redis_server::RedisServer;
use time::OffsetDateTime;

const RUNS: u64 = 5;
const WRITERS: u64 = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn what_the_fast_profile_loses_to_kill_9_of_redis() {
    let mut total_acked = 0u64;
    let mut total_lost = 0u64;
    for run in 0..RUNS {
        let mut redis = RedisServer::fast();
        let store = Arc::new(
            RedisStore::connect(
                &redis.url(),
                "loss",
                Duration::from_secs(2),
                Durability::Fast,
                false,
            )
            .await
            .expect("connect"),
        );
        let mut cal = contract::fixture(OffsetDateTime::now_utc());
        cal.phases[0].slots[4].capacity = 1_000_000;
        store.load_calendar(cal).await.expect("calendar");
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let mut n = w;
                    while !stop.load(Ordering::Relaxed) {
                        let r = contract::reserve(
                            &*store,
                            synthetic_id(1_000_000 * (run + 1) + n),
                            "E",
                        );
                        if let Ok(ReserveOutcome::Booked(b)) = store.reserve(r).await {
                            acked.push(b);
                        }
                        n += WRITERS;
                    }
                    acked
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        redis.kill();
        stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        for w in writers {
            acked.extend(w.await.expect("writer"));
        }
        redis.restart();
        let after = RedisStore::connect(
            &redis.url(),
            "loss",
            Duration::from_secs(2),
            Durability::Fast,
            false,
        )
        .await
        .expect("reconnect");
        let mut lost = 0u64;
        for b in &acked {
            if after.bookings_of(b.person).await.expect("read").is_empty() {
                lost += 1;
            }
        }
        println!(
            "run {run}: {} bookings acknowledged in 2.5 s, {lost} missing after the restart",
            acked.len()
        );
        total_acked += acked.len() as u64;
        total_lost += lost;
        store.shutdown().await;
        after.shutdown().await;
    }
    println!(
        "fast profile, kill -9 of Redis under load: {total_lost} of {total_acked} acknowledged bookings lost over {RUNS} runs"
    );
}
