//! Storage faults against the real `slotd` binary (built with the `fault-injection`
//! feature, whose journal reads a fault from the file `fault-injection` in its directory
//! before each write and fsync): disk full and EIO on write, EIO on fsync, and an fsync that
//! takes seconds. While a fault lasts no write is acknowledged, writes answer
//! `503 store-unavailable` promptly and `/health/ready` says why; when it clears the
//! node recovers by itself, and nothing acknowledged is lost, across a kill -9 too.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use slotd::domain::synthetic_id;
use slotd::token::{Claims, Scope, TokenKey};
use slotd_system_tests::calendars;
use slotd_system_tests::slotd_process::{Http, Slotd, audit_data_dir, embedded_args};
use time::OffsetDateTime;

const SECRET: &str = "fault-token-secret";
const ADMIN: &str = "fault-admin-secret";

fn token(keys: &TokenKey, n: u64) -> String {
    keys.sign(Claims {
        person: synthetic_id(n),
        scope: Scope::Booking,
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        partner: None,
    })
}

struct Node {
    server: Slotd,
    http: Http,
    keys: TokenKey,
    fault: std::path::PathBuf,
}

impl Node {
    fn start(dir: &Path) -> Node {
        let slots: Vec<(String, u32)> = (0..10).map(|n| (format!("X{n:02}"), 500)).collect();
        if !dir.join("calendar.json").exists() {
            std::fs::write(
                dir.join("calendar.json"),
                serde_json::to_vec(&calendars::open_phase(&slots)).expect("json"),
            )
            .expect("calendar");
        }
        std::fs::create_dir_all(dir.join("store")).expect("store dir");
        let fault = dir.join("store").join("fault-injection");
        std::fs::write(&fault, "").expect("fault file");
        let server = Slotd::start(&embedded_args(dir, ADMIN, SECRET));
        Node {
            server,
            http: Http::new(Duration::from_secs(20)),
            keys: TokenKey::new(SECRET.as_bytes()),
            fault,
        }
    }

    fn set_fault(&self, what: &str) {
        std::fs::write(&self.fault, what).expect("fault");
    }

    /// Books person `n`; answers the status, the code, the booking id and how long.
    async fn book(&self, n: u64) -> (u16, String, String, Duration) {
        let started = Instant::now();
        let a = self
            .http
            .call(
                "POST",
                &format!("{}/v1/phases/P1/bookings", self.server.base),
                Some(&token(&self.keys, n)),
                Some(&json!({ "slot": format!("X{:02}", n % 10) })),
            )
            .await
            .expect("an answer, not a hang");
        (
            a.status.as_u16(),
            a.body["code"].as_str().unwrap_or("").to_string(),
            a.body["booking"].as_str().unwrap_or("").to_string(),
            started.elapsed(),
        )
    }

    async fn ready(&self) -> (u16, String) {
        let a = self
            .http
            .call(
                "GET",
                &format!("{}/health/ready", self.server.base),
                None,
                None,
            )
            .await
            .expect("answer");
        (
            a.status.as_u16(),
            a.body["reason"].as_str().unwrap_or("").to_string(),
        )
    }

    async fn has(&self, n: u64, booking: &str) -> bool {
        let a = self
            .http
            .call(
                "GET",
                &format!("{}/v1/me/bookings", self.server.base),
                Some(&token(&self.keys, n)),
                None,
            )
            .await
            .expect("answer");
        a.body["bookings"]
            .as_array()
            .is_some_and(|v| v.iter().any(|b| b["booking"] == booking))
    }
}

/// Runs a fault through: bookings before it, during it (503 promptly, unready with a
/// reason), after it clears (recovered by itself), then kill -9 and a restart keep
/// every acknowledged booking.
async fn fault_cycle(fault: &str, reason_has: &str, prompt: Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path());
    let mut acked = Vec::new();
    for n in 0..20 {
        let (status, _, booking, _) = node.book(n).await;
        assert_eq!(status, 201, "{fault}: before the fault");
        acked.push((n, booking));
    }
    node.set_fault(fault);
    let mut refused = 0;
    for n in 100..110 {
        let (status, code, booking, took) = node.book(n).await;
        if status == 201 {
            // Only a write that got in before the fault took hold.
            acked.push((n, booking));
            continue;
        }
        assert_eq!(
            (status, code.as_str()),
            (503, "store-unavailable"),
            "{fault}"
        );
        assert!(took < prompt, "{fault}: answered in {took:?}");
        refused += 1;
    }
    assert!(
        refused >= 9,
        "{fault}: writes refused while the fault lasts ({refused})"
    );
    let (status, reason) = node.ready().await;
    assert_eq!(status, 503, "{fault}: unready");
    assert!(reason.contains(reason_has), "{fault}: {reason}");

    node.set_fault("");
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.ready().await.0 != 200 {
        assert!(Instant::now() < deadline, "{fault}: no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 200..220 {
        let (status, _, booking, _) = node.book(n).await;
        assert_eq!(status, 201, "{fault}: after recovery");
        acked.push((n, booking));
    }
    for (n, b) in &acked {
        assert!(
            node.has(*n, b).await,
            "{fault}: booking {b} lost before the restart"
        );
    }
    let Node { mut server, .. } = node;
    server.kill9();
    let again = Node::start(dir.path());
    for (n, b) in &acked {
        assert!(
            again.has(*n, b).await,
            "{fault}: booking {b} lost across kill -9"
        );
    }
    drop(again);
    let (ok, printed) = audit_data_dir(&dir.path().join("store"));
    assert!(ok, "{fault}: {printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_promptly_and_recovers_when_space_returns() {
    fault_cycle("write-enospc", "No space left", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_on_write_refuses_writes_and_recovers() {
    fault_cycle("write-eio", "Input/output error", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_on_fsync_rewrites_rather_than_trusts_the_page_cache() {
    fault_cycle("fsync-eio", "Input/output error", Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_fsync_marks_the_node_unready_and_writes_answer_within_the_deadline() {
    // Each fsync takes 8 s: the first write waits the 5 s ack deadline, then the node
    // is unready ("fsync has not returned") and the next writes are refused at once.
    fault_cycle(
        "fsync-slow 8000",
        "fsync has not returned",
        Duration::from_secs(6),
    )
    .await;
}
