//! The tiny drill of CI: the real `scripts/drill` (Redis in the durable profile, two
//! slotd instances texting through one file gateway, the goose harness, check-ins,
//! close-out, the next phase's carry-over, the offline audit) at a thousandth of phase 2.

use std::path::Path;
use std::process::Command;

#[test]
fn a_tiny_drill_runs_the_whole_cycle_and_keeps_every_invariant() {
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
        .args([
            "--scale",
            "0.001",
            "--window-seconds",
            "5",
            "--users",
            "32",
            "--increase-rate",
            "32",
        ])
        .env("SLOTD_BIN_DIR", &bins)
        .status()
        .expect("scripts/drill runs");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).expect("summary.json"))
            .expect("json");
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
