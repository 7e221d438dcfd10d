//! One recording in GStreamer: a peer's tracks, each from its `tee` through the input pipeline
//! (`pipelines/recorder/input.txt`) into one `splitmuxsink`, which cuts playable segments with
//! the container's muxer. Nothing is decoded or encoded.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use poolgate_plugin_api::gst;
use poolgate_plugin_api::gst::prelude::*;

use crate::config::Container;
use crate::recbin::{Notify, RecordingBin};

/// The default input pipeline: between a track's tee and the muxer.
pub const INPUT_TEMPLATE: &str = include_str!("../../../pipelines/recorder/input.txt");

/// A track to record: its codec and kind, and the tee that carries it.
pub struct Source {
    pub id: String,
    pub kind: String,
    pub codec: String,
    pub tee: gst::Element,
}

/// How to record.
pub struct Plan<'a> {
    pub container: Container,
    /// The folder and the splitmuxsink location pattern in it.
    pub folder: &'a Path,
    pub pattern: &'a str,
    pub segment_ns: u64,
    pub segment_bytes: u64,
    /// The input pipeline template (`{parse}` is filled per codec).
    pub input: &'a str,
}

/// An input's link to its track's tee.
enum Link {
    /// The idle probe has not run yet.
    Waiting,
    /// The idle probe is linking (without the lock: linking sends an event upstream through
    /// the very pad the probe is on, which calls it again).
    Linking,
    Linked(gst::Pad),
    /// Finished (or the link failed): the probe must not link any more.
    Closed,
}

/// A track's tee linked (or being linked) to a recording's sink pad.
pub(crate) struct Input {
    tee: gst::Element,
    /// The tee's pad feeding this input (see [`link_when_idle`]).
    link: Arc<Mutex<Link>>,
    /// The idle probe that links it, and the pad it is on.
    pending: Mutex<Option<(gst::Pad, gst::PadProbeId)>>,
    pub(crate) sink: gst::Pad,
}

impl Input {
    /// Links a new pad of `tee` to `sink` as soon as the tee is idle (see [`link_when_idle`]).
    pub(crate) fn attach(
        tee: &gst::Element,
        sink: &gst::Pad,
        video: bool,
    ) -> Result<Input, String> {
        let (link, pending) = link_when_idle(tee, sink, video)?;
        Ok(Input {
            tee: tee.clone(),
            link,
            pending: Mutex::new(pending),
            sink: sink.clone(),
        })
    }

    /// Unlinks the tee from the sink and releases its pad: no more data comes in.
    pub(crate) fn detach(&self) {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match std::mem::replace(&mut *link, Link::Closed) {
            Link::Waiting => {
                if let Some((pad, id)) = pending {
                    pad.remove_probe(id);
                }
            }
            Link::Linked(tee_pad) => {
                if let Some(peer) = tee_pad.peer() {
                    let _ = tee_pad.unlink(&peer);
                }
                // The host may have released it already (a removed track).
                if tee_pad.parent().as_ref() == Some(self.tee.upcast_ref()) {
                    self.tee.release_request_pad(&tee_pad);
                }
            }
            // The probe sees `Closed` when it is done linking and undoes its link.
            Link::Linking | Link::Closed => {}
        }
    }
}

/// A running (or finishing) recording.
pub struct Recording {
    pub bin: RecordingBin,
    /// The folder its segments go to.
    pub folder: std::path::PathBuf,
    inputs: Vec<Input>,
}

/// What goes after the queue for a codec, so the muxer gets what it needs.
fn parse(codec: &str) -> &'static str {
    match codec {
        "H264" => "! h264parse config-interval=-1",
        // rtpopusdepay's caps lack the rate the muxers require; opusparse adds it.
        "OPUS" => "! opusparse",
        _ => "",
    }
}

/// The upstream event that asks the sender for a keyframe. rtpsession turns it into an RTCP
/// PLI; with `all-headers` it would send a FIR instead, which it sends only once per `count`
/// (so repeated requests without a new count are dropped).
fn keyframe_request() -> gst::Event {
    gst::event::CustomUpstream::new(
        gst::Structure::builder("GstForceKeyUnit")
            .field("all-headers", false)
            .build(),
    )
}

/// How long after a segment's planned end its keyframe is asked for: a little, so the keyframe
/// surely arrives after the end (one before it would not end the segment).
const KEYFRAME_MARGIN: u64 = 20_000_000;
/// How long to wait for an asked keyframe before asking again (a lost PLI or keyframe).
const KEYFRAME_RETRY: u64 = 1_000_000_000;

