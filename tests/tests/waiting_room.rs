//! One waiting room across real `slotd` processes on one real Redis: each person gets
//! one ticket and one place whichever instances they queue on, at once; every instance
//! answers the same place for a ticket after the shuffle; admitted people book on any
//! instance, and nobody beyond the seats does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use slotd::domain::{WaitingRoom, synthetic_id};
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::redis_server::RedisServer;
use slotd_system_tests::slotd_process::{Http, Slotd};
use time::OffsetDateTime;

const ADMIN: &str = "room-admin-secret";
const SECRET: &str = "room-token-secret";
const PEOPLE: u64 = 80;
const SEATS: u32 = 30;

fn token(keys: &TokenKey, n: u64) -> String {
    keys.sign(Claims {
        person: synthetic_id(10_000 + n),
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        partner: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_room_one_ticket_and_one_place_per_person_across_instances() {
    let redis = RedisServer::fast();
    let dir = tempfile::tempdir().expect("tempdir");
    let now = OffsetDateTime::now_utc();
    let mut cal = calendars::open_phase(&[("W1".into(), SEATS)]);
    cal.phases[0].opens_at = now + time::Duration::seconds(4);
    cal.phases[0].waiting_room = Some(WaitingRoom {
        prequeue_opens_at: now - time::Duration::seconds(1),
    });
    let file = dir.path().join("calendar.json");
    std::fs::write(&file, serde_json::to_vec(&cal).expect("json")).expect("calendar");
    let instances: Vec<Slotd> = (0..2)
        .map(|i| {
            let args: Vec<String> = [
                "--store",
                &redis.url(),
                "--durability",
                "fast",
                "--admin-token",
                ADMIN,
                "--token-secret",
                SECRET,
                "--person-write-rate",
                "1000",
                "--person-read-rate",
                "1000",
                "--calendar",
                &file.to_string_lossy(),
                "--data-dir",
                &dir.path().join(format!("i{i}")).to_string_lossy(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            Slotd::start(&args)
        })
        .collect();
    let bases: Arc<Vec<String>> = Arc::new(instances.iter().map(|s| s.base.clone()).collect());
    let keys = Arc::new(TokenKey::new(SECRET.as_bytes()));
    let http = Http::new(Duration::from_secs(10));

    // Everyone queues on both instances at once, twice each.
    let mut tasks = Vec::new();
    for n in 0..PEOPLE {
        for i in 0..4 {
            let (http, bases, keys) = (http.clone(), bases.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let url = format!("{}/v1/phases/P1/queue", bases[i % 2]);
                let a = http
                    .call("POST", &url, Some(&token(&keys, n)), None)
                    .await
                    .expect("answer");
                assert_eq!(a.status.as_u16(), 201, "{}", a.body);
                (n, a.body["ticket"].as_str().expect("ticket").to_string())
            }));
        }
    }
    let mut tickets: HashMap<u64, String> = HashMap::new();
    for t in tasks {
        let (n, ticket) = t.await.expect("task");
        let held = tickets.entry(n).or_insert_with(|| ticket.clone());
        assert_eq!(*held, ticket, "person {n} got two tickets");
    }
    let room = http
        .call(
            "GET",
            &format!("{}/v1/admin/phases/P1/queue", bases[1]),
            Some(ADMIN),
            None,
        )
        .await
        .expect("room");
    assert_eq!(room.body["pre_queue"], json!(PEOPLE), "{}", room.body);

    // After the opening, both instances give each ticket the same place.
    let poll = |base: String, ticket: String| {
        let http = http.clone();
        async move {
            http.call_with(
                "GET",
                &format!("{base}/v1/phases/P1/queue"),
                None,
                None,
                &[("queue-ticket", &ticket)],
            )
            .await
            .expect("poll")
            .body
        }
    };
    let first = tickets[&0].clone();
    let mut shuffled = Value::Null;
    for _ in 0..200 {
        shuffled = poll(bases[0].clone(), first.clone()).await;
        let other = poll(bases[1].clone(), first.clone()).await;
        if shuffled["shuffled"] == true && other["shuffled"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shuffled["shuffled"], true, "{shuffled}");
    let mut places = HashSet::new();
    let mut admitted_people = Vec::new();
    for n in 0..PEOPLE {
        let a = poll(bases[0].clone(), tickets[&n].clone()).await;
        let b = poll(bases[1].clone(), tickets[&n].clone()).await;
        assert_eq!(a["position"], b["position"], "person {n}: {a} vs {b}");
        places.insert(a["position"].as_u64().expect("place"));
        if a["state"] == "admitted" && b["state"] == "admitted" {
            admitted_people.push(n);
        }
    }
    assert_eq!(places, (1..=PEOPLE).collect::<HashSet<_>>());
    assert!(!admitted_people.is_empty());

    // Admitted people book on the instance other than the one that gave the ticket
    // first; together they take every seat and no more.
    let mut booked = 0;
    for n in &admitted_people {
        let a = http
            .call_with(
                "POST",
                &format!("{}/v1/phases/P1/bookings", bases[(*n % 2) as usize]),
                Some(&token(&keys, *n)),
                Some(&json!({"slot": "W1"})),
                &[("queue-ticket", &tickets[n])],
            )
            .await
            .expect("booking");
        match a.status.as_u16() {
            201 => booked += 1,
            409 => assert_eq!(a.body["code"], "slot-full"),
            other => panic!("admitted person {n}: {other} {}", a.body),
        }
    }
    assert_eq!(booked, u64::from(SEATS).min(admitted_people.len() as u64));
    let audit = http
        .call(
            "GET",
            &format!("{}/v1/admin/phases/P1/audit", bases[0]),
            Some(ADMIN),
            None,
        )
        .await
        .expect("audit");
    assert_eq!(audit.body["ok"], true, "{}", audit.body);
    drop(instances);
}
