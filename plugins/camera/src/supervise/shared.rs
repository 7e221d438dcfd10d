//! What the supervisor thread, the camera pipeline's appsinks and the outlets' keyframe probes
//! share: the outlets, the current appsinks, frame counters, and the note channel back to the
//! supervisor (the only thread that calls the host).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, Weak};
use std::time::Instant;

use poolgate_plugin_api::gst::{self, prelude::*};

use crate::pipeline::plan::Kind;
use crate::publish::outlet::Outlet;

const NOT_RELAYED: u32 = u32::MAX;

/// What a kind's outlet needs of the camera pipeline's frames branch (see
/// [`Shared::frames_needed`]): no relaying outlet (frames needed), a relaying one, a relaying
/// one with a fallback (frames needed while some peer takes it).
const FRAMES_NEEDED: u8 = 0;
const RELAYED: u8 = 1;
const RELAYED_WITH_FALLBACK: u8 = 2;

/// A note to the supervisor.
pub enum Note {
    /// A frame of `kind` whose codec has no outlet yet: open one, then send this frame.
    Outlet(Kind, gst::Sample),
    /// A camera pipeline problem that ends the session.
    Error(String),
    /// The bridge is stopping.
    Stop,
}

/// Frames and bytes seen, per kind, since the start.
#[derive(Default)]
pub struct Counters {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
}

/// Shared between threads; see the module doc.
pub struct Shared {
    notes: Mutex<Sender<Note>>,
    /// Changed through [`Shared::insert_outlet`] and [`Shared::remove_outlet`] only, which keep
    /// `frames` in step.
    pub outlets: Mutex<HashMap<Kind, Outlet>>,
    /// Per kind, what its outlet needs of the frames branch, read without the outlets' lock:
    /// the frames branch's probe reads it for every camera packet on the jitter buffer's
    /// thread, and the receiving thread holds that lock while it relays the same packets.
    frames: [AtomicU8; 2],
    pending: [AtomicBool; 2],
    /// The RTP session (rtspsrc's stream number) whose packets the current camera session
    /// relays, per kind (see [`crate::publish::relay`]); `NOT_RELAYED` for none.
    relaying: [AtomicU32; 2],
    sinks: Mutex<HashMap<Kind, gst::Element>>,
    pub video: Counters,
    pub audio: Counters,
    /// Keyframe requests from peers, since the start.
    pub keyframe_requests: AtomicU64,
    /// A published H.264 stream's constrained-baseline fallback is being encoded (some peer
    /// takes it).
    pub fallback: std::sync::Arc<AtomicBool>,
    last_frame: Mutex<Option<Instant>>,
    /// The RTP timestamp of the last relayed packet, per kind (`u64::MAX`: none yet): a new
    /// one is a new frame, for the counters.
    relayed_timestamp: [AtomicU64; 2],
}

fn index(kind: Kind) -> usize {
    match kind {
        Kind::Video => 0,
        Kind::Audio => 1,
    }
}

impl Shared {
    pub fn new(notes: Sender<Note>) -> Shared {
        Shared {
            notes: Mutex::new(notes),
            outlets: Mutex::new(HashMap::new()),
            frames: [AtomicU8::new(FRAMES_NEEDED), AtomicU8::new(FRAMES_NEEDED)],
            pending: [AtomicBool::new(false), AtomicBool::new(false)],
            relaying: [AtomicU32::new(NOT_RELAYED), AtomicU32::new(NOT_RELAYED)],
            sinks: Mutex::new(HashMap::new()),
            video: Counters::default(),
            audio: Counters::default(),
            keyframe_requests: AtomicU64::new(0),
            fallback: std::sync::Arc::new(AtomicBool::new(false)),
            last_frame: Mutex::new(None),
            relayed_timestamp: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
        }
    }

    fn note(&self, note: Note) {
        let _ = self.notes.lock().unwrap().send(note);
    }

    /// Ends the current session with `message`.
    pub fn note_error(&self, message: String) {
        self.note(Note::Error(message));
    }

    /// The counters of `kind`.
    pub fn counters(&self, kind: Kind) -> &Counters {
        match kind {
            Kind::Video => &self.video,
            Kind::Audio => &self.audio,
        }
    }

    /// When the last frame of any kind arrived.
    pub fn last_frame(&self) -> Option<Instant> {
        *self.last_frame.lock().unwrap()
    }

    /// Forgets the last frame (a new session starts).
    pub fn reset_last_frame(&self) {
        *self.last_frame.lock().unwrap() = None;
    }

    /// An encoded frame from the camera pipeline (on its streaming thread): to its outlet, or to
    /// the supervisor when it has none (the first frame, or the codec changed).
    pub fn deliver(&self, kind: Kind, sample: gst::Sample) {
        *self.last_frame.lock().unwrap() = Some(Instant::now());
        // A relayed stream is counted from its packets (see `deliver_rtp`).
        if !self.relaying(kind) {
            let counters = self.counters(kind);
            counters.frames.fetch_add(1, Ordering::Relaxed);
            if let Some(b) = sample.buffer() {
                counters.bytes.fetch_add(b.size() as u64, Ordering::Relaxed);
            }
        }
        let caps_name = sample
            .caps()
            .and_then(|c| c.structure(0).map(|s| s.name().to_string()));
        {
            let outlets = self.outlets.lock().unwrap();
            if let Some(outlet) = outlets.get(&kind) {
                if caps_name.as_deref() == Some(outlet.codec.encoded) {
                    outlet.push(&sample);
                    return;
                }
            }
        }
        if !self.pending[index(kind)].swap(true, Ordering::AcqRel) {
            self.note(Note::Outlet(kind, sample));
        }
    }

