//! The session index (`index.json` in the session folder): who was recorded, when, into which
//! segments. Rewritten whole after every change, atomically (a temporary file renamed over the
//! old one), so a crash leaves the previous or the next version, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::rfc3339;

/// A wall-clock instant: text for people, milliseconds for programs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instant {
    pub at: String,
    pub unix_ms: u64,
}

impl Instant {
    pub fn from_ms(ms: u64) -> Instant {
        Instant {
            at: rfc3339(ms),
            unix_ms: ms,
        }
    }
}

/// One session: a bridge's run in a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub pool: String,
    pub session: String,
    /// `recording`, `stopped`, or `failed: <reason>`.
    pub status: String,
    pub started: Instant,
    pub stopped: Option<Instant>,
    /// By peer id.
    pub peers: BTreeMap<String, PeerEntry>,
    /// Composite mode only: the pool's one recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite: Option<CompositeEntry>,
}

/// A composite recording: every video of the pool in a grid and every audio mixed, encoded
/// once, as one list of segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeEntry {
    pub container: String,
    /// `VP8` or `H264`; the audio is Opus.
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    /// `recording`, `finished`, or `failed: <reason>`.
    pub status: String,
    pub started: Instant,
    pub stopped: Option<Instant>,
    /// Finished segments, in order (`file` relative to the session folder).
    pub segments: Vec<Segment>,
    /// Every track that was in the mix, and when: who was present over time.
    pub tracks: Vec<CompositeTrack>,
}

/// A track in a composite recording, from `added` to `removed` (unset: to the end).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeTrack {
    pub peer: String,
    pub id: String,
    pub kind: String,
    pub codec: String,
    pub added: Instant,
    pub removed: Option<Instant>,
}

/// A peer seen during the session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// Its description (the last one it had while recorded).
    pub description: Option<Value>,
    /// Its folder, relative to the session folder (empty in composite mode).
    pub folder: String,
    /// When it was first seen (composite mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<Instant>,
    pub left: Option<Instant>,
    /// One per track set: a new track or a removed one starts a new recording.
    pub recordings: Vec<RecordingEntry>,
}

/// One recording of a peer: a track set, in one container, as a list of segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordingEntry {
    /// 1, 2, ...: the files' `NN-` prefix.
    pub number: u32,
    pub container: String,
    /// `recording`, `finished`, or `failed: <reason>`.
    pub status: String,
    pub tracks: Vec<TrackEntry>,
    pub started: Instant,
    pub stopped: Option<Instant>,
    /// Finished segments, in order. The one being written is not listed.
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackEntry {
    pub id: String,
    pub kind: String,
    pub codec: String,
}

/// A finished, playable segment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Relative to the session folder.
    pub file: String,
    /// Media duration in seconds (from the stream's running time).
    pub duration_s: f64,
    pub bytes: u64,
    pub closed: Instant,
}

impl Index {
    pub fn new(pool: &str, session: &str, now_ms: u64) -> Index {
        Index {
            pool: pool.to_string(),
            session: session.to_string(),
            status: "recording".into(),
            started: Instant::from_ms(now_ms),
            stopped: None,
            peers: BTreeMap::new(),
            composite: None,
        }
    }

    /// Writes the index as `dir/index.json`, atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("an index serializes");
        let tmp = dir.join(".index.json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.write_all(b"\n")?;
            // On disk before the rename, or a crash could leave an empty index.
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join("index.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("recorder-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut index = Index::new("room", "s1", 1_000);
        index.peers.insert(
            "p".into(),
            PeerEntry {
                folder: "p".into(),
                ..Default::default()
            },
        );
        index.write(&dir).unwrap();
        index.status = "stopped".into();
        index.write(&dir).unwrap();
        let back: Index =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(back, index);
        assert!(!dir.join(".index.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn composite_fields_are_additions() {
        // A per-peer index reads and writes as before: no `composite`, no `joined`.
        let old = r#"{"pool": "p", "session": "s", "status": "stopped",
            "started": {"at": "x", "unix_ms": 1}, "stopped": null,
            "peers": {"a": {"description": null, "folder": "a", "left": null, "recordings": []}}}"#;
        let index: Index = serde_json::from_str(old).unwrap();
        assert_eq!(index.composite, None);
        let text = serde_json::to_string(&index).unwrap();
        assert!(
            !text.contains("composite") && !text.contains("joined"),
            "{text}"
        );
        // A composite index round-trips.
        let mut index = Index::new("p", "s", 1);
        index.composite = Some(CompositeEntry {
            container: "webm".into(),
            video_codec: "VP8".into(),
            width: 640,
            height: 360,
            framerate: 15,
            status: "recording".into(),
            started: Instant::from_ms(1),
            stopped: None,
            segments: Vec::new(),
            tracks: vec![CompositeTrack {
                peer: "a".into(),
                id: "a/src_0".into(),
                kind: "video".into(),
                codec: "VP8".into(),
                added: Instant::from_ms(2),
                removed: Some(Instant::from_ms(3)),
            }],
        });
        let back: Index = serde_json::from_str(&serde_json::to_string(&index).unwrap()).unwrap();
        assert_eq!(back, index);
    }
}
