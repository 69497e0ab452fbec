//! `Journal`: an append-only, checksummed log with group commit, written by one thread.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Appenders hand a frame to the
//! writer thread over a channel and await an acknowledgement; the writer drains whatever
//! has queued (up to `max_batch` records), writes it with one `write`, makes it durable
//! with one `fdatasync`, then acknowledges the whole batch. Under load one fsync covers
//! thousands of bookings; when idle a lone booking is synced at once.
//!
//! On open, the log is replayed; the first frame that is incomplete or fails its
//! checksum marks a torn tail (a crash mid-write): it and everything after it are cut
//! off, never misread. A record is acknowledged only after it is on disk, so a cut-off
//! record was never acknowledged to anyone.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use crate::metrics as m;

const HEADER: usize = 8;
/// No record is larger: a frame header claiming more is corruption, not a record.
const MAX_RECORD: usize = 256 << 20;

/// The journal failed to write or sync; the store stops acknowledging writes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("journal write failed: {0}")]
pub struct JournalError(pub String);

/// Resolves once the record (and everything queued before it) is on disk.
pub type Ack = oneshot::Receiver<Result<(), JournalError>>;

enum Op {
    Append(Vec<u8>, Option<oneshot::Sender<Result<(), JournalError>>>),
    Close,
}

/// What replaying a journal found.
#[derive(Debug, Default)]
pub struct Replay {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut off the end because the last frame was torn or corrupt.
    pub truncated_bytes: u64,
}

/// The writer's handle; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Journal {
    tx: Sender<Op>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    failed: Arc<AtomicBool>,
    path: PathBuf,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

/// Frames one payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads every whole, valid frame of `path`; returns them and the offset where the valid
/// prefix ends.
pub fn read_frames(path: &Path) -> io::Result<(Vec<Vec<u8>>, u64, u64)> {
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut records = Vec::new();
    let mut at = 0usize;
    while buf.len() - at >= HEADER {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let crc = u32::from_le_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]);
        if len > MAX_RECORD || buf.len() - at - HEADER < len {
            break;
        }
        let payload = &buf[at + HEADER..at + HEADER + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        at += HEADER + len;
    }
    Ok((records, at as u64, buf.len() as u64))
}

impl Journal {
    /// Opens (or creates) `dir/journal.log`, replays it, cuts off a torn tail, and starts
    /// the writer thread.
    pub fn open(dir: &Path, max_batch: usize) -> io::Result<(Journal, Replay)> {
        Self::open_file(dir, "journal.log", max_batch)
    }

    /// [`Journal::open`] on `dir/name`: each capability's store keeps its own log.
    pub fn open_file(dir: &Path, name: &str, max_batch: usize) -> io::Result<(Journal, Replay)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let (records, valid, total) = read_frames(&path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        if valid < total {
            tracing::warn!(
                path = %path.display(),
                cut = total - valid,
                "journal ends in a torn or corrupt record; cutting it off"
            );
            file.set_len(valid)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(valid))?;
        // Make the file's existence durable too.
        if let Ok(d) = File::open(dir) {
            let _best_effort = d.sync_all();
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let failed = Arc::new(AtomicBool::new(false));
        let writer = {
            let failed = failed.clone();
            std::thread::Builder::new()
                .name("slotd-journal".into())
                .spawn(move || write_loop(file, rx, max_batch.max(1), failed))?
        };
        Ok((
            Journal {
                tx,
                writer: std::sync::Mutex::new(Some(writer)),
                failed,
                path,
            },
            Replay {
                records,
                truncated_bytes: total - valid,
            },
        ))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a write has failed; the store then refuses writes.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Queues one record. The order of `append` calls is the order on disk.
    pub fn append(&self, payload: &[u8]) -> Ack {
        self.send(frame(payload))
    }

    /// Resolves once everything queued before it is on disk.
    pub fn barrier(&self) -> Ack {
        self.send(Vec::new())
    }

    fn send(&self, bytes: Vec<u8>) -> Ack {
        let (done, ack) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Op::Append(_, Some(done)))) =
            self.tx.send(Op::Append(bytes, Some(done)))
        {
            let _receiver_may_be_gone = done.send(Err(JournalError("journal is closed".into())));
        }
        ack
    }

