//! Rooms in Redis, on the booking store's connection: every instance sees one room.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:room:{phase}:lanes` | hash | person → lane (`p`, or `l{n}`) |
//! | `{p}:room:{phase}:pre` | list | the pre-queue, in join order |
//! | `{p}:room:{phase}:state` | hash | `seed` (hex; set once, at the shuffle), `late`, `admitted`, `window`, `tick` |

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::ConnectionManager;

use super::{BoxFuture, Lane, RoomState, RoomStore};
use crate::domain::{IdNumber, PhaseId};
use crate::store::{StoreError, redis_bounded as bounded};

const STATE: &str = include_str!("state.lua");
static JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("join.lua")));
static CLOSE: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{STATE}\n{}", include_str!("close.lua"))));
static ADVANCE: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{STATE}\n{}", include_str!("advance.lua"))));
static READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{STATE}\n{}", include_str!("read.lua"))));

/// Pre-queue entries read per round trip.
const PAGE: isize = 10_000;

/// The Redis rooms.
#[derive(Debug, Clone)]
pub struct RedisRooms {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("corrupt waiting room in Redis: {detail}"))
}

type RawState = (String, u64, u64, u64, i64, u64);

fn state((seed, late, admitted, window, tick, pre): RawState) -> Result<RoomState, StoreError> {
    let seed = if seed.is_empty() {
        None
    } else {
        let mut out = [0u8; 16];
        hex::decode_to_slice(&seed, &mut out)
            .map_err(|e| corrupt(format!("seed {seed:?}: {e}")))?;
        Some(out)
    };
    Ok(RoomState {
        seed,
        pre,
        late,
        admitted,
        window,
        tick,
    })
}

impl RedisRooms {
    /// The rooms on a connection shared with the booking store.
    pub fn new(conn: ConnectionManager, prefix: &str, timeout: Duration) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
            timeout,
        }
    }

    fn key(&self, phase: &PhaseId, rest: &str) -> String {
        format!("{}:room:{}:{rest}", self.prefix, phase.as_str())
    }
}

impl RoomStore for RedisRooms {
    fn join(&self, phase: &PhaseId, person: IdNumber) -> BoxFuture<'_, Result<Lane, StoreError>> {
        let mut inv = JOIN.prepare_invoke();
        inv.key(self.key(phase, "lanes"))
            .key(self.key(phase, "pre"))
            .key(self.key(phase, "state"))
            .arg(person.to_string());
        Box::pin(async move {
            let mut c = self.conn.clone();
            let raw: String = bounded("room_join", self.timeout, inv.invoke_async(&mut c)).await?;
            Lane::decode(&raw).ok_or_else(|| corrupt(format!("lane {raw:?}")))
        })
    }

    fn close(
        &self,
        phase: &PhaseId,
        seed: [u8; 16],
    ) -> BoxFuture<'_, Result<RoomState, StoreError>> {
        let hex = hex::encode(seed);
        let mut inv = CLOSE.prepare_invoke();
        inv.key(self.key(phase, "state"))
            .key(self.key(phase, "pre"))
            .arg(hex);
        Box::pin(async move {
            let mut c = self.conn.clone();
            state(bounded("room_close", self.timeout, inv.invoke_async(&mut c)).await?)
        })
    }

    fn state(&self, phase: &PhaseId) -> BoxFuture<'_, Result<RoomState, StoreError>> {
        let mut inv = READ.prepare_invoke();
        inv.key(self.key(phase, "state"))
            .key(self.key(phase, "pre"));
        Box::pin(async move {
            let mut c = self.conn.clone();
            state(bounded("room_state", self.timeout, inv.invoke_async(&mut c)).await?)
        })
    }

    fn pre_queue(&self, phase: &PhaseId) -> BoxFuture<'_, Result<Vec<IdNumber>, StoreError>> {
        let key = self.key(phase, "pre");
        Box::pin(async move {
            let mut out = Vec::new();
            let mut c = self.conn.clone();
            loop {
                let start = out.len() as isize;
                let page: Vec<String> = bounded(
                    "room_pre_queue",
                    self.timeout.max(Duration::from_secs(10)),
                    ::redis::cmd("LRANGE")
                        .arg(&key)
                        .arg(start)
                        .arg(start + PAGE - 1)
                        .query_async(&mut c),
                )
                .await?;
                let n = page.len();
                for p in page {
                    out.push(IdNumber::parse(&p).map_err(|e| corrupt(format!("{p:?}: {e}")))?);
                }
                if (n as isize) < PAGE {
                    return Ok(out);
                }
            }
        })
    }

    fn advance(
        &self,
        phase: &PhaseId,
        tick: i64,
        window: u64,
        admitted: u64,
    ) -> BoxFuture<'_, Result<RoomState, StoreError>> {
        let mut inv = ADVANCE.prepare_invoke();
        inv.key(self.key(phase, "state"))
            .key(self.key(phase, "pre"))
            .arg(tick)
            .arg(window)
            .arg(admitted);
        Box::pin(async move {
            let mut c = self.conn.clone();
            state(bounded("room_advance", self.timeout, inv.invoke_async(&mut c)).await?)
        })
    }
}
