//! The Redis store against real `redis-server` processes: the shared store contract,
//! several instances on one Redis, the fast path, outages and recovery, invitations at
//! scale, the durability check and the audit.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use slotd::config::{AuditArgs, Durability};
use slotd::domain::{PhaseId, synthetic_id};
use slotd::store::contract::{self, INVITED_ONLY};
use slotd::store::{Idempotency, RedisStore, ReserveOutcome, Store, StoreError};
use slotd_system_tests::redis_server::RedisServer;
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(2);
/// A short timeout for the outage tests, so that they measure it.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

async fn connect(url: &str, prefix: &str, timeout: Duration, fast_path: bool) -> RedisStore {
    RedisStore::connect(url, prefix, timeout, Durability::Fast, fast_path)
        .await
        .expect("connects to the test Redis")
}

/// An instance whose mirror refreshes every 20 ms, so that its full rounds (and the
/// ledger trimming they do) come every 400 ms.
async fn connect_refreshing_often(url: &str, prefix: &str) -> RedisStore {
    RedisStore::connect_with(
        url,
        prefix,
        TIMEOUT,
        Durability::Fast,
        true,
        Duration::from_millis(20),
    )
    .await
    .expect("connects to the test Redis")
}

/// Polls `check` every 20 ms until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Loads the contract fixture through `loader` and waits until every other store has it.
async fn fixture_everywhere(loader: &RedisStore, others: &[&RedisStore]) {
    loader
        .load_calendar(contract::fixture(OffsetDateTime::now_utc()))
        .await
        .expect("fixture loads");
    for other in others {
        eventually(
            Duration::from_secs(3),
            "another instance picks up the calendar",
            || async { other.catalog().slot_index("Q").is_some() },
        )
        .await;
    }
}

