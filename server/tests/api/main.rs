//! HTTP integration tests: a real server on port 0, a real HTTP client.

mod day;
mod helpers;
mod identity;
mod queue;
mod slow;
mod web;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use helpers::{ADMIN, spawn_app, spawn_app_with};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use slotd::domain::synthetic_id;
use slotd::token::Scope;

#[tokio::test]
async fn health_phases_and_availability_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        (ready.status, ready.body["store"].clone()),
        (StatusCode::OK, json!("embedded"))
    );

    let phases = app.get("/v1/phases", None).await;
    assert_eq!(phases.status, StatusCode::OK);
    let status: HashMap<String, String> = phases.body["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or("").into(),
                p["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(status["P1"], "open");
    assert_eq!(status["P3"], "upcoming");
    assert_eq!(status["P4"], "closed");

    let a = app.get("/v1/phases/P1/availability?county=%E8%87%BA%E5%8C%97%E5%B8%82&district=%E5%A4%A7%E5%AE%89%E5%8D%80", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let sites = a.body["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), 1, "only S2 is in 大安區");
    assert_eq!(sites[0]["site"], "S2");
    assert_eq!(sites[0]["slots"].as_array().map(Vec::len), Some(20));
    assert!(a.body["as_of"].is_string());

    // Without a place, the page is an index of seats per county and district, not every
    // site of the phase: it stays small however large the phase.
    let index = app.get("/v1/phases/P1/availability", None).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.body["sites"], json!([]));
    assert_eq!(
        index.body["counties"],
        json!([{"county": "臺北市", "sites": 2, "remaining": 357, "districts": [
            {"district": "中正區", "sites": 1, "remaining": 157},
            {"district": "大安區", "sites": 1, "remaining": 200},
        ]}])
    );
    let dated_index = app
        .get("/v1/phases/P1/availability?date=2021-07-17", None)
        .await;
    assert_eq!(
        dated_index.body["counties"],
        json!([{"county": "臺北市", "sites": 1, "remaining": 200, "districts": [
            {"district": "大安區", "sites": 1, "remaining": 200},
        ]}]),
        "only 大安區 has slots that day"
    );
    let dated = app
        .get(
            "/v1/phases/P1/availability?county=%E5%8F%B0%E5%8C%97%E5%B8%82&date=2021-07-16",
            None,
        )
        .await;
    let slots: usize = dated.body["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| s["slots"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(slots, 5);

    let unknown = app.get("/v1/phases/P9/availability", None).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "unknown-phase")
    );
    let bad = app
        .get("/v1/phases/P1/availability?date=16-07-2021", None)
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
}

#[tokio::test]
async fn availability_reflects_bookings_within_the_snapshot_interval() {
    let app = spawn_app().await;
    assert_eq!(
        app.book(&app.person(1), "P1", "A").await.status,
        StatusCode::CREATED
    );
    let mut seen = None;
    for _ in 0..40 {
        let a = app
            .get(
                "/v1/phases/P1/availability?county=%E8%87%BA%E5%8C%97%E5%B8%82&date=2021-07-16",
                None,
            )
            .await;
        let rem = a.body["sites"][0]["slots"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["slot"] == "A"))
            .map(|s| s["remaining"].clone());
        if rem == Some(json!(0)) {
            seen = rem;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen, Some(json!(0)), "the snapshot caught up");
    // The index counts the same seat.
    let index = app.get("/v1/phases/P1/availability", None).await;
    assert_eq!(index.body["counties"][0]["remaining"], 356);
}

#[tokio::test]
async fn a_booking_can_be_made_seen_retried_changed_and_cancelled() {
    let app = spawn_app().await;
    let me = app.person(1);
    let made = app.book(&me, "P1", "C").await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let b = made.body.clone();
    for field in [
        "booking",
        "code",
        "phase",
        "slot",
        "site",
        "site_name",
        "county",
        "district",
        "date",
        "period",
        "vaccine",
        "channel",
        "status",
        "booked_at",
    ] {
        assert!(!b[field].is_null(), "missing {field}");
    }
    assert_eq!(
        (b["slot"].clone(), b["site"].clone(), b["status"].clone()),
        (json!("C"), json!("S1"), json!("booked"))
    );
    assert_eq!(b["channel"], "web");
    let id = b["booking"].as_str().expect("id").to_string();

    let mine = app.get("/v1/me/bookings", Some(&me)).await;
    assert_eq!(mine.body["bookings"], json!([b.clone()]));

    let retry = app.book(&me, "P1", "C").await;
    assert_eq!(
        (retry.status, retry.body.clone()),
        (StatusCode::OK, b.clone())
    );

    let other = app.book(&me, "P1", "D").await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "already-booked")
    );
    assert_eq!(other.body["booking"], b);

    // Someone takes the only seat of A; a change to A keeps the old booking.
    assert_eq!(
        app.book(&app.person(2), "P1", "A").await.status,
        StatusCode::CREATED
    );
    let full = app.change(&me, &id, "A").await;
    assert_eq!(
        (full.status, full.code()),
        (StatusCode::CONFLICT, "slot-full")
    );
    assert_eq!(full.body["booking"]["slot"], "C");
    assert_eq!(app.remaining("P1", "C").await, 4);

    let moved = app.change(&me, &id, "D").await;
    assert_eq!(
        (
            moved.status,
            moved.body["slot"].clone(),
            moved.body["booking"].clone()
        ),
        (StatusCode::OK, json!("D"), json!(id))
    );
    assert_eq!(
        (
            app.remaining("P1", "C").await,
            app.remaining("P1", "D").await
        ),
        (5, 49)
    );

    let across = app.change(&me, &id, "Q").await;
    assert_eq!(
        (across.status, across.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown-slot")
    );

    let stranger = app.person(3);
    let theirs = app.cancel(&stranger, &id).await;
    assert_eq!(
        (theirs.status, theirs.code()),
        (StatusCode::NOT_FOUND, "unknown-booking")
    );
    let theirs = app.change(&stranger, &id, "E").await;
    assert_eq!(
        (theirs.status, theirs.code()),
        (StatusCode::NOT_FOUND, "unknown-booking")
    );

    assert_eq!(app.cancel(&me, &id).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.remaining("P1", "D").await, 50, "the seat returns");
    assert_eq!(
        app.cancel(&me, &id).await.status,
        StatusCode::NO_CONTENT,
        "cancelling twice is harmless"
    );
    let dead = app.change(&me, &id, "E").await;
    assert_eq!(
        (dead.status, dead.code()),
        (StatusCode::CONFLICT, "booking-not-live")
    );
    let mine = app.get("/v1/me/bookings", Some(&me)).await;
    assert_eq!(mine.body["bookings"][0]["status"], "cancelled");
    assert_eq!(
        app.book(&me, "P1", "E").await.status,
        StatusCode::CREATED,
        "a cancelled person books again"
    );
    app.assert_audit_clean("P1").await;
}

