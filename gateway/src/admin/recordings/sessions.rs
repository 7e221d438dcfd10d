//! Sessions on disk: each recorder session folder holds an `index.json` (written by the
//! recorder plugin) that lists its peers and their finished segments. This module finds them
//! under a [`Place`], reads them, tells which are still being recorded, and resolves the files
//! an index lists (and only those).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::places::Place;

/// At most this many folders are looked at per place, so a huge or looping tree cannot stall
/// a request.
const MAX_FOLDERS: usize = 20_000;

/// A wall-clock instant, as the index writes it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Instant {
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-27T19:05:00.123Z")]
    pub at: String,
    pub unix_ms: u64,
}

/// A session index as the recorder writes it. Fields this gateway does not know are ignored,
/// so a newer recorder's index still reads.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Index {
    pub pool: String,
    pub session: String,
    /// `recording`, `stopped`, or `failed: <reason>`.
    pub status: String,
    pub started: Instant,
    #[serde(default)]
    pub stopped: Option<Instant>,
    #[serde(default)]
    pub peers: BTreeMap<String, Peer>,
}

/// A peer recorded in a session.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Peer {
    /// Its description (the last one it had while recorded).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub description: Option<Value>,
    /// Its folder, relative to the session folder.
    #[serde(default)]
    pub folder: String,
    /// When it left the pool, if it did during the session.
    #[serde(default)]
    pub left: Option<Instant>,
    /// One per track set (a new or removed track starts a new recording).
    #[serde(default)]
    pub recordings: Vec<Recording>,
}

/// One recording of a peer: a track set in one container, as segments.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Recording {
    /// 1, 2, ...: the files' `NN-` prefix.
    pub number: u32,
    /// `webm`, `mkv` or `mp4`.
    pub container: String,
    /// `recording`, `finished`, or `failed: <reason>`.
    pub status: String,
    #[serde(default)]
    pub tracks: Vec<Track>,
    pub started: Instant,
    #[serde(default)]
    pub stopped: Option<Instant>,
    /// Finished segments, in order (the one being written is not listed).
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// A recorded track.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Track {
    pub id: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The RTP encoding name, as received (no transcoding): `VP8`, `H264`, `OPUS`, ...
    pub codec: String,
}

/// A finished segment: a file that plays on its own.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Segment {
    /// Relative to the session folder, e.g. `<peer>/01-00000.webm`.
    pub file: String,
    /// Media duration in seconds.
    pub duration_s: f64,
    pub bytes: u64,
    /// When it was finished.
    pub closed: Instant,
    /// Where to download it (`GET`, with `Range` requests). Filled in by the admin API.
    #[serde(default, skip_deserializing)]
    pub url: Option<String>,
}

impl Index {
    /// Every finished segment, over all peers and recordings.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.peers
            .values()
            .flat_map(|p| &p.recordings)
            .flat_map(|r| &r.segments)
    }
}

/// A session found on disk.
#[derive(Clone, Debug)]
pub struct Found {
    pub place: Place,
    /// The session folder (the one holding `index.json`).
    pub dir: PathBuf,
    pub index: Index,
}

/// Every session under `place`: the folders at the template's session depth that hold a
/// readable `index.json`. Symbolic links are not followed; unreadable folders and indexes
/// are skipped (logged).
pub fn scan(place: &Place) -> Vec<Found> {
    let Some(depth) = place.session_depth() else {
        return Vec::new();
    };
    let mut level = vec![place.directory.clone()];
    let mut visited = 0;
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                visited += 1;
                if visited > MAX_FOLDERS {
                    tracing::warn!(directory = %place.directory.display(),
                        "recordings: over {MAX_FOLDERS} folders; the rest is not listed");
                    break;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    next.push(entry.path());
                }
            }
        }
        level = next;
    }
    let mut found: Vec<Found> = level
        .into_iter()
        .filter_map(|dir| {
            let index = read_index(&dir)?;
            Some(Found {
                place: place.clone(),
                dir,
                index,
            })
        })
        .collect();
    found.sort_by(|a, b| {
        (a.index.started.unix_ms, &a.index.pool, &a.index.session).cmp(&(
            b.index.started.unix_ms,
            &b.index.pool,
            &b.index.session,
        ))
    });
    found
}

