//! The SMS tail: reads the file gateway's NDJSON while the slotd instances append to it,
//! and tells which drill person got a text for which phase, and when. A person starts
//! booking only once the tail has seen their text: the drill's people "receive" it here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::Drill;

/// One line of the file gateway: `{"message","to","phase","text"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub message: String,
    pub to: String,
    pub phase: String,
}

/// Parses one line; `None` when it is not a whole gateway line (all four fields strings).
pub fn parse_line(line: &str) -> Option<Text> {
    /// The line, borrowed where it has no escapes; the text must be a string, and is
    /// not kept.
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        message: Cow<'a, str>,
        #[serde(borrow)]
        to: Cow<'a, str>,
        #[serde(borrow)]
        phase: Cow<'a, str>,
        #[serde(borrow, rename = "text")]
        _text: Cow<'a, str>,
    }
    let l: Line<'_> = serde_json::from_str(line).ok()?;
    Some(Text {
        message: l.message.into_owned(),
        to: l.to.into_owned(),
        phase: l.phase.into_owned(),
    })
}

/// The drill person a mobile number belongs to: person `n` registered `09` and `n` in
/// eight digits (see `journey::register`).
pub fn person_of_mobile(to: &str, people: usize) -> Option<usize> {
    let digits = to.strip_prefix("09")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<usize>().ok().filter(|&n| n < people)
}

/// Splits appended bytes into whole lines, keeping a partly written last line for the
/// next read (an instance may be between two writes of one line).
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        whole
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

/// What the tail has seen.
#[derive(Debug)]
pub struct TextLog {
    /// Lines read, and of them those that were not gateway lines, or named nobody of
    /// the drill.
    pub lines: u64,
    pub unreadable: u64,
    pub unknown_to: u64,
    /// Lines whose message id an earlier line already had: must stay 0.
    pub duplicates: u64,
    ids: HashSet<String>,
    pub per_phase: BTreeMap<String, u64>,
    /// When each person's text for the drill's phase was seen.
    pub received: Vec<Option<Instant>>,
    /// The first and the last text of the drill's phase.
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// Persons texted for the next phase (the carry-over).
    pub next: HashSet<usize>,
}

impl TextLog {
    pub fn new(people: usize) -> Self {
        Self {
            lines: 0,
            unreadable: 0,
            unknown_to: 0,
            duplicates: 0,
            ids: HashSet::new(),
            per_phase: BTreeMap::new(),
            received: vec![None; people],
            first: None,
            last: None,
            next: HashSet::new(),
        }
    }

    /// Texts seen for `phase`.
    pub fn of(&self, phase: &str) -> u64 {
        self.per_phase.get(phase).copied().unwrap_or(0)
    }

    /// Distinct message ids seen.
    pub fn unique(&self) -> u64 {
        self.ids.len() as u64
    }

    /// Takes one line read at `at`, for the drill's `phase` and `next` phase.
    pub fn record(&mut self, line: &str, phase: &str, next: &str, at: Instant) {
        self.lines += 1;
        let Some(t) = parse_line(line) else {
            self.unreadable += 1;
            return;
        };
        if !self.ids.insert(t.message) {
            self.duplicates += 1;
            return;
        }
        *self.per_phase.entry(t.phase.clone()).or_default() += 1;
        let Some(person) = person_of_mobile(&t.to, self.received.len()) else {
            self.unknown_to += 1;
            return;
        };
        if t.phase == phase {
            self.received[person].get_or_insert(at);
            self.first.get_or_insert(at);
            self.last = Some(at);
        } else if t.phase == next {
            self.next.insert(person);
        }
    }
}

/// Follows `path` every 20 ms until aborted, feeding `d.texts`.
pub fn spawn_tail(path: PathBuf, d: Arc<Drill>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = Lines::default();
        let mut offset = 0u64;
        let mut buf = Vec::new();
        let (phase, next) = (
            d.scenario.phase.to_string(),
            d.scenario.next_phase.to_string(),
        );
        loop {
            buf.clear();
            // Blocking reads of a local file, small and short: fine on a runtime thread.
            if let Ok(mut f) = std::fs::File::open(&path)
                && f.seek(SeekFrom::Start(offset)).is_ok()
                && let Ok(n) = f.read_to_end(&mut buf)
            {
                offset += n as u64;
            }
            if !buf.is_empty() {
                let now = Instant::now();
                let got = lines.push(&buf);
                if let Ok(mut log) = d.texts.lock() {
                    for l in &got {
                        log.record(l, &phase, &next, now);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"message":"m1","to":"0900000042","phase":"P1","text":"第01期 ..."}"#;

    #[test]
    fn a_gateway_line_parses_and_names_its_person() {
        let t = parse_line(LINE).expect("a gateway line");
        assert_eq!((t.message.as_str(), t.phase.as_str()), ("m1", "P1"));
        assert_eq!(person_of_mobile(&t.to, 100), Some(42));
        assert_eq!(person_of_mobile(&t.to, 42), None, "not a drill person");
        assert_eq!(person_of_mobile("0800000042", 100), None);
        assert_eq!(person_of_mobile("09000042", 100), None);
        assert_eq!(parse_line(r#"{"message":"m1","to":"0900000042"}"#), None);
        assert_eq!(parse_line("{\"message\":"), None);
    }

    #[test]
    fn a_line_written_in_two_pieces_is_read_once_whole() {
        let mut lines = Lines::default();
        let (a, b) = LINE.split_at(20);
        assert!(lines.push(a.as_bytes()).is_empty());
        let mut rest = b.to_string();
        rest.push('\n');
        rest.push_str(&LINE[..5]);
        assert_eq!(lines.push(rest.as_bytes()), vec![LINE.to_string()]);
        let mut end = LINE[5..].to_string();
        end.push('\n');
        assert_eq!(lines.push(end.as_bytes()), vec![LINE.to_string()]);
        assert!(lines.push(b"\n\n").is_empty(), "blank lines are skipped");
    }

    #[test]
    fn the_log_counts_texts_per_phase_and_catches_a_repeated_message() {
        let mut log = TextLog::new(100);
        let at = Instant::now();
        log.record(LINE, "P1", "P2", at);
        log.record(LINE, "P1", "P2", at);
        log.record(
            r#"{"message":"m2","to":"0900000007","phase":"P2","text":"t"}"#,
            "P1",
            "P2",
            at,
        );
        log.record(
            r#"{"message":"m3","to":"0911111111","phase":"P1","text":"t"}"#,
            "P1",
            "P2",
            at,
        );
        log.record("garbage", "P1", "P2", at);
        assert_eq!((log.lines, log.duplicates, log.unique()), (5, 1, 3));
        assert_eq!((log.unreadable, log.unknown_to), (1, 1));
        assert_eq!((log.of("P1"), log.of("P2")), (2, 1));
        assert_eq!(log.received[42], Some(at));
        assert!(log.received[7].is_none() && log.next.contains(&7));
    }
}