#[tokio::test]
async fn refusals_carry_their_codes() {
    let app = spawn_app().await;
    assert_eq!(
        app.book(&app.person(1), "P1", "A").await.status,
        StatusCode::CREATED
    );
    let full = app.book(&app.person(2), "P1", "A").await;
    assert_eq!(
        (full.status, full.code()),
        (StatusCode::CONFLICT, "slot-full")
    );
    assert_eq!(full.headers["content-type"], "application/problem+json");

    let uninvited = app.book(&app.person(3), "P2", "Q").await;
    assert_eq!(
        (uninvited.status, uninvited.code()),
        (StatusCode::FORBIDDEN, "not-invited")
    );

    let early = app.book(&app.person(3), "P3", "R").await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::FORBIDDEN, "window-not-open")
    );
    let retry: u64 = early.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((3000..=3600).contains(&retry), "{retry}");

    let late = app.book(&app.person(3), "P4", "S").await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::FORBIDDEN, "window-closed")
    );

    for slot in ["NOPE", "Q", "bad slot!", ""] {
        let unknown = app.book(&app.person(3), "P1", slot).await;
        assert_eq!(
            (unknown.status, unknown.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown-slot"),
            "{slot}"
        );
    }
    let phase = app.book(&app.person(3), "P9", "A").await;
    assert_eq!(
        (phase.status, phase.code()),
        (StatusCode::NOT_FOUND, "unknown-phase")
    );
}