fn read_index(dir: &Path) -> Option<Index> {
    let path = dir.join("index.json");
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(index) => Some(index),
        Err(e) => {
            tracing::warn!(index = %path.display(), "recordings: unreadable index: {e}");
            None
        }
    }
}

/// Every session under every place, in start order; a session folder reached from two
/// places (one directory nested in another) is listed once.
pub fn scan_all(places: &[Place]) -> Vec<Found> {
    let mut all: Vec<Found> = Vec::new();
    for place in places {
        for found in scan(place) {
            if !all.iter().any(|f| same_dir(&f.dir, &found.dir)) {
                all.push(found);
            }
        }
    }
    all.sort_by_key(|f| f.index.started.unix_ms);
    all
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The sessions being recorded now: for each running recorder (its place and pool), the
/// newest session of that pool in that place whose index says `recording`. Older
/// `recording` sessions are leftovers of a killed gateway and count as finished.
pub fn live<'a>(found: &'a [Found], recorders: &[(Place, String)]) -> Vec<&'a Found> {
    let mut out: Vec<&Found> = Vec::new();
    for (place, pool) in recorders {
        let newest = found
            .iter()
            .filter(|f| &f.place == place && &f.index.pool == pool && f.index.status == "recording")
            .max_by_key(|f| f.index.started.unix_ms);
        if let Some(f) = newest {
            if !out.iter().any(|o| o.dir == f.dir) {
                out.push(f);
            }
        }
    }
    out
}

/// Why a listed file cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub enum FileRefusal {
    /// The index lists no segment by that name.
    NotListed,
    /// Listed, but missing on disk or outside the session folder.
    Missing,
}

/// The file `name` of a session, when its index lists it as a segment and it resolves (links
/// followed) to a regular file inside the session folder.
pub fn segment_file(found: &Found, name: &str) -> Result<PathBuf, FileRefusal> {
    if !found.index.segments().any(|s| s.file == name) {
        return Err(FileRefusal::NotListed);
    }
    let root = found.dir.canonicalize().map_err(|_| FileRefusal::Missing)?;
    let path = found
        .dir
        .join(name)
        .canonicalize()
        .map_err(|_| FileRefusal::Missing)?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(FileRefusal::Missing);
    }
    Ok(path)
}

