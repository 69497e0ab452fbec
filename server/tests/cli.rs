//! The `slotd` command line, run as a user runs it.

use std::process::Command;

use slotd::domain::IdNumber;

fn slotd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slotd"))
        .args(args)
        .output()
        .expect("run slotd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn id_makes_valid_numbers_and_checks_them() {
    let (rc, out, _) = slotd(&["id", "--random", "--count", "5"]);
    assert_eq!(rc, 0);
    let ids: Vec<&str> = out.lines().collect();
    assert_eq!(ids.len(), 5);
    for id in &ids {
        assert!(IdNumber::parse(id).is_ok(), "{id}");
    }

    let (rc, out, _) = slotd(&["id", "--serial", "0", "--count", "2"]);
    assert_eq!((rc, out.as_str()), (0, "A100000001\nA100000010\n"));

    let (rc, out, _) = slotd(&["id", "--check", "J297691749"]);
    assert_eq!((rc, out.trim()), (0, "J297691749"));
    let (rc, out, err) = slotd(&["id", "--check", "A123456788"]);
    assert_eq!((rc, out.as_str()), (1, ""));
    assert!(err.contains("check digit"), "{err}");

    let (rc, _, err) = slotd(&["id", "--random", "--serial", "3"]);
    assert_eq!(rc, 64, "{err}");
}
