//! `scripts/stack`, the operator stack: Redis, two `slotd` instances and Prometheus (when
//! installed) come up in one command, a token minted on one instance books on the other,
//! Prometheus scrapes both, and `down` leaves no process behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use slotd::domain::synthetic_id;
use slotd_system_tests::slotd_process::{Http, binary};

/// A stack in its own directory on free ports; `Drop` runs `scripts/stack down`.
struct Stack {
    dir: tempfile::TempDir,
}

impl Stack {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack")
    }

    /// Runs `scripts/stack ARGS…` on this stack's directory with the workspace's `slotd`.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(Self::script())
            .args(args)
            .env("STACK_DIR", self.dir.path())
            .env("SLOTD_BIN", binary())
            .output()
            .expect("scripts/stack runs")
    }

    /// `stack.env`, the addresses `up` wrote (`KEY=VALUE` lines, shell-quoted only when
    /// a value needs it; the ones read here never do).
    fn env(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(self.dir.path().join("stack.env")).expect("stack.env");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The pids of the pid files (`PID STARTTIME`).
    fn pids(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir.path().join("pids")).expect("pids/") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("pid file");
            let pid = text
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a pid");
            out.push((
                path.file_stem().expect("name").to_string_lossy().into(),
                pid,
            ));
        }
        out.sort();
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

/// Whether `pid` runs: a zombie (an orphan that PID 1 has not reaped) counts as gone.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `%XX` for every byte: query values with Chinese names.
fn percent(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_up_serves_one_country_from_two_instances_and_down_stops_everything() {
    let started = Instant::now();
    let stack = Stack {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let prometheus = on_path("prometheus");
    let mut up = vec!["up", "--instances", "2", "--free-ports", "--no-grafana"];
    if !prometheus {
        eprintln!(
            "stack test: prometheus is not installed (apt-get install prometheus), so the \
             stack runs without it and its targets are not checked"
        );
        up.push("--no-prometheus");
    }
    let out = stack.run(&up);
    assert!(out.status.success(), "up failed: {}", text(&out));
    let env = stack.env();
    let urls: Vec<&str> = env["SLOTD_URLS"].split(',').collect();
    assert_eq!(urls.len(), 2, "{env:?}");
    let http = Http::new(Duration::from_secs(10));
    for url in &urls {
        let ready = http
            .call("GET", &format!("{url}/health/ready"), None, None)
            .await
            .expect("answers");
        assert_eq!(ready.status, 200, "{url} ready");
    }

    // The shared token secret: minted on instance 1, it books on instance 2, and
    // instance 1 sees the booking (one Redis).
    let admin = std::fs::read_to_string(stack.dir.path().join("admin-token")).expect("admin");
    let person = synthetic_id(424_242).to_string();
    let minted = http
        .call(
            "POST",
            &format!("{}/v1/admin/tokens", urls[0]),
            Some(admin.trim()),
            Some(&json!({ "id_number": person, "scope": "booking", "ttl_seconds": 600 })),
        )
        .await
        .expect("answers");
    assert_eq!(minted.status, 200, "{}", minted.body);
    let token = minted.body["token"].as_str().expect("token");
    let page = http
        .call(
            "GET",
            &format!(
                "{}/v1/phases/01/availability?county={}&district={}",
                urls[1],
                percent("臺北市"),
                percent("中正區")
            ),
            None,
            None,
        )
        .await
        .expect("answers");
    assert_eq!(page.status, 200, "{}", page.body);
    let slot = page.body["sites"][0]["slots"][0]["slot"]
        .as_str()
        .expect("the demo calendar has slots in 中正區")
        .to_string();
    let booked = http
        .call(
            "POST",
            &format!("{}/v1/phases/01/bookings", urls[1]),
            Some(token),
            Some(&json!({ "slot": slot })),
        )
        .await
        .expect("answers");
    assert_eq!(booked.status, 201, "{}", booked.body);
    let mine = http
        .call(
            "GET",
            &format!("{}/v1/me/bookings", urls[0]),
            Some(token),
            None,
        )
        .await
        .expect("answers");
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(
        mine.body["bookings"][0]["booking"], booked.body["booking"],
        "instance 1 sees the booking made on instance 2: {}",
        mine.body
    );

    if prometheus {
        let api = format!("{}/api/v1/targets", env["PROMETHEUS_URL"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let targets = http.call("GET", &api, None, None).await.expect("answers");
            let active = targets.body["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let up = active.iter().filter(|t| t["health"] == "up").count();
            if active.len() == 2 && up == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus scrapes both instances: {}",
                targets.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    // `up` again with the same options: already up, nothing restarted.
    let pids = stack.pids();
    let again = stack.run(&up);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already up"),
        "{}",
        text(&again)
    );
    assert_eq!(stack.pids(), pids, "nothing restarted");
    let expected = if prometheus { 4 } else { 3 };
    assert_eq!(
        pids.len(),
        expected,
        "redis, 2 instances, prometheus: {pids:?}"
    );
    assert!(pids.iter().all(|(_, pid)| running(*pid)), "{pids:?}");
    let status = stack.run(&["status"]);
    assert!(status.status.success(), "{}", text(&status));

    let down = stack.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    for (name, pid) in &pids {
        assert!(!running(*pid), "{name} ({pid}) still runs after down");
    }
    assert!(stack.pids().is_empty(), "pid files removed");
    let twice = stack.run(&["down"]);
    assert!(
        twice.status.success(),
        "down is idempotent: {}",
        text(&twice)
    );
    let status = stack.run(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    eprintln!("stack test: {:?}", started.elapsed());
}
