//! Retry delays: exponential growth with full jitter.

use std::time::Duration;

/// The delay before attempt `attempt + 1` of a message whose attempt `attempt` failed
/// with [`SendError::Retry`](super::SendError::Retry): uniformly random in
/// `[0, min(max, base * 2^(attempt-1))]`, drawn from `unit_random`.
///
/// Full jitter rather than a fixed exponential: after a carrier outage every pending
/// message fails at about the same moment, and fixed delays would bring them all back
/// at the same moment too. Spreading each retry over the whole window keeps the
/// carrier's load flat as it recovers.
///
/// `attempt` starts at 1 (0 is read as 1). `unit_random` should lie in `[0, 1)`; values
/// outside are clamped and NaN reads as 0, so the answer never exceeds the cap. The
/// randomness is a parameter so that the function is pure and tests need no seed.
pub fn backoff(attempt: u32, base: Duration, max: Duration, unit_random: f64) -> Duration {
    let doublings = attempt.max(1) - 1;
    // 2^doublings overflows u32 from 32 on, and the product overflows Duration long
    // before that for any useful base: both mean "past the cap".
    let ceiling = 1u32
        .checked_shl(doublings)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |d| d.min(max));
    let unit = if unit_random.is_nan() {
        0.0
    } else {
        unit_random.clamp(0.0, 1.0)
    };
    // `unit` is in [0, 1], so the product is finite, non-negative and at most `ceiling`.
    ceiling.mul_f64(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn first_attempt_waits_at_most_base() {
        assert_eq!(backoff(1, BASE, MAX, 0.0), Duration::ZERO);
        assert_eq!(backoff(1, BASE, MAX, 0.5), Duration::from_millis(250));
        assert!(backoff(1, BASE, MAX, 0.999_999) <= BASE);
    }

    #[test]
    fn window_doubles_with_each_attempt() {
        // Just below 1: the top of each window.
        let top = |attempt| backoff(attempt, BASE, MAX, 0.999_999_999);
        let near = |d: Duration, want: Duration| {
            assert!(
                d <= want && want - d < Duration::from_millis(1),
                "{d:?} vs {want:?}"
            )
        };
        near(top(1), Duration::from_millis(500));
        near(top(2), Duration::from_secs(1));
        near(top(3), Duration::from_secs(2));
        near(top(4), Duration::from_secs(4));
        near(top(7), Duration::from_secs(32));
    }

    #[test]
    fn window_is_capped_at_max() {
        assert_eq!(backoff(8, BASE, MAX, 1.0), MAX);
        assert_eq!(backoff(40, BASE, MAX, 1.0), MAX);
        assert_eq!(backoff(u32::MAX, BASE, MAX, 1.0), MAX);
        assert_eq!(backoff(u32::MAX, Duration::MAX, MAX, 0.5), MAX / 2);
    }

    #[test]
    fn delay_stays_within_window_for_any_random_draw() {
        for attempt in 0..70 {
            let cap = if attempt <= 1 {
                BASE
            } else {
                BASE.saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX))
                    .min(MAX)
            };
            for unit in [
                0.0,
                0.1,
                0.5,
                0.9,
                0.999_999,
                -3.0,
                7.0,
                f64::NAN,
                f64::INFINITY,
            ] {
                let d = backoff(attempt, BASE, MAX, unit);
                assert!(d <= cap, "attempt {attempt}, unit {unit}: {d:?} > {cap:?}");
            }
        }
    }

    #[test]
    fn attempt_zero_is_read_as_the_first() {
        assert_eq!(backoff(0, BASE, MAX, 0.5), backoff(1, BASE, MAX, 0.5));
    }
}
