//! `RedisStore`: one Redis shared by many slotd instances; Lua scripts make every decision.
//!
//! # Who decides what
//! Each write is one Lua script (`redis/*.lua`), run atomically by Redis: `reserve.lua`
//! checks the idempotency key, the person's live booking in the phase, the invitation and
//! the seats, then takes a seat, numbers the booking, writes its record and appends it to
//! the phase's ledger; `change.lua` takes the new seat before it returns the old one;
//! `cancel.lua` returns the seat; `calendar.lua` applies capacity changes all or nothing.
//! Scripts are sent by SHA (`EVALSHA`) and reloaded on `NOSCRIPT`, so a restarted Redis
//! needs nothing from us.
//!
//! Each instance keeps a [`Mirror`] of the calendar and of every slot's seats: updated
//! from script replies and by a background refresh every 250 ms, which reads the phase
//! ledgers since its last round and re-reads only the counters of the slots they name
//! (every counter every 20 rounds, pipelined `MGET`s, on a connection of its own). It
//! serves availability, and, with the fast path on, answers "slot full" for a slot it
//! knows is full without a round trip. The mirror is never the authority: only a script
//! takes a seat, so a stale mirror can answer "full" a little early but never overbook.
//!
//! Concurrent requests share one multiplexed, pipelined connection
//! ([`ConnectionManager`], which also reconnects by itself). Every call runs under the
//! configured timeout: a Redis that is down or stuck answers [`StoreError::Unavailable`]
//! within it, never a hang.
//!
//! # Key layout (`{p}` is the prefix, default `slotd`)
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:calendar` | string | the merged calendar, JSON |
//! | `{p}:calendar:version` | string | bumped by every calendar change; instances reload on change |
//! | `{p}:seq` | string | booking sequence; booking `r{seq:x}`, code `human_code(seq)` |
//! | `{p}:epochs` | set | run ids of Redis seen; a new one moves `seq` forward (`epoch.lua`) |
//! | `{p}:rev` | string | bumped by every change of a seat counter; orders the mirror |
//! | `{p}:slot:{slot}:capacity` | string | seats in total |
//! | `{p}:slot:{slot}:remaining` | string | seats free; never below 0 |
//! | `{p}:booking:{id}` | hash | the booking record (see [`record`]) |
//! | `{p}:person:{id}:bookings` | list | the person's booking ids, oldest first |
//! | `{p}:person:{id}:live` | hash | phase → the person's live booking in it |
//! | `{p}:person:{id}:keys` | hash | idempotency key → `booking\tfingerprint` |
//! | `{p}:person:{id}:keyorder` | list | those keys, oldest first; 16 are kept |
//! | `{p}:phase:{phase}:invited` | set | invited id numbers |
//! | `{p}:person:{id}:keys`, `…:keyorder` | | expire a day after the person's last keyed write |
//! | `{p}:phase:{phase}:ledger` | stream | `booked` / `changed` (with the slot left) / `cancelled` / `attended` (with the status before) / `no-show` events; trimmed to `--ledger-retention-secs` behind the newest |
//! | `{p}:phase:{phase}:bookings` | list | the phase's booking ids in booking order |
//!
//! # Redis Cluster (not built)
//! A script may only touch keys of one hash slot. Person keys would carry the tag
//! `{p}:person:{{A123456789}}:…` and slot counters `{p}:slot:{{slot}}:…`, but `reserve`
//! touches both, plus the phase's invited set, ledger and the global sequence. The
//! simple mapping tags every key of a phase with the phase (`{p}:{{01}}:…`; booking ids
//! and the sequence per phase): each phase lives on one shard, phases spread over
//! shards, and nothing else changes. Spreading one phase over shards would need per-shard
//! seat quotas for each slot and the person's phase marker on the person's shard, taken
//! first and released if no seat is found: a two-step protocol this design avoids.
//!
//! # Durability
//! `fast` expects AOF with `everysec`: a Redis crash can lose about the last second of
//! acknowledged bookings. `durable` checks at connect that Redis runs `appendonly yes`
//! and `appendfsync always` (Redis then writes and fsyncs each script's effects before it
//! replies) and refuses to start otherwise. Redis 7.0 has no `WAITAOF`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, Value};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::{
    AttendOutcome, CancelOutcome, Change, ChangeOutcome, CloseOut, LoadReport, Reserve,
    ReserveOutcome, Store, StoreError,
};
use crate::audit::{AuditReport, audit};
use crate::catalog::Catalog;
use crate::config::Durability;
use crate::domain::{Booking, BookingId, Calendar, CalendarError, IdNumber, PhaseId, SlotId};
use crate::inventory::{Inventory, SlotIndex};
use crate::metrics as m;

mod keys;
mod mirror;
mod record;

use keys::Keys;
use mirror::{Counters, Mirror};
use record::Event;

/// Idempotency keys remembered per person, as in the embedded store.
const KEYS_PER_PERSON: usize = 16;
/// A person's remembered keys expire this long after the last one was used (Redis 7.0
/// expires a whole hash, not its fields).
const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How often the mirror is refreshed from Redis: the most a counter lags other instances.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_millis(250);
/// Refresh rounds after which every counter is read again, whatever the ledgers say.
const FULL_READ_EVERY: u32 = 20;
/// Ledger entries one incremental round reads; more means a backlog: read everything.
const CHANGES_PER_ROUND: usize = 20_000;
/// Keys per `MGET`: large enough to amortise the round trip, small enough that one
/// command never blocks Redis for more than about a tenth of a millisecond.
const MGET_CHUNK: usize = 1_000;
/// Members per `SADD`, and `SADD`s per round trip, when loading invitations.
const INVITE_CHUNK: usize = 10_000;
const INVITE_PIPELINE: usize = 8;
/// Ledger entries per `XRANGE` page, and record reads per round trip, in the audit.
const LEDGER_PAGE: usize = 10_000;
const RECORD_PIPELINE: usize = 1_000;
/// Bookings decided per `close_out.lua` call: each call holds Redis for about a millisecond.
const CLOSE_OUT_BATCH: usize = 1_000;
/// Requests queued towards the connection before callers wait; a surge has thousands in
/// flight and each waits under the call timeout anyway.
const PIPELINE_BUFFER: usize = 4_096;
/// Reconnection: attempts per round, and the longest pause between two, so a Redis that
/// comes back is found within about half a second.
const RECONNECT_RETRIES: usize = 3;
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Calendar loads that lost a race with another instance's load are merged again.
const LOAD_ATTEMPTS: usize = 5;
/// The least time given to bulk round trips: a national calendar (tens of thousands of
/// slots) in one script, every counter in one pipeline, a page of invitations. They are
/// admin and background work; requests are held to the configured timeout.
const BULK_TIMEOUT: Duration = Duration::from_secs(30);

/// The Lua scripts, hashed once.
#[derive(Debug)]
struct Scripts {
    reserve: Script,
    change: Script,
    cancel: Script,
    calendar: Script,
    attend: Script,
    close_out: Script,
    epoch: Script,
    index: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            reserve: Script::new(include_str!("redis/reserve.lua")),
            change: Script::new(include_str!("redis/change.lua")),
            cancel: Script::new(include_str!("redis/cancel.lua")),
            calendar: Script::new(include_str!("redis/calendar.lua")),
            attend: Script::new(include_str!("redis/attend.lua")),
            close_out: Script::new(include_str!("redis/close_out.lua")),
            epoch: Script::new(include_str!("redis/epoch.lua")),
            index: Script::new(include_str!("redis/index.lua")),
        }
    }
}

/// Names of every slot's counters, by slot index; grows as the catalog grows (a merge
/// only appends slots, so an index keeps its names).
#[derive(Debug, Default)]
struct SlotKeys {
    capacity: Vec<String>,
    remaining: Vec<String>,
}

impl SlotKeys {
    fn truncate(&mut self, slots: usize) {
        self.capacity.truncate(slots);
        self.remaining.truncate(slots);
    }

    fn cover(&mut self, keys: &Keys, catalog: &Catalog) {
        for s in &catalog.slots[self.remaining.len().min(catalog.slots.len())..] {
            self.capacity.push(keys.capacity(s.slot.id.as_str()));
            self.remaining.push(keys.remaining(s.slot.id.as_str()));
        }
    }
}

/// What the store and its refresh task share.
#[derive(Debug)]
struct Inner {
    conn: ConnectionManager,
    /// The background refresh's own connection: its large `MGET` pipelines would
    /// otherwise queue the request path's scripts behind them on the shared socket.
    refresh_conn: ConnectionManager,
    /// Refresh rounds since the last full read of the counters.
    quiet_rounds: std::sync::atomic::AtomicU32,
    /// Where the incremental refresh goes on reading each phase's ledger: `(ledger key,
    /// last entry id seen)`. `None` until a full read has set them (and after a reload),
    /// which makes the next round a full read. Only the refresh task touches it, under
    /// the calendar lock.
    cursors: std::sync::Mutex<Option<Vec<(String, String)>>>,
    keys: Keys,
    /// Each request-path round trip (reserve, change, cancel, bookings, ping).
    timeout: Duration,
    /// Each bulk round trip: `max(timeout, BULK_TIMEOUT)`.
    bulk_timeout: Duration,
    fast_path: bool,
    mirror: Mirror,
    scripts: Scripts,
    /// One calendar change or counter sync at a time in this instance: a load, a reload
    /// and a refresh each read Redis and then swap the catalog, and two of them
    /// interleaving could swap an older catalog over a newer one. A tokio mutex, because
    /// it is held across the Redis round trips of that one sequence; requests never take it.
    calendar: Mutex<SlotKeys>,
    /// Whether this Redis run's id has been checked against the sequence (see
    /// `epoch.lua`). Any connection error clears it: Redis may have restarted, and the
    /// next reserve checks again before it numbers a booking.
    epoch_checked: std::sync::atomic::AtomicBool,
    /// How much ledger is kept behind its newest entry, in milliseconds.
    ledger_retention_ms: std::sync::atomic::AtomicU64,
    /// Replicas that must hold a write before it is acknowledged (`WAIT`), and how
    /// long to wait for them, in milliseconds; 0 replicas: no wait.
    wait_replicas: std::sync::atomic::AtomicU32,
    wait_timeout_ms: std::sync::atomic::AtomicU64,
    /// Phases whose booking list is known complete (see `index.lua`), and phases whose
    /// list was found shorter than their seats taken (warned once; not trimmed).
    indexed: std::sync::Mutex<HashSet<String>>,
    short_lists: std::sync::Mutex<HashSet<String>>,
    /// Audits started by this instance: names its pins apart.
    audits: std::sync::atomic::AtomicU64,
}