#[tokio::test]
async fn invitations_load_as_ndjson_or_json_and_open_the_phase() {
    let app = spawn_app().await;
    let (a, b) = (synthetic_id(50), synthetic_id(51));
    let ndjson = format!("\"{a}\"\n\"{a}\"\n");
    let loaded = app
        .send(
            Method::PUT,
            "/v1/admin/phases/P2/invitations",
            Some(ADMIN),
            Some(Bytes::from(ndjson)),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(
        (
            loaded.status,
            loaded.body["received"].clone(),
            loaded.body["added"].clone()
        ),
        (StatusCode::OK, json!(2), json!(1))
    );
    let array = app
        .admin(
            Method::PUT,
            "/v1/admin/phases/P2/invitations",
            Some(json!([b.to_string(), a.to_string()])),
        )
        .await;
    assert_eq!(array.body["added"], 1);
    assert_eq!(
        app.book(&app.token(a), "P2", "Q").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.book(&app.token(b), "P2", "Q").await.status,
        StatusCode::CREATED
    );

    let bad = app
        .send(
            Method::PUT,
            "/v1/admin/phases/P2/invitations",
            Some(ADMIN),
            Some(Bytes::from("\"A123456789\"\n\"A123456788\"\n")),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("invitation 2"),
        "{}",
        bad.body
    );
    let unknown = app
        .admin(
            Method::PUT,
            "/v1/admin/phases/P9/invitations",
            Some(json!([])),
        )
        .await;
    assert_eq!(unknown.code(), "unknown-phase");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_never_a_500() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 1024).await;
    let me = app.person(1);
    let post = |body: &'static [u8]| {
        app.send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&me),
            Some(Bytes::from_static(body)),
            &[],
        )
    };
    for body in [
        &b"{"[..],
        b"[]",
        b"{\"slot\": 5}",
        b"{\"seat\": \"A\"}",
        b"\xff\xfe",
        b"",
    ] {
        let a = post(body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            "{body:?}"
        );
    }
    let big = Bytes::from(format!("{{\"slot\": \"{}\"}}", "x".repeat(4096)));
    let a = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&me),
            Some(big),
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large")
    );

    let none = app.book("", "P1", "A").await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let missing = app
        .send(Method::GET, "/v1/me/bookings", None, None, &[])
        .await;
    assert_eq!(
        (missing.status, missing.body["reason"].clone()),
        (StatusCode::UNAUTHORIZED, json!("missing"))
    );
    let forged = me.replacen("booking", "kiosk", 1);
    let invalid = app.get("/v1/me/bookings", Some(&forged)).await;
    assert_eq!(
        (invalid.status, invalid.body["reason"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid"))
    );
    let expired = app.token_with(synthetic_id(1), Scope::Booking, -5);
    let a = app.get("/v1/me/bookings", Some(&expired)).await;
    assert_eq!(
        (a.status, a.body["reason"].clone()),
        (StatusCode::UNAUTHORIZED, json!("expired"))
    );
    let registration = app.token_with(synthetic_id(1), Scope::Registration, 60);
    let a = app.book(&registration, "P1", "A").await;
    assert_eq!((a.status, a.code()), (StatusCode::FORBIDDEN, "wrong-scope"));
    let a = app.get("/v1/me/bookings", Some("Basic abc")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let a = app.get("/v1/nothing/here", None).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not-found"));
    let a = app
        .send(Method::DELETE, "/v1/phases", None, None, &[])
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed")
    );
    let a = app
        .send(
            Method::DELETE,
            "/v1/me/bookings/..%2F..",
            Some(&me),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "unknown-booking")
    );
    let a = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&me),
            Some(Bytes::from_static(b"{\"slot\":\"A\",\"channel\":\"fax\"}")),
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
    let a = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&me),
            Some(Bytes::from_static(b"{\"slot\":\"A\"}")),
            &[("idempotency-key", "")],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
    // None of that took a seat.
    assert_eq!(app.remaining("P1", "A").await, 1);
}

