//! A damaged journal, end to end with the real binary: one flipped byte in the middle of
//! the journal stops the server (naming the offset) instead of silently dropping every
//! acknowledged booking after it; `slotd audit` fails; `slotd repair` names exactly the
//! booking the damage took, and with `--drop-damaged` keeps every other one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use slotd::domain::synthetic_id;
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::slotd_process::{Http, Slotd, binary, embedded_args};
use time::OffsetDateTime;

const SECRET: &str = "damage-token-secret";
const ADMIN: &str = "damage-admin-secret";

fn serve_args(dir: &Path) -> Vec<String> {
    embedded_args(dir, ADMIN, SECRET)
}

fn token(keys: &TokenKey, n: u64) -> String {
    keys.sign(Claims {
        person: synthetic_id(n),
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        partner: None,
    })
}

/// `(offset, payload)` of every frame of a journal (`len u32 | crc u32 | payload`).
fn frames(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push((at, &bytes[at + 8..at + 8 + len]));
        at += 8 + len;
    }
    out
}

/// Runs `slotd ARGS` to its end (at most 30 s): exit code, stdout and stderr.
fn run(args: &[String]) -> (Option<i32>, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slotd runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("slotd {args:?} did not exit: a damaged journal must not be served");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_mid_journal_stops_the_server_and_repair_names_what_it_took() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = calendars::open_phase(&[("X00".to_string(), 100)]);
    std::fs::write(
        dir.path().join("calendar.json"),
        serde_json::to_vec(&cal).expect("json"),
    )
    .expect("calendar");
    let keys = TokenKey::new(SECRET.as_bytes());
    let http = Http::new(Duration::from_secs(10));
    let mut server = Slotd::start(&serve_args(dir.path()));
    let mut booked = Vec::new();
    for n in 0..30u64 {
        let a = http
            .call(
                "POST",
                &format!("{}/v1/phases/P1/bookings", server.base),
                Some(&token(&keys, n)),
                Some(&json!({ "slot": "X00" })),
            )
            .await
            .expect("answers");
        assert_eq!(a.status, 201);
        booked.push((n, a.body["booking"].as_str().expect("id").to_string()));
    }
    assert!(server.terminate(Duration::from_secs(15)).success());

    // Flip one byte inside the 15th booking's record.
    let path = dir.path().join("store").join("journal.log");
    let mut bytes = std::fs::read(&path).expect("journal");
    let (victim_at, victim_len) = frames(&bytes)
        .into_iter()
        .filter(|(_, p)| p.starts_with(br#"{"t":"booked""#))
        .nth(14)
        .map(|(at, p)| (at, p.len()))
        .expect("a 15th booking record");
    bytes[victim_at + 8 + victim_len / 2] ^= 0x20;
    std::fs::write(&path, &bytes).expect("flip");
    let lost = &booked[14];

    let mut serve = vec!["serve".to_string(), "--listen".into(), "127.0.0.1:0".into()];
    serve.extend(serve_args(dir.path()));
    let (code, _, err) = run(&serve);
    assert_ne!(code, Some(0), "the server refuses a damaged journal");
    assert!(
        err.contains(&format!("damaged at byte {victim_at}")),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).expect("journal"),
        bytes,
        "nothing was cut"
    );

    let store = dir.path().join("store").to_string_lossy().into_owned();
    let (code, _, err) = run(&["audit".into(), "--data-dir".into(), store.clone()]);
    assert_ne!(code, Some(0), "the audit fails on damage: {err}");

    let (code, out, _) = run(&["repair".into(), "--data-dir".into(), store.clone()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("acknowledged bookings lost (1): {}", lost.1)),
        "repair names exactly the booking the damage took: {out}"
    );
    assert!(out.contains("nothing changed"), "{out}");

    let (code, out, _) = run(&[
        "repair".into(),
        "--data-dir".into(),
        store.clone(),
        "--drop-damaged".into(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let saved = std::fs::read_dir(dir.path().join("store"))
        .expect("dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("journal.log.damaged-")
        });
    assert!(saved, "the damaged journal is kept aside");

    let server = Slotd::start(&serve_args(dir.path()));
    for (n, id) in &booked {
        let a = http
            .call(
                "GET",
                &format!("{}/v1/me/bookings", server.base),
                Some(&token(&keys, *n)),
                None,
            )
            .await
            .expect("answers");
        let found = a.body["bookings"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x["booking"] == id.as_str()));
        assert_eq!(found, id != &lost.1, "booking {id} of person {n}");
    }
    let audit = http
        .call(
            "GET",
            &format!("{}/v1/admin/phases/P1/audit", server.base),
            Some(ADMIN),
            None,
        )
        .await
        .expect("audit");
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.body);
    assert_eq!(audit.body["totals"]["live_bookings"], json!(29));
}