/// How long an audit's pin holds back trimming at most.
const AUDIT_PIN_LIFETIME: Duration = Duration::from_secs(3_600);

/// How much ledger is kept behind its newest entry unless configured.
pub const DEFAULT_LEDGER_RETENTION: Duration = Duration::from_secs(600);

/// Where an audit cut a phase: its ledger's last entry then (`None`: none yet) and how
/// many bookings its booking list held.
#[derive(Debug, Clone)]
struct Cut {
    last: Option<String>,
    len: usize,
}

/// How far the booking sequence moves after a Redis restart: far above the bookings of
/// the second a fast-profile crash can lose (and 300 restarts still leave codes unique).
const EPOCH_MARGIN: u64 = 1_000_000;

/// The Redis store. See the module documentation.
#[derive(Debug)]
pub struct RedisStore {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    /// The refresh task; taken and awaited by [`Store::shutdown`], aborted on drop.
    refresher: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Sorts a Redis failure into "try again later" and "something is wrong".
fn classify(e: &RedisError) -> StoreError {
    let unavailable = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
        // Out of memory, cannot persist (MISCONF), busy with a script, too few replicas.
        || matches!(e.code(), Some("OOM" | "MISCONF" | "BUSY" | "NOREPLICAS"));
    if unavailable {
        StoreError::Unavailable(format!("Redis: {e}"))
    } else {
        StoreError::Internal(format!("Redis: {e}"))
    }
}

fn parse_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("unexpected Redis reply to {what}: {e}"))
}

/// Decodes one value of a pipeline's reply.
fn decode<T: ::redis::FromRedisValue>(what: &str, v: Option<Value>) -> Result<T, StoreError> {
    ::redis::from_redis_value(v.unwrap_or(Value::Nil)).map_err(|e| parse_error(what, e))
}

/// Decodes the `MGET` replies of one pipeline section, `n` values in all.
fn decode_counts(
    values: &mut impl Iterator<Item = Value>,
    n: usize,
) -> Result<Vec<Option<u32>>, StoreError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.div_ceil(MGET_CHUNK) {
        out.extend(decode::<Vec<Option<u32>>>("MGET", values.next())?);
    }
    if out.len() != n {
        return Err(parse_error(
            "MGET",
            format!("{} values for {n} keys", out.len()),
        ));
    }
    Ok(out)
}

fn add_mgets(pipe: &mut ::redis::Pipeline, keys: &[String]) -> usize {
    let chunks = keys.chunks(MGET_CHUNK);
    let n = chunks.len();
    for chunk in chunks {
        pipe.cmd("MGET").arg(chunk);
    }
    n
}

/// A ledger page or tail: `(entry id, fields)`.
type Entries = Vec<(String, Vec<String>)>;

/// Runs one Redis round trip under `limit`, with its metrics; shared by every store on
/// this connection.
pub(crate) async fn bounded<T>(
    op: &'static str,
    limit: Duration,
    request: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    // Dropping a request at the limit is safe on the multiplexed connection: its
    // reply, if one comes, is read and discarded in order. Whether a write that timed
    // out took effect is unknown to the caller, as with any lost reply; a retry with
    // the same Idempotency-Key (or the person's booking list) tells.
    let result = match tokio::time::timeout(limit, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "Redis did not answer within {} ms",
            limit.as_millis()
        ))),
    };
    metrics::histogram!(m::STORE_ROUND_TRIP_SECONDS, "op" => op)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(m::STORE_ERRORS, "op" => op).increment(1);
    }
    result
}