#[tokio::test]
async fn titles_follow_accept_language() {
    let app = spawn_app().await;
    let body = Some(Bytes::from_static(b"{\"slot\":\"NOPE\"}"));
    let t = app.person(1);
    let zh = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&t),
            body.clone(),
            &[],
        )
        .await;
    assert_eq!(zh.body["title"], "查無此時段");
    let en = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&t),
            body.clone(),
            &[("accept-language", "en-US,en;q=0.9")],
        )
        .await;
    assert_eq!(en.body["title"], "Unknown slot");
    assert_eq!(en.headers["content-language"], "en");
    let vi = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&t),
            body,
            &[("accept-language", "vi")],
        )
        .await;
    assert_eq!(vi.body["title"], "Không tìm thấy khung giờ");
}

#[tokio::test]
async fn a_retried_write_with_the_same_idempotency_key_returns_the_same_booking() {
    let app = spawn_app().await;
    let me = app.person(1);
    let send = |slot: &str, key: &'static str| {
        let body = Bytes::from(json!({ "slot": slot }).to_string());
        let app = &app;
        let me = &me;
        async move {
            app.send(
                Method::POST,
                "/v1/phases/P1/bookings",
                Some(me),
                Some(body),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = send("C", "click-1").await;
    let again = send("C", "click-1").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        (again.status, again.body.clone()),
        (StatusCode::CREATED, first.body.clone())
    );
    let reused = send("D", "click-1").await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused")
    );
    assert_eq!(app.remaining("P1", "C").await, 4);
}

#[tokio::test]
async fn writes_beyond_the_per_person_rate_get_429_with_retry_after() {
    let app = spawn_app_with(|c| c.limits.person_write_rate = 2).await;
    let me = app.person(1);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let a = app.book(&me, "P1", "C").await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.code(), "rate-limited");
            assert!(a.headers.contains_key("retry-after"));
        }
        statuses.push(a.status.as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        app.book(&app.person(2), "P1", "D").await.status,
        StatusCode::CREATED,
        "others are not limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_shed_with_503() {
    let app = Arc::new(spawn_app_with(|c| c.limits.max_in_flight = 1).await);
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move { app.book(&app.person(100 + n), "P1", "E").await })
        })
        .collect();
    let (mut shed, mut booked) = (0, 0);
    for t in tasks {
        let a = t.await.expect("task");
        match a.status {
            StatusCode::CREATED => booked += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(a.code(), "overloaded");
                assert!(a.headers.contains_key("retry-after"));
                shed += 1;
            }
            s => panic!("unexpected {s}: {}", a.body),
        }
    }
    assert!(shed > 0 && booked > 0, "shed {shed}, booked {booked}");
    assert_eq!(app.remaining("P1", "E").await, 100 - booked);
    assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_people_racing_for_a_hundred_seats_get_exactly_a_hundred() {
    let app = Arc::new(spawn_app().await);
    let tokens: Vec<String> = (0..2_000).map(|n| app.person(10_000 + n)).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let a = app.book(&t, "P1", "E").await;
                (a.status, a.code().to_string())
            })
        })
        .collect();
    let mut counts: HashMap<(u16, String), usize> = HashMap::new();
    for t in tasks {
        let (s, c) = t.await.expect("task");
        *counts.entry((s.as_u16(), c)).or_default() += 1;
    }
    assert_eq!(counts.get(&(201, String::new())), Some(&100), "{counts:?}");
    assert_eq!(
        counts.get(&(409, "slot-full".into())),
        Some(&1_900),
        "{counts:?}"
    );
    assert_eq!(app.remaining("P1", "E").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_racing_for_twenty_slots_gets_one_booking() {
    let app = Arc::new(spawn_app().await);
    let me = app.person(7);
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (1..=20)
        .map(|n| {
            let (app, me, barrier) = (app.clone(), me.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let a = app.book(&me, "P1", &format!("F{n:02}")).await;
                (a.status.as_u16(), a.code().to_string())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    assert_eq!(
        results.iter().filter(|r| r.0 == 201).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| *r == &(409, "already-booked".to_string()))
            .count(),
        19
    );
    let audit = app.assert_audit_clean("P1").await;
    let taken: u64 = audit["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .filter(|s| s["slot"].as_str().is_some_and(|x| x.starts_with('F')))
        .map(|s| s["booked"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(taken, 1, "no seat leaked");
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_secret_and_keep_calendars_idempotent() {
    let app = spawn_app().await;
    let a = app
        .send(
            Method::POST,
            "/v1/admin/tokens",
            Some("wrong"),
            Some(Bytes::from_static(b"{}")),
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let a = app
        .send(
            Method::GET,
            "/v1/admin/phases/P1/audit",
            Some(&app.person(1)),
            None,
            &[],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "a person token is no admin secret"
    );

    let minted = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"id_number": "A123456789", "scope": "kiosk", "ttl_seconds": 600})),
        )
        .await;
    assert_eq!(minted.status, StatusCode::OK);
    assert!(minted.body["expires_at"].is_string());
    let token = minted.body["token"].as_str().expect("token").to_string();
    let b = app.book(&token, "P1", "C").await;
    assert_eq!(
        (b.status, b.body["channel"].clone()),
        (StatusCode::CREATED, json!("kiosk"))
    );
    let bad = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"id_number": "A123456788", "scope": "booking"})),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
    let bad = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"id_number": "A123456789", "scope": "root"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let mut cal: Value =
        serde_json::to_value(helpers::calendar(time::OffsetDateTime::now_utc())).expect("json");
    // Phase windows differ by a few ms from the loaded ones; capacities do not.
    let same = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(cal.clone()))
        .await;
    assert_eq!(
        (same.status, same.body["capacity_changes"].clone()),
        (StatusCode::OK, json!(0))
    );
    cal["phases"][0]["slots"][2]["capacity"] = json!(0);
    let lower = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(cal.clone()))
        .await;
    assert_eq!(
        (lower.status, lower.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-calendar")
    );
    assert!(
        lower.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("slot C"),
        "{}",
        lower.body
    );
    assert_eq!(app.remaining("P1", "C").await, 4);
    cal["phases"][0]["slots"][2]["capacity"] = json!(9);
    let raise = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(cal.clone()))
        .await;
    assert_eq!(raise.status, StatusCode::OK);
    assert_eq!(app.remaining("P1", "C").await, 8);
    cal["sites"][0]["district"] = json!("板橋區");
    let invalid = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(cal))
        .await;
    assert_eq!(invalid.code(), "invalid-calendar");
    let garbage = app
        .send(
            Method::PUT,
            "/v1/admin/calendar",
            Some(ADMIN),
            Some(Bytes::from_static(b"{\"sites\": 3}")),
            &[],
        )
        .await;
    assert_eq!(
        (garbage.status, garbage.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-calendar")
    );
}

