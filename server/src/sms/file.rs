//! The file gateway: one JSON line per message, appended at most once per message id,
//! whichever process sends it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use super::{BoxFuture, Gateway, Outgoing, SendError};

/// Appends each message as one line of JSON, `{"message","to","phase","text"}`, to a
/// file, and never appends a message id the file already holds.
///
/// The file itself is the record of what was sent, so idempotency holds across restarts
/// and across several processes appending to one file: every append takes an exclusive
/// `flock` on the file, first reads whatever other writers appended since this process
/// last looked, then appends only the ids not seen, in one write, and syncs before it
/// answers. Writers that do not take the lock break this; every slotd does.
///
/// The ids of every line are held in memory (about 50 bytes each): this gateway serves
/// drills, demos and carriers that collect files, not a national campaign's history.
pub struct FileGateway {
    path: PathBuf,
    ledger: Arc<Mutex<Ledger>>,
}

impl std::fmt::Debug for FileGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileGateway")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The open file and what this process has read of it.
struct Ledger {
    file: File,
    index: Index,
}

/// What this process knows the file holds.
struct Index {
    /// Every byte before this offset has been read; it always ends a complete line.
    read_to: u64,
    /// The message ids of the lines read so far, and of our own appends.
    sent: HashSet<String>,
}

/// The one field of a line that idempotency needs.
#[derive(Deserialize)]
struct Line {
    message: String,
}

/// Holds the exclusive `flock` on the file while alive. A guard rather than a pair of
/// calls, so that no early return (and no panic) can leave other processes blocked.
struct Exclusive<'a>(&'a File);

impl<'a> Exclusive<'a> {
    fn take(file: &'a File) -> io::Result<Self> {
        // flock (not fcntl) on Linux: it belongs to this open file, so two gateways on
        // one path in one process exclude each other too.
        file.lock()?;
        Ok(Self(file))
    }
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock() {
            // Closing the file releases it in the end; until then others wait.
            tracing::warn!(error = %e, "could not unlock the SMS gateway file");
        }
    }
}

impl FileGateway {
    /// Opens (creating it and its directories) the file at `path`, repairs a torn last
    /// line and reads the ids it holds. Blocking: call it at start.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut index = Index {
            read_to: 0,
            sent: HashSet::new(),
        };
        {
            let _lock = Exclusive::take(&file)?;
            index.catch_up(&file, &path)?;
        }
        Ok(Self {
            path,
            ledger: Arc::new(Mutex::new(Ledger { file, index })),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Ledger {
    /// Appends the messages of `batch` the file does not hold yet, durably.
    fn append(&mut self, batch: &[Outgoing], path: &Path) -> io::Result<()> {
        let _lock = Exclusive::take(&self.file)?;
        self.index.catch_up(&self.file, path)?;
        let mut fresh = HashSet::new();
        let mut lines = Vec::new();
        for m in batch {
            let id = m.message.as_str();
            if self.index.sent.contains(id) || !fresh.insert(id) {
                continue; // delivered before, or earlier in this batch
            }
            serde_json::to_writer(&mut lines, m)?;
            lines.push(b'\n');
        }
        if lines.is_empty() {
            return Ok(());
        }
        // Caught up under the lock: the file ends at `read_to`, and the append lands there.
        let end = self.index.read_to;
        let written = (&self.file)
            .write_all(&lines)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Take back a partial or unsynced append, so the retry writes it whole. Should
            // that fail too, the next catch-up reads (or repairs) whatever is left.
            if let Err(t) = self.file.set_len(end) {
                tracing::warn!(error = %t, path = %path.display(), "could not take back a failed SMS append");
            }
            return Err(e);
        }
        self.index.read_to = end + lines.len() as u64;
        self.index.sent.extend(fresh.into_iter().map(str::to_owned));
        Ok(())
    }
}

impl Index {
    /// Reads the lines appended since `read_to` and records their ids. Called under the
    /// lock, so no writer is mid-write: a last line without its newline was torn by a
    /// writer that died, and is cut off (its messages were never acknowledged, so their
    /// senders will send them again).
    fn catch_up(&mut self, file: &File, path: &Path) -> io::Result<()> {
        let len = file.metadata()?.len();
        if len < self.read_to {
            // Shrunk under us: someone truncated it by hand. Read it all again; what was
            // delivered stays delivered.
            tracing::warn!(path = %path.display(), "SMS gateway file shrank; rereading it");
            self.read_to = 0;
        }
        if len == self.read_to {
            return Ok(());
        }
        let mut reader = file;
        reader.seek(SeekFrom::Start(self.read_to))?;
        let mut bytes = Vec::new();
        reader.take(len - self.read_to).read_to_end(&mut bytes)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Line>(line) {
                Ok(line) => {
                    self.sent.insert(line.message);
                }
                // A line someone else wrote by hand: it names no message we could skip.
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "unreadable line in the SMS gateway file")
                }
            }
        }
        self.read_to += complete as u64;
        if complete < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len() - complete,
                "cutting off a torn last line of the SMS gateway file"
            );
            file.set_len(self.read_to)?;
        }
        Ok(())
    }
}