/// Links a new tee pad to `sink` while the tee's input is idle: linking while the tee pushes a
/// buffer races its sticky-event handling (a GLib critical from `gst_pad_push` on 1.22). The
/// link happens now if the tee is idle, else between two buffers on its streaming thread. A
/// video input then asks for a keyframe at once.
#[allow(clippy::type_complexity)]
fn link_when_idle(
    tee: &gst::Element,
    sink: &gst::Pad,
    video: bool,
) -> Result<(Arc<Mutex<Link>>, Option<(gst::Pad, gst::PadProbeId)>), String> {
    let input = tee
        .static_pad("sink")
        .ok_or("the track's tee has no sink pad")?;
    let link = Arc::new(Mutex::new(Link::Waiting));
    let (tee_weak, sink_weak, slot) = (tee.downgrade(), sink.downgrade(), link.clone());
    let id = input.add_probe(gst::PadProbeType::IDLE, move |_, _| {
        {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            if !matches!(*slot, Link::Waiting) {
                return gst::PadProbeReturn::Remove;
            }
            *slot = Link::Linking;
        }
        let (Some(tee), Some(sink)) = (tee_weak.upgrade(), sink_weak.upgrade()) else {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Link::Closed;
            return gst::PadProbeReturn::Remove;
        };
        let linked = tee.request_pad_simple("src_%u").and_then(|pad| {
            if pad.link(&sink).is_ok() {
                Some(pad)
            } else {
                tee.release_request_pad(&pad);
                None
            }
        });
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        match (linked, &*slot) {
            (Some(pad), Link::Linking) => {
                *slot = Link::Linked(pad);
                drop(slot);
                if video {
                    let _ = sink.push_event(keyframe_request());
                }
            }
            (Some(pad), _) => {
                // Finished meanwhile.
                let _ = pad.unlink(&sink);
                tee.release_request_pad(&pad);
            }
            (None, _) => *slot = Link::Closed,
        }
        gst::PadProbeReturn::Remove
    });
    // An idle pad runs the probe at once: then there is nothing left to remove.
    let ran = !matches!(
        *link.lock().unwrap_or_else(|p| p.into_inner()),
        Link::Waiting
    );
    let pending = if ran { None } else { id.map(|id| (input, id)) };
    Ok((link, pending))
}

/// Paces a video track's keyframes to the segment length. Browsers send keyframes only when
/// asked, and splitmuxsink can cut only at one; its own requests do not help (it makes its next
/// request only when a keyframe arrives: with such a sender, there is no next). So the input
/// watches its keyframes: the first one after a segment's planned end is where splitmuxsink
/// cuts, and the next one is asked for (an RTCP PLI) just after the next planned end, again
/// until it comes. Frames before the first keyframe are dropped: a segment starts decodable.
fn pace_keyframes(pad: &gst::Pad, length: u64) {
    // The running time of the next planned cut; 0 until the first keyframe.
    let next_cut = Arc::new(AtomicU64::new(0));
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let cut = next_cut.load(Ordering::Relaxed);
        if cut == 0 && !keyframe {
            return crate::probe::drop_buffer(info);
        }
        if !keyframe {
            return gst::PadProbeReturn::Ok;
        }
        let Some(now) = running_time(pad, buffer) else {
            return gst::PadProbeReturn::Ok;
        };
        if cut == 0 || now >= cut {
            let next = now.max(1) + length;
            next_cut.store(next, Ordering::Relaxed);
            ask_keyframe_at(pad, next + KEYFRAME_MARGIN, next, next_cut.clone());
        }
        gst::PadProbeReturn::Ok
    });
}

