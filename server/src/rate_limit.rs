//! `RateLimiter`: writes per person per second, in a fixed one-second window.
//!
//! One sharded map entry per person who wrote in the last seconds; `prune` drops the
//! stale ones. A fixed window lets a burst of twice the rate straddle a second boundary,
//! which is fine for its purpose: stopping scripts that hammer, not shaping people.
//! (A keyed GCRA crate would add a dependency tree for no behaviour we need here.)
//!
//! A retry of a write already let through (the same `Idempotency-Key`, a double-click or
//! a client retrying a lost answer) is never refused: it costs the store one replay and
//! must get the first answer, not `429`. The last few keys let through are remembered
//! per person; a new key over the limit is refused, so keys cannot buy more writes.

use dashmap::DashMap;

/// Idempotency keys remembered per person.
const KEYS: usize = 4;

/// One person's window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    second: i64,
    writes: u32,
    /// Hashes of the last keys let through, newest at `next - 1`.
    keys: [u64; KEYS],
    next: usize,
}

/// Per-person write limiter.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    windows: DashMap<u64, Window, foldhash::fast::RandomState>,
}

fn key_hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // Fixed seeds: the same key hashes the same every time (no DoS concern: the table is
    // four slots per person).
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(key.as_bytes());
    h.finish() | 1
}

impl RateLimiter {
    /// Allows `per_second` writes per person per second.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: DashMap::with_hasher_and_shard_amount(
                foldhash::fast::RandomState::default(),
                64,
            ),
        }
    }

    /// Counts one write of `person` at unix second `now`; `false` when over the limit,
    /// unless it carries an `Idempotency-Key` this person's writes used lately.
    pub fn allow(&self, person: u64, now: i64, key: Option<&str>) -> bool {
        let mut w = self.windows.entry(person).or_default();
        if w.second != now {
            w.second = now;
            w.writes = 0;
        }
        let hash = key.map(key_hash);
        if let Some(h) = hash
            && w.keys.contains(&h)
        {
            return true;
        }
        w.writes += 1;
        let allowed = w.writes <= self.per_second;
        if allowed && let Some(h) = hash {
            let i = w.next % KEYS;
            w.keys[i] = h;
            w.next = i + 1;
        }
        allowed
    }

    /// Forgets windows older than `now` (the keys with them: a retry comes within seconds).
    pub fn prune(&self, now: i64) {
        self.windows.retain(|_, w| w.second >= now - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_rate_then_refuses_until_the_next_second() {
        let r = RateLimiter::new(3);
        assert!((0..3).all(|_| r.allow(1, 100, None)));
        assert!(!r.allow(1, 100, None));
        assert!(r.allow(2, 100, None), "other people are not affected");
        assert!(r.allow(1, 101, None));
        r.prune(103);
        assert!(r.windows.is_empty());
    }

    #[test]
    fn a_retry_with_a_key_already_let_through_is_never_refused_but_new_keys_are() {
        let r = RateLimiter::new(2);
        assert!(r.allow(1, 100, Some("click-1")));
        assert!(r.allow(1, 100, Some("click-2")));
        assert!(
            !r.allow(1, 100, Some("click-3")),
            "a new key is a new write"
        );
        for _ in 0..50 {
            assert!(r.allow(1, 100, Some("click-1")), "a duplicate gets through");
        }
        assert!(
            !r.allow(1, 100, Some("click-3")),
            "refused keys are not remembered"
        );
        assert!(
            r.allow(1, 101, Some("click-2")),
            "still known the next second"
        );
    }
}
