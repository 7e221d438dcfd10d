//! A recording session: the bridge's run in its pool. Ties the [`Schedule`] (when recordings
//! start and finish) to GStreamer [`Recording`]s and the [`Index`] on disk.
//!
//! Threads: the host calls in (tracks, events) on its bridge task; recordings report from
//! GStreamer's streaming threads through a channel (never blocking them); one worker thread owned
//! by the session reads that channel, advances the schedule's clock, and stops and removes
//! finished recordings. State changes of recordings happen on the worker and never under the
//! state lock, so a streaming thread can never wait on the lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use poolgate_plugin_api::gst;
use poolgate_plugin_api::gst::prelude::*;
use poolgate_plugin_api::{Host, TrackInfo};
use serde_json::Value;

use crate::clock::{now_ms, session_name};
use crate::config::{Config, Container};
use crate::index::{Index, Instant, PeerEntry, RecordingEntry, Segment, TrackEntry};
use crate::layout::{segment_pattern, PathTemplate};
use crate::recbin::Notice;
use crate::recording::{Plan, Recording, Source, INPUT_TEMPLATE};
use crate::schedule::{Action, Schedule, Track};

/// How long a peer's track set must be still before its recording (re)starts.
const SETTLE_MS: u64 = 500;
/// How long a finishing recording may take to write its last segment.
pub(crate) const FINISH_LIMIT_MS: u64 = 10_000;
/// The worker's clock tick.
pub(crate) const TICK: Duration = Duration::from_millis(100);

enum Msg {
    Notice {
        peer: String,
        number: u32,
        notice: Notice,
    },
    Stop,
}

struct Running {
    number: u32,
    recording: Recording,
}

struct Finishing {
    peer: String,
    number: u32,
    recording: Recording,
    deadline_ms: u64,
}

struct State {
    host: Host,
    config: Config,
    template: PathTemplate,
    root: PathBuf,
    session: String,
    pipeline: gst::Bin,
    tx: Sender<Msg>,
    /// Set once the bridge joined its pool and the session folder exists.
    index: Option<Index>,
    session_dir: PathBuf,
    schedule: Schedule,
    /// Every current track by id: its peer and source.
    sources: HashMap<String, (String, Source)>,
    descriptions: HashMap<String, Option<Value>>,
    active: HashMap<String, Running>,
    finishing: Vec<Finishing>,
    /// Running time at which each recording's current segment opened.
    opened: HashMap<(String, u32), u64>,
    numbers: HashMap<String, u32>,
    segments: u64,
    /// No recording can be made (the session folder cannot be written).
    failed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a finishing recording is done.
    done: Condvar,
}

