//! The outbox: invitations made by settlement, each with the one text message that
//! tells the person, and the messages' delivery state.
//!
//! - [`Outbox`]: the trait, object-safe; implemented by the booking stores themselves,
//!   because an invitation and its message must be written together with the phase's
//!   invited set that booking checks: one journal record (embedded) or one Lua script
//!   (Redis). A crash can never leave an invitation without its message or the reverse.
//! - [`Book`]: the in-memory outbox of the embedded store.
//! - [`contract`]: the behaviour every backend shows.
//!
//! Delivery is claimed under a lease: `claim` hands a due message to one dispatcher and
//! makes it due again only when the lease runs out, so with many instances on one Redis
//! exactly one dispatcher holds a message at a time. A dispatcher that dies mid-send
//! leaves the message to be claimed again after its lease; the gateways are idempotent
//! per message id, so the person still gets one text.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;
pub use super::identity::BoxFuture;
use crate::domain::{IdNumber, PhaseId};

mod book;
pub mod contract;
mod embedded;
mod redis;

pub use book::Book;

/// A person settlement invites, with where to text them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub person: IdNumber,
    /// `09xxxxxxxx`.
    pub to: String,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageState {
    /// Waiting for its first send (or claimed and being sent).
    Queued,
    /// The last send failed; due again at `due_ms`.
    Failed,
    Sent,
    /// Given up: a permanent refusal or too many failures.
    Dead,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Failed => "failed",
            MessageState::Sent => "sent",
            MessageState::Dead => "dead",
        }
    }
}

/// One invitation message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `m{seq:x}-{tag}` (see [`message_id`]): the gateways' idempotency key.
    pub id: String,
    pub phase: PhaseId,
    pub person: IdNumber,
    pub to: String,
    /// Unix seconds of the invitation (settlement time).
    pub invited_at: i64,
    pub state: MessageState,
    /// Failed sends so far.
    pub attempts: u32,
    /// When the message is next due (unix ms); 0 for at once.
    pub due_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Failed; try again at `due_ms`. `attempts` is the count including this one.
    Retry {
        attempts: u32,
        due_ms: i64,
        error: String,
    },
    /// Given up.
    Dead {
        attempts: u32,
        error: String,
    },
}

/// The outbox in numbers (`GET /v1/admin/sms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStats {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
    pub dead: u64,
}

/// An invitation settlement made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub phase: PhaseId,
    pub person: IdNumber,
    /// Unix seconds.
    pub at: i64,
    pub message: String,
}

/// Settled invitations and their messages.
pub trait Outbox: Send + Sync + std::fmt::Debug + 'static {
    /// Invites each person not yet in the phase's invited set, queueing their message
    /// with the invitation, atomically per invitation; answers how many were new.
    fn settle(
        &self,
        phase: PhaseId,
        at: OffsetDateTime,
        invites: Vec<Invite>,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Up to `max` messages due at `now_ms`, each leased to the caller until
    /// `now_ms + lease_ms`.
    fn claim(
        &self,
        now_ms: i64,
        max: usize,
        lease_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<Message>, StoreError>>;

    /// Records what became of sends. A message already sent or dead stays so.
    fn record(&self, outcomes: Vec<(String, Delivery)>) -> BoxFuture<'_, Result<(), StoreError>>;

    fn stats(&self) -> BoxFuture<'_, Result<OutboxStats, StoreError>>;

    /// Every message (the audit).
    fn messages(&self) -> BoxFuture<'_, Result<Vec<Message>, StoreError>>;

    /// Every settled invitation (the audit).
    fn settled(&self) -> BoxFuture<'_, Result<Vec<Settled>, StoreError>>;
}

/// The tag that ends a message id: the first 8 hex digits of SHA-256 over
/// `phase:person`. A store that starts again from sequence 1 (an ephemeral one, a
/// flushed Redis) therefore never reuses the id of an earlier store's text to someone
/// else, which an idempotent gateway would skip as already sent.
pub fn message_tag(phase: &str, person: IdNumber) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{phase}:{person}").as_bytes());
    hex::encode(&d[..4])
}

/// The message id of sequence number `seq` to `person` for `phase`: `m{seq:x}-{tag}`.
pub fn message_id(seq: u64, phase: &str, person: IdNumber) -> String {
    format!("m{seq:x}-{}", message_tag(phase, person))
}

/// The sequence number of a message id.
pub fn message_seq(id: &str) -> Option<u64> {
    let hex = id.strip_prefix('m')?;
    let hex = hex.split_once('-').map_or(hex, |(h, _)| h);
    u64::from_str_radix(hex, 16).ok()
}