#[tokio::test]
async fn metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    assert_eq!(
        app.book(&app.person(1), "P1", "C").await.status,
        StatusCode::CREATED
    );
    let res = app
        .client
        .get(format!("http://{}/metrics", app.addr).parse().expect("uri"))
        .await
        .expect("metrics");
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(res.into_body())
            .await
            .expect("body")
            .to_bytes()
            .to_vec(),
    )
    .expect("utf-8");
    assert!(
        text.contains("slotd_http_requests_total{route=\"/v1/phases/{phase}/bookings\""),
        "{text}"
    );
    assert!(text.contains("slotd_bookings_committed_total"));
    // Counters of events that have not happened exist at zero, and the build is named.
    assert!(
        text.contains("slotd_fast_path_rejections_total 0"),
        "{text}"
    );
    assert!(text.contains("slotd_store_errors_total{op=\"reserve\"} 0"));
    // (Other tests of this process lock accounts: the series exists, whatever its count.)
    assert!(text.contains("slotd_login_lockouts_total{subject=\"account\"}"));
    assert!(text.contains("slotd_build_info{version=\""));
    assert!(text.contains("slotd_journal_fsync_seconds_bucket"));
    // The process's own figures, read at the scrape.
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        let value = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(value.is_some_and(|v| v > 0.0), "{name}: {value:?}");
    }
    let doc = app.get("/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(
        doc.body["openapi"]
            .as_str()
            .unwrap_or("")
            .starts_with("3.1")
    );
}

#[tokio::test]
async fn a_wrong_method_names_the_allowed_ones() {
    let app = spawn_app().await;
    let a = app
        .send(
            Method::POST,
            "/v1/me/bookings/b1",
            Some(&app.person(1)),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed")
    );
    assert_eq!(a.headers["allow"], "PUT, DELETE");
}

