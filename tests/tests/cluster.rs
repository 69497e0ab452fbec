//! Several real `slotd` processes on one real Redis: the national set-up. Clients race
//! across instances; an instance and then Redis itself are killed with SIGKILL mid-surge.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use slotd::domain::{Calendar, synthetic_id};
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::redis_server::RedisServer;
use slotd_system_tests::slotd_process::{Http, Slotd};
use time::OffsetDateTime;

const ADMIN: &str = "cluster-admin-secret";
const SECRET: &str = "cluster-token-secret";

/// Slots `T0`..`T9` of capacity 50, and `Y1`..`Y3` of capacity 10, in open phase `P1`.
fn calendar() -> Calendar {
    let mut slots: Vec<(String, u32)> = (0..10).map(|n| (format!("T{n}"), 50)).collect();
    slots.extend((1..=3).map(|n| (format!("Y{n}"), 10)));
    calendars::open_phase(&slots)
}

struct Cluster {
    _dir: tempfile::TempDir,
    redis: std::sync::Mutex<RedisServer>,
    instances: Vec<Slotd>,
    keys: TokenKey,
    http: Http,
}

impl Cluster {
    /// Redis (durable or fast) and `n` instances sharing it.
    fn start(n: usize, durable: bool) -> Cluster {
        let redis = if durable {
            RedisServer::durable()
        } else {
            RedisServer::fast()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("calendar.json");
        std::fs::write(&file, serde_json::to_vec(&calendar()).expect("json")).expect("calendar");
        let args: Vec<String> = [
            "--store",
            &redis.url(),
            "--durability",
            if durable { "durable" } else { "fast" },
            "--redis-timeout-ms",
            "500",
            "--admin-token",
            ADMIN,
            "--token-secret",
            SECRET,
            "--person-write-rate",
            "1000",
            "--calendar",
            &file.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let instances = (0..n)
            .map(|i| {
                let mut a = args.clone();
                a.extend([
                    "--data-dir".into(),
                    dir.path().join(format!("i{i}")).to_string_lossy().into(),
                ]);
                Slotd::start(&a)
            })
            .collect();
        Cluster {
            _dir: dir,
            redis: std::sync::Mutex::new(redis),
            instances,
            keys: TokenKey::new(SECRET.as_bytes()),
            http: Http::new(Duration::from_secs(10)),
        }
    }

    fn redis_url(&self) -> String {
        self.redis.lock().expect("redis").url()
    }

    fn token(&self, n: u64) -> String {
        self.keys.sign(Claims {
            person: synthetic_id(n),
            scope: Scope::Booking,
            expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
            partner: None,
        })
    }

    /// Raises every slot's capacity through instance 0, so a surge books for its whole length.
    async fn raise_every_slot_to(&self, capacity: u32) {
        let mut cal = calendar();
        for s in &mut cal.phases[0].slots {
            s.capacity = capacity;
        }
        let base = &self.instances[0].base;
        let body = serde_json::to_value(&cal).expect("json");
        let r = self
            .http
            .call(
                "PUT",
                &format!("{base}/v1/admin/calendar"),
                Some(ADMIN),
                Some(&body),
            )
            .await
            .expect("answer");
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Waits until every instance's phase has `capacity` seats per slot in its mirror.
    async fn wait_for_capacity(&self, capacity: u64) {
        let slots = calendar().phases[0].slots.len() as u64;
        for i in &self.instances {
            let base = i.base.clone();
            let mut ok = false;
            for _ in 0..300 {
                let a = self
                    .http
                    .call("GET", &format!("{base}/v1/phases"), None, None)
                    .await;
                if a.is_ok_and(|a| a.body["phases"][0]["capacity"] == capacity * slots) {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(ok, "{base} sees the raised capacity");
        }
    }

    async fn audit(&self, base: &str) -> Value {
        let a = self
            .http
            .call(
                "GET",
                &format!("{base}/v1/admin/phases/P1/audit"),
                Some(ADMIN),
                None,
            )
            .await
            .expect("audit answers");
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    }

    /// Whether `booking` of person `n` is in the store, live.
    async fn holds(&self, base: &str, n: u64, booking: &str) -> bool {
        let a = self
            .http
            .call(
                "GET",
                &format!("{base}/v1/me/bookings"),
                Some(&self.token(n)),
                None,
            )
            .await
            .expect("bookings answer");
        a.body["bookings"].as_array().is_some_and(|b| {
            b.iter()
                .any(|x| x["booking"] == booking && x["status"] == "booked")
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_sell_exactly_the_seats_there_are() {
    let c = Arc::new(Cluster::start(3, false));
    let barrier = Arc::new(tokio::sync::Barrier::new(3_000));
    let tasks: Vec<_> = (0..3_000u64)
        .map(|n| {
            let (c, barrier) = (c.clone(), barrier.clone());
            tokio::spawn(async move {
                let base = c.instances[n as usize % 3].base.clone();
                let token = c.token(100_000 + n);
                barrier.wait().await;
                let body = json!({ "slot": format!("T{}", n % 10) });
                let a = c
                    .http
                    .call(
                        "POST",
                        &format!("{base}/v1/phases/P1/bookings"),
                        Some(&token),
                        Some(&body),
                    )
                    .await;
                a.map(|a| {
                    (
                        a.status.as_u16(),
                        a.body["code"].as_str().unwrap_or("").to_string(),
                        a.body["booking"].clone(),
                    )
                })
            })
        })
        .collect();
    let mut counts: HashMap<u16, usize> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, code, booking) = t.await.expect("task").expect("every client got an answer");
        *counts.entry(status).or_default() += 1;
        match status {
            201 => assert!(
                ids.insert(booking.to_string()),
                "booking ids are unique across instances"
            ),
            409 => assert_eq!(code, "slot-full"),
            other => panic!("unexpected {other} {code}"),
        }
    }
    assert_eq!(counts.get(&201), Some(&500), "{counts:?}");
    assert_eq!(counts.get(&409), Some(&2_500), "{counts:?}");
    let audit = c.audit(&c.instances[1].base).await;
    assert_eq!(audit["ok"], true, "{}", audit["breaches"]);
    assert_eq!(audit["totals"]["live_bookings"], 500);

    // One person on all three instances at once, for three different slots: one booking.
    let token = Arc::new(c.token(7));
    let racers: Vec<_> = (0..3)
        .map(|i| {
            let (c, token) = (c.clone(), token.clone());
            tokio::spawn(async move {
                let base = &c.instances[i].base;
                let body = json!({ "slot": format!("Y{}", i + 1) });
                let a = c
                    .http
                    .call(
                        "POST",
                        &format!("{base}/v1/phases/P1/bookings"),
                        Some(&token),
                        Some(&body),
                    )
                    .await
                    .expect("answer");
                (
                    a.status.as_u16(),
                    a.body["code"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in racers {
        results.push(r.await.expect("task"));
    }
    assert_eq!(
        results.iter().filter(|r| r.0 == 201).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.0 == 409 && r.1 == "already-booked")
            .count(),
        2,
        "{results:?}"
    );
    let audit = c.audit(&c.instances[2].base).await;
    assert_eq!(audit["ok"], true, "{}", audit["breaches"]);

    let offline = std::process::Command::new(slotd_system_tests::slotd_process::binary())
        .args(["audit", "--store", &c.redis_url()])
        .output()
        .expect("slotd audit runs");
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stdout)
    );
}

/// Every 201 of a surge: `(person, booking, instance index, when it was answered)`.
type Acked = Vec<(u64, String, usize, Instant)>;

/// Clients booking distinct people, round-robin over `bases`, until `stop`; returns
/// every 201 and the answers by status. `progress` counts 201s by instance as they come.
async fn surge(
    c: Arc<Cluster>,
    clients: u64,
    stop: Arc<AtomicBool>,
    first_person: u64,
    progress: Arc<[AtomicUsize; 3]>,
) -> (Acked, HashMap<String, usize>) {
    let tasks: Vec<_> = (0..clients)
        .map(|w| {
            let (c, stop, progress) = (c.clone(), stop.clone(), progress.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut seen: HashMap<String, usize> = HashMap::new();
                for i in 0..10_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let person = first_person + w * 10_000 + i;
                    let inst = ((w + i) % c.instances.len() as u64) as usize;
                    let base = &c.instances[inst].base;
                    let body = json!({ "slot": format!("T{}", person % 10) });
                    let key = match c
                        .http
                        .call(
                            "POST",
                            &format!("{base}/v1/phases/P1/bookings"),
                            Some(&c.token(person)),
                            Some(&body),
                        )
                        .await
                    {
                        Ok(a) => {
                            if a.status == 201 {
                                acked.push((
                                    person,
                                    a.body["booking"].as_str().unwrap_or("").to_string(),
                                    inst,
                                    Instant::now(),
                                ));
                                progress[inst % 3].fetch_add(1, Ordering::Relaxed);
                            }
                            if a.status.as_u16() >= 500 {
                                assert!(
                                    a.headers.contains_key("retry-after"),
                                    "a {} without Retry-After",
                                    a.status
                                );
                            }
                            format!(
                                "{} {}",
                                a.status.as_u16(),
                                if a.status.is_success() {
                                    ""
                                } else {
                                    a.body["code"].as_str().unwrap_or("")
                                }
                            )
                        }
                        Err(e) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            e.to_string()
                        }
                    };
                    *seen.entry(key).or_default() += 1;
                }
                (acked, seen)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        let (a, s) = t.await.expect("task");
        acked.extend(a);
        for (k, v) in s {
            *seen.entry(k).or_default() += v;
        }
    }
    (acked, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_instance_mid_surge_loses_no_acknowledged_booking() {
    let c = Cluster::start(3, false);
    // Raise capacity so the surge books for its whole length, and wait until every
    // instance's mirror has the new seats.
    c.raise_every_slot_to(10_000).await;
    c.wait_for_capacity(10_000).await;
    let c = Arc::new(c);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let load = tokio::spawn(surge(
        c.clone(),
        24,
        stop.clone(),
        1_000_000,
        progress.clone(),
    ));
    // SIGKILL instance 0 once it has acknowledged bookings (requests are then on the wire).
    wait_until(Duration::from_secs(30), "instance 0 books", || {
        progress[0].load(Ordering::Relaxed) >= 50
    })
    .await;
    let killed_at = Instant::now();
    kill_instance(&c, 0);
    // The survivors keep serving: wait for their bookings after the kill.
    let survivors_before =
        progress[1].load(Ordering::Relaxed) + progress[2].load(Ordering::Relaxed);
    wait_until(
        Duration::from_secs(30),
        "the survivors book after the kill",
        || {
            progress[1].load(Ordering::Relaxed) + progress[2].load(Ordering::Relaxed)
                >= survivors_before + 100
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (acked, seen) = load.await.expect("surge");
    assert!(acked.len() > 50, "the surge booked: {seen:?}");
    let after_kill_by_survivors = acked
        .iter()
        .filter(|a| a.2 % 3 != 0 && a.3 > killed_at)
        .count();
    assert!(
        after_kill_by_survivors >= 100,
        "instances 1 and 2 acknowledged {after_kill_by_survivors} bookings after the kill: {seen:?}"
    );
    assert!(!seen.keys().any(|k| k.starts_with("500")), "{seen:?}");
    let survivor = c.instances[1].base.clone();
    for (person, booking, _, _) in &acked {
        assert!(
            c.holds(&survivor, *person, booking).await,
            "acknowledged {booking} of {person} is in Redis"
        );
    }
    let audit = c.audit(&survivor).await;
    assert_eq!(audit["ok"], true, "{}", audit["breaches"]);
    assert!(audit["totals"]["live_bookings"].as_u64().unwrap_or(0) >= acked.len() as u64);
}

/// Waits until `done` holds, polling, or fails with `what` after `within`.
async fn wait_until(within: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGKILLs instance `i` (its handle is shared behind the cluster's `Arc`).
fn kill_instance(c: &Cluster, i: usize) {
    let pid = c.instances[i].pid();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -9 {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_mid_surge_loses_nothing_acknowledged_and_instances_recover() {
    let c = Arc::new(Cluster::start(2, true));
    c.raise_every_slot_to(10_000).await;
    let base = c.instances[0].base.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let load = tokio::spawn(surge(
        c.clone(),
        16,
        stop.clone(),
        2_000_000,
        progress.clone(),
    ));
    wait_until(Duration::from_secs(30), "the surge books", || {
        progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .sum::<usize>()
            >= 50
    })
    .await;
    c.redis.lock().expect("redis").kill();
    let killed = Instant::now();
    // During the outage: readiness turns false (with Retry-After), bookings get 503 +
    // Retry-After, nothing hangs.
    let mut ready = None;
    for _ in 0..200 {
        let r = c
            .http
            .call("GET", &format!("{base}/health/ready"), None, None)
            .await
            .expect("ready answers");
        if r.status == 503 {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = ready.expect("readiness turns 503 during the outage");
    assert!(ready.headers.contains_key("retry-after"));
    let during = c
        .http
        .call(
            "POST",
            &format!("{base}/v1/phases/P1/bookings"),
            Some(&c.token(3_000_000)),
            Some(&json!({"slot": "T1"})),
        )
        .await
        .expect("an answer, not a hang");
    assert_eq!(
        (during.status.as_u16(), during.body["code"].clone()),
        (503, json!("store-unavailable"))
    );
    assert!(during.headers.contains_key("retry-after"));
    assert!(killed.elapsed() < Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let (acked, seen) = load.await.expect("surge");
    assert!(acked.len() > 20, "{seen:?}");
    assert!(
        seen.keys().any(|k| k.starts_with("503 store-unavailable")),
        "{seen:?}"
    );
    assert!(
        !seen.keys().any(|k| k.starts_with("500") || k == "timeout"),
        "{seen:?}"
    );

    // Redis comes back on the same files; the instances recover without a restart.
    restart_redis(&c);
    let mut recovered = false;
    for _ in 0..100 {
        let r = c
            .http
            .call("GET", &format!("{base}/health/ready"), None, None)
            .await;
        if r.is_ok_and(|r| r.status == 200) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "instance 0 became ready again by itself");
    for (person, booking, _, _) in &acked {
        assert!(
            c.holds(&base, *person, booking).await,
            "acknowledged {booking} of {person} survived the Redis crash"
        );
    }
    let after = c
        .http
        .call(
            "POST",
            &format!("{}/v1/phases/P1/bookings", c.instances[1].base),
            Some(&c.token(3_000_001)),
            Some(&json!({"slot": "T2"})),
        )
        .await
        .expect("answer");
    assert_eq!(after.status, 201, "{}", after.body);
    let audit = c.audit(&c.instances[1].base).await;
    assert_eq!(audit["ok"], true, "{}", audit["breaches"]);
}

fn restart_redis(c: &Cluster) {
    c.redis.lock().expect("redis").restart();
}