fn remaining(store: &RedisStore, slot: &str) -> u32 {
    store
        .inventory()
        .remaining(store.catalog().slot_index(slot).expect("fixture slot"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_store_meets_the_store_contract() {
    let redis = RedisServer::fast();
    let n = AtomicUsize::new(0);
    // A fresh prefix per check: each starts from an empty store.
    contract::run_all(|| {
        let (url, prefix) = (
            redis.url(),
            format!("c{}", n.fetch_add(1, Ordering::Relaxed)),
        );
        async move { connect(&url, &prefix, TIMEOUT, true).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_outbox_meets_the_outbox_contract() {
    let redis = RedisServer::fast();
    let n = AtomicUsize::new(0);
    slotd::store::outbox::contract::run_all(|| {
        let (url, prefix) = (
            redis.url(),
            format!("o{}", n.fetch_add(1, Ordering::Relaxed)),
        );
        async move {
            let store = connect(&url, &prefix, TIMEOUT, true).await;
            store
                .load_calendar(contract::fixture(time::OffsetDateTime::now_utc()))
                .await
                .expect("fixture");
            store
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_waiting_rooms_meet_the_room_contract() {
    let redis = RedisServer::fast();
    let store = connect(&redis.url(), "rooms", TIMEOUT, true).await;
    let (conn, prefix, timeout) = store.shared_connection();
    slotd::store::rooms::contract::run_all(Arc::new(slotd::store::rooms::RedisRooms::new(
        conn, &prefix, timeout,
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_contract_holds_without_the_fast_path() {
    let redis = RedisServer::fast();
    let n = AtomicUsize::new(0);
    contract::run_all(|| {
        let (url, prefix) = (
            redis.url(),
            format!("s{}", n.fetch_add(1, Ordering::Relaxed)),
        );
        async move { connect(&url, &prefix, TIMEOUT, false).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_redis_never_overbook_and_number_bookings_apart() {
    let redis = RedisServer::fast();
    let url = redis.url();
    let stores = [
        Arc::new(connect(&url, "x", TIMEOUT, true).await),
        Arc::new(connect(&url, "x", TIMEOUT, true).await),
        Arc::new(connect(&url, "x", TIMEOUT, true).await),
    ];
    fixture_everywhere(&stores[0], &[&stores[1], &stores[2]]).await;

    // 300 people over three instances race for the 50 seats of D.
    let tasks: Vec<_> = (0..300u64)
        .map(|n| {
            let store = stores[n as usize % 3].clone();
            tokio::spawn(async move {
                let r = contract::reserve(&*store, synthetic_id(5_000 + n), "D");
                store.reserve(r).await.expect("Redis up")
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut codes = HashSet::new();
    for t in tasks {
        match t.await.expect("task") {
            ReserveOutcome::Booked(b) => {
                assert!(
                    ids.insert(b.booking.clone()),
                    "booking id {} twice",
                    b.booking
                );
                assert!(codes.insert(b.code.clone()), "code {} twice", b.code);
            }
            ReserveOutcome::SlotFull => {}
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!(ids.len(), 50);

    // One person on all three instances at once, for three different slots: one booking.
    let person = synthetic_id(42);
    let tasks: Vec<_> = ["C", "D", "E"]
        .into_iter()
        .zip(stores.iter().cloned())
        .map(|(slot, store)| {
            tokio::spawn(async move {
                let r = contract::reserve(&*store, person, slot);
                store.reserve(r).await.expect("Redis up")
            })
        })
        .collect();
    let mut booked = 0;
    for t in tasks {
        match t.await.expect("task") {
            ReserveOutcome::Booked(_) => booked += 1,
            ReserveOutcome::AlreadyBooked(_) | ReserveOutcome::SlotFull => {}
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!(booked, 1);
    for store in &stores {
        let report = store.audit().await.expect("audit runs");
        assert!(report.ok, "audit breaches: {:?}", report.breaches);
        let d = report.phase(contract::OPEN).expect("phase").slots[3].clone();
        assert_eq!((d.slot.as_str(), d.booked, d.live_bookings), ("D", 50, 50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_full_slot_is_answered_from_the_mirror_without_a_round_trip() {
    let mut redis = RedisServer::fast();
    let url = redis.url();
    let booker = connect(&url, "f", SHORT_TIMEOUT, true).await;
    let mirror = connect(&url, "f", SHORT_TIMEOUT, true).await;
    let naive = connect(&url, "f", SHORT_TIMEOUT, false).await;
    fixture_everywhere(&booker, &[&mirror, &naive]).await;

    let r = contract::reserve(&booker, synthetic_id(1), "A");
    assert!(matches!(
        booker.reserve(r).await.expect("up"),
        ReserveOutcome::Booked(_)
    ));
    // The other instance learns that A is full from its background refresh.
    eventually(
        Duration::from_secs(3),
        "the mirror refresh sees slot A full",
        || async { remaining(&mirror, "A") == 0 },
    )
    .await;

    // With Redis gone, only an answer from the mirror can still come back.
    redis.kill();
    let started = Instant::now();
    let r = contract::reserve(&mirror, synthetic_id(2), "A");
    assert_eq!(
        mirror.reserve(r).await.expect("answered locally"),
        ReserveOutcome::SlotFull
    );
    assert!(started.elapsed() < SHORT_TIMEOUT);
    // Without the fast path every reservation goes to Redis.
    let r = contract::reserve(&naive, synthetic_id(2), "A");
    assert!(matches!(
        naive.reserve(r).await,
        Err(StoreError::Unavailable(_))
    ));
    // A request with an Idempotency-Key goes to Redis too: it may be the retry of the
    // booking that took the last seat.
    let mut r = contract::reserve(&mirror, synthetic_id(1), "A");
    r.idempotency = Some(Idempotency {
        key: "k".into(),
        fingerprint: "f".into(),
    });
    assert!(matches!(
        mirror.reserve(r).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_redis_answers_unavailable_within_the_timeout_and_the_store_recovers() {
    let mut redis = RedisServer::durable();
    let store = connect(&redis.url(), "o", SHORT_TIMEOUT, true).await;
    fixture_everywhere(&store, &[]).await;
    let first = match store
        .reserve(contract::reserve(&store, synthetic_id(1), "C"))
        .await
        .expect("up")
    {
        ReserveOutcome::Booked(b) => b,
        o => panic!("expected a booking, got {o:?}"),
    };
    assert!(store.ready().await.is_ok());

    redis.kill();
    // A dropped connection fails at once; later calls wait on the reconnection and
    // give up at the timeout. None may take much longer than the timeout.
    let limit = SHORT_TIMEOUT * 2 + Duration::from_millis(200);
    for n in 0..3 {
        let started = Instant::now();
        let outcome = store
            .reserve(contract::reserve(&store, synthetic_id(10 + n), "D"))
            .await;
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "{outcome:?}"
        );
        assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
        let started = Instant::now();
        assert!(store.ready().await.is_err());
        assert!(
            started.elapsed() < limit,
            "ready took {:?}",
            started.elapsed()
        );
    }

    // Same port, same AOF: the store finds Redis again by itself.
    redis.restart();
    eventually(Duration::from_secs(10), "the store reconnects", || async {
        store.ready().await.is_ok()
    })
    .await;
    assert_eq!(
        store.bookings_of(synthetic_id(1)).await.expect("up"),
        vec![first]
    );
    assert!(matches!(
        store
            .reserve(contract::reserve(&store, synthetic_id(2), "D"))
            .await
            .expect("up again"),
        ReserveOutcome::Booked(_)
    ));
    let report = store.audit().await.expect("audit");
    assert!(report.ok, "audit breaches: {:?}", report.breaches);
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_invitations_all_land() {
    let redis = RedisServer::fast();
    let store = connect(&redis.url(), "i", TIMEOUT, true).await;
    fixture_everywhere(&store, &[]).await;
    let phase = PhaseId::parse(INVITED_ONLY).expect("id");
    let people: Vec<_> = (0..200_000).map(synthetic_id).collect();

    let added = store
        .invite(phase.clone(), people.clone())
        .await
        .expect("invitations load");
    assert_eq!(added, 200_000);
    // Every one of them is in the phase's invited set (how fast is a benchmark's
    // question: scripts/bench-invitations).
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let key = format!("i:phase:{INVITED_ONLY}:invited");
    let size: usize = redis::cmd("SCARD")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("SCARD");
    assert_eq!(size, 200_000);
    for chunk in people.chunks(10_000) {
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        let present: Vec<u8> = redis::cmd("SMISMEMBER")
            .arg(&key)
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .expect("SMISMEMBER");
        assert!(present.iter().all(|&p| p == 1), "an invitation is missing");
    }
    // Loading again adds nobody.
    assert_eq!(store.invite(phase, people).await.expect("again"), 0);

    assert!(matches!(
        store
            .reserve(contract::reserve(&store, synthetic_id(199_999), "Q"))
            .await
            .expect("up"),
        ReserveOutcome::Booked(_)
    ));
    assert_eq!(
        store
            .reserve(contract::reserve(&store, synthetic_id(200_000), "Q"))
            .await
            .expect("up"),
        ReserveOutcome::NotInvited
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_without_aof_is_refused_unless_told_otherwise() {
    let no_aof = RedisServer::start(&["--appendonly", "no"]);
    let refused = RedisStore::connect(&no_aof.url(), "n", TIMEOUT, Durability::Fast, true)
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("--durability none"),
        "the message names the way out: {refused}"
    );
    RedisStore::connect(&no_aof.url(), "n", TIMEOUT, Durability::None, true)
        .await
        .expect("accepted when told");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_profile_refuses_a_redis_that_does_not_fsync_every_write() {
    let everysec = RedisServer::fast();
    let refused = RedisStore::connect(&everysec.url(), "d", TIMEOUT, Durability::Durable, true)
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("appendfsync always"),
        "{refused}"
    );
    let always = RedisServer::durable();
    RedisStore::connect(&always.url(), "d", TIMEOUT, Durability::Durable, true)
        .await
        .expect("accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_flushed_from_redis_are_loaded_again_by_themselves() {
    let redis = RedisServer::fast();
    let store = connect(&redis.url(), "n", TIMEOUT, true).await;
    fixture_everywhere(&store, &[]).await;
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("flush");
    assert!(matches!(
        store
            .reserve(contract::reserve(&store, synthetic_id(1), "E"))
            .await
            .expect("up"),
        ReserveOutcome::Booked(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_command_checks_redis_and_fails_on_a_breach() {
    let redis = RedisServer::fast();
    let store = connect(&redis.url(), "a", TIMEOUT, true).await;
    fixture_everywhere(&store, &[]).await;
    let mut booked = Vec::new();
    for n in 0..4 {
        match store
            .reserve(contract::reserve(&store, synthetic_id(n), "C"))
            .await
            .expect("up")
        {
            ReserveOutcome::Booked(b) => booked.push(b),
            o => panic!("expected a booking, got {o:?}"),
        }
    }
    store
        .cancel(synthetic_id(0), booked[0].booking.clone())
        .await
        .expect("cancel");
    let args = AuditArgs {
        store: Some(redis.url()),
        redis_prefix: Some("a".into()),
        ..AuditArgs::default()
    };
    let env = HashMap::new();
    assert!(
        slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );
    let report = store.audit().await.expect("audit");
    let c = &report.phase(contract::OPEN).expect("phase").slots[2];
    assert_eq!((c.capacity, c.booked, c.live_bookings), (5, 3, 3));
    assert_eq!(
        report
            .phase(contract::OPEN)
            .expect("phase")
            .totals
            .cancelled_bookings,
        1
    );

    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    // A record moved to another slot behind the scripts' back: the seat counters no
    // longer match the bookings, and the audit fails.
    let _: () = redis::cmd("HSET")
        .arg(format!("a:booking:{}", booked[1].booking))
        .arg("slot")
        .arg("D")
        .query_async(&mut conn)
        .await
        .expect("tamper");
    assert!(
        !slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );
    let _: () = redis::cmd("HSET")
        .arg(format!("a:booking:{}", booked[1].booking))
        .arg("slot")
        .arg("C")
        .query_async(&mut conn)
        .await
        .expect("restore");
    assert!(
        slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );
    // So does a seat counter that disagrees with the bookings.
    let _: () = redis::cmd("INCR")
        .arg("a:slot:C:remaining")
        .query_async(&mut conn)
        .await
        .expect("tamper");
    assert!(
        !slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_demo_calendar_loads_and_other_instances_follow() {
    let redis = RedisServer::fast();
    let first = connect(&redis.url(), "demo", TIMEOUT, true).await;
    let second = connect(&redis.url(), "demo", TIMEOUT, true).await;
    let calendar = slotd::demo::calendar(OffsetDateTime::now_utc());
    let slots: usize = calendar.phases.iter().map(|p| p.slots.len()).sum();
    let started = Instant::now();
    let report = first.load_calendar(calendar.clone()).await.expect("loads");
    eprintln!(
        "demo calendar of {slots} slots loaded in {:?}",
        started.elapsed()
    );
    assert_eq!((report.slots, report.capacity_changes), (slots, slots));
    eventually(
        Duration::from_secs(10),
        "the second instance follows",
        || async { second.catalog().slots.len() == slots },
    )
    .await;
    eprintln!("second instance followed after {:?}", started.elapsed());
    let slot = &calendar.phases[0].slots[0];
    let i = second.catalog().slot_index(slot.id.as_str()).expect("slot");
    assert_eq!(second.inventory().capacity(i), slot.capacity);
    // Loading it again changes nothing.
    let again = first.load_calendar(calendar).await.expect("again");
    assert_eq!(again.capacity_changes, 0);
    let report = second.audit().await.expect("audit");
    assert!(report.ok);
}

/// A deterministic xorshift generator: the differential test needs no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Booking ids differ by backend (`b1` embedded, `r1` Redis); everything else must not.
fn same_id(b: &slotd::domain::Booking) -> slotd::domain::Booking {
    let mut b = b.clone();
    b.booking = slotd::domain::BookingId::parse(&format!("x{}", &b.booking.as_str()[1..]))
        .expect("valid id");
    b
}

fn normalised<T: std::fmt::Debug>(outcome: &T) -> String {
    // Booking ids print as `BookingId(b1f)`; codes and the rest are compared as they are.
    let text = format!("{outcome:?}");
    text.replace("BookingId(b", "BookingId(x")
        .replace("BookingId(r", "BookingId(x")
}

/// Runs one random sequence of reservations, changes and cancellations, with and
/// without idempotency keys, against the embedded store (the specification) and the
/// Redis store, and compares every answer and every seat counter.
async fn same_answers_as_the_embedded_store(fast_path: bool, seed: u64) {
    use slotd::store::{EmbeddedStore, ReserveOutcome as R};
    let redis = RedisServer::fast();
    let spec = EmbeddedStore::ephemeral();
    let store = connect(&redis.url(), "diff", TIMEOUT, fast_path).await;
    let now = OffsetDateTime::now_utc();
    spec.load_calendar(contract::fixture(now))
        .await
        .expect("spec");
    store
        .load_calendar(contract::fixture(now))
        .await
        .expect("redis");
    let invited: Vec<_> = (0..10).map(synthetic_id).collect();
    let p2 = PhaseId::parse(INVITED_ONLY).expect("id");
    spec.invite(p2.clone(), invited.clone())
        .await
        .expect("spec");
    store.invite(p2, invited).await.expect("redis");

    let slots = ["A", "B", "C", "D", "E", "Q"];
    let mut rng = Rng(seed);
    let mut relaxed = 0;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut tally = |what: &str, answer: &str| {
        let variant = answer.split('(').next().unwrap_or_default();
        *seen.entry(format!("{what} {variant}")).or_default() += 1;
    };
    for step in 0..1_500 {
        let person = synthetic_id(rng.below(20));
        let slot = slots[rng.below(slots.len() as u64) as usize];
        let key = (rng.below(3) == 0).then(|| format!("k{}", rng.below(4)));
        let idem = |what: String| {
            key.clone().map(|key| Idempotency {
                key,
                fingerprint: what,
            })
        };
        match rng.below(10) {
            0..=5 => {
                let mut a = contract::reserve(&spec, person, slot);
                a.idempotency = idem(format!("reserve {slot}"));
                let mut b = contract::reserve(&store, person, slot);
                (b.idempotency, b.now) = (a.idempotency.clone(), a.now);
                let (x, y) = (
                    spec.reserve(a).await.expect("spec"),
                    store.reserve(b).await.expect("redis"),
                );
                // The fast path answers "full" before the per-person rules.
                let full = remaining(&store, slot) == 0;
                if fast_path
                    && full
                    && y == R::SlotFull
                    && matches!(x, R::AlreadyHeld(_) | R::AlreadyBooked(_) | R::NotInvited)
                {
                    relaxed += 1;
                    continue;
                }
                assert_eq!(normalised(&x), normalised(&y), "step {step}: reserve");
                tally("reserve", &normalised(&x));
            }
            pick => {
                // Someone's booking: usually the person's own, sometimes another's.
                let owner = if rng.below(5) == 0 {
                    synthetic_id(rng.below(20))
                } else {
                    person
                };
                let mine = spec.bookings_of(owner).await.expect("spec");
                if mine.is_empty() {
                    continue;
                }
                let target = &mine[rng.below(mine.len() as u64) as usize];
                let redis_id =
                    slotd::domain::BookingId::parse(&format!("r{}", &target.booking.as_str()[1..]))
                        .expect("id");
                if pick < 8 {
                    let change =
                        |s: &dyn Fn() -> std::sync::Arc<slotd::catalog::Catalog>,
                         booking: slotd::domain::BookingId| {
                            let catalog = s();
                            let index = catalog.slot_index(slot).expect("slot");
                            slotd::store::Change {
                                person,
                                booking,
                                slot: slotd::domain::SlotId::parse(slot).expect("id"),
                                slot_index: index,
                                phase: catalog.phases[catalog.slot(index).phase].phase.id.clone(),
                                idempotency: idem(format!("change {} {slot}", target.booking)),
                            }
                        };
                    let x = spec
                        .change(change(&|| spec.catalog(), target.booking.clone()))
                        .await
                        .expect("spec");
                    let y = store
                        .change(change(&|| store.catalog(), redis_id))
                        .await
                        .expect("redis");
                    assert_eq!(normalised(&x), normalised(&y), "step {step}: change");
                    tally("change", &normalised(&x));
                } else {
                    let x = spec
                        .cancel(person, target.booking.clone())
                        .await
                        .expect("spec");
                    let y = store.cancel(person, redis_id).await.expect("redis");
                    assert_eq!(normalised(&x), normalised(&y), "step {step}: cancel");
                    tally("cancel", &normalised(&x));
                }
            }
        }
        for s in slots {
            let i = spec.catalog().slot_index(s).expect("slot");
            assert_eq!(
                spec.inventory().remaining(i),
                remaining(&store, s),
                "step {step}: seats of {s}"
            );
        }
    }
    for n in 0..20 {
        let p = synthetic_id(n);
        let x: Vec<_> = spec
            .bookings_of(p)
            .await
            .expect("spec")
            .iter()
            .map(same_id)
            .collect();
        let y: Vec<_> = store
            .bookings_of(p)
            .await
            .expect("redis")
            .iter()
            .map(same_id)
            .collect();
        assert_eq!(x, y, "bookings of {p}");
    }
    let (x, y) = (
        spec.audit().await.expect("spec"),
        store.audit().await.expect("redis"),
    );
    assert!(y.ok, "audit breaches: {:?}", y.breaches);
    assert_eq!(x, y);
    eprintln!("fast path {fast_path}: {relaxed} answers given early; compared: {seen:?}");
    // The sequence must reach every kind of answer, or it proves little.
    for kind in [
        "reserve Booked",
        "reserve Replayed",
        "reserve AlreadyHeld",
        "reserve AlreadyBooked",
        "reserve SlotFull",
        "reserve NotInvited",
        "reserve KeyReused",
        "change Changed",
        "change Unchanged",
        "change SlotFull",
        "change NotLive",
        "change UnknownBooking",
        "change OtherPhase",
        "change KeyReused",
        "cancel Cancelled",
        "cancel AlreadyCancelled",
        "cancel UnknownBooking",
    ] {
        assert!(seen.contains_key(kind), "never compared: {kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_embedded_store() {
    same_answers_as_the_embedded_store(false, 0x9e37_79b9_7f4a_7c15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_fast_path_only_known_full_slots_answer_early() {
    same_answers_as_the_embedded_store(true, 0x2545_f491_4f6c_dd1d).await;
}

/// Another instance's bookings, changes and cancellations reach this instance's mirror
/// through the ledgers within a few refresh rounds, well before the full read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_follows_other_instances_within_a_few_rounds() {
    let redis = RedisServer::fast();
    let writer = connect(&redis.url(), "follow", TIMEOUT, true).await;
    let reader = connect(&redis.url(), "follow", TIMEOUT, true).await;
    fixture_everywhere(&writer, &[&reader]).await;
    // Wait for the reader's first full read, so that what follows is incremental.
    eventually(
        Duration::from_secs(5),
        "the reader reads in full once",
        || async { reader.refreshes_incrementally() },
    )
    .await;
    let p = synthetic_id(1);
    let ReserveOutcome::Booked(b) = writer
        .reserve(contract::reserve(&writer, p, "A"))
        .await
        .expect("up")
    else {
        panic!("booked");
    };
    // Well inside the 20 rounds (5 s) after which a full read would catch it anyway.
    eventually(
        Duration::from_millis(1_500),
        "the booking reaches the other mirror",
        || async { remaining(&reader, "A") == 0 },
    )
    .await;
    let change = slotd::store::Change {
        person: p,
        booking: b.booking.clone(),
        slot: slotd::domain::SlotId::parse("C").expect("id"),
        slot_index: writer.catalog().slot_index("C").expect("slot"),
        phase: b.phase.clone(),
        idempotency: None,
    };
    writer.change(change).await.expect("up");
    eventually(
        Duration::from_millis(1_500),
        "the change reaches the other mirror",
        || async { remaining(&reader, "A") == 1 && remaining(&reader, "C") == 4 },
    )
    .await;
    writer.cancel(p, b.booking).await.expect("up");
    eventually(
        Duration::from_millis(1_500),
        "the cancellation reaches the other mirror",
        || async { remaining(&reader, "C") == 5 },
    )
    .await;
}

/// Settlement on Redis, then the journey audit of `slotd audit` against planted
/// breaches: an invitation without a message of someone not registered, a booking
/// whose invitation is gone, a message moved to another person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_audit_catches_planted_breaches() {
    use slotd::settlement::audit::{Inputs, audit_phase};
    use slotd::store::identity::{IdentityStore, RedisIdentity, contract as identity};

    let redis = RedisServer::fast();
    let store = connect(&redis.url(), "j", TIMEOUT, true).await;
    fixture_everywhere(&store, &[]).await;
    let (conn, prefix, timeout) = store.shared_connection();
    let people = RedisIdentity::new(conn, &prefix, timeout);
    people
        .upsert_persons((1..=3).map(identity::insured).collect())
        .await
        .expect("registry");
    for n in 1..=2 {
        people
            .register(
                synthetic_id(n),
                identity::form("a", &["AZ"]),
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("register");
    }
    let s = slotd::settlement::settle(
        &store,
        &store,
        &people,
        INVITED_ONLY,
        1.0,
        false,
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("settle");
    assert_eq!((s.invited, s.eligible), (2, 2));
    assert!(matches!(
        store
            .reserve(contract::reserve(&store, synthetic_id(1), "Q"))
            .await
            .expect("reserve"),
        ReserveOutcome::Booked(_)
    ));
    let breaches = || async {
        let catalog = store.catalog();
        let inputs = Inputs::read(&store, &store).await.expect("inputs");
        let phase = PhaseId::parse(INVITED_ONLY).expect("id");
        audit_phase(&store, &people, &catalog, &phase, &inputs, |_| 10)
            .await
            .expect("audit")
            .breaches
    };
    let args = AuditArgs {
        store: Some(redis.url()),
        redis_prefix: Some("j".into()),
        ..AuditArgs::default()
    };
    let env = HashMap::new();
    assert_eq!(breaches().await, Vec::<String>::new());
    assert!(
        slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );

    let client = redis::Client::open(redis.url()).expect("url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let cmd = |args: &[String]| {
        let mut r = redis::cmd(&args[0]);
        for a in &args[1..] {
            r.arg(a);
        }
        r
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (p1, p3) = (synthetic_id(1).to_string(), synthetic_id(3).to_string());
    // An invitation of someone never registered, with no message.
    let _: () = cmd(&s(&["HSET", "j:phase:P2:settled", &p3, "0\tm99"]))
        .query_async(&mut c)
        .await
        .expect("plant");
    let _: () = cmd(&s(&["SADD", "j:phase:P2:invited", &p3]))
        .query_async(&mut c)
        .await
        .expect("plant");
    let found = breaches().await;
    assert!(
        found.iter().any(|b| b.contains("has no message")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|b| b.contains("not eligible")),
        "{found:?}"
    );
    assert!(
        !slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );
    let _: () = cmd(&s(&["HDEL", "j:phase:P2:settled", &p3]))
        .query_async(&mut c)
        .await
        .expect("clean");
    assert_eq!(breaches().await, Vec::<String>::new());
    // A booking whose invitation is gone.
    let _: () = cmd(&s(&["SREM", "j:phase:P2:invited", &p1]))
        .query_async(&mut c)
        .await
        .expect("plant");
    let found = breaches().await;
    assert!(
        found.iter().any(|b| b.contains("has no invitation")),
        "{found:?}"
    );
    let _: () = cmd(&s(&["SADD", "j:phase:P2:invited", &p1]))
        .query_async(&mut c)
        .await
        .expect("clean");
    // A message moved to someone else: one invitation without, one message without.
    let first = slotd::store::outbox::Outbox::messages(&store)
        .await
        .expect("messages")[0]
        .id
        .clone();
    let _: () = cmd(&s(&["HSET", &format!("j:sms:msg:{first}"), "person", &p3]))
        .query_async(&mut c)
        .await
        .expect("plant");
    let found = breaches().await;
    assert!(
        found.iter().any(|b| b.contains("belongs to no invitation")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|b| b.contains("has no message")),
        "{found:?}"
    );
    assert!(
        !slotd::bootstrap::audit(&args, &env)
            .await
            .expect("audit runs")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_stores_meet_the_settlement_contract() {
    use slotd::store::identity::RedisIdentity;
    let redis = RedisServer::fast();
    let store = connect(&redis.url(), "settle", TIMEOUT, true).await;
    fixture_everywhere(&store, &[]).await;
    let (conn, prefix, timeout) = store.shared_connection();
    slotd::settlement::contract::settlement_orders_invites_once_tops_up_and_carries_over(
        &store,
        &RedisIdentity::new(conn, &prefix, timeout),
    )
    .await;
}

/// A fast-profile crash can lose the last second of scripts, the sequence's increments
/// among them. Simulated exactly: the sequence is set back (as a lost second would leave
/// it) and Redis is killed and restarted from its AOF. The next booking must not reuse
/// an id or a code of a booking that survived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_ids_and_codes_are_never_reissued_after_redis_rolls_back() {
    let mut redis = RedisServer::fast();
    let store = connect(&redis.url(), "e", TIMEOUT, false).await;
    fixture_everywhere(&store, &[]).await;
    let mut made = Vec::new();
    for n in 0..10 {
        match store
            .reserve(contract::reserve(&store, synthetic_id(n), "E"))
            .await
            .expect("reserve")
        {
            ReserveOutcome::Booked(b) => made.push(b),
            other => panic!("{other:?}"),
        }
    }
    let client = redis::Client::open(redis.url()).expect("url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SET")
        .arg("e:seq")
        .arg(3)
        .query_async(&mut c)
        .await
        .expect("roll back");
    // Let everysec write the rollback to the AOF, then crash and restart Redis.
    let _: () = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap_or(());
    eventually(
        Duration::from_secs(5),
        "the AOF rewrite finishes",
        || async {
            let mut c = client.get_multiplexed_async_connection().await.expect("c");
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            info.contains("aof_rewrite_in_progress:0")
        },
    )
    .await;
    redis.restart();
    // The first calls after the restart may fail (the old connection is gone); the
    // store then checks the new run before it numbers a booking.
    let deadline = Instant::now() + Duration::from_secs(10);
    let next = loop {
        if let Ok(ReserveOutcome::Booked(b)) = store
            .reserve(contract::reserve(&store, synthetic_id(99), "E"))
            .await
        {
            break b;
        }
        assert!(Instant::now() < deadline, "the store books again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        made.iter()
            .all(|b| b.booking != next.booking && b.code != next.code),
        "{} / {} reissued",
        next.booking,
        next.code
    );
    // Every earlier booking is still whole.
    for b in &made {
        assert_eq!(
            store.bookings_of(b.person).await.expect("read"),
            vec![b.clone()]
        );
    }
    assert!(store.audit().await.expect("audit").ok);
}

/// Ledgers are trimmed to the retention behind their newest entry, and what used to
/// replay them (the audit, settlement's read of every booking, the close-out) reads the
/// booking records instead: nothing is lost with the old entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_are_trimmed_and_every_booking_is_still_read() {
    let redis = RedisServer::fast();
    let store = connect_refreshing_often(&redis.url(), "trim").await;
    store.set_ledger_retention(Duration::from_secs(1));
    fixture_everywhere(&store, &[]).await;
    let mut booked = Vec::new();
    for i in 0..100 {
        let p = synthetic_id(i);
        let ReserveOutcome::Booked(b) = store
            .reserve(contract::reserve(&store, p, "E"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        booked.push((p, b));
    }
    for (p, b) in &booked[..40] {
        let outcome = store
            .change(contract::change(&store, *p, b, "D"))
            .await
            .expect("up");
        assert!(matches!(outcome, slotd::store::ChangeOutcome::Changed(_)));
    }
    for (p, b) in &booked[60..90] {
        store.cancel(*p, b.booking.clone()).await.expect("up");
    }
    let ledger = "trim:phase:P1:ledger";
    let written = redis.query::<usize>(&["XLEN", ledger]).await;
    assert_eq!(written, 170);
    // Newer entries, more than the retention later, move the ledger's newest entry on.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let late = synthetic_id(500);
    store
        .reserve(contract::reserve(&store, late, "C"))
        .await
        .expect("up");
    eventually(
        Duration::from_secs(5),
        "the old entries are trimmed",
        || async { redis.query::<usize>(&["XLEN", ledger]).await < written / 2 },
    )
    .await;

    let report = store.audit().await.expect("audit");
    assert!(report.ok, "{:?}", report.breaches);
    let p1 = report.phase(contract::OPEN).expect("phase");
    assert_eq!(p1.totals.cancelled_bookings, 30);
    let all = store.all_bookings().await.expect("all");
    assert_eq!(all.len(), 101);
    let slot = |s: &str| {
        all.iter()
            .filter(|b| b.slot.as_str() == s && b.status.is_live())
            .count()
    };
    assert_eq!((slot("D"), slot("E"), slot("C")), (40, 30, 1));
    let closed = store
        .close_out(
            PhaseId::parse(contract::OPEN).expect("id"),
            ["D", "E"]
                .iter()
                .map(|s| slotd::domain::SlotId::parse(s).expect("id"))
                .collect(),
        )
        .await
        .expect("close-out");
    assert_eq!((closed.no_show, closed.attended), (70, 0));
    store.shutdown().await;

    // A trimmed ledger can no longer rebuild its list: an instance that finds no marker
    // there keeps the list as it is (this version listed every booking) rather than
    // rebuilding it from the few entries left.
    let _: () = redis
        .query(&["DEL", "trim:phase:P1:bookings:indexed"])
        .await;
    let next = connect(&redis.url(), "trim", TIMEOUT, true).await;
    let report = next.audit().await.expect("audit");
    assert!(report.ok, "{:?}", report.breaches);
    assert_eq!(
        redis
            .query::<i64>(&["LLEN", "trim:phase:P1:bookings"])
            .await,
        101
    );
    assert_eq!(
        redis
            .query::<i64>(&["EXISTS", "trim:phase:P1:bookings:indexed"])
            .await,
        1
    );
    next.shutdown().await;
}

/// The audit reads one cut of Redis while bookings change slot, are cancelled and booked
/// again, are closed out as no-shows and are checked in (also after a no-show) under it:
/// each record read after the cut is rolled back by the ledger entries since, so every
/// audit holds. Checked-in bookings are final, so someone new takes their place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_holds_while_bookings_change_under_it() {
    use slotd::store::{AttendOutcome, CancelOutcome, ChangeOutcome};
    let redis = RedisServer::fast();
    let writer = Arc::new(connect(&redis.url(), "cut", TIMEOUT, true).await);
    let auditor = connect(&redis.url(), "cut", TIMEOUT, true).await;
    let mut calendar = contract::fixture(OffsetDateTime::now_utc());
    calendar.phases[0].slots[3].capacity = 100_000;
    calendar.phases[0].slots[4].capacity = 100_000;
    writer.load_calendar(calendar).await.expect("calendar");
    eventually(
        Duration::from_secs(3),
        "the auditor has the calendar",
        || async { auditor.catalog().slot_index("E").is_some() },
    )
    .await;
    let mut booked = Vec::new();
    for i in 0..60 {
        let p = synthetic_id(i);
        let ReserveOutcome::Booked(b) = writer
            .reserve(contract::reserve(&*writer, p, "E"))
            .await
            .expect("up")
        else {
            panic!("booked")
        };
        booked.push((p, b));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (writer, stop) = (Arc::clone(&writer), Arc::clone(&stop));
        tokio::spawn(async move {
            // Writes that changed something, by kind.
            let (mut changes, mut cancels, mut rebooks, mut attends, mut no_shows) =
                (0usize, 0usize, 0usize, 0usize, 0usize);
            let mut next_person = 1_000u64;
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for (i, (p, b)) in booked.iter_mut().enumerate() {
                    let to = if (i + round).is_multiple_of(2) {
                        "D"
                    } else {
                        "E"
                    };
                    if let Ok(ChangeOutcome::Changed(moved)) =
                        writer.change(contract::change(&*writer, *p, b, to)).await
                    {
                        *b = moved;
                        changes += 1;
                    }
                    if i % 7 == round % 7 {
                        if let Ok(CancelOutcome::Cancelled(_)) =
                            writer.cancel(*p, b.booking.clone()).await
                        {
                            cancels += 1;
                        }
                        if let Ok(ReserveOutcome::Booked(again)) =
                            writer.reserve(contract::reserve(&*writer, *p, to)).await
                        {
                            *b = again;
                            rebooks += 1;
                        }
                    }
                    if i % 11 == round % 11
                        && let Ok(AttendOutcome::Attended(_)) =
                            writer.attend(*p, b.booking.clone()).await
                    {
                        attends += 1;
                        let q = synthetic_id(next_person);
                        next_person += 1;
                        if let Ok(ReserveOutcome::Booked(fresh)) =
                            writer.reserve(contract::reserve(&*writer, q, to)).await
                        {
                            (*p, *b) = (q, fresh);
                            rebooks += 1;
                        }
                    }
                }
                if round % 10 == 9 {
                    // The day of slot D ends: its booked people are no-shows (the loop
                    // then checks some of them in, and replaces them).
                    let closed = writer
                        .close_out(
                            slotd::domain::PhaseId::parse(contract::OPEN).expect("id"),
                            vec![slotd::domain::SlotId::parse("D").expect("id")],
                        )
                        .await
                        .expect("close-out");
                    no_shows += closed.no_show as usize;
                }
                round += 1;
            }
            (changes, cancels, rebooks, attends, no_shows)
        })
    };
    let mut audits = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let report = auditor.audit().await.expect("audit");
        assert!(report.ok, "audit {audits}: {:?}", report.breaches);
        audits += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (changes, cancels, rebooks, attends, no_shows) = churn.await.expect("churn");
    eprintln!(
        "{audits} audits held across {changes} changes, {cancels} cancels, {rebooks} \
         bookings, {attends} check-ins and {no_shows} no-shows"
    );
    assert!(audits >= 3, "{audits} audits");
    assert!(
        changes >= 100 && cancels >= 20 && attends >= 10 && no_shows >= 1,
        "too little churn: {changes} {cancels} {attends} {no_shows}"
    );
    assert!(auditor.audit().await.expect("audit").ok);
}

/// Redis data written before the per-phase booking lists existed has its bookings only
/// in the ledger: the first instance of this version builds each list from the ledger
/// before anything reads it or trims the ledger. A list that falls short of the seats
/// taken (an instance of the earlier version still booking without listing) stops the
/// trimming. A person's idempotency keys expire a day after their last use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_versions_data_gets_its_booking_lists_before_its_ledgers_are_trimmed() {
    let redis = RedisServer::fast();
    let earlier = connect(&redis.url(), "up", TIMEOUT, true).await;
    fixture_everywhere(&earlier, &[]).await;
    let mut booked = Vec::new();
    for i in 0..50 {
        let p = synthetic_id(i);
        let mut r = contract::reserve(&earlier, p, "E");
        r.idempotency = Some(Idempotency {
            key: format!("k{i}"),
            fingerprint: "fp".into(),
        });
        let ReserveOutcome::Booked(b) = earlier.reserve(r).await.expect("up") else {
            panic!("booked")
        };
        booked.push((p, b));
    }
    for (p, b) in &booked[..10] {
        earlier.cancel(*p, b.booking.clone()).await.expect("up");
    }
    let ttl: i64 = redis
        .query(&["TTL", &format!("up:person:{}:keys", booked[0].0)])
        .await;
    assert!(
        (86_000..=86_400).contains(&ttl),
        "keys expire in a day: {ttl}"
    );
    earlier.shutdown().await;
    // What the earlier version left: no lists, no markers.
    let _: () = redis
        .query(&[
            "DEL",
            "up:phase:P1:bookings",
            "up:phase:P1:bookings:indexed",
        ])
        .await;

    let store = connect_refreshing_often(&redis.url(), "up").await;
    store.set_ledger_retention(Duration::from_secs(1));
    eventually(Duration::from_secs(5), "the list is built", || async {
        redis.query::<i64>(&["LLEN", "up:phase:P1:bookings"]).await == 50
    })
    .await;
    let report = store.audit().await.expect("audit");
    assert!(report.ok, "{:?}", report.breaches);
    assert_eq!(store.all_bookings().await.expect("all").len(), 50);

    // An earlier instance books without listing: the list is shorter than the seats
    // taken, and the ledger is left whole.
    let _: () = redis
        .query(&["LTRIM", "up:phase:P1:bookings", "0", "19"])
        .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    store
        .reserve(contract::reserve(&store, synthetic_id(900), "C"))
        .await
        .expect("up");
    let before: i64 = redis.query(&["XLEN", "up:phase:P1:ledger"]).await;
    eventually(Duration::from_secs(3), "a few full rounds", || async {
        store.refreshes_incrementally()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after: i64 = redis.query(&["XLEN", "up:phase:P1:ledger"]).await;
    assert_eq!(after, before, "a short list stops the trimming");
    store.shutdown().await;
}