/// Removes a session folder, when it is strictly inside its place's directory.
pub fn remove(found: &Found) -> std::io::Result<()> {
    let root = found.place.directory.canonicalize()?;
    let dir = found.dir.canonicalize()?;
    if dir == root || !dir.starts_with(&root) {
        return Err(std::io::Error::other(format!(
            "{} is not inside {}",
            dir.display(),
            root.display()
        )));
    }
    std::fs::remove_dir_all(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A scratch folder, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!(
                "poolgate-recsessions-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn index(pool: &str, session: &str, status: &str, started: u64, files: &[&str]) -> Value {
        let segments: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({"file": f, "duration_s": 1.5, "bytes": 3,
                       "closed": {"at": "x", "unix_ms": started + 1}})
            })
            .collect();
        json!({
            "pool": pool, "session": session, "status": status,
            "started": {"at": "x", "unix_ms": started}, "stopped": null,
            "future_field": 1,
            "peers": {"p1": {"description": {"name": "a"}, "folder": "p1", "left": null,
                "recordings": [{"number": 1, "container": "webm", "status": "finished",
                    "tracks": [{"id": "t", "kind": "video", "codec": "VP8"}],
                    "started": {"at": "x", "unix_ms": started}, "stopped": null,
                    "segments": segments}]}}
        })
    }

    fn write_session(root: &Path, pool: &str, session: &str, index: &Value) -> PathBuf {
        let dir = root.join(pool).join(session);
        std::fs::create_dir_all(dir.join("p1")).unwrap();
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
        std::fs::write(dir.join("p1/01-00000.webm"), b"abc").unwrap();
        dir
    }

    fn place(root: &Path) -> Place {
        Place {
            directory: root.to_path_buf(),
            path_template: "{pool}/{session}/{peer}".into(),
        }
    }

    #[test]
    fn finds_reads_and_orders_sessions() {
        let s = Scratch::new("scan");
        let file = "p1/01-00000.webm";
        write_session(
            &s.0,
            "room",
            "s2",
            &index("room", "s2", "stopped", 20, &[file]),
        );
        write_session(
            &s.0,
            "room",
            "s1",
            &index("room", "s1", "stopped", 10, &[file]),
        );
        // Not sessions: a stray file, a folder without index, a broken index.
        std::fs::write(s.0.join("room/stray"), b"x").unwrap();
        std::fs::create_dir_all(s.0.join("other/empty")).unwrap();
        std::fs::create_dir_all(s.0.join("other/bad")).unwrap();
        std::fs::write(s.0.join("other/bad/index.json"), b"{").unwrap();
        let found = scan(&place(&s.0));
        let names: Vec<&str> = found.iter().map(|f| f.index.session.as_str()).collect();
        assert_eq!(names, ["s1", "s2"]);
        let seg: Vec<&Segment> = found[0].index.segments().collect();
        assert_eq!(seg.len(), 1);
        assert_eq!(seg[0].file, file);
        assert_eq!(seg[0].url, None);
        // Twice the same place: listed once.
        assert_eq!(scan_all(&[place(&s.0), place(&s.0)]).len(), 2);
        // A missing directory is no session, not an error.
        assert!(scan(&place(&s.0.join("nope"))).is_empty());
    }

    #[test]
    fn only_the_newest_recording_session_of_a_running_recorder_is_live() {
        let s = Scratch::new("live");
        write_session(&s.0, "a", "old", &index("a", "old", "recording", 10, &[]));
        write_session(&s.0, "a", "new", &index("a", "new", "recording", 20, &[]));
        write_session(&s.0, "a", "done", &index("a", "done", "stopped", 30, &[]));
        write_session(&s.0, "b", "x", &index("b", "x", "recording", 40, &[]));
        let found = scan(&place(&s.0));
        let live_names = |recorders: &[(Place, String)]| -> Vec<String> {
            live(&found, recorders)
                .iter()
                .map(|f| f.index.session.clone())
                .collect()
        };
        assert_eq!(live_names(&[(place(&s.0), "a".into())]), ["new"]);
        assert_eq!(
            live_names(&[(place(&s.0), "a".into()), (place(&s.0), "b".into())]),
            ["new", "x"]
        );
        assert!(live_names(&[]).is_empty(), "no recorder: nothing is live");
        let elsewhere = place(&s.0.join("elsewhere"));
        assert!(live_names(&[(elsewhere, "a".into())]).is_empty());
    }

    #[test]
    fn only_listed_files_inside_the_session_are_served() {
        let s = Scratch::new("files");
        let listed = [
            "p1/01-00000.webm",
            "p1/missing.webm",
            "../outside.webm",
            "p1",
        ];
        let dir = write_session(&s.0, "r", "s", &index("r", "s", "stopped", 1, &listed));
        std::fs::write(s.0.join("r/outside.webm"), b"secret").unwrap();
        std::fs::write(dir.join("p1/unlisted.webm"), b"x").unwrap();
        let found = &scan(&place(&s.0))[0];
        assert_eq!(
            segment_file(found, "p1/01-00000.webm").unwrap(),
            dir.canonicalize().unwrap().join("p1/01-00000.webm")
        );
        assert_eq!(
            segment_file(found, "p1/unlisted.webm"),
            Err(FileRefusal::NotListed)
        );
        assert_eq!(
            segment_file(found, "p1/../p1/01-00000.webm"),
            Err(FileRefusal::NotListed)
        );
        assert_eq!(
            segment_file(found, "index.json"),
            Err(FileRefusal::NotListed)
        );
        assert_eq!(
            segment_file(found, "p1/missing.webm"),
            Err(FileRefusal::Missing)
        );
        assert_eq!(
            segment_file(found, "../outside.webm"),
            Err(FileRefusal::Missing),
            "a tampered index cannot reach outside the session folder"
        );
        assert_eq!(segment_file(found, "p1"), Err(FileRefusal::Missing));
    }

    #[test]
    fn removes_a_session_folder_only_inside_its_place() {
        let s = Scratch::new("remove");
        let dir = write_session(&s.0, "r", "s", &index("r", "s", "stopped", 1, &[]));
        let mut found = scan(&place(&s.0)).remove(0);
        let inner = found.clone();
        found.dir = s.0.clone();
        assert!(remove(&found).is_err(), "the place's root itself");
        found.dir = std::env::temp_dir();
        assert!(remove(&found).is_err(), "outside the place");
        remove(&inner).unwrap();
        assert!(!dir.exists());
        assert!(s.0.join("r").exists());
    }
}