#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_header_timeout_and_close_after_the_idle_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| {
        c.limits.header_read_timeout = std::time::Duration::from_secs(1);
        c.limits.idle_timeout = std::time::Duration::from_secs(3);
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let request = b"GET /health/live HTTP/1.1\r\nhost: slotd\r\n\r\n";
    let mut buf = vec![0u8; 4096];
    conn.write_all(request).await.expect("write");
    let n = conn.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Idle for longer than the header timeout: a load balancer's pooled connection.
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    conn.write_all(request).await.expect("write after 2 s idle");
    let n = conn.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "still open after 2 s idle"
    );
    // Idle past the idle timeout: the server closes it. Wait for the close itself (end of
    // stream), not a fixed time, and check it did not come early.
    let idle_from = std::time::Instant::now();
    let eof = tokio::time::timeout(std::time::Duration::from_secs(8), conn.read(&mut buf))
        .await
        .expect("the server closes the idle connection");
    assert!(
        matches!(eof, Ok(0) | Err(_)),
        "closed, not answered: {eof:?}"
    );
    assert!(
        idle_from.elapsed() >= std::time::Duration::from_millis(2_500),
        "not before the idle timeout: {:?}",
        idle_from.elapsed()
    );
}

#[tokio::test]
async fn a_listed_browser_origin_gets_cors_answers_and_others_do_not() {
    let app = spawn_app_with(|c| c.limits.cors_origins = vec!["https://1922.gov.tw".into()]).await;
    let preflight = |origin: &'static str, method: &'static str, path: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::OPTIONS,
                path,
                None,
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", method),
                    (
                        "access-control-request-headers",
                        "authorization, content-type, idempotency-key",
                    ),
                ],
            )
            .await
        }
    };
    let ok = preflight("https://1922.gov.tw", "POST", "/v1/phases/P1/bookings").await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "https://1922.gov.tw"
    );
    assert_eq!(ok.headers["access-control-allow-methods"], "POST");
    let allowed = ok.headers["access-control-allow-headers"]
        .to_str()
        .unwrap_or("");
    assert!(allowed.contains("authorization") && allowed.contains("idempotency-key"));
    let two = preflight("https://1922.gov.tw", "DELETE", "/v1/me/bookings/b1").await;
    assert_eq!(two.headers["access-control-allow-methods"], "PUT, DELETE");
    // Another origin, and a path that does not exist, get no CORS answer.
    let evil = preflight("https://evil.example", "POST", "/v1/phases/P1/bookings").await;
    assert!(!evil.headers.contains_key("access-control-allow-origin"));
    assert_eq!(evil.status, StatusCode::METHOD_NOT_ALLOWED);
    let nowhere = preflight("https://1922.gov.tw", "GET", "/v1/nothing").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);

    // The real request: the origin is echoed, the headers a frontend reads are exposed.
    let booked = app
        .send(
            Method::POST,
            "/v1/phases/P1/bookings",
            Some(&app.person(1)),
            Some(Bytes::from_static(b"{\"slot\":\"C\"}")),
            &[("origin", "https://1922.gov.tw")],
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED);
    assert_eq!(
        booked.headers["access-control-allow-origin"],
        "https://1922.gov.tw"
    );
    let exposed = booked.headers["access-control-expose-headers"]
        .to_str()
        .unwrap_or("");
    assert!(exposed.contains("retry-after") && exposed.contains("location"));
    assert!(booked.headers.get_all("vary").iter().any(|v| v == "origin"));
    assert_eq!(
        booked.headers["location"],
        format!(
            "/v1/me/bookings/{}",
            booked.body["booking"].as_str().unwrap_or("")
        )
    );
    let other = app
        .send(
            Method::GET,
            "/v1/phases",
            None,
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    let anonymous = app.get("/v1/me/bookings", None).await;
    assert_eq!(
        anonymous.headers["www-authenticate"],
        "Bearer realm=\"slotd\""
    );
}

