//! Crash test: the real `slotd` binary is killed with SIGKILL mid-surge and restarted on
//! the same journal. Every booking that got a 201 must still be there, nothing may be
//! overbooked, and `slotd audit` must pass. Also: SIGTERM, exit codes, the offline audit.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use slotd::domain::{Calendar, synthetic_id};
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::slotd_process::{Http, Slotd, binary, embedded_args};
use time::OffsetDateTime;

const SECRET: &str = "crash-token-secret";
const ADMIN: &str = "crash-admin-secret";
const SLOTS: usize = 20;

/// Slots `X00`..`X19` of capacity 40 in open phase `P1`.
fn calendar() -> Calendar {
    let slots: Vec<(String, u32)> = (0..SLOTS).map(|n| (format!("X{n:02}"), 40)).collect();
    calendars::open_phase(&slots)
}

/// `slotd serve` on the journal in `dir/store`, with the calendar in `dir/calendar.json`.
fn start(dir: &Path) -> Slotd {
    Slotd::start(&embedded_args(dir, ADMIN, SECRET))
}

fn write_calendar(dir: &Path) {
    std::fs::write(
        dir.join("calendar.json"),
        serde_json::to_vec(&calendar()).expect("json"),
    )
    .expect("write calendar");
}

fn token(keys: &TokenKey, n: u64) -> String {
    keys.sign(Claims {
        person: synthetic_id(n),
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        partner: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_booking_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let keys = Arc::new(TokenKey::new(SECRET.as_bytes()));
    let http = Http::new(Duration::from_secs(10));

    let mut server = start(dir.path());
    let base = server.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    // 48 clients book continuously, each as a stream of distinct people.
    let workers: Vec<_> = (0..48u64)
        .map(|w| {
            let (http, base, stop, keys) = (http.clone(), base.clone(), stop.clone(), keys.clone());
            let (acked_count, in_flight) = (acked_count.clone(), in_flight.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..200u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let person = w * 1_000 + i;
                    let body = json!({ "slot": format!("X{:02}", (person + i) as usize % SLOTS) });
                    let url = format!("{base}/v1/phases/P1/bookings");
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let answer = http
                        .call("POST", &url, Some(&token(&keys, person)), Some(&body))
                        .await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    match answer {
                        Ok(a) if a.status == 201 => {
                            acked.push((
                                person,
                                a.body["booking"].as_str().unwrap_or("").to_string(),
                            ));
                            acked_count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => break, // the server is gone
                    }
                }
                acked
            })
        })
        .collect();
    // Kill once the surge is under way with writes on the wire, not after a fixed sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::Relaxed) < 100 || in_flight.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the surge did not get going"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let on_the_wire = in_flight.load(Ordering::SeqCst);
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    assert!(
        on_the_wire > 0,
        "writes were in flight when the kill landed"
    );
    let mut acked = Vec::new();
    for w in workers {
        acked.extend(w.await.expect("worker"));
    }
    assert!(
        acked.len() > 20,
        "the surge made bookings before the kill: {}",
        acked.len()
    );

    // A crash mid-write can leave half a record at the end of the journal. SIGKILL cannot
    // be timed to land inside a write, so the torn tail is appended by hand: this checks
    // that restart cuts such a tail, not that the kill made one.
    let journal = dir.path().join("store").join("journal.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .and_then(|mut f| f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']))
        .expect("torn tail");

    let server = start(dir.path());
    let base = server.base.clone();
    for (person, booking) in &acked {
        let a = http
            .call(
                "GET",
                &format!("{base}/v1/me/bookings"),
                Some(&token(&keys, *person)),
                None,
            )
            .await
            .expect("restarted server answers");
        assert_eq!(a.status, 200);
        let found = a.body["bookings"].as_array().is_some_and(|b| {
            b.iter()
                .any(|x| x["booking"] == booking.as_str() && x["status"] == "booked")
        });
        assert!(found, "acknowledged booking {booking} of {person} survived");
    }
    let audit = http
        .call(
            "GET",
            &format!("{base}/v1/admin/phases/P1/audit"),
            Some(ADMIN),
            None,
        )
        .await
        .expect("audit");
    assert_eq!(
        (audit.status.as_u16(), audit.body["ok"].clone()),
        (200, json!(true)),
        "{}",
        audit.body
    );
    assert!(audit.body["totals"]["live_bookings"].as_u64().unwrap_or(0) >= acked.len() as u64);
    drop(server);

    let offline = Command::new(binary())
        .args(["audit", "--data-dir"])
        .arg(dir.path().join("store"))
        .output()
        .expect("slotd audit runs");
    let out = String::from_utf8_lossy(&offline.stdout);
    assert!(offline.status.success(), "slotd audit failed: {out}");
    assert!(out.contains("audit: ok"), "{out}");
}

#[test]
fn invalid_configuration_exits_64_with_one_line() {
    let out = Command::new(binary())
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("slotd runs");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--listen"),
        "the flag the value came from: {err}"
    );
    let out = Command::new(binary())
        .args(["serve"])
        .env("SLOTD_LISTEN", "not-an-address")
        .output()
        .expect("slotd runs");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SLOTD_LISTEN"),
        "the variable it came from: {err}"
    );
    let out = Command::new(binary())
        .args(["serve", "--no-such-flag"])
        .output()
        .expect("slotd runs");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn offline_audit_exits_non_zero_on_an_overbooked_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cal = calendar();
    cal.phases[0].slots[0].capacity = 1;
    let booked = |seq: u64, person: u64| {
        json!({"t": "booked", "seq": seq, "key": null, "booking": {
            "booking": format!("b{seq:x}"), "code": slotd::domain::human_code(seq), "phase": "P1", "slot": "X00",
            "person": synthetic_id(person).to_string(), "channel": "web", "status": "booked",
            "booked_at": "2021-07-13T10:00:00+08:00"}})
    };
    let mut bytes = Vec::new();
    for record in [
        json!({"t": "calendar", "calendar": cal}),
        booked(1, 1),
        booked(2, 2),
    ] {
        bytes.extend(slotd::store::journal::frame(record.to_string().as_bytes()));
    }
    std::fs::write(dir.path().join("journal.log"), bytes).expect("journal");
    let out = Command::new(binary())
        .args(["audit", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("slotd audit runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("overbooked") && text.contains("audit: FAILED"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_requests_in_flight_answers_each_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let keys = Arc::new(TokenKey::new(SECRET.as_bytes()));
    let http = Http::new(Duration::from_secs(10));
    let mut server = start(dir.path());
    let base = server.base.clone();
    let signalled = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    // 32 clients book distinct people until the signal; each records, for every request
    // it had sent before the signal, what came back.
    let workers: Vec<_> = (0..32u64)
        .map(|w| {
            let (http, base, keys) = (http.clone(), base.clone(), keys.clone());
            let (signalled, in_flight, started) =
                (signalled.clone(), in_flight.clone(), started.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..1_000u64 {
                    if signalled.load(Ordering::SeqCst) {
                        break;
                    }
                    let person = 10_000 + w * 1_000 + i;
                    let body = json!({ "slot": format!("X{:02}", person as usize % SLOTS) });
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    started.fetch_add(1, Ordering::SeqCst);
                    let a = http
                        .call(
                            "POST",
                            &format!("{base}/v1/phases/P1/bookings"),
                            Some(&token(&keys, person)),
                            Some(&body),
                        )
                        .await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    answers.push((
                        person,
                        a.map(|a| (a.status.as_u16(), a.body["booking"].clone())),
                    ));
                }
                answers
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while started.load(Ordering::SeqCst) < 200 || in_flight.load(Ordering::SeqCst) < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the load did not get going"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Signal with requests in flight; requests sent after this may find the door shut.
    let pid = server.pid().to_string();
    let in_flight_at_signal = in_flight.load(Ordering::SeqCst);
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success())
    );
    signalled.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for w in workers {
        answers.extend(w.await.expect("worker"));
    }
    let exit = server.terminate(Duration::from_secs(15));
    assert!(exit.success(), "clean exit: {exit:?}");
    assert!(
        in_flight_at_signal > 0,
        "requests were in flight at the signal"
    );
    // Every request got a whole answer (a 201 or a clean refusal) or, sent as the door
    // closed, none at all: never a cut answer, never a hang.
    let mut booked = Vec::new();
    for (person, answer) in &answers {
        match answer {
            Ok((201, id)) => booked.push((*person, id.clone())),
            Ok((status, _)) => {
                assert!(matches!(status, 409 | 503), "a clean refusal, not {status}")
            }
            Err(e) => {
                assert_ne!(*e, "body cut", "person {person}: a cut answer");
                assert_ne!(*e, "timeout", "person {person}: a hang");
            }
        }
    }
    assert!(!booked.is_empty(), "the drain answered bookings");
    // Each 201 is durable: the restarted server has it.
    let server = start(dir.path());
    for (person, id) in &booked {
        let mine = http
            .call(
                "GET",
                &format!("{}/v1/me/bookings", server.base),
                Some(&token(&keys, *person)),
                None,
            )
            .await
            .expect("answer")
            .body;
        assert_eq!(mine["bookings"][0]["booking"], *id, "person {person}");
    }
}
