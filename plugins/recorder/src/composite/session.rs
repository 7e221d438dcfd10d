//! A composite session: the bridge's run in its pool, recorded as one [`Mixer`]. It starts when
//! the bridge joins its pool (an empty room records black and silence) and ends when the bridge
//! stops; tracks join and leave the mix meanwhile, and the index says who was in it when.
//!
//! Threads as in per-peer mode (`crate::session`): host calls on the bridge task, notices from
//! streaming threads through a channel to one worker thread. Branches and the mixer are stopped
//! outside the state lock, never on a streaming thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use poolgate_plugin_api::gst;
use poolgate_plugin_api::gst::prelude::*;
use poolgate_plugin_api::{Host, TrackInfo};
use serde_json::Value;

use super::mixer::{self, Branch, Format, Mixer, Output, Templates};
use crate::clock::{now_ms, session_name};
use crate::config::{Config, Container, VideoCodec};
use crate::index::{CompositeEntry, CompositeTrack, Index, Instant, PeerEntry, Segment};
use crate::layout::{segment_pattern, PathTemplate};
use crate::recbin::{Notice, RecordingBin};
use crate::session::{check_writable, free_session_dir, FINISH_LIMIT_MS, TICK};

/// The composite's folder in the session folder.
const FOLDER: &str = "composite";

enum Msg {
    Notice(Notice),
    Stop,
}

struct State {
    host: Host,
    config: Config,
    template: PathTemplate,
    root: PathBuf,
    session: String,
    pipeline: gst::Bin,
    tx: Sender<Msg>,
    index: Option<Index>,
    session_dir: PathBuf,
    mixer: Option<Mixer>,
    /// Tracks that came before the mixer started.
    waiting: Vec<(TrackInfo, gst::Element)>,
    /// Every track in the mix or waiting: its peer.
    peers_of: HashMap<String, String>,
    descriptions: HashMap<String, Option<Value>>,
    /// Running time at which the current segment opened.
    opened: u64,
    segments: u64,
    /// The mixer's last segment is written (or it failed): nothing more will come.
    done: bool,
    failed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the mixer is done.
    done: Condvar,
}

