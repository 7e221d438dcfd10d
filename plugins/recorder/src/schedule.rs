//! When a peer's recording starts and finishes, as a plain state machine (no GStreamer, no
//! clock): tracks come and go, time passes, actions come out.
//!
//! The rule: a peer's recording holds the tracks the peer had when it started. When the set
//! changes, the recording is finished and a new one starts with every current track, once the
//! set has been still for [`Schedule::settle_ms`] (a browser's audio and video arrive a few
//! milliseconds apart, and a renegotiation may replace several tracks: one new recording, not
//! one per track). A removed track has stopped flowing already, so its recording finishes at
//! once; an added one waits for the settle time, and the running recording goes on meanwhile.

use std::collections::BTreeMap;

/// A track as the schedule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub id: String,
    pub kind: String,
    pub codec: String,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Finish the peer's running recording (end of stream: the last segment is finalized).
    Finish { peer: String },
    /// Start a recording of these tracks for the peer.
    Start { peer: String, tracks: Vec<Track> },
}

#[derive(Debug, Default)]
struct Peer {
    tracks: BTreeMap<String, Track>,
    recording: bool,
    /// When the track set last changed, if a (re)start is due.
    changed_at: Option<u64>,
}

/// Every peer's tracks and recording state.
#[derive(Debug)]
pub struct Schedule {
    /// How long a peer's track set must be still before its recording (re)starts.
    pub settle_ms: u64,
    peers: BTreeMap<String, Peer>,
}

impl Schedule {
    pub fn new(settle_ms: u64) -> Schedule {
        Schedule {
            settle_ms,
            peers: BTreeMap::new(),
        }
    }

    /// A peer's new track.
    pub fn track_added(&mut self, now: u64, peer: &str, track: Track) {
        let p = self.peers.entry(peer.to_string()).or_default();
        p.tracks.insert(track.id.clone(), track);
        p.changed_at = Some(now);
    }

    /// A track is gone (its data already stopped).
    pub fn track_removed(&mut self, now: u64, peer: &str, id: &str) -> Vec<Action> {
        let Some(p) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        if p.tracks.remove(id).is_none() {
            return Vec::new();
        }
        p.changed_at = (!p.tracks.is_empty()).then_some(now);
        if std::mem::take(&mut p.recording) {
            vec![Action::Finish {
                peer: peer.to_string(),
            }]
        } else {
            Vec::new()
        }
    }

    /// The peer left: its recording finishes and it is forgotten.
    pub fn peer_left(&mut self, peer: &str) -> Vec<Action> {
        match self.peers.remove(peer) {
            Some(p) if p.recording => vec![Action::Finish {
                peer: peer.to_string(),
            }],
            _ => Vec::new(),
        }
    }

    /// The peer's recording ended on its own (an error): not restarted until its tracks change.
    pub fn recording_failed(&mut self, peer: &str) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.recording = false;
        }
    }

    /// Time passed: (re)starts the recordings whose track set has settled.
    pub fn tick(&mut self, now: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        for (id, p) in &mut self.peers {
            let Some(changed) = p.changed_at else {
                continue;
            };
            if now < changed + self.settle_ms {
                continue;
            }
            p.changed_at = None;
            if std::mem::take(&mut p.recording) {
                actions.push(Action::Finish { peer: id.clone() });
            }
            if !p.tracks.is_empty() {
                p.recording = true;
                actions.push(Action::Start {
                    peer: id.clone(),
                    tracks: p.tracks.values().cloned().collect(),
                });
            }
        }
        actions
    }

    /// The bridge stops: every running recording finishes.
    pub fn stop_all(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for (id, p) in &mut self.peers {
            p.changed_at = None;
            if std::mem::take(&mut p.recording) {
                actions.push(Action::Finish { peer: id.clone() });
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, kind: &str, codec: &str) -> Track {
        Track {
            id: id.into(),
            kind: kind.into(),
            codec: codec.into(),
        }
    }

    fn start(peer: &str, ids: &[&str]) -> Action {
        Action::Start {
            peer: peer.into(),
            tracks: ids
                .iter()
                .map(|i| t(i, if i.starts_with('a') { "audio" } else { "video" }, "X"))
                .collect(),
        }
    }

    fn fin(peer: &str) -> Action {
        Action::Finish { peer: peer.into() }
    }

    #[test]
    fn audio_and_video_close_together_make_one_recording() {
        let mut s = Schedule::new(500);
        s.track_added(0, "p", t("a1", "audio", "X"));
        assert!(s.tick(100).is_empty());
        s.track_added(120, "p", t("v1", "video", "X"));
        assert!(s.tick(500).is_empty(), "not settled since the video");
        assert_eq!(s.tick(620), vec![start("p", &["a1", "v1"])]);
        assert!(s.tick(10_000).is_empty());
    }

    #[test]
    fn a_later_track_restarts_with_all_tracks() {
        let mut s = Schedule::new(500);
        s.track_added(0, "p", t("a1", "audio", "X"));
        assert_eq!(s.tick(500), vec![start("p", &["a1"])]);
        s.track_added(5_000, "p", t("v1", "video", "X"));
        assert!(
            s.tick(5_100).is_empty(),
            "the audio recording goes on meanwhile"
        );
        assert_eq!(s.tick(5_500), vec![fin("p"), start("p", &["a1", "v1"])]);
    }

    #[test]
    fn a_removed_track_finishes_at_once_and_the_rest_restarts() {
        let mut s = Schedule::new(500);
        s.track_added(0, "p", t("a1", "audio", "X"));
        s.track_added(0, "p", t("v1", "video", "X"));
        s.tick(500);
        assert_eq!(s.track_removed(1_000, "p", "v1"), vec![fin("p")]);
        assert!(
            s.track_removed(1_000, "p", "v1").is_empty(),
            "twice is once"
        );
        assert_eq!(s.tick(1_500), vec![start("p", &["a1"])]);
        assert_eq!(s.track_removed(2_000, "p", "a1"), vec![fin("p")]);
        assert!(s.tick(9_000).is_empty(), "no tracks, nothing to record");
    }

    #[test]
    fn a_renegotiation_that_replaces_tracks_starts_once() {
        let mut s = Schedule::new(500);
        s.track_added(0, "p", t("a1", "audio", "X"));
        s.track_added(0, "p", t("v1", "video", "X"));
        s.tick(500);
        assert_eq!(s.track_removed(1_000, "p", "a1"), vec![fin("p")]);
        assert!(s.track_removed(1_001, "p", "v1").is_empty());
        s.track_added(1_200, "p", t("a2", "audio", "X"));
        s.track_added(1_210, "p", t("v2", "video", "X"));
        assert!(s.tick(1_600).is_empty());
        assert_eq!(s.tick(1_710), vec![start("p", &["a2", "v2"])]);
    }

    #[test]
    fn peers_leave_and_the_bridge_stops() {
        let mut s = Schedule::new(500);
        s.track_added(0, "p", t("a1", "audio", "X"));
        s.track_added(0, "q", t("a1", "audio", "X"));
        s.track_added(0, "r", t("a1", "audio", "X"));
        assert_eq!(s.tick(500).len(), 3);
        assert_eq!(s.peer_left("p"), vec![fin("p")]);
        assert!(s.peer_left("p").is_empty());
        s.recording_failed("r");
        assert_eq!(s.stop_all(), vec![fin("q")]);
        assert!(s.tick(10_000).is_empty());
    }
}
