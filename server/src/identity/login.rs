//! Login failures: counted per account and per client address, they throttle, then lock.
//!
//! NIST SP 800-63B §5.2.2 allows at most 100 consecutive failed attempts on one account
//! before it must be locked; the defaults stay far below that. Throttling comes first, so
//! a person who mistypes a few times waits seconds, not an hour. Counts live in the
//! identity store, so every instance sees the same count.

/// The failures recorded against one subject (an account or a client address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    /// Unix seconds of the latest failure.
    pub last_at: i64,
}

/// What a subject may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too many failures lately: try again after the pause.
    Throttled {
        retry_after: u64,
    },
    /// Locked until the lock expires or an operator unlocks it.
    Locked {
        retry_after: u64,
    },
}

/// The thresholds; all configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures after which each further attempt waits `throttle_seconds` after the last.
    pub throttle_after: u32,
    pub throttle_seconds: u32,
    /// Failures after which the account is locked (at most 100, NIST SP 800-63B).
    pub lock_after: u32,
    pub lock_seconds: u32,
    /// Failures from one client address before it is throttled like an account.
    pub address_throttle_after: u32,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            throttle_after: 5,
            throttle_seconds: 30,
            lock_after: 20,
            lock_seconds: 3600,
            // A kiosk or a carrier-grade NAT puts many people behind one address.
            address_throttle_after: 200,
        }
    }
}

impl LoginPolicy {
    /// How long a failure count is kept after its latest failure.
    pub fn keep_seconds(&self) -> i64 {
        i64::from(self.lock_seconds.max(self.throttle_seconds)).max(900)
    }

    fn pause(last_at: i64, seconds: u32, now: i64) -> Option<u64> {
        let until = last_at + i64::from(seconds);
        (now < until).then(|| (until - now) as u64)
    }

    /// The gate of an account with these failures.
    pub fn account(&self, f: Failures, now: i64) -> Gate {
        if f.count >= self.lock_after {
            return match Self::pause(f.last_at, self.lock_seconds, now) {
                Some(retry_after) => Gate::Locked { retry_after },
                None => Gate::Open,
            };
        }
        self.throttle(f, self.throttle_after, now)
    }

    /// The gate of a client address with these failures: throttled, never locked.
    pub fn address(&self, f: Failures, now: i64) -> Gate {
        self.throttle(f, self.address_throttle_after, now)
    }

    fn throttle(&self, f: Failures, after: u32, now: i64) -> Gate {
        if f.count < after {
            return Gate::Open;
        }
        match Self::pause(f.last_at, self.throttle_seconds, now) {
            Some(retry_after) => Gate::Throttled { retry_after },
            None => Gate::Open,
        }
    }

    /// Checks the bounds of a configured policy.
    pub fn validate(&self) -> Result<(), String> {
        if self.lock_after == 0 || self.lock_after > 100 {
            return Err("--login-lock-after must be 1 to 100 (NIST SP 800-63B)".into());
        }
        if self.throttle_after == 0 || self.throttle_after > self.lock_after {
            return Err("--login-throttle-after must be 1 to --login-lock-after".into());
        }
        if self.address_throttle_after == 0 {
            return Err("--login-address-throttle-after must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_failures_throttle_then_many_lock() {
        let p = LoginPolicy::default();
        let f = |count| Failures {
            count,
            last_at: 1_000,
        };
        assert_eq!(p.account(f(4), 1_001), Gate::Open);
        assert_eq!(p.account(f(5), 1_010), Gate::Throttled { retry_after: 20 });
        assert_eq!(p.account(f(5), 1_030), Gate::Open);
        assert_eq!(p.account(f(20), 1_030), Gate::Locked { retry_after: 3_570 });
        assert_eq!(p.account(f(20), 4_600), Gate::Open);
    }

    #[test]
    fn addresses_are_throttled_at_their_own_threshold() {
        let p = LoginPolicy::default();
        let f = |count| Failures { count, last_at: 0 };
        assert_eq!(p.address(f(199), 1), Gate::Open);
        assert_eq!(p.address(f(500), 1), Gate::Throttled { retry_after: 29 });
    }

    #[test]
    fn the_lock_threshold_is_bounded_by_nist() {
        let p = LoginPolicy {
            lock_after: 101,
            ..LoginPolicy::default()
        };
        assert!(p.validate().is_err());
        assert!(LoginPolicy::default().validate().is_ok());
    }
}
