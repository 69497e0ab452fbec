//! The files of a segmented journal in one directory, and reading them back at start.
//!
//! - Segments: `STEM.log` (segment 0, the name an unsegmented journal always had) and
//!   `STEM.NNNNNNNN.log`: the journal in order. Only the newest is appended to.
//! - Snapshots: `STEM.snapshot.NNNNNNNN`, the state as records, standing for every
//!   segment before segment `N`. Framed like the journal, between a header frame
//!   `{"snapshot": N}` and an end frame `{"end": RECORDS}`: a snapshot without its end is
//!   not whole. It is written as `….tmp`, synced, renamed, and the directory synced.
//! - Start: the newest snapshot (which must be whole: a renamed snapshot that is not is
//!   damage, and the start refuses), then every segment from `N` on, which must run
//!   without gaps. A torn tail is allowed in the last segment only. Files older than the
//!   newest snapshot are left from a crash before pruning and are removed.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::journal::frame;

/// The name of segment `k`.
pub fn segment_path(dir: &Path, stem: &str, k: u64) -> PathBuf {
    if k == 0 {
        dir.join(format!("{stem}.log"))
    } else {
        dir.join(format!("{stem}.{k:08}.log"))
    }
}

/// The name of the snapshot standing for the segments before `k`.
pub fn snapshot_path(dir: &Path, stem: &str, k: u64) -> PathBuf {
    dir.join(format!("{stem}.snapshot.{k:08}"))
}

/// The journal files of one stem.
#[derive(Debug, Default)]
pub struct Files {
    /// `(index, path)`, ascending.
    pub segments: Vec<(u64, PathBuf)>,
    pub snapshots: Vec<(u64, PathBuf)>,
    /// Snapshots never renamed into place (a crash while writing one).
    pub unfinished: Vec<PathBuf>,
}

/// Lists the journal files of `stem` in `dir` (none when `dir` does not exist).
pub fn list(dir: &Path, stem: &str) -> io::Result<Files> {
    let mut files = Files::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    let number = |s: &str| {
        (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let path = entry.path();
        if rest == "log" {
            files.segments.push((0, path));
        } else if let Some(k) = rest.strip_suffix(".log").and_then(number) {
            files.segments.push((k, path));
        } else if let Some(s) = rest.strip_prefix("snapshot.") {
            if s.ends_with(".tmp") {
                files.unfinished.push(path);
            } else if let Some(k) = number(s) {
                files.snapshots.push((k, path));
            }
        }
    }
    files.segments.sort();
    files.snapshots.sort();
    Ok(files)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    snapshot: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct End {
    end: u64,
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} {what}. Nothing was changed", path.display()),
    )
}

/// A directory's journal, read: the newest snapshot's records, then those of every
/// segment after it.
#[derive(Debug)]
pub struct Loaded {
    /// The snapshot's number and records, if there is one ([`load`] fills the records;
    /// [`load_with`] hands them over instead and leaves this empty).
    pub snapshot: Option<(u64, Vec<Vec<u8>>)>,
    /// The records of the segments from the snapshot on, in order (as above).
    pub records: Vec<Vec<u8>>,
    /// The last segment: its number and path, where its valid frames end, its length.
    pub last: (u64, PathBuf),
    pub valid: u64,
    pub total: u64,
    /// Files the newest snapshot stands for, and unfinished snapshots: safe to remove.
    pub stale: Vec<PathBuf>,
}

/// Reads the journal of `stem` in `dir` into memory, changing nothing (see
/// [`load_with`]).
pub fn load(dir: &Path, stem: &str) -> io::Result<Loaded> {
    let (mut snapshot, mut records) = (Vec::new(), Vec::new());
    let mut loaded = load_with(dir, stem, &mut |from_snapshot, r| {
        if from_snapshot {
            snapshot.push(r.to_vec());
        } else {
            records.push(r.to_vec());
        }
        Ok(())
    })?;
    if let Some(s) = &mut loaded.snapshot {
        s.1 = snapshot;
    }
    loaded.records = records;
    Ok(loaded)
}

