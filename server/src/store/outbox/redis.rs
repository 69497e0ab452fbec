//! The Redis store's outbox: a Lua script per change, on the booking store's connection.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:phase:{phase}:invited` | set | the phase's invited set (shared with booking) |
//! | `{p}:phase:{phase}:settled` | hash | person → `at\tmessage` for settled invitations |
//! | `{p}:sms:seq` | string | message sequence; ids `m{seq:x}-{tag}` (see `message_id`) |
//! | `{p}:sms:msg:{id}` | hash | the message (`phase`, `person`, `to`, `at`, `state`, `attempts`, `due`, `error`) |
//! | `{p}:sms:due` | zset | queued and failed messages by due time (ms); a claim moves it to the lease's end |
//! | `{p}:sms:stats` | hash | `queued`, `sent`, `failed`, `dead` |
//! | `{p}:sms:ids` | list | every message id, oldest first (the audit) |

use std::sync::LazyLock;

use ::redis::Script;
use time::OffsetDateTime;

use super::{BoxFuture, Delivery, Invite, Message, MessageState, Outbox, OutboxStats, Settled};
use crate::domain::{IdNumber, PhaseId};
use crate::store::{RedisStore, StoreError, redis_bounded as bounded};

static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("settle.lua")));
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("claim.lua")));
static RECORD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("record.lua")));

/// Invitations per script call: about a millisecond of Redis time each.
const INVITES_PER_CALL: usize = 1_000;
/// Messages read per pipeline by the audit.
const READ_PIPELINE: usize = 1_000;
/// Bulk reads and settlement calls get at least this long.
const BULK: std::time::Duration = std::time::Duration::from_secs(30);

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("corrupt {what} in Redis: {detail}"))
}

fn field<'a>(fields: &'a [String], name: &str) -> Option<&'a str> {
    fields
        .chunks_exact(2)
        .find(|p| p[0] == name)
        .map(|p| p[1].as_str())
}

fn message(fields: &[String]) -> Result<Message, StoreError> {
    let get = |n: &str| field(fields, n).ok_or_else(|| corrupt("message", format!("no {n}")));
    let num = |n: &str| -> Result<i64, StoreError> {
        get(n)?
            .parse()
            .map_err(|e| corrupt("message", format!("{n}: {e}")))
    };
    Ok(Message {
        id: get("id")?.to_string(),
        phase: PhaseId::parse(get("phase")?).map_err(|e| corrupt("message", e))?,
        person: IdNumber::parse(get("person")?).map_err(|e| corrupt("message", e))?,
        to: get("to")?.to_string(),
        invited_at: num("at")?,
        state: serde_json::from_value(serde_json::Value::String(get("state")?.into()))
            .map_err(|e| corrupt("message", e))?,
        attempts: u32::try_from(num("attempts")?).unwrap_or(0),
        due_ms: num("due")?,
        error: field(fields, "error")
            .filter(|e| !e.is_empty())
            .map(str::to_owned),
    })
}

impl RedisStore {
    fn sms_key(&self, rest: &str) -> String {
        format!("{}:sms:{rest}", self.shared_connection().1)
    }

    fn phase_key(&self, phase: &str, rest: &str) -> String {
        format!("{}:phase:{phase}:{rest}", self.shared_connection().1)
    }
}

