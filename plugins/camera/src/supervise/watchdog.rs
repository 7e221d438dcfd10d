//! When a camera session is live, and when it has failed for want of media: a pure state
//! machine over the time of the last frame, so its rules are unit-tested without a camera.

use std::time::{Duration, Instant};

use super::failure::Failure;

/// A live session that sends nothing this long has failed.
pub const STALL: Duration = Duration::from_secs(5);
/// A session that has sent nothing this long after it started has failed.
pub const FIRST_FRAME_LIMIT: Duration = Duration::from_secs(20);

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing new.
    Wait,
    /// The first frame came: the session is live.
    Live,
    /// The session has failed.
    Fail(Failure),
}

/// One session's watchdog.
#[derive(Clone, Debug)]
pub struct Watchdog {
    started: Instant,
    live_since: Option<Instant>,
}

impl Watchdog {
    /// A session started at `started`.
    pub fn new(started: Instant) -> Watchdog {
        Watchdog {
            started,
            live_since: None,
        }
    }

    /// Checks the session at `now`, given its last frame, and whether the camera announced all
    /// its streams without one that can be published.
    pub fn check(&mut self, now: Instant, last_frame: Option<Instant>, no_media: bool) -> Verdict {
        match (self.live_since, last_frame) {
            (None, Some(_)) => {
                self.live_since = Some(now);
                Verdict::Live
            }
            (Some(_), Some(last)) if now.saturating_duration_since(last) > STALL => {
                Verdict::Fail(Failure::Stalled {
                    seconds: STALL.as_secs(),
                })
            }
            (None, None) if now.saturating_duration_since(self.started) > FIRST_FRAME_LIMIT => {
                Verdict::Fail(Failure::Stalled {
                    seconds: FIRST_FRAME_LIMIT.as_secs(),
                })
            }
            (None, None) if no_media => Verdict::Fail(Failure::NoMedia),
            _ => Verdict::Wait,
        }
    }

    /// Whether the first frame came.
    pub fn is_live(&self) -> bool {
        self.live_since.is_some()
    }

    /// How long the session has been live at `now` (zero if it never was).
    pub fn live_for(&self, now: Instant) -> Duration {
        self.live_since
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn live_at_the_first_frame_then_stalled_after_five_silent_seconds() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        assert_eq!(w.check(t0 + secs(1), None, false), Verdict::Wait);
        assert_eq!(
            w.check(t0 + secs(2), Some(t0 + secs(2)), false),
            Verdict::Live
        );
        assert_eq!(
            w.check(t0 + secs(3), Some(t0 + secs(3)), false),
            Verdict::Wait
        );
        assert_eq!(
            w.check(t0 + secs(7), Some(t0 + secs(3)), false),
            Verdict::Wait
        );
        assert_eq!(
            w.check(t0 + secs(9), Some(t0 + secs(3)), false),
            Verdict::Fail(Failure::Stalled { seconds: 5 })
        );
        assert_eq!(w.live_for(t0 + secs(9)), secs(7));
    }

    #[test]
    fn no_first_frame_in_time_or_no_stream_to_publish() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        assert_eq!(w.check(t0 + secs(19), None, false), Verdict::Wait);
        assert_eq!(
            w.check(t0 + secs(21), None, false),
            Verdict::Fail(Failure::Stalled { seconds: 20 })
        );
        assert_eq!(w.live_for(t0 + secs(21)), Duration::ZERO);
        let mut w = Watchdog::new(t0);
        assert_eq!(
            w.check(t0 + secs(1), None, true),
            Verdict::Fail(Failure::NoMedia)
        );
    }
}
