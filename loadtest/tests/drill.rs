//! The tiny drill of CI: the real `scripts/drill` (Redis in the durable profile, two
//! slotd instances texting through one file gateway, the goose harness, check-ins,
//! close-out, the next phase's carry-over, the offline audit) at a thousandth of phase 2.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Runs `scripts/drill` on the debug binaries with `args`: the folder that holds its
/// report (removed when dropped), the report's path, its exit status and summary.
fn drill(args: &[&str]) -> (tempfile::TempDir, PathBuf, ExitStatus, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bins = Path::new(env!("CARGO_BIN_EXE_slotd-drill"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    assert!(
        bins.join("slotd").is_file(),
        "the workspace build made the slotd binary"
    );
    let out = tempfile::tempdir().expect("tempdir");
    let report = out.path().join("drill");
    let status = Command::new(root.join("scripts/drill"))
        .args(["--no-build", "--debug", "--out"])
        .arg(&report)
        .args(args)
        .env("SLOTD_BIN_DIR", &bins)
        .status()
        .expect("scripts/drill runs");
    let summary =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).expect("summary.json"))
            .expect("json");
    (out, report, status, summary)
}

#[test]
fn a_tiny_drill_runs_the_whole_cycle_and_keeps_every_invariant() {
    let (_out, report, status, summary) = drill(&[
        "--scale",
        "0.001",
        "--window-seconds",
        "5",
        "--users",
        "32",
        "--increase-rate",
        "32",
    ]);
    assert!(status.success(), "drill failed: {}", summary["invariants"]);
    assert_eq!(summary["ok"], true);
    for k in [
        "overbooked_slots",
        "double_booked_people",
        "acknowledged_missing",
        "counter_mismatches",
        "lookups_not_done",
    ] {
        assert_eq!(summary["invariants"][k], 0, "{k}");
    }
    assert_eq!(summary["invariants"]["registrations_ok"], true);
    assert!(
        summary["invariants"]["registrations"]["live"]
            .as_u64()
            .unwrap_or(0)
            > 500,
        "the registration wave registered people: {}",
        summary["invariants"]["registrations"]
    );
    assert!(
        summary["bookings_made"].as_u64().unwrap_or(0) > 500,
        "{}",
        summary["bookings_made"]
    );
    // Without a waiting room the bots (5 % of the people, there at the opening instant,
    // never waiting) are at the head of the line: more than 40 % of the first tenth of
    // the bookings. The waiting-room drill below holds them to their share.
    let f = &summary["fairness"];
    let n = |k: &str| f[k].as_u64().unwrap_or(0);
    assert!(n("bots_tried") > 20, "{f}");
    assert!(
        n("bots_in_first_tenth") * 100 > n("first_tenth") * 40,
        "{f}"
    );
    let journey = &summary["journey"];
    for i in journey["invariants"]
        .as_array()
        .expect("journey invariants")
    {
        assert_eq!(i["count"], 0, "{}", i["what"]);
    }
    assert!(
        journey["day"]["checked_in"].as_u64().unwrap_or(0) > 500,
        "{}",
        journey["day"]
    );
    assert!(
        journey["carry_over"]["invited"].as_u64().unwrap_or(0) > 0
            && journey["texts"]["lines"] == journey["texts"]["expected"],
        "{journey}"
    );
    let routes: Vec<&str> = summary["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["route"].as_str())
        .collect();
    for r in [
        "GET /v1/phases/{phase}/availability",
        "POST /v1/phases/{phase}/bookings",
        "PUT /v1/me/bookings/{booking}",
        "DELETE /v1/me/bookings/{booking}",
        "GET /v1/me/bookings",
        "POST /v1/registration/sessions",
        "POST /v1/me/registration",
        "POST /v1/sessions",
        "POST /v1/kiosk/sessions",
        "POST /v1/sites/{site}/check-ins",
    ] {
        assert!(routes.contains(&r), "{r} ran: {routes:?}");
    }
    for f in [
        "summary.md",
        "goose-report.html",
        "requests-per-second.svg",
        "latency.svg",
        "seats-remaining.svg",
    ] {
        assert!(report.join(f).is_file(), "{f} written");
    }
    // People read their own bookings with real tokens, not only forged ones.
    let own = summary["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["route"] == "GET /v1/me/bookings")
        .expect("own reads");
    assert!(
        own["statuses"]["200"].as_u64().unwrap_or(0) > 0,
        "real tokens read: {own}"
    );
    let md = std::fs::read_to_string(report.join("summary.md")).expect("summary.md");
    assert!(
        md.contains("CPU time of each process") && md.contains("audit: ok"),
        "{md}"
    );
    // The verdict comes first, and live bookings are told apart from 201 answers.
    let verdict = md.lines().nth(2).unwrap_or("");
    assert_eq!(verdict, "## Verdict: PASS, every invariant holds", "{md}");
    let live = format!(
        "- **live bookings at the end: {}** = seats taken",
        summary["seats_taken"]
    );
    assert!(md.contains(&live), "{live}\n{md}");
    assert!(md.contains("booking requests answered `201`"), "{md}");
}

/// The same tiny drill with a waiting room, bots and Prometheus: the pre-queue is shuffled by the
/// recorded seed (every poll's position is checked against it), no admitted ticket is
/// refused, and the bots, who are all in the pre-queue at the opening, do not take the
/// first seats as they do without a room.
#[test]
fn a_tiny_drill_with_a_waiting_room_admits_in_the_recorded_order() {
    let (_out, report, status, summary) = drill(&[
        "--prometheus",
        "--scale",
        "0.001",
        "--window-seconds",
        "5",
        "--waiting-room",
        "--lead-seconds",
        "10",
        "--bot-share",
        "0.05",
        "--users",
        "32",
        "--increase-rate",
        "32",
    ]);
    // A real Prometheus scraped both instances every second; every query of every
    // dashboard panel for Redis and the room returned data (an empty one fails the drill).
    let panels = std::fs::read_to_string(report.join("panels.txt")).expect("panels.txt");
    assert!(
        status.success(),
        "drill failed: {}\n{panels}",
        summary["journey"]
    );
    assert!(!panels.contains("EMPTY"), "{panels}");
    assert!(
        panels.contains("Waiting room: estimated wait") && panels.contains("Process: CPU"),
        "{panels}"
    );
    assert_eq!(summary["ok"], true);
    let invariants = summary["journey"]["invariants"]
        .as_array()
        .expect("journey invariants");
    assert!(
        invariants.iter().any(|i| i["what"]
            .as_str()
            .is_some_and(|w| w.contains("recorded seed"))),
        "the room's invariants are checked: {invariants:?}"
    );
    for i in invariants {
        assert_eq!(i["count"], 0, "{}", i["what"]);
    }
    let f = &summary["fairness"];
    let n = |k: &str| f[k].as_u64().unwrap_or(0);
    assert!(n("prequeued") > 200 && n("polls") > n("prequeued"), "{f}");
    assert!(n("bots_prequeued") > 20, "{f}");
    // Bots are a sixth or so of the pre-queue. Without a room they are all at the head of
    // the line and take more than half of the first tenth of the bookings; shuffled, they
    // get their share plus what polling ten times a second buys in the first second of
    // admissions (22 to 33 % over runs at this scale): never the head of the line.
    assert!(
        n("bots_in_first_tenth") * 100 < n("first_tenth") * 45,
        "bots took {} of the first {} bookings: {f}",
        n("bots_in_first_tenth"),
        n("first_tenth")
    );
    assert!(summary["bookings_made"].as_u64().unwrap_or(0) > 500);
}