impl Gateway for FileGateway {
    fn name(&self) -> &'static str {
        "file"
    }

    /// All or nothing: one write per batch, so every message gets the same answer, and
    /// an IO error is [`SendError::Retry`] (a full disk frees up, a lock is released).
    fn send<'a>(&'a self, batch: &'a [Outgoing]) -> BoxFuture<'a, Vec<Result<(), SendError>>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let (ledger, path, owned) = (self.ledger.clone(), self.path.clone(), batch.to_vec());
            // flock may wait on another process, and the write syncs: off the runtime.
            let done = tokio::task::spawn_blocking(move || {
                // A panic mid-append leaves at worst lines not yet counted in `read_to`,
                // which the next catch-up reads: the ledger is usable as it stands.
                let mut ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
                ledger.append(&owned, &path)
            })
            .await;
            let result = match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(SendError::Retry(format!(
                    "appending to {}: {e}",
                    self.path.display()
                ))),
                Err(e) => Err(SendError::Retry(format!("SMS file append failed: {e}"))),
            };
            vec![result; batch.len()]
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn message(id: &str) -> Outgoing {
        Outgoing {
            message: id.to_owned(),
            to: "0912345678".to_owned(),
            phase: "p2".to_owned(),
            text: "【疫苗預約】您已符合第二期疫苗接種資格".to_owned(),
        }
    }

    fn batch(ids: &[&str]) -> Vec<Outgoing> {
        ids.iter().map(|id| message(id)).collect()
    }

    /// How many lines of the file carry each message id.
    fn counts(path: &Path) -> HashMap<String, usize> {
        let text = std::fs::read_to_string(path).expect("read gateway file");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "torn file: {text:?}"
        );
        let mut counts = HashMap::new();
        for line in text.lines() {
            let m: Outgoing = serde_json::from_str(line).expect("a JSON line");
            *counts.entry(m.message).or_insert(0) += 1;
        }
        counts
    }

    fn all_ok(results: &[Result<(), SendError>], n: usize) {
        assert_eq!(results.len(), n);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    #[tokio::test]
    async fn each_message_is_one_line_with_exactly_the_four_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("deep/er/sms.ndjson");
        let gateway = FileGateway::open(&path).expect("opens, creating directories");
        all_ok(&gateway.send(&batch(&["m1", "m2"])).await, 2);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(lines[0]).expect("an object");
        let mut keys: Vec<_> = first.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["message", "phase", "text", "to"]);
        assert_eq!(
            serde_json::from_str::<Outgoing>(lines[0]).expect("line"),
            message("m1")
        );
    }

    #[tokio::test]
    async fn duplicate_ids_are_acknowledged_but_written_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.ndjson");
        let gateway = FileGateway::open(&path).expect("opens");
        all_ok(&gateway.send(&batch(&["m1", "m1", "m2"])).await, 3);
        all_ok(&gateway.send(&batch(&["m2", "m3"])).await, 2);
        assert_eq!(
            counts(&path),
            HashMap::from([("m1".into(), 1), ("m2".into(), 1), ("m3".into(), 1)])
        );
        assert!(gateway.send(&[]).await.is_empty());
    }

    #[tokio::test]
    async fn reopening_after_a_restart_does_not_resend() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.ndjson");
        let before = FileGateway::open(&path).expect("opens");
        all_ok(&before.send(&batch(&["m1", "m2"])).await, 2);
        drop(before);
        let after = FileGateway::open(&path).expect("reopens");
        all_ok(&after.send(&batch(&["m1", "m2", "m3"])).await, 3);
        assert_eq!(
            counts(&path),
            HashMap::from([("m1".into(), 1), ("m2".into(), 1), ("m3".into(), 1)])
        );
    }

    #[tokio::test]
    async fn torn_last_line_is_cut_off_at_open_and_its_message_sent_again_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.ndjson");
        let whole = |id| serde_json::to_string(&message(id)).expect("json") + "\n";
        let intact = whole("m1") + &whole("m2");
        let torn = whole("m3");
        // A kill -9 in the middle of the append of m3 (mid-character, as it may be).
        let mut bytes = intact.clone().into_bytes();
        bytes.extend_from_slice(&torn.as_bytes()[..torn.len() / 2]);
        std::fs::write(&path, bytes).expect("write");
        let gateway = FileGateway::open(&path).expect("opens");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), intact);
        all_ok(&gateway.send(&batch(&["m2", "m3"])).await, 2);
        all_ok(&gateway.send(&batch(&["m3"])).await, 1);
        assert_eq!(
            counts(&path),
            HashMap::from([("m1".into(), 1), ("m2".into(), 1), ("m3".into(), 1)])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_writers_on_one_file_write_each_id_exactly_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.ndjson");
        // Two opens of one path: two open files, as two processes would have.
        let a = FileGateway::open(&path).expect("opens");
        let b = FileGateway::open(&path).expect("opens again");
        let ids: Vec<String> = (0..300).map(|i| format!("m{i:x}")).collect();
        for round in 0..30 {
            // Overlapping windows: b's batch starts halfway into a's.
            let window = |start: usize| -> Vec<Outgoing> {
                ids[start..(start + 10).min(ids.len())]
                    .iter()
                    .map(|id| message(id))
                    .collect()
            };
            let (first, second) = (window(round * 10), window(round * 10 + 5));
            let (ra, rb) = tokio::join!(a.send(&first), b.send(&second));
            all_ok(&ra, first.len());
            all_ok(&rb, second.len());
        }
        let counts = counts(&path);
        assert_eq!(counts.len(), ids.len());
        assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    }

    #[tokio::test]
    async fn writes_by_another_writer_are_read_before_appending() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sms.ndjson");
        let a = FileGateway::open(&path).expect("opens");
        let b = FileGateway::open(&path).expect("opens again");
        all_ok(&a.send(&batch(&["m1", "m2"])).await, 2);
        all_ok(&b.send(&batch(&["m2", "m3"])).await, 2);
        all_ok(&a.send(&batch(&["m3", "m4"])).await, 2);
        assert_eq!(
            counts(&path),
            HashMap::from([
                ("m1".into(), 1),
                ("m2".into(), 1),
                ("m3".into(), 1),
                ("m4".into(), 1)
            ])
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn write_failure_is_retry_for_every_message() {
        // Every write to /dev/full fails with ENOSPC.
        let gateway = FileGateway::open("/dev/full").expect("opens");
        let results = gateway.send(&batch(&["m1", "m2"])).await;
        assert_eq!(results.len(), 2);
        for r in results {
            assert!(matches!(r, Err(SendError::Retry(_))), "{r:?}");
        }
    }
}
