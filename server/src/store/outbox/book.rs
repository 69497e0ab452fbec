//! `Book`: the embedded store's outbox in memory: messages, their due order, and the
//! settled invitations. The store holds it under one mutex and journals every change.

use std::collections::{BTreeSet, HashMap};

use super::{Delivery, Message, MessageState, OutboxStats, Settled, message_id};
use crate::domain::{IdNumber, PhaseId};

/// The in-memory outbox.
#[derive(Debug, Default)]
pub struct Book {
    messages: HashMap<u64, Message>,
    /// `(due ms, seq)` of every queued or failed message.
    due: BTreeSet<(i64, u64)>,
    /// `(phase, person)` → `(at, message seq)`.
    settled: HashMap<(PhaseId, u64), (i64, u64)>,
    last: u64,
    stats: OutboxStats,
}

fn seq_of(id: &str) -> Option<u64> {
    super::message_seq(id)
}

impl Book {
    /// The next message sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Adds a settled invitation with its queued message `seq`.
    pub fn add(&mut self, phase: PhaseId, person: IdNumber, to: String, at: i64, seq: u64) {
        self.last = self.last.max(seq);
        if self.messages.contains_key(&seq) {
            // Replayed twice (a snapshot taken while settlement ran): already here.
            return;
        }
        self.settled
            .insert((phase.clone(), person.packed()), (at, seq));
        self.messages.insert(
            seq,
            Message {
                id: message_id(seq, phase.as_str(), person),
                phase,
                person,
                to,
                invited_at: at,
                state: MessageState::Queued,
                attempts: 0,
                due_ms: 0,
                error: None,
            },
        );
        self.due.insert((0, seq));
        self.stats.queued += 1;
    }

    /// Leases up to `max` due messages until `now_ms + lease_ms`.
    pub fn claim(&mut self, now_ms: i64, max: usize, lease_ms: i64) -> Vec<Message> {
        let ready: Vec<(i64, u64)> = self
            .due
            .iter()
            .take_while(|(d, _)| *d <= now_ms)
            .take(max)
            .copied()
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            self.due.remove(&key);
            if let Some(m) = self.messages.get_mut(&key.1) {
                // Due again when the lease runs out, unless an outcome is recorded first.
                m.due_ms = now_ms + lease_ms;
                self.due.insert((m.due_ms, key.1));
                out.push(m.clone());
            }
        }
        out
    }

    fn count(&mut self, state: MessageState, by: i64) {
        let c = match state {
            MessageState::Queued => &mut self.stats.queued,
            MessageState::Failed => &mut self.stats.failed,
            MessageState::Sent => &mut self.stats.sent,
            MessageState::Dead => &mut self.stats.dead,
        };
        *c = c.saturating_add_signed(by);
    }

    /// Applies one outcome; `false` when it changed nothing (unknown, already final).
    pub fn record(&mut self, id: &str, outcome: &Delivery) -> bool {
        let Some(seq) = seq_of(id) else { return false };
        let Some(m) = self.messages.get_mut(&seq) else {
            return false;
        };
        let before = m.state;
        if matches!(before, MessageState::Sent | MessageState::Dead) {
            return false;
        }
        self.due.remove(&(m.due_ms, seq));
        match outcome {
            Delivery::Sent => {
                m.state = MessageState::Sent;
                m.due_ms = 0;
                m.error = None;
            }
            Delivery::Retry {
                attempts,
                due_ms,
                error,
            } => {
                m.state = MessageState::Failed;
                m.attempts = *attempts;
                m.due_ms = *due_ms;
                m.error = Some(error.clone());
                self.due.insert((*due_ms, seq));
            }
            Delivery::Dead { attempts, error } => {
                m.state = MessageState::Dead;
                m.due_ms = 0;
                m.attempts = *attempts;
                m.error = Some(error.clone());
            }
        }
        let after = m.state;
        self.count(before, -1);
        self.count(after, 1);
        true
    }

    pub fn stats(&self) -> OutboxStats {
        self.stats
    }

    pub fn messages(&self) -> Vec<Message> {
        let mut all: Vec<Message> = self.messages.values().cloned().collect();
        all.sort_by_key(|m| seq_of(&m.id));
        all
    }

    pub fn settled(&self) -> Vec<Settled> {
        let mut all: Vec<Settled> = self
            .settled
            .iter()
            .filter_map(|((phase, person), &(at, seq))| {
                Some(Settled {
                    phase: phase.clone(),
                    person: IdNumber::from_packed(*person)?,
                    at,
                    message: message_id(seq, phase.as_str(), IdNumber::from_packed(*person)?),
                })
            })
            .collect();
        all.sort_by_key(|s| seq_of(&s.message));
        all
    }
}
