//! Logs at 03:00: `SLOTD_LOG_FORMAT=json` writes one JSON object a line, requests are
//! logged by route template with their request id, and no person identifier (ID number,
//! card, mobile, name) appears in them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use slotd::domain::synthetic_id;
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::slotd_process::{Http, binary};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_no_person_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = calendars::open_phase(&[("X00".to_string(), 10)]);
    let file = dir.path().join("calendar.json");
    std::fs::write(&file, serde_json::to_vec(&cal).expect("json")).expect("calendar");
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--access-log-sample",
            "1",
        ])
        .args([
            "--admin-token",
            "logs-admin-secret",
            "--token-secret",
            "logs-token-secret",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("store"))
        .arg("--calendar")
        .arg(&file)
        .env("SLOTD_LOG_FORMAT", "json")
        .env("SLOTD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slotd starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("slotd logs its address");
        let v: Value = serde_json::from_str(&line).expect("every log line is JSON");
        lines.push(line);
        if v["fields"]["message"] == "slotd listening" {
            break v["fields"]["addr"].as_str().expect("addr").to_string();
        }
    };
    let base = format!("http://{addr}");
    let person = synthetic_id(4242);
    let token = TokenKey::new(b"logs-token-secret").sign(Claims {
        person,
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 600,
        partner: None,
    });
    let http = Http::new(Duration::from_secs(10));
    let booked = http
        .call(
            "POST",
            &format!("{base}/v1/phases/P1/bookings"),
            Some(&token),
            Some(&json!({ "slot": "X00" })),
        )
        .await
        .expect("answers");
    assert_eq!(booked.status, 201);
    let booking = booked.body["booking"].as_str().expect("id").to_string();
    let listed = http
        .call("GET", &format!("{base}/v1/me/bookings"), Some(&token), None)
        .await
        .expect("answers");
    let request_id = listed.headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    let all = lines.join("\n");
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&request_id) && l.contains("/v1/me/bookings")),
        "the sampled access log names the request id and the route template:\n{all}"
    );
    assert!(
        !all.contains(&person.to_string()),
        "no ID number in the logs:\n{all}"
    );
    assert!(
        !all.contains(&booking),
        "paths with booking ids are not logged:\n{all}"
    );
}
