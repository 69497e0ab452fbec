//! Rate-limited warnings: during a storage blip every request fails the same way, and one
//! line a window says more than thousands. The first occurrence of a kind logs at once;
//! repeats within the window are counted and reported with the next line after it
//! ("N more in the last 10 s").

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window over which repeats of one kind are folded.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One kind of warning.
#[derive(Debug)]
pub struct Limited {
    state: Mutex<Option<(Instant, u64)>>,
}

impl Limited {
    pub const fn new() -> Self {
        Limited {
            state: Mutex::new(None),
        }
    }

    /// Whether to log now, and how many repeats were folded since the last line.
    pub fn check(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *state {
            Some((since, ref mut folded)) if now.duration_since(since) < WINDOW => {
                *folded += 1;
                None
            }
            Some((_, folded)) => {
                *state = Some((now, 0));
                Some(folded)
            }
            None => {
                *state = Some((now, 0));
                Some(0)
            }
        }
    }
}

impl Default for Limited {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_window_are_folded_into_the_next_line() {
        let l = Limited::new();
        let t = Instant::now();
        assert_eq!(l.check(t), Some(0));
        for i in 1..=5 {
            assert_eq!(l.check(t + Duration::from_millis(i)), None);
        }
        assert_eq!(l.check(t + WINDOW + Duration::from_millis(1)), Some(5));
        assert_eq!(l.check(t + WINDOW + Duration::from_millis(2)), None);
    }
}
