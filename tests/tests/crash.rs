//! Crash test: the real `slotd` binary is killed with SIGKILL mid-surge and restarted on
//! the same journal. Every booking that got a 201 must still be there, nothing may be
//! overbooked, and `slotd audit` must pass. Also: SIGTERM, exit codes, the offline audit.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use slotd::domain::{Calendar, synthetic_id};
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::slotd_process::{Http, Slotd, binary};
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
    let args: Vec<String> = ["--admin-token", ADMIN, "--token-secret", SECRET]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--data-dir".into(),
            dir.join("store").to_string_lossy().into(),
            "--calendar".into(),
            dir.join("calendar.json").to_string_lossy().into(),
        ])
        .collect();
    Slotd::start(&args)
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
    // 48 clients book continuously, each as a stream of distinct people.
    let workers: Vec<_> = (0..48u64)
        .map(|w| {
            let (http, base, stop, keys) = (http.clone(), base.clone(), stop.clone(), keys.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..200u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let person = w * 1_000 + i;
                    let body = json!({ "slot": format!("X{:02}", (person + i) as usize % SLOTS) });
                    let url = format!("{base}/v1/phases/P1/bookings");
                    match http
                        .call("POST", &url, Some(&token(&keys, person)), Some(&body))
                        .await
                    {
                        Ok(a) if a.status == 201 => {
                            acked.push((
                                person,
                                a.body["booking"].as_str().unwrap_or("").to_string(),
                            ));
                        }
                        Ok(_) => {}
                        Err(_) => break, // the server is gone
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in workers {
        acked.extend(w.await.expect("worker"));
    }
    assert!(
        acked.len() > 20,
        "the surge made bookings before the kill: {}",
        acked.len()
    );

    // A crash mid-write can leave half a record at the end of the journal.
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
            "booking": format!("b{seq}"), "code": "AAAAAA", "phase": "P1", "slot": "X00",
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
async fn sigterm_drains_flushes_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let keys = TokenKey::new(SECRET.as_bytes());
    let http = Http::new(Duration::from_secs(10));
    let me = token(&keys, 1);
    let mut server = start(dir.path());
    let booked = http
        .call(
            "POST",
            &format!("{}/v1/phases/P1/bookings", server.base),
            Some(&me),
            Some(&json!({"slot": "X01"})),
        )
        .await
        .expect("answer");
    assert_eq!(booked.status, 201);
    let exit = server.terminate(Duration::from_secs(15));
    assert!(exit.success(), "clean exit: {exit:?}");
    let server = start(dir.path());
    let mine: Value = http
        .call(
            "GET",
            &format!("{}/v1/me/bookings", server.base),
            Some(&me),
            None,
        )
        .await
        .expect("answer")
        .body;
    assert_eq!(mine["bookings"][0]["booking"], booked.body["booking"]);
}
