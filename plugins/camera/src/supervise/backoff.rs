//! The reconnect delay: doubles from half a second after each failed attempt, capped at
//! `reconnect_max_seconds`, and starts over once a session has been live for a while.

use std::time::Duration;

/// The first delay.
pub const INITIAL: Duration = Duration::from_millis(500);
/// A session live this long resets the delay.
pub const STABLE: Duration = Duration::from_secs(30);

/// Capped exponential backoff.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff {
            next: INITIAL.min(max),
            max,
        }
    }

    /// The delay before the next attempt, after a session that was live for `live_for`
    /// (zero when it never got live).
    pub fn after_failure(&mut self, live_for: Duration) -> Duration {
        if live_for >= STABLE {
            self.next = INITIAL.min(self.max);
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets_after_a_stable_session() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let delays: Vec<_> = (0..5)
            .map(|_| b.after_failure(Duration::ZERO).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        assert_eq!(b.after_failure(Duration::from_secs(5)).as_millis(), 3000);
        assert_eq!(b.after_failure(STABLE).as_millis(), 500);
        assert_eq!(b.after_failure(Duration::ZERO).as_millis(), 1000);
    }

    #[test]
    fn a_cap_below_the_first_delay_wins() {
        let mut b = Backoff::new(Duration::from_millis(200));
        assert_eq!(b.after_failure(Duration::ZERO).as_millis(), 200);
    }
}