impl Outbox for RedisStore {
    fn settle(
        &self,
        phase: PhaseId,
        at: OffsetDateTime,
        invites: Vec<Invite>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let (conn, prefix, _) = self.shared_connection();
            let mut added = 0;
            for chunk in invites.chunks(INVITES_PER_CALL) {
                let mut inv = SETTLE.prepare_invoke();
                inv.key(self.phase_key(phase.as_str(), "invited"))
                    .key(self.phase_key(phase.as_str(), "settled"))
                    .key(self.sms_key("seq"))
                    .key(self.sms_key("due"))
                    .key(self.sms_key("stats"))
                    .key(self.sms_key("ids"))
                    .arg(&prefix)
                    .arg(phase.as_str())
                    .arg(at.unix_timestamp());
                for i in chunk {
                    inv.arg(i.person.to_string())
                        .arg(&i.to)
                        .arg(super::message_tag(phase.as_str(), i.person));
                }
                let mut c = conn.clone();
                added += bounded::<u64>("settle", BULK, inv.invoke_async(&mut c)).await?;
            }
            Ok(added)
        })
    }

    fn claim(
        &self,
        now_ms: i64,
        max: usize,
        lease_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<Message>, StoreError>> {
        Box::pin(async move {
            let (mut conn, prefix, timeout) = self.shared_connection();
            let mut inv = CLAIM.prepare_invoke();
            inv.key(self.sms_key("due"))
                .arg(&prefix)
                .arg(now_ms)
                .arg(max)
                .arg(lease_ms);
            let raw: Vec<Vec<String>> =
                bounded("sms_claim", timeout, inv.invoke_async(&mut conn)).await?;
            raw.iter().map(|f| message(f)).collect()
        })
    }

    fn record(&self, outcomes: Vec<(String, Delivery)>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if outcomes.is_empty() {
                return Ok(());
            }
            let (mut conn, prefix, timeout) = self.shared_connection();
            let mut inv = RECORD.prepare_invoke();
            inv.key(self.sms_key("due"))
                .key(self.sms_key("stats"))
                .arg(&prefix);
            for (id, d) in &outcomes {
                let (state, attempts, due, error) = match d {
                    Delivery::Sent => (MessageState::Sent, 0, 0, ""),
                    Delivery::Retry {
                        attempts,
                        due_ms,
                        error,
                    } => (MessageState::Failed, *attempts, *due_ms, error.as_str()),
                    Delivery::Dead { attempts, error } => {
                        (MessageState::Dead, *attempts, 0, error.as_str())
                    }
                };
                inv.arg(id)
                    .arg(state.as_str())
                    .arg(attempts)
                    .arg(due)
                    .arg(error);
            }
            bounded::<u64>("sms_record", timeout, inv.invoke_async(&mut conn)).await?;
            Ok(())
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<OutboxStats, StoreError>> {
        Box::pin(async move {
            let (mut conn, _, timeout) = self.shared_connection();
            let counts: Vec<Option<i64>> = bounded(
                "sms_stats",
                timeout,
                ::redis::cmd("HMGET")
                    .arg(self.sms_key("stats"))
                    .arg(&["queued", "sent", "failed", "dead"][..])
                    .query_async(&mut conn),
            )
            .await?;
            let n = |i: usize| counts.get(i).copied().flatten().unwrap_or(0).max(0) as u64;
            Ok(OutboxStats {
                queued: n(0),
                sent: n(1),
                failed: n(2),
                dead: n(3),
            })
        })
    }

    fn messages(&self) -> BoxFuture<'_, Result<Vec<Message>, StoreError>> {
        Box::pin(async move {
            let (conn, prefix, _) = self.shared_connection();
            let mut c = conn.clone();
            let ids: Vec<String> = bounded(
                "sms_ids",
                BULK,
                ::redis::cmd("LRANGE")
                    .arg(self.sms_key("ids"))
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c),
            )
            .await?;
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(READ_PIPELINE) {
                let mut pipe = ::redis::pipe();
                for id in chunk {
                    pipe.cmd("HGETALL").arg(format!("{prefix}:sms:msg:{id}"));
                }
                let mut c = conn.clone();
                let all: Vec<Vec<String>> =
                    bounded("sms_messages", BULK, pipe.query_async(&mut c)).await?;
                for (id, fields) in chunk.iter().zip(all) {
                    if fields.is_empty() {
                        return Err(corrupt("outbox", format!("message {id} has no record")));
                    }
                    out.push(message(&fields)?);
                }
            }
            Ok(out)
        })
    }

    fn settled(&self) -> BoxFuture<'_, Result<Vec<Settled>, StoreError>> {
        Box::pin(async move {
            let (conn, _, _) = self.shared_connection();
            let mut out = Vec::new();
            for p in &crate::store::Store::catalog(self).phases {
                let phase = p.phase.id.clone();
                let mut c = conn.clone();
                let all: Vec<(String, String)> = bounded(
                    "sms_settled",
                    BULK,
                    ::redis::cmd("HGETALL")
                        .arg(self.phase_key(phase.as_str(), "settled"))
                        .query_async(&mut c),
                )
                .await?;
                for (person, v) in all {
                    let (at, message) = v
                        .split_once('\t')
                        .ok_or_else(|| corrupt("settled invitation", &v))?;
                    out.push(Settled {
                        phase: phase.clone(),
                        person: IdNumber::parse(&person).map_err(|e| corrupt("settled", e))?,
                        at: at.parse().map_err(|e| corrupt("settled", e))?,
                        message: message.to_string(),
                    });
                }
            }
            out.sort_by_key(|s| super::message_seq(&s.message));
            Ok(out)
        })
    }
}