/// A buffer's running time on `pad`, in nanoseconds.
fn running_time(pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<u64> {
    let pts = buffer.pts().or(buffer.dts())?;
    let segment = pad.sticky_event::<gst::event::Segment>(0)?;
    let segment = segment.segment().downcast_ref::<gst::ClockTime>()?.clone();
    segment.to_running_time(pts).map(|t| t.nseconds())
}

/// At running time `at`, asks for a keyframe unless the cut at `cut` already happened (the
/// planned cut moved on); asks again every [`KEYFRAME_RETRY`] until it does.
fn ask_keyframe_at(pad: &gst::Pad, at: u64, cut: u64, next_cut: Arc<AtomicU64>) {
    let Some(element) = pad.parent_element() else {
        return;
    };
    let (Some(clock), Some(base)) = (element.clock(), element.base_time()) else {
        return;
    };
    let weak = pad.downgrade();
    let id = clock.new_single_shot_id(base + gst::ClockTime::from_nseconds(at));
    let _ = id.wait_async(move |_, _, _| {
        let Some(pad) = weak.upgrade() else {
            return;
        };
        if next_cut.load(Ordering::Relaxed) != cut || !pad.is_linked() {
            return;
        }
        let _ = pad.push_event(keyframe_request());
        ask_keyframe_at(&pad, at + KEYFRAME_RETRY, cut, next_cut.clone());
    });
}

impl Recording {
    /// Builds the recording into `pipeline` and links it to the sources' tees. Sources the
    /// container cannot take (a second video: splitmuxsink takes one) are left out, named in
    /// `skipped`.
    pub fn start(
        pipeline: &gst::Bin,
        name: &str,
        sources: &[Source],
        plan: &Plan<'_>,
        notify: Notify,
        skipped: &mut Vec<String>,
    ) -> Result<Recording, String> {
        std::fs::create_dir_all(plan.folder)
            .map_err(|e| format!("cannot write {}: {e}", plan.folder.display()))?;
        let bin = RecordingBin::new(name, notify);
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .map_err(|e| format!("GStreamer element {factory}: {e}"))
        };
        let muxer = make(plan.container.muxer())?;
        let split = gst::ElementFactory::make("splitmuxsink")
            .property(
                "location",
                plan.folder.join(plan.pattern).to_string_lossy().to_string(),
            )
            .property("max-size-time", plan.segment_ns)
            .property("max-size-bytes", plan.segment_bytes)
            .property("muxer", &muxer)
            .build()
            .map_err(|e| format!("GStreamer element splitmuxsink: {e}"))?;
        bin.add(&split).map_err(|e| e.to_string())?;

        let mut heads = Vec::new();
        let mut has_video = false;
        for (i, source) in sources.iter().enumerate() {
            let video = source.kind == "video";
            if video && has_video {
                skipped.push(source.id.clone());
                continue;
            }
            has_video |= video;
            let description = plan.input.trim().replace("{parse}", parse(&source.codec));
            let branch = gst::parse::bin_from_description(&description, true)
                .map_err(|e| format!("input pipeline {description:?}: {e}"))?;
            branch.set_property("name", format!("in{i}-{}", source.codec.to_lowercase()));
            bin.add(&branch).map_err(|e| e.to_string())?;
            let target = if video { "video" } else { "audio_%u" };
            let mux_pad = split
                .request_pad_simple(target)
                .ok_or_else(|| format!("splitmuxsink gave no {target} pad"))?;
            let out = branch
                .static_pad("src")
                .ok_or("the input pipeline has no src pad")?;
            crate::probe::fill_durations(&out);
            out.link(&mux_pad)
                .map_err(|e| format!("{} into {}: {e}", source.codec, plan.container.muxer()))?;
            let inner = branch
                .static_pad("sink")
                .ok_or("the input pipeline has no sink pad")?;
            let ghost = gst::GhostPad::builder_with_target(&inner)
                .map_err(|e| e.to_string())?
                .name(format!("sink_{i}"))
                .build();
            bin.add_pad(&ghost).map_err(|e| e.to_string())?;
            if video {
                pace_keyframes(ghost.upcast_ref(), plan.segment_ns);
            }
            heads.push((source, ghost.upcast::<gst::Pad>(), video));
        }

        pipeline
            .add(&bin)
            .map_err(|e| format!("adding the recording: {e}"))?;
        if let Err(e) = bin.sync_state_with_parent() {
            let _ = pipeline.remove(&bin);
            let _ = bin.set_state(gst::State::Null);
            return Err(format!("starting the recording: {e}"));
        }
        let mut inputs = Vec::new();
        for (source, sink, video) in heads {
            inputs.push(Input::attach(&source.tee, &sink, video)?);
        }
        Ok(Recording {
            bin,
            folder: plan.folder.to_path_buf(),
            inputs,
        })
    }

    /// Detaches the recording from its tracks and ends its streams: splitmuxsink finalizes the
    /// last segment and posts the end of stream ([`crate::recbin::Notice::Finished`]). False
    /// when it has no input, so no end will be reported: remove it at once.
    pub fn finish(&self) -> bool {
        for input in &self.inputs {
            input.detach();
            let _ = input.sink.send_event(gst::event::Eos::new());
        }
        !self.inputs.is_empty()
    }

    /// Stops and removes the recording from its pipeline. Not from a streaming thread.
    pub fn remove(&self) {
        let _ = self.bin.set_state(gst::State::Null);
        if let Some(parent) = self.bin.parent().and_downcast::<gst::Bin>() {
            let _ = parent.remove(&self.bin);
        }
    }
}