impl Inner {
    /// Runs one request-path Redis round trip under the timeout, with its metrics.
    async fn call<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        self.call_within(op, self.timeout, request).await
    }

    /// Runs one bulk round trip (see [`BULK_TIMEOUT`]).
    async fn bulk<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        self.call_within(op, self.bulk_timeout, request).await
    }

    async fn call_within<T>(
        &self,
        op: &'static str,
        limit: Duration,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = bounded(op, limit, request).await;
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.epoch_checked
                .store(false, std::sync::atomic::Ordering::Release);
        }
        result
    }

    /// With replicas required ([`RedisStore::set_replication`]): waits until that many
    /// replicas hold every write Redis applied before this call. `WAIT` waits for the
    /// calling connection's last *replicated* write, which a read-only answer (a replay
    /// found by another instance) or a fresh connection after a reconnect does not move:
    /// so a tiny write (`INCR` of a barrier key) goes first in the same pipeline, and
    /// since replication is in order, a replica that holds it holds everything before.
    /// `WAIT` blocks the shared connection meanwhile, so what is queued behind it
    /// (bookings, logins, registrations) shares the wait.
    async fn replicated(&self, op: &'static str) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let want = self.wait_replicas.load(Relaxed);
        if want == 0 {
            return Ok(());
        }
        let wait_ms = self.wait_timeout_ms.load(Relaxed);
        let mut conn = self.conn.clone();
        let limit = self.timeout + Duration::from_millis(wait_ms);
        let (acked,): (u32,) = self
            .call_within(
                op,
                limit,
                ::redis::pipe()
                    .cmd("INCR")
                    .arg(self.keys.replication_barrier())
                    .ignore()
                    .cmd("WAIT")
                    .arg(want)
                    .arg(wait_ms)
                    .query_async(&mut conn),
            )
            .await?;
        if acked < want {
            metrics::counter!(m::STORE_ERRORS, "op" => op).increment(1);
            return Err(StoreError::Unavailable(format!(
                "{acked} of {want} Redis replicas confirmed the write within {wait_ms} ms; \
                 it may still be kept (a retry with the same Idempotency-Key finds it)"
            )));
        }
        Ok(())
    }

    /// Before numbering a booking: if Redis may have restarted since the last check,
    /// reads its run id and lets `epoch.lua` move the sequence past a lost second.
    async fn ensure_epoch(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.epoch_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let info: String = self
            .call(
                "epoch",
                ::redis::cmd("INFO").arg("server").query_async(&mut conn),
            )
            .await?;
        let run_id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(str::trim)
            .ok_or_else(|| parse_error("INFO server", "no run_id"))?
            .to_string();
        let mut invocation = self.scripts.epoch.prepare_invoke();
        invocation
            .key(self.keys.epochs())
            .key(self.keys.sequence())
            .arg(&run_id)
            .arg(EPOCH_MARGIN);
        let moved: u64 = self
            .call("epoch", invocation.invoke_async(&mut conn))
            .await?;
        if moved > 0 {
            tracing::warn!(
                run_id,
                moved,
                "Redis restarted: the booking sequence moved past what a lost second may have issued"
            );
        }
        self.epoch_checked.store(true, Ordering::Release);
        Ok(())
    }

    /// The calendar and its version as Redis holds them, read in one `MGET` (atomic).
    async fn stored_calendar(&self) -> Result<(Option<Calendar>, u64), StoreError> {
        let mut conn = self.conn.clone();
        let (json, version): (Option<String>, Option<u64>) = self
            .bulk(
                "calendar",
                ::redis::cmd("MGET")
                    .arg(self.keys.calendar())
                    .arg(self.keys.calendar_version())
                    .query_async(&mut conn),
            )
            .await?;
        let calendar = json
            .map(|j| serde_json::from_str::<Calendar>(&j))
            .transpose()
            .map_err(|e| {
                StoreError::Internal(format!("the calendar in Redis does not parse: {e}"))
            })?;
        Ok((calendar, version.unwrap_or(0)))
    }

    /// Reloads the calendar if Redis has another version. Caller holds `calendar`.
    async fn reload(&self, slot_keys: &mut SlotKeys) -> Result<(), StoreError> {
        let (calendar, version) = self.stored_calendar().await?;
        match calendar {
            Some(c) if version != self.mirror.version() => self.adopt(slot_keys, &c, version).await,
            _ => Ok(()),
        }
    }

    /// Lays a calendar from Redis over this instance's catalog, reads every counter, then
    /// publishes the catalog: counters first, so a slot is never visible without its seats.
    /// Merging over our own catalog keeps every slot at its index. Caller holds `calendar`.
    async fn adopt(
        &self,
        slot_keys: &mut SlotKeys,
        calendar: &Calendar,
        version: u64,
    ) -> Result<(), StoreError> {
        let published = self.mirror.catalog.load_full();
        let (next, _) = published.merge(calendar).map_err(|e| {
            StoreError::Internal(format!(
                "the calendar in Redis does not lay over this instance's: {e}"
            ))
        })?;
        if let Err(e) = self.sync_counters(slot_keys, &next).await {
            // Names past the published catalog belong to this attempt's indices; the next
            // attempt may merge a newer calendar and number its new slots differently.
            slot_keys.truncate(published.slots.len());
            return Err(e);
        }
        self.mirror.catalog.store(Arc::new(next));
        self.mirror.set_version(version);
        Ok(())
    }

    /// Reads every slot's capacity and remaining seats into the mirror, in one pipeline.
    async fn sync_counters(
        &self,
        slot_keys: &mut SlotKeys,
        catalog: &Catalog,
    ) -> Result<(), StoreError> {
        let n = catalog.slots.len();
        slot_keys.cover(&self.keys, catalog);
        let mut pipe = ::redis::pipe();
        pipe.cmd("GET").arg(self.keys.revision());
        let mut commands = 1;
        if n > 0 {
            commands += add_mgets(&mut pipe, &slot_keys.capacity[..n]);
            commands += add_mgets(&mut pipe, &slot_keys.remaining[..n]);
        }
        let mut conn = self.conn.clone();
        let values: Vec<Value> = self.bulk("sync", pipe.query_async(&mut conn)).await?;
        metrics::histogram!(m::STORE_BATCH_COMMANDS, "op" => "sync").record(commands as f64);
        let mut values = values.into_iter();
        let rev: Option<u64> = decode("GET", values.next())?;
        let (capacity, remaining) = if n > 0 {
            (
                decode_counts(&mut values, n)?,
                decode_counts(&mut values, n)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        self.mirror.apply_snapshot(
            rev.unwrap_or(0),
            capacity
                .into_iter()
                .zip(remaining)
                .enumerate()
                .map(|(i, (capacity, remaining))| {
                    (
                        i as SlotIndex,
                        Counters {
                            capacity,
                            remaining,
                        },
                    )
                }),
        );
        Ok(())
    }

    /// One refresh round. Skipped while a calendar load runs (it syncs by itself).
    ///
    /// - If the calendar version moved: reload the calendar and every counter.
    /// - Otherwise, incrementally: read the phase ledgers from where the last round left
    ///   off (`XREAD`), then the counters of just the slots they name. Every change of a
    ///   seat counter is a ledger entry (booked, changed, cancelled), so this reads what
    ///   changed and nothing else: its cost follows the write rate, not the calendar's
    ///   size times the instances.
    /// - Every [`FULL_READ_EVERY`] rounds, or when a round finds more entries than it
    ///   reads at once, all counters are read, as a safety net (a Redis that lost writes,
    ///   say, and wrote different ones since).
    async fn refresh(&self) -> Result<(), StoreError> {
        let Ok(mut slot_keys) = self.calendar.try_lock() else {
            return Ok(());
        };
        let rounds = self
            .quiet_rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cursors = self
            .cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match cursors {
            Some(cursors) if rounds < FULL_READ_EVERY => {
                self.refresh_changed(&mut slot_keys, cursors).await
            }
            _ => self.refresh_all(&mut slot_keys).await,
        }
    }

    /// The incremental round: ledgers since the cursors, then the slots they name.
    async fn refresh_changed(
        &self,
        slot_keys: &mut SlotKeys,
        mut cursors: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        let mut conn = self.refresh_conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.cmd("GET").arg(self.keys.calendar_version());
        if !cursors.is_empty() {
            let xread = pipe
                .cmd("XREAD")
                .arg("COUNT")
                .arg(CHANGES_PER_ROUND)
                .arg("STREAMS");
            for (key, _) in &cursors {
                xread.arg(key);
            }
            for (_, id) in &cursors {
                xread.arg(id);
            }
        }
        let values: Vec<Value> = self.bulk("refresh", pipe.query_async(&mut conn)).await?;
        let mut values = values.into_iter();
        let version: Option<u64> = decode("GET", values.next())?;
        if version.unwrap_or(0) != self.mirror.version() {
            return self.reload_all(slot_keys).await;
        }
        let streams: Option<Vec<(String, Entries)>> = if cursors.is_empty() {
            None
        } else {
            decode("XREAD", values.next())?
        };
        let catalog = self.mirror.catalog.load_full();
        let mut changed: Vec<SlotIndex> = Vec::new();
        let mut entries = 0;
        for (key, list) in streams.unwrap_or_default() {
            entries += list.len();
            for (_, fields) in &list {
                // `s`: the slot of the event; `f`: the slot a change came from.
                for pair in fields
                    .chunks_exact(2)
                    .filter(|p| p[0] == "s" || p[0] == "f")
                {
                    changed.extend(catalog.slot_index(&pair[1]));
                }
            }
            if let (Some((last, _)), Some(c)) =
                (list.last(), cursors.iter_mut().find(|c| c.0 == key))
            {
                c.1 = last.clone();
            }
        }
        if entries >= CHANGES_PER_ROUND {
            // A backlog: cheaper and simpler to read everything once.
            return self.refresh_all(slot_keys).await;
        }
        *self.cursors.lock().unwrap_or_else(PoisonError::into_inner) = Some(cursors);
        if changed.is_empty() {
            return Ok(());
        }
        changed.sort_unstable();
        changed.dedup();
        slot_keys.cover(&self.keys, &catalog);
        let keys: Vec<String> = changed
            .iter()
            .map(|&s| slot_keys.remaining[s as usize].clone())
            .collect();
        // The revision is read before the counters, which are then at least as new as it
        // (see `Mirror`).
        let mut pipe = ::redis::pipe();
        pipe.cmd("GET").arg(self.keys.revision());
        let commands = 1 + add_mgets(&mut pipe, &keys);
        let values: Vec<Value> = self.bulk("refresh", pipe.query_async(&mut conn)).await?;
        metrics::histogram!(m::STORE_BATCH_COMMANDS, "op" => "refresh").record(commands as f64);
        let mut values = values.into_iter();
        let rev: Option<u64> = decode("GET", values.next())?;
        let counts = decode_counts(&mut values, keys.len())?;
        self.mirror.apply_partial(
            rev.unwrap_or(0),
            changed
                .into_iter()
                .zip(counts)
                .filter_map(|(s, c)| c.map(|c| (s, c))),
        );
        Ok(())
    }

    /// Reloads the calendar and every counter; the next round reads everything again.
    async fn reload_all(&self, slot_keys: &mut SlotKeys) -> Result<(), StoreError> {
        *self.cursors.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.reload(slot_keys).await
    }

    /// The full round: every counter, and the ledger positions they reflect.
    async fn refresh_all(&self, slot_keys: &mut SlotKeys) -> Result<(), StoreError> {
        self.quiet_rounds
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let mut conn = self.refresh_conn.clone();
        let catalog = self.mirror.catalog.load_full();
        let n = catalog.slots.len();
        slot_keys.cover(&self.keys, &catalog);
        let ledgers: Vec<String> = catalog
            .phases
            .iter()
            .map(|p| self.keys.ledger(p.phase.id.as_str()))
            .collect();
        let mut pipe = ::redis::pipe();
        // Read first: the calendar version, then each ledger's last entry, then the
        // revision, then the counters. The counters are then at least as new as both the
        // revision (the mirror's ordering needs that) and the ledger positions (so the
        // incremental rounds that read on from them miss no change).
        pipe.cmd("GET").arg(self.keys.calendar_version());
        for l in &ledgers {
            pipe.cmd("XREVRANGE")
                .arg(l)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        pipe.cmd("GET").arg(self.keys.revision());
        let commands = 2 + ledgers.len() + add_mgets(&mut pipe, &slot_keys.remaining[..n]);
        // Bulk: with a national calendar this reads tens of thousands of counters, and a
        // refresh that never fits the request timeout would leave the mirror stale for good.
        let values: Vec<Value> = self.bulk("refresh", pipe.query_async(&mut conn)).await?;
        metrics::histogram!(m::STORE_BATCH_COMMANDS, "op" => "refresh").record(commands as f64);
        let mut values = values.into_iter();
        let version: Option<u64> = decode("GET", values.next())?;
        if version.unwrap_or(0) != self.mirror.version() {
            return self.reload_all(slot_keys).await;
        }
        let mut cursors = Vec::with_capacity(ledgers.len());
        for l in ledgers {
            let last: Entries = decode("XREVRANGE", values.next())?;
            let id = last
                .first()
                .map_or_else(|| "0-0".to_string(), |(id, _)| id.clone());
            cursors.push((l, id));
        }
        let rev: Option<u64> = decode("GET", values.next())?;
        let remaining = if n > 0 {
            decode_counts(&mut values, n)?
        } else {
            Vec::new()
        };
        self.mirror.apply_snapshot(
            rev.unwrap_or(0),
            remaining.into_iter().enumerate().map(|(i, remaining)| {
                (
                    i as SlotIndex,
                    Counters {
                        capacity: None,
                        remaining,
                    },
                )
            }),
        );
        // Not fatal to the round: a phase not indexed yet is just not trimmed.
        if let Err(e) = self.ensure_indexed(&catalog, false).await {
            tracing::debug!("booking lists: {e}");
        }
        self.trim_ledgers(&catalog, &cursors).await?;
        *self.cursors.lock().unwrap_or_else(PoisonError::into_inner) = Some(cursors);
        Ok(())
    }

    /// Trims each ledger to the entries at most the retention older than its newest
    /// (`XTRIM MINID ~`, so whole stream nodes at a time; the newest entry always stays).
    /// Every instance does it on its full rounds; it is idempotent. Nothing reads old
    /// entries: the audit, settlement and close-out read booking records through each
    /// phase's booking list, and the audit needs only the entries since its own cut.
    async fn trim_ledgers(
        &self,
        catalog: &Catalog,
        cursors: &[(String, String)],
    ) -> Result<(), StoreError> {
        let keep = u64::try_from(self.ledger_retention().as_millis()).unwrap_or(u64::MAX);
        // Only ledgers whose booking list is complete (`index.lua`) and at least as long
        // as the phase's seats taken: an instance of an earlier version, still booking
        // without listing, leaves its bookings only in the ledger. Seats are read first:
        // a booking counted in them is listed before the length is read.
        let taken: Vec<u64> = catalog
            .phases
            .iter()
            .map(|p| {
                let inv = &self.mirror.inventory;
                p.slots
                    .iter()
                    .map(|&s| u64::from(inv.capacity(s).saturating_sub(inv.remaining(s))))
                    .sum()
            })
            .collect();
        let mut lens = ::redis::pipe();
        for p in &catalog.phases {
            lens.cmd("LLEN")
                .arg(self.keys.phase_bookings(p.phase.id.as_str()));
        }
        // Audits in progress pin the entries from their start on (lapsed pins go).
        lens.cmd("TIME");
        lens.cmd("ZRANGE")
            .arg(self.keys.audit_pins())
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        let mut conn = self.refresh_conn.clone();
        let mut values: Vec<Value> = self.bulk("trim", lens.query_async(&mut conn)).await?;
        let oldest: Vec<(String, f64)> = decode("ZRANGE", values.pop())?;
        let (secs, micros): (u64, u64) = decode("TIME", values.pop())?;
        let now_ms = secs * 1_000 + micros / 1_000;
        let lapse = u64::try_from(AUDIT_PIN_LIFETIME.as_millis()).unwrap_or(u64::MAX);
        let pinned = match oldest.first() {
            Some((_, at)) if (*at as u64) + lapse < now_ms => {
                let _: () = self
                    .bulk(
                        "trim",
                        ::redis::cmd("ZREMRANGEBYSCORE")
                            .arg(self.keys.audit_pins())
                            .arg("-inf")
                            .arg(now_ms.saturating_sub(lapse))
                            .query_async(&mut conn),
                    )
                    .await?;
                None
            }
            Some((_, at)) => Some(*at as u64),
            None => None,
        };
        let lens: Vec<u64> = values
            .into_iter()
            .map(|v| decode("LLEN", Some(v)))
            .collect::<Result<_, _>>()?;
        let mut pipe = ::redis::pipe();
        let mut any = false;
        for (((p, (ledger, last)), listed), taken) in
            catalog.phases.iter().zip(cursors).zip(lens).zip(taken)
        {
            let phase = p.phase.id.as_str();
            let indexed = self
                .indexed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(phase);
            if listed < taken {
                if self
                    .short_lists
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(phase.to_string())
                {
                    tracing::warn!(
                        phase,
                        listed,
                        taken,
                        "the phase's booking list is shorter than its seats taken: an \
                         instance of an earlier version may still be booking; its ledger \
                         is not trimmed"
                    );
                }
                continue;
            }
            let newest: u64 = last
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            let below = pinned.map_or(newest.saturating_sub(keep), |pin| {
                pin.min(newest.saturating_sub(keep))
            });
            if indexed && below > 0 {
                pipe.cmd("XTRIM")
                    .arg(ledger)
                    .arg("MINID")
                    .arg("~")
                    .arg(below)
                    .ignore();
                any = true;
            }
        }
        if any {
            self.bulk::<()>("trim", pipe.query_async(&mut conn)).await?;
        }
        Ok(())
    }

    fn ledger_retention(&self) -> Duration {
        Duration::from_millis(
            self.ledger_retention_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Checks the durability profile against Redis's configuration.
    async fn check_durability(&self, durability: Durability) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let config: Result<(Vec<String>, Vec<String>), StoreError> = self
            .call(
                "config",
                ::redis::pipe()
                    .cmd("CONFIG")
                    .arg("GET")
                    .arg("appendonly")
                    .cmd("CONFIG")
                    .arg("GET")
                    .arg("appendfsync")
                    .query_async(&mut conn),
            )
            .await;
        let value = |pair: &[String]| pair.get(1).cloned().unwrap_or_else(|| "unknown".into());
        match (durability, config) {
            (Durability::Durable, Ok((aof, fsync)))
                if value(&aof) == "yes" && value(&fsync) == "always" =>
            {
                Ok(())
            }
            (Durability::Durable, Ok((aof, fsync))) => Err(StoreError::Unavailable(format!(
                "the durable profile needs Redis with `appendonly yes` and `appendfsync always`, \
                 but this one has appendonly {} and appendfsync {}: restart Redis with \
                 `--appendonly yes --appendfsync always`, or run slotd with --durability fast \
                 (a Redis crash may then lose about a second of acknowledged bookings)",
                value(&aof),
                value(&fsync)
            ))),
            (Durability::Durable, Err(e)) => Err(StoreError::Unavailable(format!(
                "the durable profile could not read Redis's persistence settings \
                 (CONFIG GET appendonly/appendfsync): {e}"
            ))),
            (Durability::Fast, Ok((aof, _))) if value(&aof) != "yes" => {
                Err(StoreError::Unavailable(format!(
                    "Redis runs without AOF (appendonly {}): a Redis crash would lose every \
                     booking since its last snapshot. Restart Redis with `--appendonly yes`, \
                     or run slotd with --durability none to accept that",
                    value(&aof)
                )))
            }
            (Durability::Fast | Durability::None, Ok((aof, fsync))) => {
                if value(&aof) != "yes" {
                    tracing::warn!(
                        appendonly = %value(&aof),
                        "Redis runs without AOF (--durability none): a Redis crash loses every booking since its last snapshot"
                    );
                } else {
                    tracing::info!(appendfsync = %value(&fsync), "Redis AOF is on");
                }
                Ok(())
            }
            (Durability::Fast | Durability::None, Err(e)) => {
                tracing::warn!(error = %e, "cannot read Redis's persistence settings");
                Ok(())
            }
        }
    }

    /// Booking records by id, in one pipeline, each as its flat field list (empty where
    /// there is no record).
    async fn records(
        &self,
        op: &'static str,
        limit: Duration,
        ids: &[String],
    ) -> Result<Vec<Vec<String>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("HGETALL").arg(self.keys.booking(id));
        }
        let mut conn = self.conn.clone();
        self.call_within(op, limit, pipe.query_async(&mut conn))
            .await
    }

    /// The bookings of the phases named (catalog indexes), read from their records
    /// through each phase's booking list, and the ids listed whose record is missing.
    /// With a [`Cut`], as they stood at the cut: only the bookings listed then, and the
    /// ledger entries since the cut undone on their records, newest first (each entry
    /// names what it replaced: the slot left, the status before), so records read while
    /// writes go on still give the state at the cut. Without, as they stand now.
    async fn rebuild(
        &self,
        catalog: &Catalog,
        phases: &[(usize, Option<Cut>)],
    ) -> Result<(Vec<Booking>, Vec<BookingId>), StoreError> {
        let mut bookings: Vec<Booking> = Vec::new();
        let mut missing: Vec<BookingId> = Vec::new();
        for (pi, cut) in phases {
            let phase = &catalog.phases[*pi].phase.id;
            let ids = self
                .phase_booking_ids(phase.as_str(), cut.as_ref().map(|c| c.len))
                .await?;
            let first = bookings.len();
            for chunk in ids.chunks(RECORD_PIPELINE) {
                let records = self.records("audit", self.bulk_timeout, chunk).await?;
                for (id, fields) in chunk.iter().zip(records) {
                    if fields.is_empty() {
                        missing.push(BookingId::parse(id).map_err(|e| {
                            StoreError::Internal(format!(
                                "booking list of {phase} holds {id:?}: {e}"
                            ))
                        })?);
                    } else {
                        bookings.push(record::booking(&fields)?);
                    }
                }
            }
            if let Some(cut) = cut {
                self.undo_since(phase, cut, &mut bookings[first..]).await?;
            }
        }
        Ok((bookings, missing))
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        self.call(
            "exists",
            ::redis::cmd("EXISTS").arg(key).query_async(&mut conn),
        )
        .await
    }

    /// Makes sure each phase's booking list holds every booking in its ledger. Redis data
    /// written before the lists existed has bookings only in the ledger: the first
    /// instance to need the list copies the ledger's booked entries into a list of its own
    /// page by page, then `index.lua` adds the entries since and puts it in place,
    /// atomically. Once per phase; until then the phase's ledger is not trimmed.
    /// With `wait`, a phase another instance is building is waited for (up to the bulk
    /// timeout); without, it answers `Unavailable` at once.
    async fn ensure_indexed(&self, catalog: &Catalog, wait: bool) -> Result<(), StoreError> {
        for p in &catalog.phases {
            let phase = p.phase.id.as_str();
            if self
                .indexed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(phase)
            {
                continue;
            }
            let marker = self.keys.phase_bookings_indexed(phase);
            let done = self.exists(&marker).await?;
            if !done {
                let deadline = Instant::now() + self.bulk_timeout;
                loop {
                    match self.index_phase(phase, &marker).await {
                        Ok(true) => {
                            tracing::info!(phase, "booking list built from the ledger");
                            break;
                        }
                        Ok(false) => break,
                        Err(StoreError::Unavailable(e))
                            if wait
                                && e.contains("another instance")
                                && Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let done = self.exists(&marker).await?;
                            if done {
                                break;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            self.indexed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(phase.to_string());
        }
        Ok(())
    }

    async fn index_phase(&self, phase: &str, marker: &str) -> Result<bool, StoreError> {
        let list = self.keys.phase_bookings(phase);
        let key = self.keys.ledger(phase);
        let mut conn = self.conn.clone();
        // A ledger that was ever trimmed was trimmed by this version, whose scripts list
        // every booking: its list is complete, and the ledger could not rebuild it.
        if self.exists(&key).await? {
            let info: HashMap<String, Value> = self
                .call(
                    "index",
                    ::redis::cmd("XINFO")
                        .arg("STREAM")
                        .arg(&key)
                        .query_async(&mut conn),
                )
                .await?;
            // Trims do not count as deletions in Redis 7.0 (`max-deleted-entry-id`
            // stays 0-0): entries added beyond those left is what tells.
            let added: u64 = decode("XINFO", info.get("entries-added").cloned())?;
            let length: u64 = decode("XINFO", info.get("length").cloned())?;
            if added > length {
                self.call::<()>(
                    "index",
                    ::redis::cmd("SET")
                        .arg(marker)
                        .arg("1")
                        .query_async(&mut conn),
                )
                .await?;
                return Ok(false);
            }
        }
        // One instance builds at a time (the others answer "try again" until it is done).
        let lock = format!("{list}:building");
        let taken: Option<String> = self
            .call(
                "index",
                ::redis::cmd("SET")
                    .arg(&lock)
                    .arg(std::process::id())
                    .arg("NX")
                    .arg("PX")
                    .arg(120_000)
                    .query_async(&mut conn),
            )
            .await?;
        if taken.is_none() {
            return Err(StoreError::Unavailable(format!(
                "another instance is building the booking list of phase {phase}; try again"
            )));
        }
        let tmp = format!("{lock}:list");
        let built = self.copy_booked(&key, &tmp, &list, marker, &lock).await;
        if built.is_err() {
            // Leave nothing behind: the next try starts over.
            let mut conn = self.conn.clone();
            let _ = self
                .call::<()>(
                    "index",
                    ::redis::cmd("DEL")
                        .arg(&tmp)
                        .arg(&lock)
                        .query_async(&mut conn),
                )
                .await;
        }
        built
    }

    /// Copies the ledger's booked entries into `tmp` page by page (each page also renews
    /// the temporary list's one-hour expiry), then lets `index.lua` finish atomically.
    async fn copy_booked(
        &self,
        ledger: &str,
        tmp: &str,
        list: &str,
        marker: &str,
        lock: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        self.call::<()>("index", ::redis::cmd("DEL").arg(tmp).query_async(&mut conn))
            .await?;
        let mut from = "-".to_string();
        let mut last = String::new();
        loop {
            let mut conn = self.conn.clone();
            let page: Entries = self
                .bulk(
                    "index",
                    ::redis::cmd("XRANGE")
                        .arg(ledger)
                        .arg(&from)
                        .arg("+")
                        .arg("COUNT")
                        .arg(LEDGER_PAGE)
                        .query_async(&mut conn),
                )
                .await?;
            let full = page.len() == LEDGER_PAGE;
            let ids: Vec<&String> = page
                .iter()
                .filter(|(_, f)| {
                    f.chunks_exact(2)
                        .any(|kv| kv[0] == "e" && kv[1] == "booked")
                })
                .filter_map(|(_, f)| f.chunks_exact(2).find(|kv| kv[0] == "b").map(|kv| &kv[1]))
                .collect();
            if !ids.is_empty() {
                let mut conn = self.conn.clone();
                self.bulk::<()>(
                    "index",
                    ::redis::pipe()
                        .cmd("RPUSH")
                        .arg(tmp)
                        .arg(&ids)
                        .ignore()
                        .cmd("EXPIRE")
                        .arg(tmp)
                        .arg(3_600)
                        .ignore()
                        .query_async(&mut conn),
                )
                .await?;
            }
            if let Some((id, _)) = page.last() {
                last = id.clone();
                from = format!("({id}");
            }
            if !full {
                break;
            }
        }
        let mut invocation = self.scripts.index.prepare_invoke();
        invocation
            .key(tmp)
            .key(list)
            .key(ledger)
            .key(marker)
            .key(lock)
            .arg(&last);
        let mut conn = self.conn.clone();
        let built: i64 = self
            .bulk("index", invocation.invoke_async(&mut conn))
            .await?;
        Ok(built == 1)
    }

    /// The audit's cut and reads, under its pin (see `Store::audit` of [`RedisStore`]).
    async fn audit_pinned(&self, catalog: &Catalog) -> Result<AuditReport, StoreError> {
        let inner = self;
        let n = catalog.slots.len();
        let ids: Vec<&str> = catalog.slots.iter().map(|s| s.slot.id.as_str()).collect();
        let capacity_keys: Vec<String> = ids.iter().map(|s| inner.keys.capacity(s)).collect();
        let remaining_keys: Vec<String> = ids.iter().map(|s| inner.keys.remaining(s)).collect();

        let mut cut = ::redis::pipe();
        cut.atomic().cmd("GET").arg(inner.keys.calendar_version());
        for p in &catalog.phases {
            cut.cmd("XREVRANGE")
                .arg(inner.keys.ledger(p.phase.id.as_str()))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
            cut.cmd("LLEN")
                .arg(inner.keys.phase_bookings(p.phase.id.as_str()));
        }
        if n > 0 {
            add_mgets(&mut cut, &capacity_keys);
            add_mgets(&mut cut, &remaining_keys);
        }
        let mut conn = inner.conn.clone();
        let values: Vec<Value> = inner.bulk("audit", cut.query_async(&mut conn)).await?;
        let mut values = values.into_iter();
        let version: Option<u64> = decode("GET", values.next())?;
        if version.unwrap_or(0) != inner.mirror.version() {
            return Err(StoreError::Unavailable(
                "the calendar changed during the audit; run it again".into(),
            ));
        }
        let mut cuts = Vec::with_capacity(catalog.phases.len());
        for i in 0..catalog.phases.len() {
            let last: Entries = decode("XREVRANGE", values.next())?;
            let len: usize = decode("LLEN", values.next())?;
            let last = last.into_iter().next().map(|(id, _)| id);
            cuts.push((i, Some(Cut { last, len })));
        }
        let (capacity, remaining) = if n > 0 {
            (
                decode_counts(&mut values, n)?,
                decode_counts(&mut values, n)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };

        // The bookings at the cut: their records, rolled back by the ledger since.
        let (bookings, missing) = inner.rebuild(catalog, &cuts).await?;
        let counters = |s: SlotIndex| {
            let i = s as usize;
            (
                capacity.get(i).copied().flatten().unwrap_or(0),
                remaining.get(i).copied().flatten().unwrap_or(0),
            )
        };
        let mut report = audit(catalog, counters, &bookings);
        for booking in missing {
            tracing::error!(%booking, "a listed booking has no record");
            report.breaches.push(crate::audit::Breach::RecordMismatch {
                booking: booking.to_string(),
                detail: "no record".into(),
            });
            report.ok = false;
        }
        Ok(report)
    }

    /// [`Inner::rebuild`], where a listed booking without a record is an error.
    async fn rebuild_whole(
        &self,
        catalog: &Catalog,
        phases: &[(usize, Option<Cut>)],
    ) -> Result<Vec<Booking>, StoreError> {
        let (bookings, missing) = self.rebuild(catalog, phases).await?;
        match missing.first() {
            None => Ok(bookings),
            Some(b) => Err(StoreError::Internal(format!(
                "booking {b} is listed but has no record ({} such)",
                missing.len()
            ))),
        }
    }

    /// A phase's booking ids, the first `len` of them (all with `None`), page by page.
    async fn phase_booking_ids(
        &self,
        phase: &str,
        len: Option<usize>,
    ) -> Result<Vec<String>, StoreError> {
        let key = self.keys.phase_bookings(phase);
        let mut out: Vec<String> = Vec::new();
        loop {
            let want = match len {
                Some(len) if out.len() >= len => return Ok(out),
                Some(len) => (len - out.len()).min(LEDGER_PAGE),
                None => LEDGER_PAGE,
            };
            let mut conn = self.conn.clone();
            let page: Vec<String> = self
                .bulk(
                    "audit",
                    ::redis::cmd("LRANGE")
                        .arg(&key)
                        .arg(out.len())
                        .arg(out.len() + want - 1)
                        .query_async(&mut conn),
                )
                .await?;
            let short = page.len() < want;
            out.extend(page);
            if short {
                return Ok(out);
            }
        }
    }

    /// Rolls `bookings` (one phase's, read after `cut`) back to the cut.
    async fn undo_since(
        &self,
        phase: &PhaseId,
        cut: &Cut,
        bookings: &mut [Booking],
    ) -> Result<(), StoreError> {
        let start = cut
            .last
            .as_ref()
            .map_or_else(|| "-".to_string(), |l| format!("({l}"));
        let since = self.ledger(phase.as_str(), &start, "+").await?;
        // Every entry after the cut is here: the audit's pin keeps trims below the cut
        // (`Store::audit` of `RedisStore` checks that the pin held to the end).
        let index: HashMap<BookingId, usize> = bookings
            .iter()
            .enumerate()
            .map(|(i, b)| (b.booking.clone(), i))
            .collect();
        for (_, fields) in since.iter().rev() {
            match record::event(phase, fields)? {
                // Booked after the cut: not in the cut's list.
                Event::Booked(_) => {}
                Event::Changed { booking, from, .. } => {
                    if let Some(&i) = index.get(&booking) {
                        bookings[i].slot = from;
                    }
                }
                // Only a booking that is just booked can be cancelled.
                Event::Cancelled { booking } => {
                    if let Some(&i) = index.get(&booking) {
                        bookings[i].status = crate::domain::BookingStatus::Booked;
                    }
                }
                Event::Status { booking, was, .. } => {
                    if let Some(&i) = index.get(&booking) {
                        bookings[i].status = was;
                    }
                }
            }
        }
        Ok(())
    }

    /// A phase's ledger from `start` (an `XRANGE` bound) to `end`, page by page.
    async fn ledger(&self, phase: &str, start: &str, end: &str) -> Result<Entries, StoreError> {
        let key = self.keys.ledger(phase);
        let mut out: Entries = Vec::new();
        let mut from = start.to_string();
        loop {
            let mut conn = self.conn.clone();
            let page: Entries = self
                .bulk(
                    "audit",
                    ::redis::cmd("XRANGE")
                        .arg(&key)
                        .arg(&from)
                        .arg(end)
                        .arg("COUNT")
                        .arg(LEDGER_PAGE)
                        .query_async(&mut conn),
                )
                .await?;
            let full = page.len() == LEDGER_PAGE;
            if let Some((last, _)) = page.last() {
                // Exclusive start (Redis ≥ 6.2): the next page begins after this one.
                from = format!("({last}");
            }
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Writes a reply's remaining seats of the slot named `slot` into the mirror.
    fn mirror_slot(&self, slot: &str, rev: u64, remaining: i64) {
        if let Some(i) = self.mirror.catalog.load().slot_index(slot) {
            self.mirror.apply_reply(i, rev, remaining);
        }
    }
}

/// Stops the refresh task when told to, or when the store is gone.
async fn refresh_loop(inner: Arc<Inner>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    // After a slow round (Redis down: each try waits the timeout) do not fire a burst.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match inner.refresh().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("Redis reachable again; seat mirror refreshed");
            }
            Ok(()) => {}
            // One line per outage, not four a second.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "seat mirror refresh failed; retrying every 250 ms");
            }
            Err(_) => {}
        }
    }
}

fn idempotency_args(i: &Option<super::Idempotency>) -> (&str, &str) {
    i.as_ref()
        .map_or(("", ""), |i| (i.key.as_str(), i.fingerprint.as_str()))
}

fn unexpected(op: &str, outcome: &str) -> StoreError {
    StoreError::Internal(format!("the {op} script answered {outcome:?}"))
}

impl RedisStore {
    /// Connects to Redis at `url`, checks the durability profile, reads the calendar and
    /// every counter, and starts the background refresh.
    ///
    /// Fails with [`StoreError::Unavailable`] when Redis cannot be reached within
    /// `timeout`, or when `durability` is [`Durability::Durable`] and Redis does not fsync
    /// every write.
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        durability: Durability,
        fast_path: bool,
    ) -> Result<RedisStore, StoreError> {
        Self::connect_with(
            url,
            prefix,
            timeout,
            durability,
            fast_path,
            DEFAULT_REFRESH_INTERVAL,
        )
        .await
    }

    /// Sets how much ledger is kept behind each ledger's newest entry (default
    /// [`DEFAULT_LEDGER_RETENTION`]); applied at the next full refresh round.
    pub fn set_ledger_retention(&self, keep: Duration) {
        self.inner.ledger_retention_ms.store(
            u64::try_from(keep.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Acknowledges a write only once `replicas` replicas hold it (`WAIT replicas
    /// timeout` on the connection that wrote it); a write they do not confirm within
    /// `timeout` answers [`StoreError::Unavailable`] (it may still be kept: a retry
    /// with the same idempotency key finds it). 0 replicas: no wait (the default).
    pub fn set_replication(&self, replicas: u32, timeout: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.inner.wait_replicas.store(replicas, Relaxed);
        self.inner.wait_timeout_ms.store(
            u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            Relaxed,
        );
    }

    /// [`RedisStore::connect`] with the mirror refreshed every `refresh` (the server
    /// passes its `--snapshot-interval-ms`).
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        timeout: Duration,
        durability: Durability,
        fast_path: bool,
        refresh: Duration,
    ) -> Result<RedisStore, StoreError> {
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let addr = client.get_connection_info().addr().to_string();
        // No response timeout on the connection: every call is bounded by its own
        // (`Inner::call` and `Inner::bulk`), and bulk calls need more than requests.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_pipeline_buffer_size(PIPELINE_BUFFER);
        let connect = || async {
            match tokio::time::timeout(
                timeout,
                client.get_connection_manager_with_config(config.clone()),
            )
            .await
            {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                    "cannot connect to Redis at {addr}: {e}"
                ))),
                Err(_) => Err(StoreError::Unavailable(format!(
                    "Redis at {addr} did not answer within {} ms",
                    timeout.as_millis()
                ))),
            }
        };
        let conn = connect().await?;
        let refresh_conn = connect().await?;
        let inner = Arc::new(Inner {
            conn,
            refresh_conn,
            quiet_rounds: std::sync::atomic::AtomicU32::new(0),
            cursors: std::sync::Mutex::new(None),
            keys: Keys::new(prefix),
            timeout,
            bulk_timeout: timeout.max(BULK_TIMEOUT),
            fast_path,
            mirror: Mirror::default(),
            scripts: Scripts::new(),
            calendar: Mutex::new(SlotKeys::default()),
            epoch_checked: std::sync::atomic::AtomicBool::new(false),
            ledger_retention_ms: std::sync::atomic::AtomicU64::new(
                DEFAULT_LEDGER_RETENTION.as_millis() as u64,
            ),
            wait_replicas: std::sync::atomic::AtomicU32::new(0),
            indexed: std::sync::Mutex::new(HashSet::new()),
            short_lists: std::sync::Mutex::new(HashSet::new()),
            audits: std::sync::atomic::AtomicU64::new(0),
            wait_timeout_ms: std::sync::atomic::AtomicU64::new(500),
        });
        inner.check_durability(durability).await?;
        {
            let mut slot_keys = inner.calendar.lock().await;
            inner.reload(&mut slot_keys).await?;
        }
        let (stop, stopped) = watch::channel(false);
        let refresher = tokio::spawn(refresh_loop(inner.clone(), refresh, stopped));
        tracing::info!(
            redis = %addr,
            prefix,
            fast_path,
            calendar_version = inner.mirror.version(),
            "Redis store connected"
        );
        Ok(RedisStore {
            inner,
            stop,
            refresher: std::sync::Mutex::new(Some(refresher)),
        })
    }

    /// The connection, key prefix and request timeout, for the other stores that share
    /// this Redis (the identity store).
    pub fn shared_connection(&self) -> (ConnectionManager, String, Duration) {
        (
            self.inner.conn.clone(),
            self.inner.keys.prefix().to_string(),
            self.inner.timeout,
        )
    }

    /// Whether the mirror has made its first full read since the calendar was loaded, so
    /// that its next rounds read only what the ledgers name (tests wait on this).
    pub fn refreshes_incrementally(&self) -> bool {
        self.inner
            .cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether Redis held a calendar when this store connected (or has one loaded since).
    pub fn has_calendar(&self) -> bool {
        !self.inner.mirror.catalog.load().phases.is_empty()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(task) = self
            .refresher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.inner.mirror.catalog.load_full()
    }

    fn inventory(&self) -> &Inventory {
        &self.inner.mirror.inventory
    }

    async fn load_calendar(&self, calendar: Calendar) -> Result<LoadReport, StoreError> {
        let inner = &*self.inner;
        let mut slot_keys = inner.calendar.lock().await;
        for _ in 0..LOAD_ATTEMPTS {
            // Merge over what Redis holds, not over this instance's copy: another
            // instance may have loaded since, and the stored calendar is the union.
            let (stored, version) = inner.stored_calendar().await?;
            let base = match &stored {
                Some(c) => {
                    Catalog::default()
                        .merge(c)
                        .map_err(|e| {
                            StoreError::Internal(format!("the calendar in Redis is invalid: {e}"))
                        })?
                        .0
                }
                None => Catalog::default(),
            };
            let (next, changes) = base.merge(&calendar)?;
            let report = LoadReport {
                sites: next.sites.len(),
                phases: next.phases.len(),
                slots: next.slots.len(),
                capacity_changes: changes.len(),
            };
            let merged = next.to_calendar();
            if changes.is_empty() && base.to_calendar() == merged {
                // Nothing new: loading is idempotent. Still catch up if we lag.
                if let Some(c) = stored.filter(|_| version != inner.mirror.version()) {
                    inner.adopt(&mut slot_keys, &c, version).await?;
                }
                return Ok(report);
            }
            let json = serde_json::to_string(&merged)
                .map_err(|e| StoreError::Internal(format!("calendar to JSON: {e}")))?;
            let mut invocation = inner.scripts.calendar.prepare_invoke();
            invocation
                .key(inner.keys.calendar())
                .key(inner.keys.calendar_version())
                .key(inner.keys.revision())
                .arg(inner.keys.prefix())
                .arg(version)
                .arg(json);
            for &(slot, capacity) in &changes {
                invocation
                    .arg(next.slot(slot).slot.id.as_str())
                    .arg(capacity);
            }
            let mut conn = inner.conn.clone();
            let reply: Vec<String> = inner
                .bulk("load_calendar", invocation.invoke_async(&mut conn))
                .await?;
            match reply.first().map(String::as_str) {
                Some("ok") => {
                    let version = reply
                        .get(1)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| parse_error("calendar.lua", format!("{reply:?}")))?;
                    inner.adopt(&mut slot_keys, &merged, version).await?;
                    return Ok(report);
                }
                Some("conflict") => continue,
                Some("below-booked") if reply.len() == 4 => {
                    return Err(StoreError::Calendar(CalendarError(format!(
                        "slot {}: capacity {} is below the {} seats already booked",
                        reply[1], reply[2], reply[3]
                    ))));
                }
                _ => return Err(parse_error("calendar.lua", format!("{reply:?}"))),
            }
        }
        Err(StoreError::Unavailable(
            "other instances kept changing the calendar during this load; try again".into(),
        ))
    }

    async fn invite(&self, phase: PhaseId, people: Vec<IdNumber>) -> Result<u64, StoreError> {
        let inner = &*self.inner;
        if inner.mirror.catalog.load().phase(phase.as_str()).is_none() {
            return Err(StoreError::Internal(format!("unknown phase {phase}")));
        }
        let key = inner.keys.invited(phase.as_str());
        let mut added = 0;
        // Round trips one after another: each carries INVITE_CHUNK × INVITE_PIPELINE ids
        // (about a megabyte), enough to keep Redis busy. A failure part-way leaves the
        // earlier chunks in; loading again is harmless (SADD counts only new members).
        for group in people.chunks(INVITE_CHUNK * INVITE_PIPELINE) {
            let mut pipe = ::redis::pipe();
            let mut commands = 0;
            for chunk in group.chunks(INVITE_CHUNK) {
                let mut sadd = ::redis::cmd("SADD");
                sadd.arg(&key);
                for id in chunk {
                    sadd.arg(id.to_string());
                }
                pipe.add_command(sadd);
                commands += 1;
            }
            let mut conn = inner.conn.clone();
            let counts: Vec<u64> = inner.bulk("invite", pipe.query_async(&mut conn)).await?;
            metrics::histogram!(m::STORE_BATCH_COMMANDS, "op" => "invite").record(commands as f64);
            added += counts.iter().sum::<u64>();
        }
        inner.replicated("invite").await?;
        Ok(added)
    }

    async fn reserve(&self, r: Reserve) -> Result<ReserveOutcome, StoreError> {
        let inner = &*self.inner;
        // The fast path: the mirror says no seat is left. It can only be early (a seat
        // freed in the last refresh interval), never wrong the other way, since seats
        // are only taken by the script. A request with an Idempotency-Key goes to Redis
        // regardless: it may be the retry of a booking that took the last seat, and its
        // answer must be that booking, not "full".
        if inner.fast_path
            && r.idempotency.is_none()
            && inner.mirror.inventory.remaining(r.slot_index) == 0
        {
            metrics::counter!(m::FAST_PATH_REJECTIONS).increment(1);
            return Ok(ReserveOutcome::SlotFull);
        }
        inner.ensure_epoch().await?;
        let k = &inner.keys;
        let (key, fingerprint) = idempotency_args(&r.idempotency);
        let booked_at = record::format_time(r.now)?;
        let mut invocation = inner.scripts.reserve.prepare_invoke();
        invocation
            .key(k.keys_of(r.person))
            .key(k.key_order_of(r.person))
            .key(k.live_of(r.person))
            .key(k.bookings_of(r.person))
            .key(k.remaining(r.slot.as_str()))
            .key(k.invited(r.phase.as_str()))
            .key(k.ledger(r.phase.as_str()))
            .key(k.sequence())
            .key(k.revision())
            .key(k.phase_bookings(r.phase.as_str()))
            .arg(k.prefix())
            .arg(r.phase.as_str())
            .arg(r.slot.as_str())
            .arg(r.person.to_string())
            .arg(r.channel.as_str())
            .arg(booked_at)
            .arg(if r.invitation_required { "1" } else { "0" })
            .arg(key)
            .arg(fingerprint)
            .arg(KEYS_PER_PERSON)
            .arg(r.partner.as_deref().unwrap_or(""))
            .arg(KEY_LIFETIME.as_secs());
        let mut conn = inner.conn.clone();
        let (outcome, remaining, rev, fields): (String, i64, u64, Vec<String>) = inner
            .call("reserve", invocation.invoke_async(&mut conn))
            .await?;
        inner.mirror.apply_reply(r.slot_index, rev, remaining);
        let outcome = match outcome.as_str() {
            "booked" => ReserveOutcome::Booked(record::booking(&fields)?),
            "replayed" => ReserveOutcome::Replayed(record::booking(&fields)?),
            "held" => ReserveOutcome::AlreadyHeld(record::booking(&fields)?),
            "already-booked" => ReserveOutcome::AlreadyBooked(record::booking(&fields)?),
            "not-invited" => ReserveOutcome::NotInvited,
            "full" => ReserveOutcome::SlotFull,
            "key-reused" => ReserveOutcome::KeyReused,
            "unknown-slot" => {
                return Err(StoreError::Internal(format!(
                    "slot {} has no seat counter in Redis (was Redis emptied?)",
                    r.slot
                )));
            }
            other => return Err(unexpected("reserve", other)),
        };
        // Answers that make or show a booking wait for the replicas.
        if matches!(
            outcome,
            ReserveOutcome::Booked(_)
                | ReserveOutcome::Replayed(_)
                | ReserveOutcome::AlreadyHeld(_)
                | ReserveOutcome::AlreadyBooked(_)
        ) {
            inner.replicated("reserve").await?;
        }
        Ok(outcome)
    }

    async fn change(&self, c: Change) -> Result<ChangeOutcome, StoreError> {
        let inner = &*self.inner;
        let k = &inner.keys;
        let (key, fingerprint) = idempotency_args(&c.idempotency);
        let mut invocation = inner.scripts.change.prepare_invoke();
        invocation
            .key(k.keys_of(c.person))
            .key(k.key_order_of(c.person))
            .key(k.remaining(c.slot.as_str()))
            .key(k.ledger(c.phase.as_str()))
            .key(k.revision())
            .arg(k.prefix())
            .arg(c.person.to_string())
            .arg(c.booking.as_str())
            .arg(c.slot.as_str())
            .arg(c.phase.as_str())
            .arg(key)
            .arg(fingerprint)
            .arg(KEYS_PER_PERSON)
            .arg(KEY_LIFETIME.as_secs());
        let mut conn = inner.conn.clone();
        let (outcome, remaining, rev, fields, old_slot, old_remaining): (
            String,
            i64,
            u64,
            Vec<String>,
            String,
            i64,
        ) = inner
            .call("change", invocation.invoke_async(&mut conn))
            .await?;
        inner.mirror.apply_reply(c.slot_index, rev, remaining);
        if !old_slot.is_empty() {
            inner.mirror_slot(&old_slot, rev, old_remaining);
        }
        let outcome = match outcome.as_str() {
            "changed" => ChangeOutcome::Changed(record::booking(&fields)?),
            "unchanged" => ChangeOutcome::Unchanged(record::booking(&fields)?),
            "full" => ChangeOutcome::SlotFull(record::booking(&fields)?),
            "not-live" => ChangeOutcome::NotLive(record::booking(&fields)?),
            "unknown" => ChangeOutcome::UnknownBooking,
            "other-phase" => ChangeOutcome::OtherPhase,
            "key-reused" => ChangeOutcome::KeyReused,
            "unknown-slot" => {
                return Err(StoreError::Internal(format!(
                    "slot {} has no seat counter in Redis (was Redis emptied?)",
                    c.slot
                )));
            }
            other => return Err(unexpected("change", other)),
        };
        // Answers that make or show a booking wait for the replicas.
        if matches!(
            outcome,
            ChangeOutcome::Changed(_) | ChangeOutcome::Unchanged(_)
        ) {
            inner.replicated("change").await?;
        }
        Ok(outcome)
    }

    async fn cancel(
        &self,
        person: IdNumber,
        booking: BookingId,
    ) -> Result<CancelOutcome, StoreError> {
        let inner = &*self.inner;
        let k = &inner.keys;
        let mut invocation = inner.scripts.cancel.prepare_invoke();
        invocation
            .key(k.live_of(person))
            .key(k.revision())
            .arg(k.prefix())
            .arg(person.to_string())
            .arg(booking.as_str());
        let mut conn = inner.conn.clone();
        let (outcome, remaining, rev, fields): (String, i64, u64, Vec<String>) = inner
            .call("cancel", invocation.invoke_async(&mut conn))
            .await?;
        let outcome = match outcome.as_str() {
            "cancelled" | "already-cancelled" | "final" => {
                let b = record::booking(&fields)?;
                inner.mirror_slot(b.slot.as_str(), rev, remaining);
                match outcome.as_str() {
                    "cancelled" => CancelOutcome::Cancelled(b),
                    "final" => CancelOutcome::Final(b),
                    _ => CancelOutcome::AlreadyCancelled(b),
                }
            }
            "unknown" => CancelOutcome::UnknownBooking,
            other => return Err(unexpected("cancel", other)),
        };
        // Answers that make or show a booking wait for the replicas.
        if matches!(
            outcome,
            CancelOutcome::Cancelled(_) | CancelOutcome::AlreadyCancelled(_)
        ) {
            inner.replicated("cancel").await?;
        }
        Ok(outcome)
    }

    async fn booking_by_code(&self, code: &str) -> Result<Option<Booking>, StoreError> {
        let Some(seq) = crate::domain::sequence_of_code(code) else {
            return Ok(None);
        };
        let id = format!("r{seq:x}");
        let inner = &*self.inner;
        let records = inner
            .records("booking_by_code", inner.timeout, &[id])
            .await?;
        match records.first() {
            Some(fields) if !fields.is_empty() => Ok(Some(record::booking(fields)?)),
            _ => Ok(None),
        }
    }

    async fn attend(
        &self,
        person: IdNumber,
        booking: BookingId,
    ) -> Result<AttendOutcome, StoreError> {
        let inner = &*self.inner;
        let mut invocation = inner.scripts.attend.prepare_invoke();
        invocation
            .arg(inner.keys.prefix())
            .arg(person.to_string())
            .arg(booking.as_str());
        let mut conn = inner.conn.clone();
        let (outcome, fields): (String, Vec<String>) = inner
            .call("attend", invocation.invoke_async(&mut conn))
            .await?;
        let outcome = match outcome.as_str() {
            "attended" => AttendOutcome::Attended(record::booking(&fields)?),
            "already-attended" => AttendOutcome::AlreadyAttended(record::booking(&fields)?),
            "cancelled" => AttendOutcome::Cancelled(record::booking(&fields)?),
            "unknown" => AttendOutcome::UnknownBooking,
            other => return Err(unexpected("attend", other)),
        };
        // Answers that make or show a booking wait for the replicas.
        if matches!(
            outcome,
            AttendOutcome::Attended(_) | AttendOutcome::AlreadyAttended(_)
        ) {
            inner.replicated("attend").await?;
        }
        Ok(outcome)
    }

    /// Reads the phase's bookings from their records, then lets `close_out.lua` decide each
    /// one of the day's, in batches.
    async fn close_out(&self, phase: PhaseId, slots: Vec<SlotId>) -> Result<CloseOut, StoreError> {
        let inner = &*self.inner;
        let catalog = inner.mirror.catalog.load_full();
        let Some(pi) = catalog.phase_index(phase.as_str()) else {
            return Ok(CloseOut::default());
        };
        inner.ensure_indexed(&catalog, true).await?;
        let slots: HashSet<SlotId> = slots.into_iter().collect();
        let day: Vec<String> = inner
            .rebuild_whole(&catalog, &[(pi, None)])
            .await?
            .into_iter()
            .filter(|b| slots.contains(&b.slot) && b.status.is_live())
            .map(|b| b.booking.to_string())
            .collect();
        let mut done = CloseOut::default();
        for chunk in day.chunks(CLOSE_OUT_BATCH) {
            let mut invocation = inner.scripts.close_out.prepare_invoke();
            invocation
                .key(inner.keys.ledger(phase.as_str()))
                .arg(inner.keys.prefix())
                .arg(slots.len());
            for s in &slots {
                invocation.arg(s.as_str());
            }
            for id in chunk {
                invocation.arg(id);
            }
            let mut conn = inner.conn.clone();
            let statuses: Vec<String> = inner
                .bulk("close_out", invocation.invoke_async(&mut conn))
                .await?;
            for s in statuses {
                match s.as_str() {
                    "attended" => done.attended += 1,
                    "no-show" => done.no_show += 1,
                    _ => {}
                }
            }
        }
        inner.replicated("close_out").await?;
        Ok(done)
    }

    async fn all_bookings(&self) -> Result<Vec<Booking>, StoreError> {
        let inner = &*self.inner;
        let catalog = inner.mirror.catalog.load_full();
        inner.ensure_indexed(&catalog, true).await?;
        let phases: Vec<(usize, Option<Cut>)> =
            (0..catalog.phases.len()).map(|i| (i, None)).collect();
        inner.rebuild_whole(&catalog, &phases).await
    }

    async fn invited(&self, phase: PhaseId) -> Result<Vec<IdNumber>, StoreError> {
        let inner = &*self.inner;
        let key = inner.keys.invited(phase.as_str());
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut conn = inner.conn.clone();
            let (next, page): (u64, Vec<String>) = inner
                .bulk(
                    "invited",
                    ::redis::cmd("SSCAN")
                        .arg(&key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(10_000)
                        .query_async(&mut conn),
                )
                .await?;
            for id in page {
                out.push(IdNumber::parse(&id).map_err(|e| {
                    StoreError::Internal(format!("invited set of {phase} holds {id:?}: {e}"))
                })?);
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    async fn bookings_of(&self, person: IdNumber) -> Result<Vec<Booking>, StoreError> {
        let inner = &*self.inner;
        let mut conn = inner.conn.clone();
        let ids: Vec<String> = inner
            .call(
                "bookings_of",
                ::redis::cmd("LRANGE")
                    .arg(inner.keys.bookings_of(person))
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn),
            )
            .await?;
        inner
            .records("bookings_of", inner.timeout, &ids)
            .await?
            .iter()
            .map(|fields| record::booking(fields))
            .collect()
    }

    /// Audits one consistent cut of Redis: every counter, each ledger's last entry and each
    /// booking list's length, read in one `MULTI`/`EXEC`. The bookings listed at the cut
    /// are read from their records and rolled back to the cut by the ledger entries since
    /// ([`Inner::rebuild`]); a listed booking without a record fails the audit.
    async fn audit(&self) -> Result<AuditReport, StoreError> {
        let inner = &*self.inner;
        {
            let mut slot_keys = inner.calendar.lock().await;
            inner.reload(&mut slot_keys).await?;
        }
        let catalog = inner.mirror.catalog.load_full();
        inner.ensure_indexed(&catalog, true).await?;
        // Pin the ledgers at Redis's clock now, before the cut: no instance trims an
        // entry at or after a live pin, so every entry written after the cut stays until
        // the audit has read it. A pin lapses after AUDIT_PIN_LIFETIME.
        let pin = format!(
            "{}-{}",
            std::process::id(),
            inner
                .audits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        {
            let mut conn = inner.conn.clone();
            let (secs, micros): (u64, u64) = inner
                .call("audit", ::redis::cmd("TIME").query_async(&mut conn))
                .await?;
            let now_ms = secs * 1_000 + micros / 1_000;
            inner
                .call::<()>(
                    "audit",
                    ::redis::cmd("ZADD")
                        .arg(inner.keys.audit_pins())
                        .arg(now_ms)
                        .arg(&pin)
                        .query_async(&mut conn),
                )
                .await?;
        }
        let report = inner.audit_pinned(&catalog).await;
        let mut conn = inner.conn.clone();
        let (held, _): (Option<f64>, i64) = inner
            .call(
                "audit",
                ::redis::pipe()
                    .cmd("ZSCORE")
                    .arg(inner.keys.audit_pins())
                    .arg(&pin)
                    .cmd("ZREM")
                    .arg(inner.keys.audit_pins())
                    .arg(&pin)
                    .query_async(&mut conn),
            )
            .await?;
        if held.is_none() {
            return Err(StoreError::Unavailable(format!(
                "the audit ran past {} s and its pin on the ledgers lapsed; run it again",
                AUDIT_PIN_LIFETIME.as_secs()
            )));
        }
        report
    }

    async fn ready(&self) -> Result<(), String> {
        let mut conn = self.inner.conn.clone();
        self.inner
            .call::<String>("ping", ::redis::cmd("PING").query_async(&mut conn))
            .await
            .map(|_| ())
            .map_err(|e| format!("Redis does not answer: {e}"))
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self
            .refresher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            // The loop returns at its next await point; a refresh in flight is bounded by
            // the call timeout, and a task that overruns even that is aborted.
            let abort = task.abort_handle();
            if tokio::time::timeout(self.inner.timeout * 2, task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        tracing::info!("Redis store closed");
    }
}
