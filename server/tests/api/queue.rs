//! The waiting room over HTTP on one node: queueing before the opening, the shuffle,
//! admission in queue order, the booking gate, tickets that cannot be forged or moved,
//! and the end of admission at sell-out.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration as TDuration, OffsetDateTime};

use super::helpers::{TestApp, calendar, spawn_app};

const SEATS: u32 = 20;
const PEOPLE: u64 = 60;

/// The test calendar plus `Q1`: a waiting room open now, the opening in `opens_in`, one
/// slot `QA` of `SEATS`.
async fn with_room(app: &TestApp, opens_in: TDuration) {
    let now = OffsetDateTime::now_utc();
    let mut cal = serde_json::to_value(calendar(now)).expect("json");
    cal["phases"].as_array_mut().expect("phases").push(json!({
        "id": "Q1", "name": "Q1", "vaccines": ["AZ"],
        "opens_at": (now + opens_in).format(&time::format_description::well_known::Rfc3339).expect("time"),
        "closes_at": (now + TDuration::hours(1)).format(&time::format_description::well_known::Rfc3339).expect("time"),
        "waiting_room": {"prequeue_opens_at": (now - TDuration::seconds(1)).format(&time::format_description::well_known::Rfc3339).expect("time")},
        "slots": [{"id": "QA", "site": "S2", "date": "2021-07-20", "period": "09:00-12:00",
                   "vaccine": "AZ", "capacity": SEATS}],
    }));
    let loaded = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(cal))
        .await;
    assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
}

fn person(n: u64) -> u64 {
    5_000 + n
}

async fn join(app: &TestApp, n: u64) -> Value {
    let a = app
        .send(
            Method::POST,
            "/v1/phases/Q1/queue",
            Some(&app.person(person(n))),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body
}

async fn poll(app: &TestApp, ticket: &str) -> (StatusCode, Value) {
    let a = app
        .send(
            Method::GET,
            "/v1/phases/Q1/queue",
            None,
            None,
            &[("queue-ticket", ticket)],
        )
        .await;
    (a.status, a.body)
}

async fn book(app: &TestApp, n: u64, ticket: Option<&str>) -> (StatusCode, String) {
    let headers: Vec<(&str, &str)> = ticket.map(|t| ("queue-ticket", t)).into_iter().collect();
    let a = app
        .send(
            Method::POST,
            "/v1/phases/Q1/bookings",
            Some(&app.person(person(n))),
            Some(Bytes::from_static(b"{\"slot\":\"QA\"}")),
            &headers,
        )
        .await;
    (a.status, a.code().to_string())
}

/// Polls until `done` holds for the answer, up to 10 s.
async fn until(app: &TestApp, ticket: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (status, body) = poll(app, ticket).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the room did not get there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_comers_are_shuffled_admitted_in_queue_order_and_admission_stops_at_sell_out() {
    let app = spawn_app().await;
    with_room(&app, TDuration::seconds(2)).await;

    // Before the opening: everyone queued, nobody placed; the same person, the same ticket.
    let mut tickets = Vec::new();
    for n in 0..PEOPLE {
        let b = join(&app, n).await;
        assert_eq!(
            (b["state"].as_str(), &b["position"]),
            (Some("waiting"), &Value::Null)
        );
        tickets.push(b["ticket"].as_str().expect("ticket").to_string());
    }
    assert_eq!(join(&app, 0).await["ticket"], tickets[0].as_str());
    assert_eq!(
        tickets.iter().collect::<HashSet<_>>().len(),
        PEOPLE as usize
    );

    // The gate: no ticket, someone else's ticket, a forged one.
    assert_eq!(
        book(&app, 0, None).await,
        (StatusCode::FORBIDDEN, "not-admitted".into())
    );
    assert_eq!(
        book(&app, 1, Some(&tickets[0])).await,
        (StatusCode::FORBIDDEN, "not-admitted".into()),
        "a ticket moved to another person"
    );
    let mut forged = tickets[0].clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        poll(&app, &forged).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(poll(&app, "junk").await.0, StatusCode::UNPROCESSABLE_ENTITY);

    // The opening: the shuffle gives everyone a place, a permutation of 1..=PEOPLE.
    let first = until(&app, &tickets[0], |b| b["shuffled"] == true).await;
    let admitted = first["admitted"].as_u64().expect("admitted");
    let mut positions = Vec::new();
    for t in &tickets {
        let (_, b) = poll(&app, t).await;
        positions.push(b["position"].as_u64().expect("a place after the shuffle"));
    }
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=PEOPLE).collect::<Vec<_>>());
    assert!(
        (1..PEOPLE).contains(&admitted),
        "some admitted at once, not all: {admitted}"
    );

    // Those admitted book (until the seats run out); the others are refused, in order.
    let mut booked = 0;
    for (n, t) in tickets.iter().enumerate() {
        let (_, b) = poll(&app, t).await;
        let (status, code) = book(&app, n as u64, Some(t)).await;
        if b["state"] == "admitted" {
            assert!(positions[n] <= b["admitted"].as_u64().expect("count"));
            match status {
                StatusCode::CREATED => booked += 1,
                StatusCode::CONFLICT => assert_eq!(code, "slot-full"),
                other => panic!("admitted person {n} got {other} {code}"),
            }
        } else {
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::FORBIDDEN, "not-admitted")
            );
        }
    }
    assert_eq!(booked, SEATS, "every seat booked, none twice");

    // Sold out: the rest are told so, and nobody more is admitted.
    let waiting = tickets
        .iter()
        .zip(&positions)
        .find(|(_, p)| **p > admitted)
        .map(|(t, _)| t.clone());
    if let Some(t) = waiting {
        let b = until(&app, &t, |b| b["state"] == "sold-out").await;
        let at_sell_out = b["admitted"].as_u64().expect("count");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let (_, later) = poll(&app, &t).await;
        assert_eq!(
            later["admitted"].as_u64(),
            Some(at_sell_out),
            "admission stopped"
        );
        assert_eq!(later["seats_left"], 0);
    }

    // Someone arriving now queues behind everyone.
    let late = join(&app, PEOPLE).await;
    assert_eq!(late["position"].as_u64(), Some(PEOPLE + 1));

    // The admin's view records the seed the order came from.
    let room = app
        .admin(Method::GET, "/v1/admin/phases/Q1/queue", None)
        .await;
    assert_eq!(room.status, StatusCode::OK);
    assert_eq!(room.body["seed"].as_str().map(str::len), Some(32));
    assert_eq!(
        (room.body["pre_queue"].as_u64(), room.body["late"].as_u64()),
        (Some(PEOPLE), Some(1))
    );
}