/// A running composite session.
pub struct CompositeSession {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl CompositeSession {
    /// Checks that `directory` can be written and starts the worker.
    pub fn start(host: Host, config: Config) -> Result<CompositeSession, String> {
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
            mixer: None,
            waiting: Vec::new(),
            peers_of: HashMap::new(),
            descriptions: HashMap::new(),
            opened: 0,
            segments: 0,
            done: false,
            failed: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            done: Condvar::new(),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("recorder-composite".into())
                .spawn(move || work(&shared, rx))
                .map_err(|e| format!("cannot start the recorder thread: {e}"))?
        };
        Ok(CompositeSession {
            shared,
            tx,
            worker: Some(worker),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bridge joined `pool`: the session folder, its index and the composite start.
    pub fn joined(&self, pool: &str) {
        let mut s = self.lock();
        if s.index.is_some() || s.failed {
            return;
        }
        let now = now_ms();
        let (dir, name) = free_session_dir(&s.template, &s.root, pool, &s.session);
        s.session = name;
        let (width, height, framerate, codec) = s.config.composite_format();
        let container =
            Container::for_codecs(s.config.container, [codec.name(), "OPUS"].iter().copied());
        let mut index = Index::new(pool, &s.session, now);
        index.composite = Some(CompositeEntry {
            container: container.extension().into(),
            video_codec: codec.name().into(),
            width,
            height,
            framerate,
            status: "recording".into(),
            started: Instant::from_ms(now),
            stopped: None,
            segments: Vec::new(),
            tracks: Vec::new(),
        });
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| index.write(&dir)) {
            s.failed = true;
            s.host
                .set_status(&format!("failed: cannot write {}: {e}", dir.display()));
            return;
        }
        s.session_dir = dir;
        s.index = Some(index);
        let folder = s.session_dir.join(FOLDER);
        let pattern = segment_pattern(1, container.extension());
        let format = Format {
            width,
            height,
            framerate,
            container,
        };
        let c = &s.config;
        let templates = Templates {
            video_input: c
                .composite_video_input
                .clone()
                .unwrap_or_else(|| mixer::VIDEO_INPUT_TEMPLATE.into()),
            audio_input: c
                .composite_audio_input
                .clone()
                .unwrap_or_else(|| mixer::AUDIO_INPUT_TEMPLATE.into()),
            video_encoder: c.composite_video_encoder.clone().unwrap_or_else(|| {
                match codec {
                    VideoCodec::Vp8 => mixer::VP8_ENCODER_TEMPLATE,
                    VideoCodec::H264 => mixer::H264_ENCODER_TEMPLATE,
                }
                .into()
            }),
            audio_encoder: c
                .composite_audio_encoder
                .clone()
                .unwrap_or_else(|| mixer::AUDIO_ENCODER_TEMPLATE.into()),
        };
        let output = Output {
            folder: &folder,
            pattern: &pattern,
            segment_ns: c.segment_seconds * 1_000_000_000,
            segment_bytes: c.segment_bytes.unwrap_or(0),
        };
        let tx = Mutex::new(s.tx.clone());
        let notify = Box::new(move |notice: Notice| {
            let _ = tx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(Msg::Notice(notice));
        });
        match Mixer::start(&s.pipeline, format, templates, &output, notify) {
            Ok(mixer) => {
                s.host.info(&format!(
                    "recording pool {pool} as a {width}x{height} {} composite into {}",
                    codec.name(),
                    folder.join(&pattern).display()
                ));
                s.host.set_status("live");
                s.mixer = Some(mixer);
                for (track, tee) in std::mem::take(&mut s.waiting) {
                    s.add(track, &tee);
                }
            }
            Err(e) => {
                let status = format!("failed: {e}");
                s.fail(&status);
            }
        }
        s.save();
    }

    pub fn peer_described(&self, peer: &str, description: Option<Value>) {
        let mut s = self.lock();
        s.descriptions.insert(peer.to_string(), description.clone());
        if let Some(entry) = s.index.as_mut().and_then(|i| i.peers.get_mut(peer)) {
            entry.description = description;
            s.save();
        }
    }

    pub fn track(&self, track: TrackInfo, tee: gst::Element) {
        let mut s = self.lock();
        s.host.info(&format!(
            "track {} of peer {}: {} {}",
            track.id, track.peer, track.kind, track.codec
        ));
        s.peers_of.insert(track.id.clone(), track.peer.clone());
        if s.mixer.is_some() {
            s.add(track, &tee);
            s.save();
        } else if !s.failed {
            s.waiting.push((track, tee));
        }
    }

    pub fn track_removed(&self, _peer: &str, id: &str) {
        let mut s = self.lock();
        let gone = s.remove(&[id.to_string()]);
        s.save();
        drop(s);
        dispose(gone);
    }

    pub fn peer_left(&self, peer: &str) {
        let mut s = self.lock();
        let now = now_ms();
        if let Some(entry) = s.index.as_mut().and_then(|i| i.peers.get_mut(peer)) {
            entry.left = Some(Instant::from_ms(now));
        }
        let ids: Vec<String> = s
            .peers_of
            .iter()
            .filter(|(_, p)| p.as_str() == peer)
            .map(|(id, _)| id.clone())
            .collect();
        let gone = s.remove(&ids);
        s.save();
        drop(s);
        dispose(gone);
    }

    /// Ends the composite (waiting a bounded time for its last segment) and closes the index.
    pub fn stop(&mut self) {
        let mut s = self.lock();
        let ids: Vec<String> = s.peers_of.keys().cloned().collect();
        let now = now_ms();
        s.mark_removed(&ids, now);
        // The recording's media ends now; finalizing takes a little longer.
        if let Some(entry) = s.index.as_mut().and_then(|i| i.composite.as_mut()) {
            entry.stopped.get_or_insert_with(|| Instant::from_ms(now));
        }
        if let Some(mixer) = &mut s.mixer {
            mixer.finish();
        } else {
            s.done = true;
        }
        let (mut s, _) = self
            .shared
            .done
            .wait_timeout_while(s, Duration::from_millis(FINISH_LIMIT_MS), |s| !s.done)
            .unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let finished = s.done;
        if let Some(entry) = s.index.as_mut().and_then(|i| i.composite.as_mut()) {
            entry.stopped.get_or_insert_with(|| Instant::from_ms(now));
            if entry.status == "recording" {
                entry.status = if finished {
                    "finished".into()
                } else {
                    "failed: the last segment was not finalized in time".into()
                };
            }
        }
        if let Some(index) = &mut s.index {
            index.status = "stopped".into();
            index.stopped = Some(Instant::from_ms(now));
        }
        s.save();
        let mixer = s.mixer.take();
        drop(s);
        let _ = self.tx.send(Msg::Stop);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        if let Some(mixer) = mixer {
            mixer.remove_from_pipeline();
        }
    }
}

impl Drop for CompositeSession {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.stop();
        }
    }
}

/// Stops removed branches (outside the lock).
fn dispose(gone: Option<(RecordingBin, Vec<Branch>)>) {
    if let Some((bin, branches)) = gone {
        for branch in branches {
            branch.dispose(&bin);
        }
    }
}

/// The worker: the mixer's notices.
fn work(shared: &Shared, rx: Receiver<Msg>) {
    loop {
        let notice = match rx.recv_timeout(TICK) {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Notice(n)) => n,
            Err(RecvTimeoutError::Timeout) => continue,
        };
        let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let (gone, failed) = s.on_notice(notice);
        let done = s.done;
        drop(s);
        dispose(gone);
        if let Some(mixer) = failed {
            mixer.remove_from_pipeline();
        }
        if done {
            shared.done.notify_all();
        }
    }
}

