//! `Journal`: an append-only, checksummed log with group commit, written by one thread.
//!
//! Frame: `len: u32 LE | crc32(payload): u32 LE | payload`. Appenders hand a frame to the
//! writer thread over a channel and await an acknowledgement; the writer drains whatever
//! has queued (up to `max_batch` records), writes it with one `write`, makes it durable
//! with one `fdatasync`, then acknowledges the whole batch. Under load one fsync covers
//! thousands of bookings; when idle a lone booking is synced at once.
//!
//! On open, the log is replayed. A frame that is incomplete or fails its checksum is a
//! **torn tail** (a crash mid-write) only when no valid frame follows it: it is cut off,
//! never misread, and since a record is acknowledged only after it is on disk, it was
//! never acknowledged to anyone. A bad frame *followed by valid frames* is **damage** (a
//! flipped bit, a bad sector): the journal refuses to open, names the offset and changes
//! nothing, because cutting there would silently drop acknowledged records. `slotd
//! repair` shows what the damaged file holds and, when told to, drops the damaged frames
//! and keeps every valid one after them.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use crate::metrics as m;

const HEADER: usize = 8;
/// No record is larger: a frame header claiming more is corruption, not a record. The
/// writer refuses larger records, so every record written can be read back.
pub const MAX_RECORD: usize = 256 << 20;
/// The smallest payload a store writes (`{}`): a shorter frame is not a record (a
/// zero-filled tail would otherwise read as empty frames with a valid checksum).
const MIN_RECORD: usize = 2;

/// The journal failed to write or sync; the store stops acknowledging writes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("journal write failed: {0}")]
pub struct JournalError(pub String);

/// Resolves once the record (and everything queued before it) is on disk.
pub type Ack = oneshot::Receiver<Result<(), JournalError>>;

enum Op {
    Append(Vec<u8>, Option<oneshot::Sender<Result<(), JournalError>>>),
    /// Close the current segment (written and synced) and start the next one; answers its
    /// number.
    Rotate(oneshot::Sender<io::Result<u64>>),
    Close,
}

/// What replaying a journal found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The newest snapshot's records (empty without one): replayed first.
    pub snapshot: Vec<Vec<u8>>,
    /// The records of the segments after it.
    pub records: Vec<Vec<u8>>,
    /// Bytes cut off the end because the last frame was torn or corrupt.
    pub truncated_bytes: u64,
}

/// The writer's handle; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Journal {
    tx: Sender<Op>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    health: Arc<Health>,
    path: PathBuf,
    /// Bytes written to the current segment: what decides the next snapshot.
    segment_bytes: Arc<AtomicU64>,
}

/// An fsync that has not returned after this long marks the journal stalled: the store
/// refuses writes and the node is unready until it returns.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(2);
/// How often a failing journal tries to write its held records again.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// What the writer thread tells the rest of the process about the disk.
#[derive(Debug, Default)]
struct Health {
    /// A write or fsync failed and the records since are held, not yet durable.
    failed: AtomicBool,
    /// Unix milliseconds at which the fsync in progress began; 0 when none is.
    syncing_since: AtomicU64,
    /// The last failure, for readiness and logs.
    last_error: std::sync::Mutex<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where the writer appends, and how it names the next segment.
struct Segment {
    dir: PathBuf,
    stem: String,
    index: u64,
    bytes: Arc<AtomicU64>,
}

/// Frames one payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Where a journal is damaged: a frame that fails before the end of the file, with valid
/// frames after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the first bad frame.
    pub offset: u64,
    /// Byte offset of the next valid frame.
    pub resumes_at: u64,
    pub reason: &'static str,
}

/// What reading a journal found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The whole, valid frames before any damage (all of them when there is none).
    pub records: Vec<Vec<u8>>,
    /// Where those frames end.
    pub valid: u64,
    pub total: u64,
    /// `Some` when a bad frame is followed by valid ones.
    pub damage: Option<Damage>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "damaged at byte {} ({}); valid records resume at byte {}",
            self.offset, self.reason, self.resumes_at
        )
    }
}

