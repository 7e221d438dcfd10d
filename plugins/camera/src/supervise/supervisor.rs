//! The supervisor: the bridge's own thread. It runs camera sessions one after the other,
//! publishes an outlet per stream when its first frame arrives, reports status and metrics, and
//! reconnects with capped exponential backoff when the camera fails. It is the only thread that
//! calls the host, and it has stopped when [`Supervisor::stop`] returns.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use poolgate_plugin_api::gst;
use poolgate_plugin_api::Host;

use super::backoff::Backoff;
use super::failure::Failure;
use super::session::Session;
use super::shared::{Note, Shared};
use super::watchdog::{Verdict, Watchdog};
use crate::config::{Config, Source};
use crate::pipeline::plan::{self, Kind};
use crate::publish::codec::RtpCodec;
use crate::publish::outlet::{h264_format, Fallback, Outlet};
use crate::publish::profile;
use crate::source::probe::{reach, Reach};

/// How long the reachability probe waits for the camera to accept a connection.
const PROBE_LIMIT: Duration = Duration::from_secs(3);
/// How often metrics are updated.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// The handle of the supervisor thread.
pub struct Supervisor {
    notes: Sender<Note>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts the thread.
    pub fn start(host: Host, config: Config, source: Source) -> Supervisor {
        let (notes, inbox) = channel();
        let shared = Arc::new(Shared::new(notes.clone()));
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                Run {
                    host,
                    config,
                    source,
                    shared: for_thread,
                    inbox,
                    reconnects: 0,
                    metrics: Metrics::default(),
                }
                .run()
            })
            .expect("a thread starts");
        Supervisor {
            notes,
            shared,
            thread: Some(thread),
        }
    }

    /// Asks the camera for a video keyframe now (from any thread).
    pub fn request_keyframe(&self) {
        self.shared.request_keyframe(Kind::Video);
    }

    /// Stops the session, unpublishes, and waits for the thread.
    pub fn stop(&mut self) {
        let _ = self.notes.send(Note::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counter values at the last metrics update.
#[derive(Default)]
struct Metrics {
    at: Option<Instant>,
    video_frames: u64,
    bytes: u64,
}

struct Run {
    host: Host,
    config: Config,
    source: Source,
    shared: Arc<Shared>,
    inbox: Receiver<Note>,
    reconnects: u64,
    metrics: Metrics,
}

/// How a session ended.
enum End {
    Failed(Failure, Duration),
    Stop,
}

impl Run {
    fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(
            self.config.reconnect_max_seconds.into(),
        ));
        self.host.set_status("connecting");
        self.host.set_metric("reconnects", 0.0);
        loop {
            match self.session() {
                End::Stop => break,
                End::Failed(failure, live_for) => {
                    let status = failure.status();
                    self.host.warn(&format!("camera: {status}"));
                    self.host.set_status(&status);
                    self.host.set_metric("fps", 0.0);
                    self.host.set_metric("bitrate_kbps", 0.0);
                    let delay = backoff.after_failure(live_for);
                    if self.wait(delay) {
                        break;
                    }
                    self.reconnects += 1;
                    self.host.set_metric("reconnects", self.reconnects as f64);
                }
            }
        }
        let outlets: Vec<Outlet> = [Kind::Video, Kind::Audio]
            .into_iter()
            .filter_map(|kind| self.shared.remove_outlet(kind))
            .collect();
        for outlet in outlets {
            outlet.close(&self.host);
        }
    }

    /// Waits `delay`; true when the bridge is stopping.
    fn wait(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Note::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
                Ok(Note::Outlet(kind, _)) => self.shared.outlet_handled(kind),
                Ok(Note::Error(_)) => {}
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// Runs one session until it fails or the bridge stops.
    fn session(&mut self) -> End {
        self.shared.reset_last_frame();
        let started = Instant::now();
        let session = match Session::start(&self.config, &self.source, &self.shared) {
            Ok(s) => s,
            Err(f) => return End::Failed(f, Duration::ZERO),
        };
        let bus = session.bus();
        let mut watchdog = Watchdog::new(started);
        let mut reported_transcoding = None;
        let end = loop {
            if let Some(end) = self.drain_notes() {
                break end;
            }
            if let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
                if let Some(f) = self.failure_of(&message) {
                    break End::Failed(f, watchdog.live_for(Instant::now()));
                }
            }
            let now = Instant::now();
            let no_media = session.no_media.load(Ordering::Relaxed);
            match watchdog.check(now, self.shared.last_frame(), no_media) {
                Verdict::Wait => {}
                Verdict::Live => {
                    self.host.set_status("live");
                    self.host.info("camera: live");
                }
                Verdict::Fail(f) => break End::Failed(f, watchdog.live_for(now)),
            }
            // Streams are linked as the camera announces them: a transcoding branch may come
            // after the first frame of another stream.
            // The H.264 fallback counts: it is the one encoder for every peer that needs it.
            let fallback = self.shared.fallback.load(Ordering::Relaxed);
            let transcoding = session.transcoding.load(Ordering::Relaxed) || fallback;
            if watchdog.is_live() && reported_transcoding != Some((transcoding, fallback)) {
                self.host
                    .set_metric("transcoding", if transcoding { 1.0 } else { 0.0 });
                self.host
                    .set_metric("h264_fallback", if fallback { 1.0 } else { 0.0 });
                reported_transcoding = Some((transcoding, fallback));
            }
            self.update_metrics();
        };
        session.stop(&self.shared);
        end
    }

    /// Handles queued notes; `Some` ends the session.
    fn drain_notes(&mut self) -> Option<End> {
        loop {
            match self.inbox.try_recv() {
                Ok(Note::Stop) => return Some(End::Stop),
                Ok(Note::Error(message)) => {
                    return Some(End::Failed(
                        Failure::Other(self.scrub(&message)),
                        Duration::ZERO,
                    ))
                }
                Ok(Note::Outlet(kind, sample)) => {
                    let result = self.open_outlet(kind, &sample);
                    self.shared.outlet_handled(kind);
                    if let Err(message) = result {
                        return Some(End::Failed(Failure::Other(message), Duration::ZERO));
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Publishes an outlet for the codec of `sample` (replacing one of another codec).
    fn open_outlet(&mut self, kind: Kind, sample: &gst::Sample) -> Result<(), String> {
        let caps = sample.caps().ok_or("a frame without caps")?.to_owned();
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let codec = RtpCodec::for_caps(&name).ok_or_else(|| {
            format!("the camera pipeline outputs {name}, which browsers cannot take")
        })?;
        let old = self.shared.remove_outlet(kind);
        if let Some(old) = old {
            self.host.info(&format!(
                "camera: {} changed from {} to {}",
                kind.sink_name(),
                old.codec.name,
                codec.name
            ));
            self.host.set_metric(&codec_metric(old.codec.name), 0.0);
            old.close(&self.host);
            self.shared.fallback.store(false, Ordering::Relaxed);
        }
        let requester = Shared::keyframe_requester(Arc::downgrade(&self.shared), kind);
        let (format, fallback) = match codec.name {
            "H264" => h264_formats(sample, &caps)?,
            _ => (String::new(), None),
        };
        let outlet = Outlet::open(
            &self.host,
            codec,
            &caps,
            requester,
            &format,
            fallback.as_ref(),
            self.shared.fallback.clone(),
            codec.name == "H264" && self.shared.relaying(kind),
        )?;
        outlet.push(sample);
        self.host.set_metric(&codec_metric(codec.name), 1.0);
        if outlet.fallback {
            self.host
                .info("camera: H.264 published as it is and as a constrained-baseline fallback");
        }
        self.host.info(&format!(
            "camera: publishing {} as {}{}",
            kind.sink_name(),
            codec.name,
            if outlet.relays() {
                ", relaying the camera's RTP packets"
            } else {
                ""
            }
        ));
        if kind == Kind::Video {
            self.host
                .set_metric("rtp_relay", if outlet.relays() { 1.0 } else { 0.0 });
        }
        self.shared.insert_outlet(kind, outlet);
        Ok(())
    }

    /// The failure a bus message means, if any.
    fn failure_of(&self, message: &gst::Message) -> Option<Failure> {
        match message.view() {
            gst::MessageView::Error(e) => {
                let error = e.error();
                let code = error
                    .kind::<gst::ResourceError>()
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_default();
                let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                let mut failure =
                    Failure::from_error(&code, &self.scrub(error.message()), &self.scrub(&debug));
                if let (Failure::Other(_), Source::Rtsp(url)) = (&failure, &self.source) {
                    if code == "OpenReadWrite" {
                        failure = match reach(url, PROBE_LIMIT) {
                            Reach::Refused => Failure::Refused,
                            Reach::NoAnswer | Reach::NoSuchHost => Failure::Unreachable,
                            Reach::Open => failure,
                        };
                    }
                }
                self.host.log(
                    poolgate_plugin_api::Level::Debug,
                    &format!("camera error: {}", self.scrub(&debug)),
                );
                Some(failure)
            }
            gst::MessageView::Eos(_) => Some(Failure::Ended),
            _ => None,
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.source {
            Source::Rtsp(u) => u.scrub(text),
            Source::Test => text.to_string(),
        }
    }

    /// fps, bitrate and picture size, once a second.
    fn update_metrics(&mut self) {
        let now = Instant::now();
        let Some(at) = self.metrics.at else {
            self.metrics.at = Some(now);
            return;
        };
        let elapsed = now - at;
        if elapsed < METRICS_EVERY {
            return;
        }
        let frames = self.shared.video.frames.load(Ordering::Relaxed);
        let bytes = self.shared.video.bytes.load(Ordering::Relaxed)
            + self.shared.audio.bytes.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let fps = (frames - self.metrics.video_frames) as f64 / secs;
        let kbps = (bytes - self.metrics.bytes) as f64 * 8.0 / 1000.0 / secs;
        self.host.set_metric("fps", (fps * 10.0).round() / 10.0);
        self.host.set_metric("bitrate_kbps", kbps.round());
        self.host.set_metric(
            "keyframe_requests",
            self.shared.keyframe_requests.load(Ordering::Relaxed) as f64,
        );
        // A relayed stream's size is its SPS's: its frames are not parsed while nobody takes
        // the fallback, so their caps can be stale.
        let size: HashMap<&str, i32> = self
            .shared
            .outlets
            .lock()
            .unwrap()
            .get(&Kind::Video)
            .and_then(|o| {
                if let Some((width, height)) = o.relay_dimensions() {
                    return Some(HashMap::from([
                        ("width", width as i32),
                        ("height", height as i32),
                    ]));
                }
                let c = o.caps()?;
                let s = c.structure(0)?;
                Some(HashMap::from([
                    ("width", s.get::<i32>("width").ok()?),
                    ("height", s.get::<i32>("height").ok()?),
                ]))
            })
            .unwrap_or_default();
        for (key, value) in size {
            self.host.set_metric(key, value as f64);
        }
        let relay_counts = self
            .shared
            .outlets
            .lock()
            .unwrap()
            .get(&Kind::Video)
            .and_then(|o| o.relay_counts());
        if let Some((injected, malformed)) = relay_counts {
            self.host
                .set_metric("relay_parameter_sets_added", injected as f64);
            self.host
                .set_metric("relay_packets_dropped", malformed as f64);
        }
        self.metrics = Metrics {
            at: Some(now),
            video_frames: frames,
            bytes,
        };
    }
}

/// The SDP format of an H.264 stream (its true `profile-level-id`, from the SPS in `sample` or
/// the parser's caps) and, unless every browser decodes that profile, the constrained-baseline
/// fallback to publish beside it. No profile known: published without one, as before.
fn h264_formats(
    sample: &gst::Sample,
    caps: &gst::Caps,
) -> Result<(String, Option<Fallback>), String> {
    let s = caps.structure(0);
    let from_sps = sample
        .buffer()
        .and_then(|b| b.map_readable().ok())
        .and_then(|m| profile::from_sps(m.as_slice()));
    let from_caps = || {
        let s = s?;
        profile::from_caps(s.get::<&str>("profile").ok()?, s.get::<&str>("level").ok()?)
    };
    let Some(id) = from_sps.or_else(from_caps) else {
        return Ok((String::new(), None));
    };
    let format = h264_format(&id);
    if profile::is_constrained_baseline(&id) {
        return Ok((format, None));
    }
    let dimension = |field: &str, default: i32| {
        s.and_then(|s| s.get::<i32>(field).ok())
            .unwrap_or(default)
            .max(1) as u32
    };
    let framerate = s
        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| (f.numer() / f.denom()).max(1) as u32)
        .unwrap_or(30);
    let transcode = plan::h264_fallback(
        dimension("width", 1280),
        dimension("height", 720),
        framerate,
    )
    .map_err(|e| format!("the H.264 fallback: {e}"))?;
    Ok((
        format,
        Some(Fallback {
            transcode,
            profile_level_id: profile::fallback_for(&id),
        }),
    ))
}

/// The metric that flags a published codec: `codec_h264`, `codec_opus`, ...
fn codec_metric(name: &str) -> String {
    format!("codec_{}", name.to_ascii_lowercase())
}
