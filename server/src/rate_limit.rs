//! `RateLimiter`: writes per person per second, in a fixed one-second window.
//!
//! One sharded map entry per person who wrote in the last seconds; `prune` drops the
//! stale ones. A fixed window lets a burst of twice the rate straddle a second boundary,
//! which is fine for its purpose: stopping scripts that hammer, not shaping people.
//! (A keyed GCRA crate would add a dependency tree for no behaviour we need here.)

use dashmap::DashMap;

/// Per-person write limiter.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u32,
    /// person → (unix second, writes in that second)
    windows: DashMap<u64, (i64, u32)>,
}

impl RateLimiter {
    /// Allows `per_second` writes per person per second.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: DashMap::with_shard_amount(64),
        }
    }

    /// Counts one write of `person` at unix second `now`; `false` when over the limit.
    pub fn allow(&self, person: u64, now: i64) -> bool {
        let mut w = self.windows.entry(person).or_insert((now, 0));
        if w.0 != now {
            *w = (now, 0);
        }
        w.1 += 1;
        w.1 <= self.per_second
    }

    /// Forgets windows older than `now`.
    pub fn prune(&self, now: i64) {
        self.windows.retain(|_, w| w.0 >= now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_rate_then_refuses_until_the_next_second() {
        let r = RateLimiter::new(3);
        assert!((0..3).all(|_| r.allow(1, 100)));
        assert!(!r.allow(1, 100));
        assert!(r.allow(2, 100), "other people are not affected");
        assert!(r.allow(1, 101));
        r.prune(102);
        assert!(r.windows.is_empty());
    }
}