/// The frame at `at`: `Ok(length)` when whole and valid, else why not.
fn frame_at(buf: &[u8], at: usize) -> Result<usize, &'static str> {
    if buf.len() - at < HEADER {
        return Err("an incomplete frame header");
    }
    let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
    let crc = u32::from_le_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]);
    if !(MIN_RECORD..=MAX_RECORD).contains(&len) {
        return Err("a frame length no record has");
    }
    if buf.len() - at - HEADER < len {
        return Err("a frame longer than the file");
    }
    if crc32fast::hash(&buf[at + HEADER..at + HEADER + len]) != crc {
        return Err("a checksum mismatch");
    }
    Ok(HEADER + len)
}

/// The first offset after `from` where a whole, valid frame starts.
fn resync(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len().saturating_sub(HEADER)).find(|&at| frame_at(buf, at).is_ok())
}

fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(buf)
}

/// Hands each whole, valid frame of `path` to `f`, in order, one at a time (a journal is
/// never held in memory whole: replay memory is one frame). Answers where the valid
/// frames end and the file's length; a bad frame stops the walk, and whether it is a
/// torn tail or damage is for the caller to ask [`scan`] (the rare path).
pub fn stream(path: &Path, f: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<(u64, u64)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let total = file.metadata()?.len();
    let mut r = io::BufReader::with_capacity(1 << 20, file);
    let mut payload = Vec::new();
    let mut at = 0u64;
    loop {
        let mut header = [0u8; HEADER];
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok((at, total)),
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if !(MIN_RECORD..=MAX_RECORD).contains(&len) || total - at - (HEADER as u64) < len as u64 {
            return Ok((at, total));
        }
        payload.resize(len, 0);
        r.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            return Ok((at, total));
        }
        f(&payload)?;
        at += (HEADER + len) as u64;
    }
}

/// Reads the valid frames of `path` up to its end, a torn tail, or damage.
pub fn scan(path: &Path) -> io::Result<Scan> {
    let buf = read_all(path)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        match frame_at(&buf, at) {
            Ok(n) => {
                records.push(buf[at + HEADER..at + n].to_vec());
                at += n;
            }
            Err(reason) => {
                let damage = resync(&buf, at + 1).map(|next| Damage {
                    offset: at as u64,
                    resumes_at: next as u64,
                    reason,
                });
                return Ok(Scan {
                    records,
                    valid: at as u64,
                    total: buf.len() as u64,
                    damage,
                });
            }
        }
    }
    Ok(Scan {
        records,
        valid: at as u64,
        total: buf.len() as u64,
        damage: None,
    })
}

/// Every valid frame of `path`, skipping damaged stretches, and the stretches skipped
/// (`slotd repair`). A torn tail is neither kept nor listed.
pub fn salvage(path: &Path) -> io::Result<(Vec<Vec<u8>>, Vec<Damage>)> {
    let buf = read_all(path)?;
    let (mut records, mut damaged) = (Vec::new(), Vec::new());
    let mut at = 0usize;
    while at < buf.len() {
        match frame_at(&buf, at) {
            Ok(n) => {
                records.push(buf[at + HEADER..at + n].to_vec());
                at += n;
            }
            Err(reason) => match resync(&buf, at + 1) {
                Some(next) => {
                    damaged.push(Damage {
                        offset: at as u64,
                        resumes_at: next as u64,
                        reason,
                    });
                    at = next;
                }
                None => break,
            },
        }
    }
    Ok((records, damaged))
}

/// Reads every whole, valid frame of `path` before a torn tail; returns them, where the
/// valid prefix ends, and the file's length. Damage is an error naming its offset.
pub fn read_frames(path: &Path) -> io::Result<(Vec<Vec<u8>>, u64, u64)> {
    let s = scan(path)?;
    if let Some(d) = s.damage {
        return Err(damaged(path, &d));
    }
    Ok((s.records, s.valid, s.total))
}