    /// One of the camera's RTP packets of RTP session `session`, as it arrives on `pad` (on
    /// the receiving thread): counted, and to the outlet that relays that stream. Before that
    /// outlet is open, the packet is not relayed (peers start from a keyframe they ask for).
    pub fn deliver_rtp(&self, session: u32, buffer: &gst::BufferRef, pad: &gst::Pad) {
        let kind = [Kind::Video, Kind::Audio]
            .into_iter()
            .find(|k| self.relaying[index(*k)].load(Ordering::Acquire) == session);
        let Some(kind) = kind else {
            return;
        };
        self.count_rtp(kind, buffer);
        let outlets = self.outlets.lock().unwrap();
        if let Some(outlet) = outlets.get(&kind).filter(|o| o.relays()) {
            outlet.relay(buffer, || pad.current_caps());
        }
    }

    /// Whether the camera pipeline's frames branch of relayed `kind` still needs its packets:
    /// until the outlet is open (its first frame opens it), and then only while some peer
    /// takes the fallback.
    pub fn frames_needed(&self, kind: Kind) -> bool {
        match self.frames[index(kind)].load(Ordering::Acquire) {
            RELAYED => false,
            RELAYED_WITH_FALLBACK => self.fallback.load(Ordering::Acquire),
            _ => true,
        }
    }

    /// Makes `outlet` the outlet of `kind`.
    pub fn insert_outlet(&self, kind: Kind, outlet: Outlet) {
        let frames = match (outlet.relays(), outlet.fallback) {
            (false, _) => FRAMES_NEEDED,
            (true, false) => RELAYED,
            (true, true) => RELAYED_WITH_FALLBACK,
        };
        let mut outlets = self.outlets.lock().unwrap();
        self.frames[index(kind)].store(frames, Ordering::Release);
        outlets.insert(kind, outlet);
    }

    /// Takes the outlet of `kind` away.
    pub fn remove_outlet(&self, kind: Kind) -> Option<Outlet> {
        let mut outlets = self.outlets.lock().unwrap();
        self.frames[index(kind)].store(FRAMES_NEEDED, Ordering::Release);
        outlets.remove(&kind)
    }

    /// Counts a relayed packet: its payload's bytes, and a frame when its timestamp is new.
    fn count_rtp(&self, kind: Kind, buffer: &gst::BufferRef) {
        let Ok(map) = buffer.map_readable() else {
            return;
        };
        let Some(header) = map.get(..12) else {
            return;
        };
        let timestamp = u64::from(u32::from_be_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        let counters = self.counters(kind);
        counters
            .bytes
            .fetch_add(map.len() as u64 - 12, Ordering::Relaxed);
        if self.relayed_timestamp[index(kind)].swap(timestamp, Ordering::Relaxed) != timestamp {
            counters.frames.fetch_add(1, Ordering::Relaxed);
            *self.last_frame.lock().unwrap() = Some(Instant::now());
        }
    }

    /// Whether the current session relays `kind`'s RTP packets.
    pub fn relaying(&self, kind: Kind) -> bool {
        self.relaying[index(kind)].load(Ordering::Acquire) != NOT_RELAYED
    }

    /// A new session starts (`None`), or it relays `kind` from RTP session `session`: relayed
    /// streams go on from where they were.
    pub fn set_relaying(&self, relayed: Option<(Kind, u32)>) {
        match relayed {
            Some((kind, session)) => self.relaying[index(kind)].store(session, Ordering::Release),
            None => {
                for flag in &self.relaying {
                    flag.store(NOT_RELAYED, Ordering::Release);
                }
                for outlet in self.outlets.lock().unwrap().values() {
                    outlet.restart_relay();
                }
            }
        }
    }

    /// The supervisor handled an [`Note::Outlet`]: later frames may ask again.
    pub fn outlet_handled(&self, kind: Kind) {
        self.pending[index(kind)].store(false, Ordering::Release);
    }

    /// The current session's appsink of `kind`, where keyframe requests go.
    pub fn set_sink(&self, kind: Kind, sink: Option<gst::Element>) {
        let mut sinks = self.sinks.lock().unwrap();
        match sink {
            Some(s) => sinks.insert(kind, s),
            None => sinks.remove(&kind),
        };
    }

    /// Asks the camera pipeline for a keyframe: encoders make one; on a passthrough stream
    /// rtpbin sends the camera an RTCP PLI (see [`crate::source::feedback`]), and a camera that
    /// ignores it sends its next keyframe on its own schedule (parameter sets go before each).
    pub fn request_keyframe(&self, kind: Kind) {
        self.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        let sink = self.sinks.lock().unwrap().get(&kind).cloned();
        if let Some(sink) = sink {
            let event = gst::event::CustomUpstream::builder(
                gst::Structure::builder("GstForceKeyUnit")
                    .field("all-headers", true)
                    .build(),
            )
            .build();
            sink.send_event(event);
        }
    }

    /// A keyframe-request callback for an outlet of `kind` that does not keep `self` alive.
    pub fn keyframe_requester(
        this: Weak<Shared>,
        kind: Kind,
    ) -> crate::publish::outlet::KeyframeRequest {
        Box::new(move || {
            if let Some(shared) = this.upgrade() {
                shared.request_keyframe(kind);
            }
        })
    }
}