impl State {
    /// Puts a track into the mix and the index.
    fn add(&mut self, track: TrackInfo, tee: &gst::Element) {
        let Some(mixer) = &mut self.mixer else {
            return;
        };
        if mixer.has(&track.id) {
            return;
        }
        if let Err(e) = mixer.add(&track.id, &track.kind, &track.codec, tee) {
            self.host.warn(&format!(
                "track {} of peer {} not in the composite: {e}",
                track.id, track.peer
            ));
            return;
        }
        let now = Instant::from_ms(now_ms());
        let description = self.descriptions.get(&track.peer).cloned().flatten();
        let Some(index) = &mut self.index else {
            return;
        };
        let peer = index
            .peers
            .entry(track.peer.clone())
            .or_insert_with(|| PeerEntry {
                joined: Some(now.clone()),
                ..Default::default()
            });
        peer.description = description;
        peer.left = None;
        if let Some(entry) = &mut index.composite {
            entry.tracks.push(CompositeTrack {
                peer: track.peer,
                id: track.id,
                kind: track.kind,
                codec: track.codec,
                added: now,
                removed: None,
            });
        }
        self.host
            .set_metric("composite_tracks", self.peers_of.len() as f64);
    }

    /// Takes tracks out of the mix (and the waiting list); returns the branches to dispose.
    fn remove(&mut self, ids: &[String]) -> Option<(RecordingBin, Vec<Branch>)> {
        let now = now_ms();
        for id in ids {
            self.peers_of.remove(id);
        }
        self.waiting.retain(|(t, _)| !ids.contains(&t.id));
        self.mark_removed(ids, now);
        self.host
            .set_metric("composite_tracks", self.peers_of.len() as f64);
        let mixer = self.mixer.as_mut()?;
        let branches: Vec<Branch> = ids.iter().filter_map(|id| mixer.remove(id)).collect();
        Some((mixer.bin.clone(), branches))
    }

    fn mark_removed(&mut self, ids: &[String], now: u64) {
        if let Some(entry) = self.index.as_mut().and_then(|i| i.composite.as_mut()) {
            for t in &mut entry.tracks {
                if t.removed.is_none() && ids.contains(&t.id) {
                    t.removed = Some(Instant::from_ms(now));
                }
            }
        }
    }

    /// Handles a mixer notice; returns branches to dispose, and the mixer itself when it failed.
    #[allow(clippy::type_complexity)]
    fn on_notice(
        &mut self,
        notice: Notice,
    ) -> (Option<(RecordingBin, Vec<Branch>)>, Option<Mixer>) {
        match notice {
            Notice::SegmentOpened { running_time, .. } => {
                self.opened = running_time;
            }
            Notice::SegmentClosed {
                location,
                running_time,
            } => {
                let bytes = std::fs::metadata(&location).map(|m| m.len()).unwrap_or(0);
                let file = Path::new(&location)
                    .strip_prefix(&self.session_dir)
                    .map(|p| p.to_string_lossy().to_string())
                    .unwrap_or(location);
                let segment = Segment {
                    file,
                    duration_s: running_time.saturating_sub(self.opened) as f64 / 1e9,
                    bytes,
                    closed: Instant::from_ms(now_ms()),
                };
                if let Some(entry) = self.index.as_mut().and_then(|i| i.composite.as_mut()) {
                    entry.segments.push(segment);
                }
                self.segments += 1;
                self.host
                    .set_metric("segments_written", self.segments as f64);
                self.save();
            }
            Notice::Finished => {
                self.done = true;
            }
            Notice::Failed(failure) => {
                let input = self
                    .mixer
                    .as_ref()
                    .and_then(|m| m.input_at(&failure.source));
                if let Some(id) = input {
                    // One track's decoder failed: the mix goes on without it.
                    let peer = self.peers_of.get(&id).cloned().unwrap_or_default();
                    self.host.warn(&format!(
                        "track {id} of peer {peer} left the composite: {}",
                        failure.text
                    ));
                    let gone = self.remove(&[id]);
                    self.save();
                    return (gone, None);
                }
                let folder = self.session_dir.join(FOLDER);
                let status = if failure.write {
                    format!(
                        "failed: cannot write {}: {}",
                        folder.display(),
                        failure.text
                    )
                } else {
                    format!("failed: composite recording: {}", failure.text)
                };
                self.fail(&status);
                self.done = true;
                self.save();
                return (None, self.mixer.take());
            }
        }
        (None, None)
    }

    /// The composite cannot go on: the index and the bridge say why.
    fn fail(&mut self, status: &str) {
        self.failed = true;
        let now = Instant::from_ms(now_ms());
        if let Some(entry) = self.index.as_mut().and_then(|i| i.composite.as_mut()) {
            entry.status = status.to_string();
            entry.stopped.get_or_insert(now);
        }
        self.host.warn(status);
        self.host.set_status(status);
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
