//! Crash test: the real `slotd` binary is killed with SIGKILL mid-surge and restarted on
//! the same journal. Every booking that got a 201 must still be there, nothing may be
//! overbooked, and `slotd audit` must pass.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use slotd::domain::{Calendar, Phase, PhaseId, Site, SiteId, Slot, SlotId, synthetic_id};
use slotd::token::{Claims, Scope, TokenKey};
use time::OffsetDateTime;

const SECRET: &str = "crash-token-secret";
const ADMIN: &str = "crash-admin-secret";
const SLOTS: usize = 20;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn calendar() -> Calendar {
    let now = OffsetDateTime::now_utc();
    Calendar {
        sites: vec![Site {
            id: SiteId::parse("S1").expect("id"),
            name: "site".into(),
            county: "臺北市".into(),
            district: "中正區".into(),
            address: String::new(),
        }],
        phases: vec![Phase {
            id: PhaseId::parse("P1").expect("id"),
            name: "P1".into(),
            vaccines: vec!["AZ".into()],
            opens_at: now - time::Duration::hours(1),
            closes_at: now + time::Duration::hours(1),
            invitation_required: false,
            slots: (0..SLOTS)
                .map(|n| Slot {
                    id: SlotId::parse(&format!("X{n:02}")).expect("id"),
                    site: SiteId::parse("S1").expect("id"),
                    date: "2021-07-16".into(),
                    period: "09:00-12:00".into(),
                    vaccine: "AZ".into(),
                    capacity: 40,
                })
                .collect(),
        }],
    }
}

/// A `slotd serve` child process; killed with SIGKILL when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_slotd"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-token",
                ADMIN,
                "--token-secret",
                SECRET,
            ])
            .arg("--data-dir")
            .arg(dir.join("store"))
            .arg("--calendar")
            .arg(dir.join("calendar.json"))
            .env("SLOTD_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("slotd starts");
        // The log line "slotd listening addr=127.0.0.1:PORT" says where it listens.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line
                    .split("addr=")
                    .nth(1)
                    .filter(|_| line.contains("slotd listening"))
                {
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("slotd reports its address");
        Server { child, addr }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(
    client: &HttpClient,
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(
            body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        ))
        .expect("request");
    let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = res.status();
    let bytes = res.into_body().collect().await.ok()?.to_bytes();
    Some((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_booking_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("calendar.json"),
        serde_json::to_vec(&calendar()).expect("json"),
    )
    .expect("write");
    let keys = TokenKey::new(SECRET.as_bytes());
    let token = |n: u64| {
        keys.sign(Claims {
            person: synthetic_id(n),
            scope: Scope::Booking,
            expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        })
    };
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());

    let mut server = Server::start(dir.path());
    let base = format!("http://{}", server.addr);
    let stop = Arc::new(AtomicBool::new(false));
    // 48 clients book continuously, each as a stream of distinct people.
    let workers: Vec<_> = (0..48u64)
        .map(|w| {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            let tokens: Vec<(u64, String)> = (0..200)
                .map(|i| (w * 1_000 + i, token(w * 1_000 + i)))
                .collect();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for (i, (person, t)) in tokens.into_iter().enumerate() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let slot = format!("X{:02}", (person as usize + i) % SLOTS);
                    match call(
                        &client,
                        "POST",
                        format!("{base}/v1/phases/P1/bookings"),
                        &t,
                        Some(json!({ "slot": slot })),
                    )
                    .await
                    {
                        Some((StatusCode::CREATED, b)) => {
                            acked.push((person, b["booking"].as_str().unwrap_or("").to_string()))
                        }
                        Some(_) => {}
                        None => break, // the server is gone
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

    let server = Server::start(dir.path());
    let base = format!("http://{}", server.addr);
    for (person, booking) in &acked {
        let (status, body) = call(
            &client,
            "GET",
            format!("{base}/v1/me/bookings"),
            &token(*person),
            None,
        )
        .await
        .expect("restarted server answers");
        assert_eq!(status, StatusCode::OK);
        let found = body["bookings"].as_array().is_some_and(|b| {
            b.iter()
                .any(|x| x["booking"] == booking.as_str() && x["status"] == "booked")
        });
        assert!(found, "acknowledged booking {booking} of {person} survived");
    }
    let (status, audit) = call(
        &client,
        "GET",
        format!("{base}/v1/admin/phases/P1/audit"),
        ADMIN,
        None,
    )
    .await
    .expect("audit");
    assert_eq!(
        (status, audit["ok"].clone()),
        (StatusCode::OK, json!(true)),
        "{audit}"
    );
    assert!(audit["totals"]["live_bookings"].as_u64().unwrap_or(0) >= acked.len() as u64);
    drop(server);

    let offline = Command::new(env!("CARGO_BIN_EXE_slotd"))
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
    let out = Command::new(env!("CARGO_BIN_EXE_slotd"))
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("slotd runs");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("SLOTD_LISTEN"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_slotd"))
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
    let out = Command::new(env!("CARGO_BIN_EXE_slotd"))
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
    std::fs::write(
        dir.path().join("calendar.json"),
        serde_json::to_vec(&calendar()).expect("json"),
    )
    .expect("write");
    let keys = TokenKey::new(SECRET.as_bytes());
    let token = keys.sign(Claims {
        person: synthetic_id(1),
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
    });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut server = Server::start(dir.path());
    let base = format!("http://{}", server.addr);
    let (status, booked) = call(
        &client,
        "POST",
        format!("{base}/v1/phases/P1/bookings"),
        &token,
        Some(json!({"slot": "X01"})),
    )
    .await
    .expect("answer");
    assert_eq!(status, StatusCode::CREATED);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let started = std::time::Instant::now();
    let exit = loop {
        if let Some(s) = server.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "slotd exits within its grace period"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit: {exit:?}");
    let server = Server::start(dir.path());
    let (_, mine) = call(
        &client,
        "GET",
        format!("http://{}/v1/me/bookings", server.addr),
        &token,
        None,
    )
    .await
    .expect("answer");
    assert_eq!(mine["bookings"][0]["booking"], booked["booking"]);
}