/// Streams the journal of `stem` in `dir` through `apply`, one record at a time: the
/// newest snapshot's (flagged `true`), then every segment's after it. Changes nothing.
/// Damage anywhere but the torn tail of the last segment, a gap between segments, or a
/// snapshot that is not whole is an error naming the file (records before it may have
/// been applied: the caller gives up on what it built).
pub fn load_with(
    dir: &Path,
    stem: &str,
    apply: &mut dyn FnMut(bool, &[u8]) -> io::Result<()>,
) -> io::Result<Loaded> {
    let files = list(dir, stem)?;
    let mut stale: Vec<PathBuf> = files.unfinished.clone();
    let snapshot = files.snapshots.last().cloned();
    let from = snapshot.as_ref().map_or(0, |s| s.0);
    for (k, path) in files.snapshots.iter().chain(&files.segments) {
        if *k < from {
            stale.push(path.clone());
        }
    }
    let live: Vec<&(u64, PathBuf)> = files.segments.iter().filter(|(k, _)| *k >= from).collect();
    for (expect, (k, path)) in (from..).zip(live.iter()) {
        if *k != expect {
            return Err(invalid(
                path,
                format!(
                    "follows segment {} with a gap: segment {expect} is missing",
                    expect.saturating_sub(1)
                ),
            ));
        }
    }
    if let Some((k, path)) = &snapshot {
        stream_snapshot(path, *k, apply)?;
    }
    let (mut valid, mut total) = (0, 0);
    for (i, (k, path)) in live.iter().enumerate() {
        let (v, t) = super::journal::stream(path, &mut |r| apply(false, r))?;
        if v < t {
            // A bad frame: damage if valid frames follow it, else a torn tail.
            if let Some(d) = super::journal::scan(path)?.damage {
                return Err(super::journal::damaged(path, &d));
            }
            if i + 1 != live.len() {
                return Err(invalid(
                    path,
                    format!("segment {k} ends in a torn record but is not the last"),
                ));
            }
        }
        (valid, total) = (v, t);
    }
    let last = live.last().map_or_else(
        || (from, segment_path(dir, stem, from)),
        |(k, p)| (*k, p.clone()),
    );
    Ok(Loaded {
        snapshot: snapshot.map(|(k, _)| (k, Vec::new())),
        records: Vec::new(),
        last,
        valid,
        total,
        stale,
    })
}