/// A running session.
pub struct Session {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Session {
    /// Checks that `directory` can be written and starts the worker. The session folder is made
    /// when the bridge joins its pool (its name needs the pool).
    pub fn start(host: Host, config: Config) -> Result<Session, String> {
        let template = PathTemplate::parse(&config.path_template)
            .map_err(|e| format!("`path_template`: {e}"))?;
        let root = PathBuf::from(&config.directory);
        check_writable(&root).map_err(|e| format!("cannot write {}: {e}", root.display()))?;
        let pipeline = host.pipeline().upcast::<gst::Bin>();
        let (tx, rx) = mpsc::channel();
        let state = State {
            host,
            config,
            template,
            root,
            session: session_name(now_ms()),
            pipeline,
            tx: tx.clone(),
            index: None,
            session_dir: PathBuf::new(),
            schedule: Schedule::new(SETTLE_MS),
            sources: HashMap::new(),
            descriptions: HashMap::new(),
            active: HashMap::new(),
            finishing: Vec::new(),
            opened: HashMap::new(),
            numbers: HashMap::new(),
            segments: 0,
            failed: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            done: Condvar::new(),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("recorder".into())
                .spawn(move || work(&shared, rx))
                .map_err(|e| format!("cannot start the recorder thread: {e}"))?
        };
        Ok(Session {
            shared,
            tx,
            worker: Some(worker),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bridge joined `pool`: the session folder and its index are made.
    pub fn joined(&self, pool: &str) {
        let mut s = self.lock();
        if s.index.is_some() || s.failed {
            return;
        }
        let now = now_ms();
        let (dir, name) = free_session_dir(&s.template, &s.root, pool, &s.session);
        s.session = name;
        let index = Index::new(pool, &s.session, now);
        match std::fs::create_dir_all(&dir).and_then(|_| index.write(&dir)) {
            Ok(()) => {
                s.host
                    .info(&format!("recording pool {pool} into {}", dir.display()));
                s.host.set_status("live");
                s.session_dir = dir;
                s.index = Some(index);
            }
            Err(e) => {
                s.failed = true;
                s.host
                    .set_status(&format!("failed: cannot write {}: {e}", dir.display()));
            }
        }
    }

    pub fn peer_described(&self, peer: &str, description: Option<Value>) {
        let mut s = self.lock();
        if let Some(entry) = s.index.as_mut().and_then(|i| i.peers.get_mut(peer)) {
            entry.description = description.clone();
        }
        s.descriptions.insert(peer.to_string(), description);
    }

    pub fn track(&self, track: TrackInfo, tee: gst::Element) {
        let mut s = self.lock();
        s.host.info(&format!(
            "track {} of peer {}: {} {}",
            track.id, track.peer, track.kind, track.codec
        ));
        s.schedule.track_added(
            now_ms(),
            &track.peer,
            Track {
                id: track.id.clone(),
                kind: track.kind.clone(),
                codec: track.codec.clone(),
            },
        );
        s.sources.insert(
            track.id.clone(),
            (
                track.peer,
                Source {
                    id: track.id,
                    kind: track.kind,
                    codec: track.codec,
                    tee,
                },
            ),
        );
    }

    pub fn track_removed(&self, peer: &str, id: &str) {
        let mut s = self.lock();
        s.sources.remove(id);
        let actions = s.schedule.track_removed(now_ms(), peer, id);
        let gone = s.apply(actions);
        drop(s);
        remove_all(gone);
    }

    pub fn peer_left(&self, peer: &str) {
        let mut s = self.lock();
        let now = now_ms();
        if let Some(entry) = s.index.as_mut().and_then(|i| i.peers.get_mut(peer)) {
            entry.left = Some(Instant::from_ms(now));
        }
        let actions = s.schedule.peer_left(peer);
        let gone = s.apply(actions);
        s.save();
        drop(s);
        remove_all(gone);
    }

    /// Finishes every recording (waiting a bounded time for the last segments) and closes the
    /// index.
    pub fn stop(&mut self) {
        let mut s = self.lock();
        let actions = s.schedule.stop_all();
        let gone = s.apply(actions);
        drop(s);
        remove_all(gone);
        let s = self.lock();
        let (mut s, _) = self
            .shared
            .done
            .wait_timeout_while(s, Duration::from_millis(FINISH_LIMIT_MS), |s| {
                !s.finishing.is_empty()
            })
            .unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        if let Some(index) = &mut s.index {
            index.status = "stopped".into();
            index.stopped = Some(Instant::from_ms(now));
        }
        s.save();
        let late: Vec<Recording> = s.finishing.drain(..).map(|f| f.recording).collect();
        drop(s);
        let _ = self.tx.send(Msg::Stop);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        remove_all(late);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.stop();
        }
    }
}

fn remove_all(recordings: Vec<Recording>) {
    for r in recordings {
        r.remove();
    }
}

/// The session folder for session `base` of `pool`, and the session's name: `base`, or
/// `base-2`, `base-3`, ... when that folder exists already.
pub(crate) fn free_session_dir(
    template: &PathTemplate,
    root: &Path,
    pool: &str,
    base: &str,
) -> (PathBuf, String) {
    let mut name = base.to_string();
    let mut dir = template.session_dir(root, pool, &name);
    for n in 2..100 {
        if !dir.exists() {
            break;
        }
        name = format!("{base}-{n}");
        dir = template.session_dir(root, pool, &name);
    }
    (dir, name)
}

/// Creates `dir` and a file in it, then removes the file. The file's name is unique per call:
/// bridges of one gateway sharing a directory start at once, and one must not remove the
/// other's probe (that failed the other's start with "No such file or directory").
pub(crate) fn check_writable(dir: &Path) -> std::io::Result<()> {
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".poolgate-recorder-{}-{n}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// The worker: recording notices, the schedule's clock, overdue finishes.
fn work(shared: &Shared, rx: Receiver<Msg>) {
    loop {
        let msg = match rx.recv_timeout(TICK) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
        };
        let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut gone = Vec::new();
        if let Some(Msg::Notice {
            peer,
            number,
            notice,
        }) = msg
        {
            gone.extend(s.on_notice(&peer, number, notice));
        }
        let now = now_ms();
        let actions = s.schedule.tick(now);
        gone.extend(s.apply(actions));
        gone.extend(s.overdue(now));
        let any_done = !gone.is_empty();
        drop(s);
        remove_all(gone);
        if any_done {
            shared.done.notify_all();
        }
    }
}

impl State {
    /// Performs the schedule's actions; returns recordings to remove (outside the lock).
    fn apply(&mut self, actions: Vec<Action>) -> Vec<Recording> {
        let mut gone = Vec::new();
        for action in actions {
            match action {
                Action::Start { peer, tracks } => self.start_recording(&peer, &tracks),
                Action::Finish { peer } => gone.extend(self.finish_recording(&peer)),
            }
        }
        self.host
            .set_metric("recordings_active", self.active.len() as f64);
        gone
    }

    fn entry(&mut self, peer: &str, number: u32) -> Option<&mut RecordingEntry> {
        self.index
            .as_mut()?
            .peers
            .get_mut(peer)?
            .recordings
            .iter_mut()
            .find(|r| r.number == number)
    }

    fn start_recording(&mut self, peer: &str, tracks: &[Track]) {
        if self.failed || self.index.is_none() {
            self.schedule.recording_failed(peer);
            return;
        }
        let number = {
            let n = self.numbers.entry(peer.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let container = Container::for_codecs(
            self.config.container,
            tracks.iter().map(|t| t.codec.as_str()),
        );
        let index = self.index.as_ref().expect("checked above");
        let folder = self
            .template
            .peer_dir(&self.root, &index.pool, &index.session, peer);
        let pattern = segment_pattern(number, container.extension());
        let sources: Vec<&Source> = tracks
            .iter()
            .filter_map(|t| self.sources.get(&t.id).map(|(_, s)| s))
            .collect();
        let sources: Vec<Source> = sources
            .into_iter()
            .map(|s| Source {
                id: s.id.clone(),
                kind: s.kind.clone(),
                codec: s.codec.clone(),
                tee: s.tee.clone(),
            })
            .collect();
        let plan = Plan {
            container,
            folder: &folder,
            pattern: &pattern,
            segment_ns: self.config.segment_seconds * 1_000_000_000,
            segment_bytes: self.config.segment_bytes.unwrap_or(0),
            input: self
                .config
                .input_pipeline
                .as_deref()
                .unwrap_or(INPUT_TEMPLATE),
        };
        let tx = Mutex::new(self.tx.clone());
        let who = peer.to_string();
        let notify = Box::new(move |notice: Notice| {
            let _ = tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(Msg::Notice {
                    peer: who.clone(),
                    number,
                    notice,
                });
        });
        let name = format!("recording-{}-{number}", crate::layout::safe(peer));
        let mut skipped = Vec::new();
        let result = Recording::start(&self.pipeline, &name, &sources, &plan, notify, &mut skipped);
        for id in &skipped {
            self.host.warn(&format!(
                "track {id} of peer {peer} not recorded: one video per recording"
            ));
        }
        let now = now_ms();
        let status = match &result {
            Ok(_) => "recording".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        let description = self.descriptions.get(peer).cloned().flatten();
        let folder_name = folder
            .strip_prefix(&self.session_dir)
            .unwrap_or(&folder)
            .to_string_lossy()
            .to_string();
        let index = self.index.as_mut().expect("checked above");
        let peer_entry = index
            .peers
            .entry(peer.to_string())
            .or_insert_with(|| PeerEntry {
                folder: folder_name,
                ..Default::default()
            });
        peer_entry.description = description;
        peer_entry.recordings.push(RecordingEntry {
            number,
            container: container.extension().into(),
            status: status.clone(),
            tracks: sources
                .iter()
                .filter(|s| !skipped.contains(&s.id))
                .map(|s| TrackEntry {
                    id: s.id.clone(),
                    kind: s.kind.clone(),
                    codec: s.codec.clone(),
                })
                .collect(),
            started: Instant::from_ms(now),
            stopped: None,
            segments: Vec::new(),
        });
        match result {
            Ok(recording) => {
                self.host.info(&format!(
                    "recording peer {peer} ({}) into {}",
                    tracks
                        .iter()
                        .map(|t| t.codec.as_str())
                        .collect::<Vec<_>>()
                        .join("+"),
                    folder.join(&pattern).display()
                ));
                self.active
                    .insert(peer.to_string(), Running { number, recording });
            }
            Err(e) => {
                self.schedule.recording_failed(peer);
                self.host.set_status(&status);
                self.host.warn(&format!("recording peer {peer}: {e}"));
            }
        }
        self.save();
    }

    fn finish_recording(&mut self, peer: &str) -> Option<Recording> {
        let running = self.active.remove(peer)?;
        let now = now_ms();
        if let Some(entry) = self.entry(peer, running.number) {
            entry.stopped = Some(Instant::from_ms(now));
        }
        if running.recording.finish() {
            self.finishing.push(Finishing {
                peer: peer.to_string(),
                number: running.number,
                recording: running.recording,
                deadline_ms: now + FINISH_LIMIT_MS,
            });
            None
        } else {
            if let Some(entry) = self.entry(peer, running.number) {
                entry.status = "finished".into();
            }
            Some(running.recording)
        }
    }

    /// Takes the recording `(peer, number)` out of the running or finishing ones.
    fn take(&mut self, peer: &str, number: u32) -> Option<Recording> {
        if self.active.get(peer).is_some_and(|r| r.number == number) {
            return self.active.remove(peer).map(|r| r.recording);
        }
        let i = self
            .finishing
            .iter()
            .position(|f| f.peer == peer && f.number == number)?;
        Some(self.finishing.remove(i).recording)
    }

    fn on_notice(&mut self, peer: &str, number: u32, notice: Notice) -> Option<Recording> {
        let key = (peer.to_string(), number);
        match notice {
            Notice::SegmentOpened { running_time, .. } => {
                self.opened.insert(key, running_time);
                None
            }
            Notice::SegmentClosed {
                location,
                running_time,
            } => {
                let start = self.opened.get(&key).copied().unwrap_or(0);
                let bytes = std::fs::metadata(&location).map(|m| m.len()).unwrap_or(0);
                let file = Path::new(&location)
                    .strip_prefix(&self.session_dir)
                    .map(|p| p.to_string_lossy().to_string())
                    .unwrap_or(location);
                let segment = Segment {
                    file,
                    duration_s: running_time.saturating_sub(start) as f64 / 1e9,
                    bytes,
                    closed: Instant::from_ms(now_ms()),
                };
                if let Some(entry) = self.entry(peer, number) {
                    entry.segments.push(segment);
                }
                self.segments += 1;
                self.host
                    .set_metric("segments_written", self.segments as f64);
                self.save();
                None
            }
            Notice::Finished => {
                let recording = self.take(peer, number)?;
                self.opened.remove(&key);
                let now = now_ms();
                if let Some(entry) = self.entry(peer, number) {
                    entry.status = "finished".into();
                    entry.stopped.get_or_insert_with(|| Instant::from_ms(now));
                }
                self.save();
                Some(recording)
            }
            Notice::Failed(reason) => {
                let recording = self.take(peer, number)?;
                self.opened.remove(&key);
                self.schedule.recording_failed(peer);
                let folder = Path::new(&recording.folder).display().to_string();
                let status = if reason.write {
                    format!("failed: cannot write {folder}: {}", reason.text)
                } else {
                    format!("failed: recording peer {peer}: {}", reason.text)
                };
                let now = now_ms();
                if let Some(entry) = self.entry(peer, number) {
                    entry.status = status.clone();
                    entry.stopped.get_or_insert_with(|| Instant::from_ms(now));
                }
                self.host.warn(&status);
                self.host.set_status(&status);
                self.host
                    .set_metric("recordings_active", self.active.len() as f64);
                self.save();
                Some(recording)
            }
        }
    }

    /// Finishing recordings whose end never came: given up.
    fn overdue(&mut self, now: u64) -> Vec<Recording> {
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.finishing)
            .into_iter()
            .partition(|f| now >= f.deadline_ms);
        self.finishing = keep;
        let mut gone = Vec::new();
        for f in late {
            self.host.warn(&format!(
                "recording {} of peer {} did not finish in time: its last segment may be lost",
                f.number, f.peer
            ));
            if let Some(entry) = self.entry(&f.peer, f.number) {
                entry.status = "failed: the last segment was not finalized in time".into();
            }
            gone.push(f.recording);
        }
        if !gone.is_empty() {
            self.save();
        }
        gone
    }

    /// Rewrites the index; a failure to is the session's failure.
    fn save(&mut self) {
        let Some(index) = &self.index else {
            return;
        };
        if let Err(e) = index.write(&self.session_dir) {
            let status = format!("failed: cannot write {}: {e}", self.session_dir.display());
            self.host.warn(&status);
            self.host.set_status(&status);
        }
    }
}