#[tokio::test]
async fn a_phase_without_a_room_admits_at_once() {
    let app = spawn_app().await;
    let a = app
        .send(
            Method::POST,
            "/v1/phases/P1/queue",
            Some(&app.person(1)),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["state"], "admitted");
    let t = a.body["ticket"].as_str().expect("ticket").to_string();
    let again = app
        .send(
            Method::GET,
            "/v1/phases/P1/queue",
            None,
            None,
            &[("queue-ticket", &t)],
        )
        .await;
    assert_eq!(
        (again.status, &again.body["state"]),
        (StatusCode::OK, &json!("admitted"))
    );
    // Booking P1 needs no ticket.
    assert_eq!(
        app.book(&app.person(1), "P1", "A").await.status,
        StatusCode::CREATED
    );
    let phases = app.get("/v1/phases", None).await;
    assert_eq!(phases.body["phases"][0]["waiting_room"], Value::Null);

    // Once P1 gets a room, that ticket places nobody: its holder must queue.
    let mut cal = serde_json::to_value(calendar(OffsetDateTime::now_utc())).expect("json");
    cal["phases"][0]["waiting_room"] = json!({"prequeue_opens_at": "2021-01-01T00:00:00Z"});
    let loaded = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(cal))
        .await;
    assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
    let phases = app.get("/v1/phases", None).await;
    assert_eq!(
        phases.body["phases"][0]["waiting_room"]["prequeue_opens_at"],
        "2021-01-01T08:00:00+08:00"
    );
    let stale = app
        .send(
            Method::GET,
            "/v1/phases/P1/queue",
            None,
            None,
            &[("queue-ticket", &t)],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stale.body
    );
    let gated = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&app.person(1)),
            Some(Bytes::from_static(b"{\"slot\":\"A\"}")),
            &[("queue-ticket", &t)],
        )
        .await;
    assert_eq!(gated.code(), "not-admitted", "{}", gated.body);
    assert!(
        gated.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("before phase P1 had a waiting room")),
        "{}",
        gated.body
    );

    let unknown = app
        .send(
            Method::POST,
            "/v1/phases/P9/queue",
            Some(&app.person(1)),
            None,
            &[],
        )
        .await;
    assert_eq!(unknown.code(), "unknown-phase");
    let anonymous = app
        .send(Method::POST, "/v1/phases/P1/queue", None, None, &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