/// Streams snapshot `k`'s records through `apply`, checking its header first and its
/// end record (the count of records) last.
fn stream_snapshot(
    path: &Path,
    k: u64,
    apply: &mut dyn FnMut(bool, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut seen = 0u64;
    let mut header_ok = false;
    // One frame behind: the last frame is the end record, not a record.
    let mut behind: Option<Vec<u8>> = None;
    let (valid, total) = super::journal::stream(path, &mut |r| {
        if !header_ok {
            let h: Option<Header> = serde_json::from_slice(r).ok();
            if h.is_none_or(|h| h.snapshot != k) {
                return Err(invalid(
                    path,
                    "is not a whole snapshot (header record missing)",
                ));
            }
            header_ok = true;
            return Ok(());
        }
        if let Some(prev) = behind.replace(r.to_vec()) {
            apply(true, &prev)?;
            seen += 1;
        }
        Ok(())
    })?;
    if valid < total {
        return Err(invalid(
            path,
            "is damaged or torn: a snapshot must be whole",
        ));
    }
    let end: Option<End> = behind
        .as_deref()
        .and_then(|r| serde_json::from_slice(r).ok());
    match end {
        Some(e) if header_ok && e.end == seen => Ok(()),
        _ => Err(invalid(
            path,
            "is not a whole snapshot (header or end record missing)",
        )),
    }
}

/// Stops the process at a named step, when the fault-injection build is told to (crash
/// tests kill at every step of snapshotting).
pub fn crash_point(_step: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("SLOTD_CRASH_AT").is_ok_and(|s| s == _step) {
        eprintln!("slotd: SLOTD_CRASH_AT={_step}: aborting");
        std::process::abort();
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes snapshot `k` of `records`: a temporary file, synced, renamed into place, the
/// directory synced. Answers its size in bytes.
pub fn write_snapshot(
    dir: &Path,
    stem: &str,
    k: u64,
    records: impl IntoIterator<Item = Vec<u8>>,
) -> io::Result<u64> {
    let path = snapshot_path(dir, stem, k);
    let tmp = path.with_file_name(format!(
        "{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("snapshot")
    ));
    let mut out = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let header = serde_json::to_vec(&Header { snapshot: k }).unwrap_or_default();
    out.write_all(&frame(&header))?;
    let mut n = 0u64;
    let mut bytes = 0u64;
    for r in records {
        let f = frame(&r);
        bytes += f.len() as u64;
        out.write_all(&f)?;
        n += 1;
    }
    out.write_all(&frame(
        &serde_json::to_vec(&End { end: n }).unwrap_or_default(),
    ))?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    crash_point("snapshot-written");
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    crash_point("snapshot-renamed");
    Ok(bytes)
}

/// Removes files the newest snapshot stands for (`stale` from [`load`], or everything
/// before snapshot `k`), then syncs the directory. Only call once snapshot `k` is durable.
pub fn prune(dir: &Path, stem: &str, k: u64) -> io::Result<usize> {
    let files = list(dir, stem)?;
    let mut removed = 0;
    for (i, path) in files.snapshots.iter().chain(&files.segments) {
        if *i < k {
            std::fs::remove_file(path)?;
            removed += 1;
        }
    }
    sync_dir(dir)?;
    crash_point("snapshot-pruned");
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_segment(dir: &Path, k: u64, records: &[&[u8]]) {
        let mut f = File::create(segment_path(dir, "j", k)).expect("create");
        for r in records {
            f.write_all(&frame(r)).expect("write");
        }
    }

    #[test]
    fn a_snapshot_and_the_segments_after_it_make_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_segment(d, 0, &[b"r0", b"r1"]);
        write_segment(d, 1, &[b"r2"]);
        write_snapshot(d, "j", 2, vec![b"s0".to_vec(), b"s1".to_vec()]).expect("snapshot");
        write_segment(d, 2, &[b"r3", b"r4"]);
        let l = load(d, "j").expect("load");
        assert_eq!(l.snapshot, Some((2, vec![b"s0".to_vec(), b"s1".to_vec()])));
        assert_eq!(l.records, vec![b"r3".to_vec(), b"r4".to_vec()]);
        assert_eq!(l.last.0, 2);
        assert_eq!(l.stale.len(), 2, "segments 0 and 1 are stale");
        assert_eq!(prune(d, "j", 2).expect("prune"), 2);
        let again = load(d, "j").expect("load");
        assert_eq!((again.records.len(), again.stale.len()), (2, 0));
    }

    #[test]
    fn a_journal_without_snapshots_is_its_segments_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_segment(d, 0, &[b"a0"]);
        write_segment(d, 1, &[b"a1"]);
        let l = load(d, "j").expect("load");
        assert_eq!(l.records, vec![b"a0".to_vec(), b"a1".to_vec()]);
        assert!(l.snapshot.is_none());
        assert!(
            load(tempfile::tempdir().expect("t").path(), "j").is_ok_and(|l| l.records.is_empty())
        );
    }

    #[test]
    fn a_gap_a_torn_middle_segment_or_a_snapshot_without_its_end_refuse_to_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_segment(d, 0, &[b"a0"]);
        write_segment(d, 2, &[b"a2"]);
        assert!(load(d, "j").is_err_and(|e| e.to_string().contains("segment 1 is missing")));

        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_segment(d, 0, &[b"a0"]);
        let mut torn = frame(b"a1");
        torn.truncate(5);
        std::fs::OpenOptions::new()
            .append(true)
            .open(segment_path(d, "j", 0))
            .and_then(|mut f| f.write_all(&torn))
            .expect("tear");
        write_segment(d, 1, &[b"a2"]);
        assert!(load(d, "j").is_err_and(|e| e.to_string().contains("not the last")));

        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mut f = File::create(snapshot_path(d, "j", 1)).expect("create");
        f.write_all(&frame(br#"{"snapshot":1}"#)).expect("w");
        f.write_all(&frame(b"s0")).expect("w");
        drop(f);
        write_segment(d, 1, &[b"a1"]);
        assert!(load(d, "j").is_err_and(|e| e.to_string().contains("not a whole snapshot")));
    }

    #[test]
    fn a_missing_directory_has_no_files_and_a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = list(&dir.path().join("nowhere"), "j").expect("missing is empty");
        assert!(none.segments.is_empty() && none.snapshots.is_empty());
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        assert!(
            list(&file, "j").is_err(),
            "a file where the directory should be"
        );
        // Only eight digits number a segment: other names are not the journal's.
        for stray in [
            "j.123.log",
            "j.abcdefgh.log",
            "j.000000012.log",
            "k.00000001.log",
        ] {
            std::fs::write(dir.path().join(stray), b"").expect("stray");
        }
        std::fs::write(dir.path().join("j.00000001.log"), b"").expect("segment");
        let found = list(dir.path(), "j").expect("list");
        assert_eq!(
            found.segments.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn a_snapshot_with_a_torn_record_or_a_wrong_count_refuses_to_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_snapshot(d, "j", 1, vec![b"s0".to_vec(), b"s1".to_vec()]).expect("snapshot");
        write_segment(d, 1, &[b"a1"]);
        assert!(load(d, "j").is_ok());
        // A torn record at its end.
        let path = snapshot_path(d, "j", 1);
        let mut torn = std::fs::read(&path).expect("read");
        torn.extend_from_slice(&frame(b"s2")[..5]);
        std::fs::write(&path, &torn).expect("write");
        assert!(load(d, "j").is_err_and(|e| e.to_string().contains("torn")));
        // Whole frames, but the end record counts three records where there are two.
        let mut f = File::create(&path).expect("create");
        f.write_all(&frame(br#"{"snapshot":1}"#)).expect("w");
        f.write_all(&frame(b"s0")).expect("w");
        f.write_all(&frame(b"s1")).expect("w");
        f.write_all(&frame(br#"{"end":3}"#)).expect("w");
        drop(f);
        assert!(load(d, "j").is_err_and(|e| e.to_string().contains("not a whole snapshot")));
    }

    #[test]
    fn an_unfinished_snapshot_is_ignored_and_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_segment(d, 0, &[b"a0"]);
        std::fs::write(d.join("j.snapshot.00000001.tmp"), b"partial").expect("write");
        let l = load(d, "j").expect("load");
        assert_eq!((l.records.len(), l.stale.len()), (1, 1));
    }
}