#[test]
fn cors_origins_are_checked_and_read_from_the_flag_or_the_environment() {
    use slotd::config::{Config, ServeArgs};
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>()
    };
    let c = Config::from_args(
        &ServeArgs::default(),
        &env(&[(
            "SLOTD_CORS_ORIGINS",
            "https://1922.gov.tw, http://localhost:5173",
        )]),
    )
    .expect("valid");
    assert_eq!(
        c.limits.cors_origins,
        vec!["https://1922.gov.tw", "http://localhost:5173"]
    );
    let bad = Config::from_args(
        &ServeArgs {
            cors_origin: vec!["*".into()],
            ..ServeArgs::default()
        },
        &env(&[]),
    )
    .expect_err("refused");
    assert!(bad.to_string().contains("--cors-origin"), "{bad}");
}

#[tokio::test]
async fn availability_is_fit_for_a_cdn_and_person_data_is_not_cached() {
    // One snapshot for the whole test: a new one (every 250 ms by default) is a new page
    // with a new tag, which is right, but not what this test looks at.
    let app = spawn_app_with(|c| c.snapshot_interval = std::time::Duration::from_secs(600)).await;
    let path = "/v1/phases/P1/availability?county=%E8%87%BA%E5%8C%97%E5%B8%82";
    let plain = app.get(path, None).await;
    assert_eq!(plain.status, StatusCode::OK);
    let etag = plain.headers["etag"].to_str().expect("ascii").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(plain.headers["cache-control"], "public, max-age=1");
    assert_eq!(plain.headers["vary"], "accept-encoding");
    assert!(!plain.headers.contains_key("content-encoding"));

    // The first snapshot after start may still be replaced once; then the page holds.
    let mut etag = etag;
    let mut again = app
        .send(Method::GET, path, None, None, &[("if-none-match", &etag)])
        .await;
    for _ in 0..5 {
        if again.status == StatusCode::NOT_MODIFIED {
            break;
        }
        etag = again.headers["etag"].to_str().expect("ascii").to_string();
        again = app
            .send(Method::GET, path, None, None, &[("if-none-match", &etag)])
            .await;
    }
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers["etag"], etag.as_str());

    for (accept, coding) in [("gzip", "gzip"), ("br, gzip", "br")] {
        let url = format!("http://{}{path}", app.addr);
        let req = http::Request::get(url)
            .header("accept-encoding", accept)
            .body(http_body_util::Full::new(Bytes::new()))
            .expect("request");
        let res = app.client.request(req).await.expect("answer");
        assert_eq!(res.headers()["content-encoding"], coding);
        let squeezed = http_body_util::BodyExt::collect(res.into_body())
            .await
            .expect("body")
            .to_bytes();
        let whole = serde_json::to_vec(&plain.body).expect("json").len();
        assert!(
            squeezed.len() * 3 < whole,
            "{coding}: {} of {whole}",
            squeezed.len()
        );
    }
    let head = app.send(Method::HEAD, path, None, None, &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.headers.contains_key("etag"));

    for junk in [
        "county=Atlantis",
        "county=%E8%87%BA%E5%8C%97%E5%B8%82&district=Nowhere",
        "district=Nowhere",
    ] {
        let a = app
            .get(&format!("/v1/phases/P1/availability?{junk}"), None)
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            "{junk}"
        );
    }
    let mine = app.get("/v1/me/bookings", Some(&app.person(1))).await;
    assert_eq!(mine.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_of_one_write_get_its_answer_never_429_and_defaults_change_nothing() {
    let app = Arc::new(spawn_app_with(|c| c.limits.person_write_rate = 2).await);
    let me = app.person(1);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (app, me) = (app.clone(), me.clone());
            // Half send the default channel spelled out, in another key order.
            let body: &'static [u8] = if i % 2 == 0 {
                b"{\"slot\":\"C\"}"
            } else {
                b"{ \"channel\": \"web\", \"slot\": \"C\" }"
            };
            tokio::spawn(async move {
                app.send(
                    Method::POST,
                    "/v1/phases/P1/bookings",
                    Some(&me),
                    Some(Bytes::from_static(body)),
                    &[("idempotency-key", "double-click")],
                )
                .await
            })
        })
        .collect();
    let mut bookings = std::collections::HashSet::new();
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!(a.status, StatusCode::CREATED, "{}: {}", a.status, a.body);
        bookings.insert(a.body["booking"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(
        bookings.len(),
        1,
        "one booking, answered to every duplicate"
    );
    assert_eq!(app.remaining("P1", "C").await, 4);
    // New keys are new writes, and the rate still holds for them.
    let mut limited = false;
    for k in 0..6 {
        let key = format!("other-{k}");
        let a = app
            .send(
                Method::POST,
                "/v1/phases/P1/bookings",
                Some(&me),
                Some(Bytes::from_static(b"{\"slot\":\"D\"}")),
                &[("idempotency-key", &key)],
            )
            .await;
        limited |= a.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "fresh keys do not escape the rate limit");
}

#[tokio::test]
async fn own_bookings_are_paged_keep_live_ones_on_the_first_page_and_are_rate_limited() {
    let app = spawn_app_with(|c| c.limits.person_read_rate = 1_000).await;
    let me = app.person(1);
    let live = app.book(&me, "P1", "C").await.body["booking"].clone();
    // Sixty book-and-cancel cycles in P2 (an invitation phase) after the live P1 booking.
    let invite = app
        .admin(
            Method::PUT,
            "/v1/admin/phases/P2/invitations",
            Some(json!([synthetic_id(1).to_string()])),
        )
        .await;
    assert_eq!(invite.status, StatusCode::OK);
    for _ in 0..60 {
        let b = app.book(&me, "P2", "Q").await;
        assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
        let id = b.body["booking"].as_str().expect("id").to_string();
        assert_eq!(app.cancel(&me, &id).await.status, StatusCode::NO_CONTENT);
    }
    let first = app.get("/v1/me/bookings", Some(&me)).await;
    let page = first.body["bookings"].as_array().expect("page");
    assert_eq!(page.len(), 51, "the newest 50 and the older live one");
    assert_eq!(
        page[0]["booking"], live,
        "the live booking is on the first page"
    );
    let next = first.body["next"].as_str().expect("more").to_string();
    let second = app
        .get(
            &format!("/v1/me/bookings?before={next}&limit=100"),
            Some(&me),
        )
        .await;
    let older = second.body["bookings"].as_array().expect("page");
    assert_eq!(older.len(), 11, "the live one and the 10 oldest cancelled");
    assert!(second.body["next"].is_null());
    let bad = app.get("/v1/me/bookings?limit=500", Some(&me)).await;
    assert_eq!(bad.code(), "invalid-request");

    let strict = spawn_app_with(|c| c.limits.person_read_rate = 2).await;
    let t = strict.person(9);
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(
                strict
                    .get("/v1/me/bookings", Some(&t))
                    .await
                    .status
                    .as_u16(),
            );
        }
        v
    };
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn one_address_is_limited_and_a_trusted_proxy_names_the_real_one() {
    let app = spawn_app_with(|c| {
        c.limits.address_rate = 5;
        c.limits.address_burst = 5;
        c.limits.trusted_proxies = vec![slotd::http::Cidr::parse("127.0.0.1").expect("cidr")];
    })
    .await;
    let page = "/v1/phases/P1/availability?county=%E8%87%BA%E5%8C%97%E5%B8%82";
    let from = |ip: &'static str| {
        let app = &app;
        async move {
            app.send(Method::GET, page, None, None, &[("x-forwarded-for", ip)])
                .await
        }
    };
    let mut limited = 0;
    for _ in 0..10 {
        let a = from("203.0.113.1").await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.code(), "rate-limited");
            assert!(a.headers.contains_key("retry-after"));
            limited += 1;
        }
    }
    assert!(limited >= 4, "{limited} of 10 over a burst of 5");
    assert_eq!(
        from("203.0.113.2").await.status,
        StatusCode::OK,
        "another client is not limited"
    );
    // Liveness is never limited; readiness and metrics, which take no place in the
    // in-flight budget and may ask the store, are limited per address.
    for _ in 0..20 {
        assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
    }
    for path in ["/health/ready", "/metrics"] {
        let mut limited = 0;
        for _ in 0..10 {
            let a = app
                .send(
                    Method::GET,
                    path,
                    None,
                    None,
                    &[("x-forwarded-for", "203.0.113.9")],
                )
                .await;
            limited += usize::from(a.status == StatusCode::TOO_MANY_REQUESTS);
        }
        assert!(limited >= 4, "{path}: {limited} of 10 over a burst of 5");
    }
}
