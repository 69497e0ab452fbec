//! Redis with a replica: what `--redis-wait-replicas` promises, against real
//! `redis-server` processes (a primary and a `replicaof` replica).
//!
//! - With `WAIT 1`, every booking acknowledged before the primary is killed is on the
//!   replica promoted in its place.
//! - A write the replicas do not confirm answers `Unavailable`, never a booking; it may
//!   still be kept, and a retry with the same key finds it.
//! - With `min-replicas-to-write`, a primary that lost its replica refuses bookings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use slotd::config::Durability;
use slotd::domain::synthetic_id;
use slotd::store::contract;
use slotd::store::{Idempotency, RedisStore, ReserveOutcome, Store, StoreError};
use slotd_system_tests::redis_server::RedisServer;
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn connect(url: &str) -> RedisStore {
    RedisStore::connect(url, "rep", TIMEOUT, Durability::Fast, true)
        .await
        .expect("connects")
}

/// A replica of `primary`, once its link is up and it has synced.
fn replica_of(primary: &RedisServer) -> RedisServer {
    let port = primary.port().to_string();
    let replica = RedisServer::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = redis::Client::open(replica.url()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut conn)
            .expect("INFO");
        if info.contains("master_link_status:up") {
            return replica;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never synced: {info}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A calendar with one large open slot.
fn calendar() -> slotd::domain::Calendar {
    let mut c = contract::fixture(OffsetDateTime::now_utc());
    c.phases[0].slots[4].capacity = 100_000;
    c
}

fn signal(server: &RedisServer, sig: &str) {
    let pid = server.pid().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Sixteen clients book while the replica stalls (`SIGSTOP`: it receives nothing) and
/// then the primary is killed; the replica is promoted. With `WAIT 1` nothing booked
/// during the stall is acknowledged (each write answers `Unavailable` after the wait),
/// so every acknowledged booking is on the promoted replica. Without the wait the
/// bookings acknowledged during the stall are lost, which this test would report.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_wait_every_acknowledged_booking_survives_a_failover_to_the_replica() {
    let mut primary = RedisServer::fast();
    let replica = replica_of(&primary);
    let store = Arc::new(connect(&primary.url()).await);
    store.set_replication(1, Duration::from_millis(300));
    store.load_calendar(calendar()).await.expect("calendar");

    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let in_flight_at_kill = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..16u64 {
        let (store, acked, killed, in_flight) = (
            Arc::clone(&store),
            Arc::clone(&acked),
            Arc::clone(&killed),
            Arc::clone(&in_flight_at_kill),
        );
        clients.push(tokio::spawn(async move {
            let mut refused = 0usize;
            for i in 0..100_000u64 {
                let p = synthetic_id(1 + c * 100_000 + i);
                let sent_before_kill = !killed.load(Ordering::SeqCst);
                if !sent_before_kill {
                    break;
                }
                match store.reserve(contract::reserve(&*store, p, "E")).await {
                    Ok(ReserveOutcome::Booked(b)) => acked.lock().expect("lock").push((p, b)),
                    Ok(other) => panic!("{other:?}"),
                    Err(_) if killed.load(Ordering::SeqCst) => {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => refused += 1,
                }
            }
            refused
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("lock").len() < 300 {
        assert!(Instant::now() < deadline, "bookings are too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_stall = acked.lock().expect("lock").len();
    signal(&replica, "-STOP");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    killed.store(true, Ordering::SeqCst);
    primary.kill();
    signal(&replica, "-CONT");
    let mut refused = 0;
    for c in clients {
        refused += c.await.expect("client");
    }
    let acked = acked.lock().expect("lock").clone();
    let in_flight = in_flight_at_kill.load(Ordering::SeqCst);
    eprintln!(
        "{} bookings acknowledged ({before_stall} before the replica stalled); {refused} \
         refused during the stall; {in_flight} requests in flight at the kill",
        acked.len()
    );
    assert!(in_flight > 0, "the kill landed with no write in flight");

    // Failover: the replica becomes the primary, and an instance serves from it.
    replica.query::<()>(&["REPLICAOF", "NO", "ONE"]).await;
    let promoted = connect(&replica.url()).await;
    let mut lost = Vec::new();
    for (p, b) in &acked {
        let held = promoted.bookings_of(*p).await.expect("up");
        if !held.contains(b) {
            lost.push(b.booking.clone());
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged bookings lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    assert!(
        refused > 0,
        "no write was refused while the replica stalled"
    );
    let report = promoted.audit().await.expect("audit");
    assert!(report.ok, "{:?}", report.breaches);
    // New bookings on the promoted replica are numbered past any the old primary made.
    let ReserveOutcome::Booked(next) = promoted
        .reserve(contract::reserve(&promoted, synthetic_id(9_999_999), "E"))
        .await
        .expect("up")
    else {
        panic!("booked")
    };
    assert!(
        acked
            .iter()
            .all(|(_, b)| b.booking != next.booking && b.code != next.code),
        "a booking id or code was issued twice"
    );
}

/// A write the replica does not confirm answers `Unavailable`. Its keyed retry through
/// another instance, whose connection wrote nothing, is not acknowledged either while
/// the replica lags; once the replica catches up, the retry answers the booking. (Redis
/// 7.0 also moves a connection's `WAIT` offset on read-only commands, so `WAIT` alone
/// holds here; later versions move it only on replicated writes, and a reconnect resets
/// it, which the barrier write before each `WAIT` covers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_replicas_do_not_confirm_is_not_acknowledged_and_a_retry_finds_it() {
    let primary = RedisServer::fast();
    let replica = replica_of(&primary);
    let store = connect(&primary.url()).await;
    store.set_replication(1, Duration::from_millis(300));
    store.load_calendar(calendar()).await.expect("calendar");
    let other = connect(&primary.url()).await;
    other.set_replication(1, Duration::from_millis(300));
    let keyed = |s: &RedisStore, p| {
        let mut r = contract::reserve(s, p, "E");
        r.idempotency = Some(Idempotency {
            key: "k1".into(),
            fingerprint: "fp".into(),
        });
        r
    };
    let p = synthetic_id(1);
    assert!(matches!(
        store.reserve(keyed(&store, p)).await.expect("up"),
        ReserveOutcome::Booked(_)
    ));

    // The replica stays connected but receives nothing.
    signal(&replica, "-STOP");
    let q = synthetic_id(2);
    let started = Instant::now();
    let refused = store.reserve(keyed(&store, q)).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(started.elapsed() < TIMEOUT, "answered within the wait");
    let retried = other.reserve(keyed(&other, q)).await;
    assert!(
        matches!(retried, Err(StoreError::Unavailable(_))),
        "a retry through another instance is acknowledged before the replica has it: {retried:?}"
    );

    // The write was applied on the primary: once the replica catches up, the retry
    // with the same key answers the booking it made, and nothing was booked twice.
    signal(&replica, "-CONT");
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        match other.reserve(keyed(&other, q)).await {
            Ok(outcome) => break outcome,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(matches!(again, ReserveOutcome::Replayed(_)), "{again:?}");
    assert_eq!(store.bookings_of(q).await.expect("up").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_with_min_replicas_to_write_refuses_bookings_once_its_replica_is_gone() {
    let primary = RedisServer::start(&[
        "--appendonly",
        "yes",
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "1",
    ]);
    let mut replica = replica_of(&primary);
    let store = connect(&primary.url()).await;
    // The primary counts the replica as good once it has its first acknowledgement.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store.load_calendar(calendar()).await {
        assert!(Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(
        store
            .reserve(contract::reserve(&store, synthetic_id(1), "E"))
            .await
            .expect("up"),
        ReserveOutcome::Booked(_)
    ));
    replica.kill();
    // Within about the lag bound the primary notices and refuses every write.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 2;
    loop {
        let answer = store
            .reserve(contract::reserve(&store, synthetic_id(n), "E"))
            .await;
        n += 1;
        match answer {
            Err(StoreError::Unavailable(e)) => {
                assert!(e.contains("NOREPLICAS"), "{e}");
                break;
            }
            Ok(ReserveOutcome::Booked(_)) => {
                assert!(Instant::now() < deadline, "still booking without a replica");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    let refused_from = n - 1;
    assert!(
        store
            .bookings_of(synthetic_id(refused_from))
            .await
            .expect("reads still answer")
            .is_empty(),
        "the refused booking was not made"
    );
}