pub(super) fn damaged(path: &Path, d: &Damage) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is {d}. Nothing was changed. `slotd repair --data-dir {}` shows what it holds; \
             `--drop-damaged` saves it aside and drops the damaged records",
            path.display(),
            path.parent()
                .map_or_else(|| ".".into(), |p| p.display().to_string())
        ),
    )
}

/// Writes `records` as a fresh journal at `path` (through a temporary file, fsynced and
/// renamed over it, and the directory fsynced), after saving the old file as `aside`.
pub fn rewrite(path: &Path, records: &[Vec<u8>], aside: &Path) -> io::Result<()> {
    std::fs::copy(path, aside)?;
    File::open(aside)?.sync_all()?;
    let tmp = path.with_extension("rewrite");
    {
        let mut f = File::create(&tmp)?;
        for r in records {
            f.write_all(&frame(r))?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Journal {
    /// Opens (or creates) `dir/journal.log`, replays it, cuts off a torn tail, and starts
    /// the writer thread.
    pub fn open(dir: &Path, max_batch: usize) -> io::Result<(Journal, Replay)> {
        Self::open_file(dir, "journal.log", max_batch)
    }

    /// [`Journal::open`] on `dir/name`: each capability's store keeps its own log. The
    /// records are collected (tests and small journals); stores use [`Self::open_with`].
    pub fn open_file(dir: &Path, name: &str, max_batch: usize) -> io::Result<(Journal, Replay)> {
        let (mut snapshot, mut records) = (Vec::new(), Vec::new());
        let (journal, truncated_bytes) =
            Self::open_with(dir, name, max_batch, &mut |from_snapshot, r| {
                if from_snapshot {
                    snapshot.push(r.to_vec());
                } else {
                    records.push(r.to_vec());
                }
                Ok(())
            })?;
        Ok((
            journal,
            Replay {
                snapshot,
                records,
                truncated_bytes,
            },
        ))
    }

    /// Opens the journal `dir/name` (segmented: see [`segments`](super::segments)),
    /// hands every record to `apply` in order (the newest snapshot's first, flagged
    /// `true`), cuts off a torn tail, removes files older than the snapshot, and starts
    /// the writer. Answers the journal and the bytes cut.
    pub fn open_with(
        dir: &Path,
        name: &str,
        max_batch: usize,
        apply: &mut dyn FnMut(bool, &[u8]) -> io::Result<()>,
    ) -> io::Result<(Journal, u64)> {
        std::fs::create_dir_all(dir)?;
        let stem = name.strip_suffix(".log").unwrap_or(name);
        let loaded = super::segments::load_with(dir, stem, apply)?;
        let (index, path) = loaded.last.clone();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        if loaded.valid < loaded.total {
            tracing::warn!(
                path = %path.display(),
                cut = loaded.total - loaded.valid,
                "journal ends in a torn record; cutting it off"
            );
            file.set_len(loaded.valid)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(loaded.valid))?;
        for stale in &loaded.stale {
            tracing::info!(file = %stale.display(), "removing a journal file a snapshot stands for");
            std::fs::remove_file(stale)?;
        }
        // Make the file's existence (and the removals) durable too.
        if let Ok(d) = File::open(dir) {
            let _best_effort = d.sync_all();
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let health = Arc::new(Health::default());
        let segment_bytes = Arc::new(AtomicU64::new(loaded.valid));
        let segment = Segment {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            index,
            bytes: segment_bytes.clone(),
        };
        let writer = {
            let health = health.clone();
            let written = loaded.valid;
            std::thread::Builder::new()
                .name("slotd-journal".into())
                .spawn(move || {
                    Writer {
                        out: file,
                        segment,
                        written,
                        held: Vec::new(),
                        health,
                    }
                    .run(rx, max_batch.max(1))
                })?
        };
        Ok((
            Journal {
                tx,
                writer: std::sync::Mutex::new(Some(writer)),
                health,
                path,
                segment_bytes,
            },
            loaded.total - loaded.valid,
        ))
    }

    /// Bytes in the current segment.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes.load(Ordering::Relaxed)
    }

    /// Ends the current segment after everything queued before this call, and starts the
    /// next one; resolves to its number. A snapshot of the state as of this call stands
    /// for every segment before it.
    pub fn rotate(&self) -> oneshot::Receiver<io::Result<u64>> {
        let (done, answer) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Op::Rotate(done))) = self.tx.send(Op::Rotate(done))
        {
            let _ = done.send(Err(io::Error::other("journal is closed")));
        }
        answer
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the journal cannot take writes now: a write or fsync failed (it is being
    /// retried), or an fsync has been running longer than [`STALL`].
    pub fn has_failed(&self) -> bool {
        self.health().is_err()
    }

    /// Why the journal cannot take writes now, if it cannot.
    pub fn health(&self) -> Result<(), String> {
        if self.health.failed.load(Ordering::Acquire) {
            let e = self
                .health
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            return Err(format!(
                "journal write failed ({e}); retrying every {} ms",
                RETRY_EVERY.as_millis()
            ));
        }
        let since = self.health.syncing_since.load(Ordering::Acquire);
        if since > 0 {
            let for_ms = now_ms().saturating_sub(since);
            if for_ms > STALL.as_millis() as u64 {
                return Err(format!("journal fsync has not returned for {for_ms} ms"));
            }
        }
        Ok(())
    }

    /// Queues one record. The order of `append` calls is the order on disk. A record
    /// larger than [`MAX_RECORD`] is refused (replay could not read it back); that
    /// refusal fails this record only, not the journal.
    pub fn append(&self, payload: &[u8]) -> Ack {
        if !(MIN_RECORD..=MAX_RECORD).contains(&payload.len()) {
            let (done, ack) = oneshot::channel();
            let _receiver_kept = done.send(Err(JournalError(format!(
                "a record of {} bytes is outside {MIN_RECORD}..={MAX_RECORD}",
                payload.len()
            ))));
            return ack;
        }
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

type Pending = (Vec<u8>, Option<oneshot::Sender<Result<(), JournalError>>>);

/// The writer thread's state.
///
/// A failed write or fsync does not stop it: the file is cut back to its last durable
/// length (after a failed fsync the page cache cannot be trusted, so the bytes are
/// written again rather than synced again), the batch's waiters are told it failed, and
/// its records, with every record queued while the failure lasts, are held in order and
/// written again every [`RETRY_EVERY`]. Their changes are in memory already (a record is
/// queued after its change), so writing them once the disk is back makes the disk agree
/// with memory; none of them was acknowledged, so a client retries and sees the truth.
/// The store refuses new writes meanwhile ([`Journal::health`]).
struct Writer {
    /// The current segment, positioned at `written`. A batch is one contiguous buffer,
    /// written with one call: no buffering layer to empty after a failure.
    out: File,
    segment: Segment,
    /// The length of the current segment that is durable.
    written: u64,
    /// Framed records not yet durable, held through a failure.
    held: Vec<u8>,
    health: Arc<Health>,
}

impl Writer {
    fn failing(&self) -> bool {
        self.health.failed.load(Ordering::Acquire)
    }

    fn run(mut self, rx: Receiver<Op>, max_batch: usize) {
        let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
        let mut closing = false;
        while !closing {
            let mut rotate = None;
            let first = if self.failing() {
                match rx.recv_timeout(RETRY_EVERY) {
                    Ok(op) => Some(op),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(op) => Some(op),
                    Err(_) => break,
                }
            };
            match first {
                Some(Op::Append(bytes, done)) => batch.push((bytes, done)),
                Some(Op::Rotate(done)) => rotate = Some(done),
                Some(Op::Close) => closing = true,
                None => {}
            }
            while !closing && rotate.is_none() && batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(Op::Append(bytes, done)) => batch.push((bytes, done)),
                    // A rotation ends the batch: what came before it belongs to this segment.
                    Ok(Op::Rotate(done)) => rotate = Some(done),
                    Ok(Op::Close) => closing = true,
                    Err(_) => break,
                }
            }
            if self.failing() {
                self.recover();
            }
            self.commit(&mut batch);
            if let Some(done) = rotate {
                let next = if self.failing() {
                    Err(io::Error::other("the journal is failing; no new segment"))
                } else {
                    self.start_segment()
                };
                let _requester_may_have_gone = done.send(next);
            }
        }
        // Close: anything still queued is written too, so that a clean shutdown loses
        // nothing; held records get one last try.
        let mut rest: Vec<Pending> = rx
            .try_iter()
            .filter_map(|op| match op {
                Op::Append(b, d) => Some((b, d)),
                Op::Rotate(_) | Op::Close => None,
            })
            .collect();
        if self.failing() {
            self.recover();
        }
        self.commit(&mut rest);
        if self.failing() {
            tracing::error!(
                bytes = self.held.len(),
                "journal closed while failing: records never acknowledged are dropped"
            );
        }
    }

    /// Writes and syncs `batch` (or holds it while failing) and answers its waiters.
    fn commit(&mut self, batch: &mut Vec<Pending>) {
        let records = batch.iter().filter(|(b, _)| !b.is_empty()).count();
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = if self.failing() {
            for (bytes, _) in batch.iter() {
                self.held.extend_from_slice(bytes);
            }
            Err(JournalError(format!(
                "the journal is failing: {}",
                self.health
                    .last_error
                    .lock()
                    .map(|e| e.clone())
                    .unwrap_or_default()
            )))
        } else {
            let mut bytes = Vec::with_capacity(batch.iter().map(|(b, _)| b.len()).sum());
            for (b, _) in batch.iter() {
                bytes.extend_from_slice(b);
            }
            match self.write_durably(&bytes, records > 0) {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.held = bytes;
                    self.fail(&e);
                    Err(JournalError(e.to_string()))
                }
            }
        };
        if records > 0 && result.is_ok() {
            metrics::histogram!(m::JOURNAL_BATCH_RECORDS).record(records as f64);
            metrics::histogram!(m::JOURNAL_FSYNC_SECONDS).record(started.elapsed().as_secs_f64());
        }
        for (_, done) in batch.drain(..) {
            if let Some(done) = done {
                let _requester_may_have_gone = done.send(result.clone());
            }
        }
    }

    fn fail(&mut self, e: &io::Error) {
        if let Ok(mut last) = self.health.last_error.lock() {
            *last = e.to_string();
        }
        if !self.health.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %e, path = %segment_path(&self.segment).display(), "journal write failed; refusing writes and retrying");
        }
    }

    /// Tries the held records again: cut the file back to its durable length, write
    /// them, sync. On success the journal takes writes again.
    fn recover(&mut self) {
        let held = std::mem::take(&mut self.held);
        match self.write_durably(&held, true) {
            Ok(()) => {
                self.health.failed.store(false, Ordering::Release);
                tracing::warn!(
                    bytes = held.len(),
                    "journal recovered: the held records are durable"
                );
            }
            Err(e) => {
                self.held = held;
                self.fail(&e);
            }
        }
    }

    /// Appends `bytes` at the durable length and syncs. On failure the file is cut back
    /// to that length again (best effort: the next try cuts again first).
    fn write_durably(&mut self, bytes: &[u8], sync: bool) -> io::Result<()> {
        let result = (|| {
            fault(&self.segment.dir, "write")?;
            self.out.write_all(bytes)?;
            if sync {
                self.health.syncing_since.store(now_ms(), Ordering::Release);
                let synced = fault(&self.segment.dir, "fsync").and_then(|()| self.out.sync_data());
                self.health.syncing_since.store(0, Ordering::Release);
                synced?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.written += bytes.len() as u64;
                self.segment
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Cut back whatever part of the batch reached the file.
                let _best_effort = self
                    .out
                    .set_len(self.written)
                    .and_then(|()| self.out.seek(SeekFrom::Start(self.written)).map(|_| ()));
                Err(e)
            }
        }
    }

    /// Syncs the current segment and switches to a new, empty one (its creation synced
    /// in the directory). Answers the new segment's number.
    fn start_segment(&mut self) -> io::Result<u64> {
        self.out.sync_data()?;
        let next = self.segment.index + 1;
        let path = super::segments::segment_path(&self.segment.dir, &self.segment.stem, next);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        File::open(&self.segment.dir)?.sync_all()?;
        self.out = file;
        self.segment.index = next;
        self.segment.bytes.store(0, Ordering::Relaxed);
        self.written = 0;
        Ok(next)
    }
}

fn segment_path(s: &Segment) -> PathBuf {
    super::segments::segment_path(&s.dir, &s.stem, s.index)
}

/// The fault-injection build's storage faults: a file `fault-injection` in the
/// journal's directory holds `write-enospc`, `write-eio`, `fsync-eio` or `fsync-slow MS`
/// (or nothing), read before each write and each fsync, so a test can start and clear a
/// fault while the server runs, for this journal only. Without the feature, nothing.
fn fault(_dir: &Path, _at: &str) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    {
        let wanted = std::fs::read_to_string(_dir.join("fault-injection")).unwrap_or_default();
        let wanted = wanted.trim();
        let (kind, arg) = wanted.split_once(' ').unwrap_or((wanted, ""));
        match (_at, kind) {
            ("write", "write-enospc") => return Err(io::Error::from_raw_os_error(28)),
            ("write", "write-eio") | ("fsync", "fsync-eio") => {
                return Err(io::Error::from_raw_os_error(5));
            }
            ("fsync", "fsync-slow") => {
                std::thread::sleep(std::time::Duration::from_millis(
                    arg.parse().unwrap_or(3_000),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_reads_as_empty_and_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = scan(&dir.path().join("none.log")).expect("a missing file is empty");
        assert_eq!((missing.records.len(), missing.total), (0, 0));
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        // A path through a regular file cannot be opened (ENOTDIR): not "empty".
        assert!(scan(&file.join("journal.log")).is_err());
    }

    /// A write that fails holds its records (and the ones queued after), answers them
    /// with an error, refuses nothing silently, and writes them once the disk is back:
    /// a reopen finds every record, in order, none twice.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn a_failing_disk_holds_records_and_writes_them_once_it_recovers() {
        for fault in ["write-enospc", "write-eio", "fsync-eio"] {
            let dir = tempfile::tempdir().expect("tempdir");
            rt().block_on(async {
                let (j, _) = Journal::open(dir.path(), 16).expect("open");
                j.append(b"r0").await.expect("ack").expect("durable");
                std::fs::write(dir.path().join("fault-injection"), fault).expect("fault");
                let failed = j.append(b"r1").await.expect("ack");
                assert!(failed.is_err(), "{fault}: not acknowledged");
                let reason = j.health().expect_err("unhealthy");
                assert!(reason.contains("retrying"), "{fault}: {reason}");
                assert!(j.has_failed());
                // Queued while failing: held too, and answered with an error.
                assert!(j.append(b"r2").await.expect("ack").is_err());
                std::fs::write(dir.path().join("fault-injection"), "").expect("clear");
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while j.has_failed() {
                    assert!(std::time::Instant::now() < deadline, "{fault}: no recovery");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                j.append(b"r3").await.expect("ack").expect("durable again");
                j.close();
            });
            let (_j, replay) = Journal::open(dir.path(), 16).expect("reopen");
            assert_eq!(
                replay.records,
                vec![
                    b"r0".to_vec(),
                    b"r1".to_vec(),
                    b"r2".to_vec(),
                    b"r3".to_vec()
                ],
                "{fault}"
            );
        }
    }

    #[cfg(feature = "fault-injection")]
    #[test]
    fn an_fsync_that_does_not_return_makes_the_journal_unhealthy_until_it_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        rt().block_on(async {
            let (j, _) = Journal::open(dir.path(), 16).expect("open");
            std::fs::write(dir.path().join("fault-injection"), "fsync-slow 3000").expect("fault");
            let slow = j.append(b"r0");
            tokio::time::sleep(STALL + std::time::Duration::from_millis(300)).await;
            let reason = j.health().expect_err("stalled");
            assert!(reason.contains("fsync has not returned"), "{reason}");
            std::fs::write(dir.path().join("fault-injection"), "").expect("clear");
            slow.await
                .expect("ack")
                .expect("durable once the fsync returns");
            assert!(j.health().is_ok());
        });
    }

    /// Waits until the writer is inside an fsync (past gathering its batch).
    #[cfg(feature = "fault-injection")]
    fn until_syncing(j: &Journal) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while j.health.syncing_since.load(Ordering::Acquire) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never synced"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Group commit: the records queued while an fsync runs are written together and
    /// share the next fsync, at most `max_batch` of them; the rest wait for the one after.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn records_queued_during_an_fsync_share_the_next_one_up_to_the_batch_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fault = dir.path().join("fault-injection");
        let (j, _) = Journal::open(dir.path(), 3).expect("open");
        std::fs::write(&fault, "fsync-slow 400").expect("fault");
        rt().block_on(async {
            let first = j.append(b"r0");
            until_syncing(&j);
            let mut queued: Vec<Ack> = (1..=6u8).map(|i| j.append(&[b'r', b'0' + i])).collect();
            first.await.expect("ack").expect("durable");
            let head = queued.remove(0);
            head.await.expect("ack").expect("durable");
            // The rest of r1's batch was answered with it; r4's batch is in its own fsync.
            std::thread::sleep(std::time::Duration::from_millis(100));
            let answered: Vec<bool> = queued
                .iter_mut()
                .map(|a| matches!(a.try_recv(), Ok(Ok(()))))
                .collect();
            assert_eq!(answered, [true, true, false, false, false]);
            std::fs::write(&fault, "").expect("clear");
            for a in queued.into_iter().skip(2) {
                a.await.expect("ack").expect("durable");
            }
        });
        j.close();
        let (frames, _, _) = read_frames(&dir.path().join("journal.log")).expect("read");
        assert_eq!(frames.len(), 7);
    }

    /// A rotation ends the batch it arrives in: records queued after it go to the new
    /// segment even when they were waiting behind the same fsync.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn records_queued_after_a_rotation_go_to_the_new_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fault = dir.path().join("fault-injection");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        std::fs::write(&fault, "fsync-slow 300").expect("fault");
        rt().block_on(async {
            let first = j.append(b"r0");
            until_syncing(&j);
            let rotated = j.rotate();
            let after = j.append(b"r1");
            std::fs::write(&fault, "").expect("clear");
            first.await.expect("ack").expect("durable");
            assert_eq!(rotated.await.expect("answer").expect("rotated"), 1);
            after.await.expect("ack").expect("durable");
        });
        j.close();
        let segment = |k| super::super::segments::segment_path(dir.path(), "journal", k);
        assert_eq!(
            read_frames(&segment(0)).expect("read").0,
            vec![b"r0".to_vec()]
        );
        assert_eq!(
            read_frames(&segment(1)).expect("read").0,
            vec![b"r1".to_vec()]
        );
    }

    /// Dropping the journal (as a store does on shutdown) returns only once what was
    /// queued before is written, synced and answered.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn dropping_the_journal_waits_until_what_was_queued_is_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        std::fs::write(dir.path().join("fault-injection"), "fsync-slow 300").expect("fault");
        let mut ack = j.append(b"last");
        drop(j);
        assert!(
            matches!(ack.try_recv(), Ok(Ok(()))),
            "answered before drop returned"
        );
        let (frames, _, _) = read_frames(&dir.path().join("journal.log")).expect("read");
        assert_eq!(frames, vec![b"last".to_vec()]);
    }

    /// A barrier with nothing new to write costs no fsync: it succeeds while fsyncs fail,
    /// and the journal stays healthy; a record still needs its fsync.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn a_barrier_with_nothing_new_to_write_needs_no_fsync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        rt().block_on(async {
            j.append(b"r0").await.expect("ack").expect("durable");
            std::fs::write(dir.path().join("fault-injection"), "fsync-eio").expect("fault");
            j.barrier().await.expect("ack").expect("nothing to sync");
            assert!(!j.has_failed());
            assert!(
                j.append(b"r1").await.expect("ack").is_err(),
                "a record is synced"
            );
        });
    }

    /// Every durable batch feeds the batch-size histogram with its number of records.
    /// (The recorder is the process's, shared with concurrent tests: the sum can only
    /// have grown by at least this test's records.)
    #[test]
    fn durable_batches_feed_the_batch_size_histogram() {
        let handle = crate::metrics::install();
        let sum = || {
            handle
                .render()
                .lines()
                .find_map(|l| l.strip_prefix("slotd_journal_batch_records_sum "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let before = sum();
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        rt().block_on(async {
            for i in 0..5u8 {
                j.append(&[b'r', b'0' + i])
                    .await
                    .expect("ack")
                    .expect("durable");
            }
        });
        j.close();
        let grown = sum() - before;
        assert!(grown >= 5.0, "the histogram's sum grew by {grown}");
    }

    #[test]
    fn segment_bytes_counts_the_current_segment_and_restarts_after_a_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("journal.log"), frame(b"kept")).expect("write");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        let framed = |n: usize| (HEADER + n) as u64;
        assert_eq!(
            j.segment_bytes(),
            framed(4),
            "what the segment already holds"
        );
        rt().block_on(async {
            j.append(b"more").await.expect("ack").expect("durable");
            assert_eq!(j.segment_bytes(), 2 * framed(4));
            assert_eq!(j.rotate().await.expect("answer").expect("rotated"), 1);
            assert_eq!(j.segment_bytes(), 0);
            j.append(b"next!").await.expect("ack").expect("durable");
            assert_eq!(j.segment_bytes(), framed(5));
        });
        j.close();
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
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

    #[test]
    fn a_damaged_record_before_valid_ones_refuses_to_open_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.log");
        let mut bytes = frame(b"first");
        let second_at = bytes.len();
        bytes.extend(frame(b"second"));
        bytes.extend(frame(b"third"));
        // A flipped bit inside the second record's payload.
        bytes[second_at + HEADER + 2] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let err = Journal::open(dir.path(), 16).expect_err("damage is fatal");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string()
                .contains(&format!("damaged at byte {second_at}")),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "nothing changed"
        );
        assert!(
            read_frames(&path).is_err(),
            "the offline reader refuses it too"
        );
        // Salvage keeps what is valid on both sides and names the stretch it skips.
        let (kept, damaged) = salvage(&path).expect("salvage");
        assert_eq!(kept, vec![b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(damaged.len(), 1);
        assert_eq!(damaged[0].offset, second_at as u64);
        assert_eq!(damaged[0].resumes_at, (second_at + HEADER + 6) as u64);
        let aside = dir.path().join("journal.log.damaged");
        rewrite(&path, &kept, &aside).expect("rewrite");
        assert_eq!(
            std::fs::read(&aside).expect("aside"),
            bytes,
            "the damaged file is kept"
        );
        let (_j, replay) = Journal::open(dir.path(), 16).expect("opens after repair");
        assert_eq!(replay.records, kept);
    }

    #[test]
    fn a_zero_filled_tail_is_torn_not_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.log");
        let mut bytes = frame(b"first");
        let whole = bytes.len();
        bytes.extend([0u8; 64]);
        std::fs::write(&path, &bytes).expect("write");
        let (_j, replay) = Journal::open(dir.path(), 16).expect("open");
        assert_eq!(replay.records, vec![b"first".to_vec()]);
        assert_eq!(replay.truncated_bytes, 64);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), whole as u64);
    }

    #[test]
    fn a_record_too_large_to_read_back_is_refused_without_failing_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = Journal::open(dir.path(), 16).expect("open");
        rt().block_on(async {
            let huge = vec![b'x'; MAX_RECORD + 1];
            assert!(j.append(&huge).await.expect("ack").is_err());
            assert!(
                j.append(b"y").await.expect("ack").is_err(),
                "nor one below a record"
            );
            assert!(!j.has_failed());
            j.append(b"fine").await.expect("ack").expect("written");
        });
        j.close();
        let (frames, _, _) = read_frames(&dir.path().join("journal.log")).expect("read");
        assert_eq!(frames, vec![b"fine".to_vec()]);
    }
}
