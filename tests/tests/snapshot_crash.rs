//! Snapshots under crashes: the real `slotd` binary (built with the `fault-injection`
//! feature) aborts at each step of writing a snapshot while people book, and a restart
//! keeps every acknowledged booking; `slotd audit` passes.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use slotd::domain::synthetic_id;
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::slotd_process::{Http, Slotd, audit_data_dir, embedded_args};
use time::OffsetDateTime;

const SECRET: &str = "snapshot-token-secret";
const ADMIN: &str = "snapshot-admin-secret";

fn token(keys: &TokenKey, n: u64) -> String {
    keys.sign(Claims {
        person: synthetic_id(n),
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        partner: None,
    })
}

fn args(dir: &Path) -> Vec<String> {
    let mut a = embedded_args(dir, ADMIN, SECRET);
    // A snapshot every few dozen bookings.
    a.extend(["--snapshot-every-bytes".into(), "16000".into()]);
    a
}

/// Books person after person until the server is gone; answers the acknowledged ids.
async fn book_until_gone(
    http: &Http,
    base: &str,
    keys: &TokenKey,
    from: u64,
) -> Vec<(u64, String)> {
    let mut acked = Vec::new();
    for n in from..from + 3_000 {
        let slot = format!("X{:02}", n % 20);
        match http
            .call(
                "POST",
                &format!("{base}/v1/phases/P1/bookings"),
                Some(&token(keys, n)),
                Some(&json!({ "slot": slot })),
            )
            .await
        {
            Ok(a) if a.status == http::StatusCode::CREATED => {
                acked.push((n, a.body["booking"].as_str().unwrap_or("").to_string()));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_snapshot_keeps_every_acknowledged_booking() {
    let keys = TokenKey::new(SECRET.as_bytes());
    let http = Http::new(Duration::from_secs(5));
    for step in [
        "snapshot-rotated",
        "snapshot-written",
        "snapshot-renamed",
        "snapshot-pruned",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let slots: Vec<(String, u32)> = (0..20).map(|n| (format!("X{n:02}"), 400)).collect();
        std::fs::write(
            dir.path().join("calendar.json"),
            serde_json::to_vec(&calendars::open_phase(&slots)).expect("json"),
        )
        .expect("calendar");
        let mut server = Slotd::start_with_env(&args(dir.path()), &[("SLOTD_CRASH_AT", step)]);
        let mut acked = book_until_gone(&http, &server.base, &keys, 0).await;
        let status = server.wait_exit(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| !s.success()),
            "{step}: the server aborted at the crash point ({status:?})"
        );
        assert!(acked.len() > 20, "{step}: bookings before the crash");

        // Restart on the same directory, keep booking (a later snapshot completes), then
        // check every booking ever acknowledged.
        let second = Slotd::start(&args(dir.path()));
        acked.extend(book_until_gone_for(&http, &second.base, &keys, 10_000, 200).await);
        for (n, booking) in &acked {
            let mine = http
                .call(
                    "GET",
                    &format!("{}/v1/me/bookings", second.base),
                    Some(&token(&keys, *n)),
                    None,
                )
                .await
                .expect("answer");
            let ids: Vec<&str> = mine.body["bookings"]
                .as_array()
                .map(|a| a.iter().filter_map(|b| b["booking"].as_str()).collect())
                .unwrap_or_default();
            assert!(
                ids.contains(&booking.as_str()),
                "{step}: booking {booking} of person {n} lost"
            );
        }
        // The restarted server snapshots too (its compactor looks every 200 ms).
        let store = dir.path().join("store");
        let count = || {
            std::fs::read_dir(&store)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.file_name().to_string_lossy().contains(".snapshot."))
                        .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                        .count()
                })
                .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{step}: no snapshot after the restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(second);
        let (ok, printed) = audit_data_dir(&dir.path().join("store"));
        assert!(ok, "{step}: audit failed: {printed}");
    }
}

async fn book_until_gone_for(
    http: &Http,
    base: &str,
    keys: &TokenKey,
    from: u64,
    count: u64,
) -> Vec<(u64, String)> {
    let mut acked = Vec::new();
    for n in from..from + count {
        let a = http
            .call(
                "POST",
                &format!("{base}/v1/phases/P1/bookings"),
                Some(&token(keys, n)),
                Some(&json!({ "slot": format!("X{:02}", n % 20) })),
            )
            .await
            .expect("answer");
        assert_eq!(a.status, http::StatusCode::CREATED, "{:?}", a.body);
        acked.push((n, a.body["booking"].as_str().unwrap_or("").to_string()));
    }
    acked
}