    /// Writes and syncs everything queued, then stops the writer. Later appends fail.
    pub fn close(&self) {
        let _ = self.tx.send(Op::Close);
        let handle = self.writer.lock().map(|mut w| w.take()).unwrap_or(None);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(file: File, rx: Receiver<Op>, max_batch: usize, failed: Arc<AtomicBool>) {
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let mut batch = Vec::with_capacity(max_batch);
    let mut closing = false;
    while !closing {
        match rx.recv() {
            Ok(Op::Append(bytes, done)) => batch.push((bytes, done)),
            Ok(Op::Close) | Err(_) => break,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Op::Append(bytes, done)) => batch.push((bytes, done)),
                Ok(Op::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let records = batch.iter().filter(|(b, _)| !b.is_empty()).count();
        let result = if failed.load(Ordering::Acquire) {
            Err(JournalError("an earlier write failed".into()))
        } else {
            write_batch(&mut out, &batch, records > 0).map_err(|e| {
                failed.store(true, Ordering::Release);
                tracing::error!(error = %e, "journal write failed; refusing further writes");
                JournalError(e.to_string())
            })
        };
        if records > 0 {
            metrics::histogram!(m::JOURNAL_BATCH_RECORDS).record(records as f64);
            metrics::histogram!(m::JOURNAL_FSYNC_SECONDS).record(started.elapsed().as_secs_f64());
        }
        for (_, done) in batch.drain(..) {
            if let Some(done) = done {
                let _requester_may_have_gone = done.send(result.clone());
            }
        }
    }
    // Close: anything still queued is written too, so that a clean shutdown loses nothing.
    let rest: Vec<_> = rx
        .try_iter()
        .filter_map(|op| match op {
            Op::Append(b, d) => Some((b, d)),
            Op::Close => None,
        })
        .collect();
    // After a failed write nothing more is written: a record queued behind a batch that
    // was refused could depend on it (a seat freed there, taken here).
    let result = if failed.load(Ordering::Acquire) {
        Err(JournalError("an earlier write failed".into()))
    } else {
        write_batch(&mut out, &rest, true).map_err(|e| JournalError(e.to_string()))
    };
    for (_, done) in rest {
        if let Some(done) = done {
            let _ = done.send(result.clone());
        }
    }
}

type Pending = (Vec<u8>, Option<oneshot::Sender<Result<(), JournalError>>>);

fn write_batch(out: &mut io::BufWriter<File>, batch: &[Pending], sync: bool) -> io::Result<()> {
    for (bytes, _) in batch {
        out.write_all(bytes)?;
    }
    out.flush()?;
    if sync {
        out.get_ref().sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        rt().block_on(async {
            let (j, replay) = Journal::open(dir.path(), 16).expect("open");
            assert!(replay.records.is_empty());
            let acks: Vec<_> = (0..100u32).map(|i| j.append(&i.to_le_bytes())).collect();
            for a in acks {
                a.await.expect("ack").expect("written");
            }
            j.close();
        });
        let (_j, replay) = Journal::open(dir.path(), 16).expect("reopen");
        let got: Vec<u32> = replay
            .records
            .iter()
            .map(|r| u32::from_le_bytes([r[0], r[1], r[2], r[3]]))
            .collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(replay.truncated_bytes, 0);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_not_misread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.log");
        let mut bytes = frame(b"first");
        bytes.extend(frame(b"second"));
        let whole = bytes.len();
        // A crash mid-write: the third frame's header and half its payload.
        bytes.extend(&frame(b"third record")[..12]);
        std::fs::write(&path, &bytes).expect("write");
        let (j, replay) = Journal::open(dir.path(), 16).expect("open");
        assert_eq!(replay.records, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(replay.truncated_bytes, 12);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), whole as u64);
        // New records go after the valid prefix and read back whole.
        rt().block_on(async {
            j.append(b"fourth").await.expect("ack").expect("written");
        });
        j.close();
        let (frames, _, _) = read_frames(&path).expect("read");
        assert_eq!(frames.last().map(Vec::as_slice), Some(&b"fourth"[..]));
        assert_eq!(frames.len(), 3);
    }

    #[test]
    fn a_corrupt_last_record_fails_its_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.log");
        let mut bytes = frame(b"good");
        let mut bad = frame(b"flipped");
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        bytes.extend(bad);
        std::fs::write(&path, &bytes).expect("write");
        let (_j, replay) = Journal::open(dir.path(), 16).expect("open");
        assert_eq!(replay.records, vec![b"good".to_vec()]);
        assert!(replay.truncated_bytes > 0);
    }

    #[test]
    fn appends_after_close_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        j.close();
        let r = rt().block_on(j.append(b"late"));
        assert!(matches!(r, Ok(Err(_)) | Err(_)));
    }
}
