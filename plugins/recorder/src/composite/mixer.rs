//! The composite recording in GStreamer: a black, silent live background and every track of the
//! pool, decoded, into a `compositor` (a grid, see [`super::grid`]) and an `audiomixer`; the
//! picture and the mix are encoded once and cut into segments by one `splitmuxsink`.
//!
//! Inputs come and go while it runs. Both mixers are live aggregators: they produce a frame
//! (and 20 ms of audio) on the clock whether or not an input has data, so an empty room records
//! black and silence, and a departing input never stalls the mix. `start-time-selection=first`
//! starts the output at the background's first buffer (the pipeline has run for a while), and
//! `latency` gives inputs, which arrive after the pool's jitter buffers and a decoder, time to
//! be on time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use poolgate_plugin_api::gst;
use poolgate_plugin_api::gst::prelude::*;

use super::grid;
use crate::config::Container;
use crate::recbin::{Notify, RecordingBin};
use crate::recording::Input;

/// Default templates (`pipelines/recorder/composite-*.txt`).
pub const VIDEO_INPUT_TEMPLATE: &str =
    include_str!("../../../../pipelines/recorder/composite-video-input.txt");
pub const AUDIO_INPUT_TEMPLATE: &str =
    include_str!("../../../../pipelines/recorder/composite-audio-input.txt");
pub const VP8_ENCODER_TEMPLATE: &str =
    include_str!("../../../../pipelines/recorder/composite-encode-vp8.txt");
pub const H264_ENCODER_TEMPLATE: &str =
    include_str!("../../../../pipelines/recorder/composite-encode-h264.txt");
pub const AUDIO_ENCODER_TEMPLATE: &str =
    include_str!("../../../../pipelines/recorder/composite-encode-audio.txt");

/// How late an input's data may be and still be mixed: the pool's jitter buffer (200 ms) plus
/// decoding, with room to spare on a loaded machine.
const LATENCY_NS: u64 = 500_000_000;
/// The mix's audio format.
const AUDIO_RATE: i32 = 48_000;
const AUDIO_CHANNELS: i32 = 2;

/// The decoder for a track's depayloaded codec (an RTP encoding name).
pub fn decoder(codec: &str) -> Option<&'static str> {
    Some(match codec {
        "VP8" => "vp8dec",
        "VP9" => "vp9dec",
        "H264" => "h264parse ! avdec_h264",
        "OPUS" => "opusdec",
        "PCMU" => "mulawdec",
        "PCMA" => "alawdec",
        _ => return None,
    })
}

/// The composite picture and its encoding.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    pub container: Container,
}

impl Format {
    /// A bitrate for the picture: 0.1 bit per pixel per frame, at least 100 kbit/s.
    pub fn bitrate(&self) -> u64 {
        (self.width as u64 * self.height as u64 * self.framerate as u64 / 10).max(100_000)
    }
}

/// The pipeline templates (`gst-launch` syntax), config overrides or the defaults.
#[derive(Clone, Debug)]
pub struct Templates {
    /// Per video track; `{decode}` is the codec's decoder.
    pub video_input: String,
    /// Per audio track; `{decode}` is the codec's decoder.
    pub audio_input: String,
    /// Raw picture to encoded video; `{bitrate}` (bit/s), `{keyframe_distance}` (frames).
    pub video_encoder: String,
    /// Raw mix to Opus.
    pub audio_encoder: String,
}

/// Where the segments go.
pub struct Output<'a> {
    pub folder: &'a Path,
    pub pattern: &'a str,
    pub segment_ns: u64,
    pub segment_bytes: u64,
}

/// A video in the grid: its compositor pad and its size once known.
struct Tile {
    id: String,
    pad: gst::Pad,
    size: (u32, u32),
}

/// The grid's current tiles, shared with the pads' caps probes (a video's size is known when
/// its decoder's first caps reach the compositor).
struct Layout {
    width: u32,
    height: u32,
    tiles: Vec<Tile>,
}

impl Layout {
    /// Places every video: its tile, its aspect kept.
    fn apply(&self) {
        let sizes: Vec<(u32, u32)> = self.tiles.iter().map(|t| t.size).collect();
        for (tile, rect) in self
            .tiles
            .iter()
            .zip(grid::layout(&sizes, self.width, self.height))
        {
            tile.pad.set_property("xpos", rect.x);
            tile.pad.set_property("ypos", rect.y);
            tile.pad.set_property("width", rect.width);
            tile.pad.set_property("height", rect.height);
        }
    }
}

/// One track's branch: tee -> ghost pad -> input pipeline -> mixer pad.
pub struct Branch {
    pub id: String,
    bin: gst::Bin,
    ghost: gst::GhostPad,
    mixer: gst::Element,
    mixer_pad: gst::Pad,
    input: Input,
}

/// A running composite recording.
pub struct Mixer {
    pub bin: RecordingBin,
    compositor: gst::Element,
    audiomixer: gst::Element,
    background: [gst::Element; 2],
    layout: Arc<Mutex<Layout>>,
    branches: Vec<Branch>,
    templates: Templates,
    count: u32,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| format!("GStreamer element {factory}: {e}"))
}

fn link(a: &gst::Element, b: &gst::Element) -> Result<(), String> {
    a.link(b)
        .map_err(|e| format!("linking {} to {}: {e}", a.name(), b.name()))
}

fn parse_bin(description: &str) -> Result<gst::Bin, String> {
    gst::parse::bin_from_description(description.trim(), true)
        .map_err(|e| format!("pipeline {description:?}: {e}"))
}

impl Mixer {
    /// Builds the background, mixers, encoders and segment writer into `pipeline`.
    pub fn start(
        pipeline: &gst::Bin,
        format: Format,
        templates: Templates,
        output: &Output<'_>,
        notify: Notify,
    ) -> Result<Mixer, String> {
        std::fs::create_dir_all(output.folder)
            .map_err(|e| format!("cannot write {}: {e}", output.folder.display()))?;
        let bin = RecordingBin::new("composite", notify);
        let (w, h, fps) = (
            format.width as i32,
            format.height as i32,
            format.framerate as i32,
        );

        let video_src = gst::ElementFactory::make("videotestsrc")
            .property("is-live", true)
            .property_from_str("pattern", "black")
            .build()
            .map_err(|e| format!("GStreamer element videotestsrc: {e}"))?;
        let video_caps = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("width", w)
                    .field("height", h)
                    .field("framerate", gst::Fraction::new(fps, 1))
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        let compositor = gst::ElementFactory::make("compositor")
            .property_from_str("background", "black")
            .property_from_str("start-time-selection", "first")
            .property("latency", LATENCY_NS)
            .build()
            .map_err(|e| format!("GStreamer element compositor: {e}"))?;
        let picture = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("format", "I420")
                    .field("width", w)
                    .field("height", h)
                    .field("framerate", gst::Fraction::new(fps, 1))
                    .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        let video_encoder = parse_bin(
            &templates
                .video_encoder
                .replace("{bitrate}", &format.bitrate().to_string())
                .replace("{keyframe_distance}", &(2 * fps).to_string()),
        )?;

        let audio_src = gst::ElementFactory::make("audiotestsrc")
            .property("is-live", true)
            .property_from_str("wave", "silence")
            // 20 ms buffers, as Opus frames.
            .property("samplesperbuffer", AUDIO_RATE / 50)
            .build()
            .map_err(|e| format!("GStreamer element audiotestsrc: {e}"))?;
        let audiomixer = gst::ElementFactory::make("audiomixer")
            .property_from_str("start-time-selection", "first")
            .property("latency", LATENCY_NS)
            .build()
            .map_err(|e| format!("GStreamer element audiomixer: {e}"))?;
        let mix = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("rate", AUDIO_RATE)
                    .field("channels", AUDIO_CHANNELS)
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())?;
        let audio_encoder = parse_bin(&templates.audio_encoder)?;

        let muxer = make(format.container.muxer())?;
        let split = gst::ElementFactory::make("splitmuxsink")
            .property(
                "location",
                output
                    .folder
                    .join(output.pattern)
                    .to_string_lossy()
                    .to_string(),
            )
            .property("max-size-time", output.segment_ns)
            .property("max-size-bytes", output.segment_bytes)
            // We encode, so the encoder can cut where splitmuxsink wants.
            .property("send-keyframe-requests", output.segment_bytes == 0)
            .property("muxer", &muxer)
            .build()
            .map_err(|e| format!("GStreamer element splitmuxsink: {e}"))?;

        bin.add_many([
            &video_src,
            &video_caps,
            &compositor,
            &picture,
            video_encoder.upcast_ref(),
            &audio_src,
            &audiomixer,
            &mix,
            audio_encoder.upcast_ref(),
            &split,
        ])
        .map_err(|e| e.to_string())?;
        link(&video_src, &video_caps)?;
        link(&video_caps, &compositor)?;
        link(&compositor, &picture)?;
        link(&picture, video_encoder.upcast_ref())?;
        link(&audio_src, &audiomixer)?;
        link(&audiomixer, &mix)?;
        link(&mix, audio_encoder.upcast_ref())?;
        let video_pad = split
            .request_pad_simple("video")
            .ok_or("splitmuxsink gave no video pad")?;
        video_encoder
            .static_pad("src")
            .ok_or("the video encoder pipeline has no src pad")?
            .link(&video_pad)
            .map_err(|e| format!("video into {}: {e}", format.container.muxer()))?;
        let audio_pad = split
            .request_pad_simple("audio_%u")
            .ok_or("splitmuxsink gave no audio pad")?;
        audio_encoder
            .static_pad("src")
            .ok_or("the audio encoder pipeline has no src pad")?
            .link(&audio_pad)
            .map_err(|e| format!("audio into {}: {e}", format.container.muxer()))?;
        // The background: the whole picture, under every video.
        if let Some(pad) = video_caps.static_pad("src").and_then(|p| p.peer()) {
            pad.set_property("zorder", 0u32);
        }

        pipeline
            .add(&bin)
            .map_err(|e| format!("adding the composite recording: {e}"))?;
        if let Err(e) = bin.sync_state_with_parent() {
            let _ = pipeline.remove(&bin);
            let _ = bin.set_state(gst::State::Null);
            return Err(format!("starting the composite recording: {e}"));
        }
        Ok(Mixer {
            bin,
            compositor,
            audiomixer,
            background: [video_src, audio_src],
            layout: Arc::new(Mutex::new(Layout {
                width: format.width,
                height: format.height,
                tiles: Vec::new(),
            })),
            branches: Vec::new(),
            templates,
            count: 0,
        })
    }

    /// Adds a track to the mix: a video gets a tile (the grid is laid out again), an audio is
    /// mixed in.
    pub fn add(
        &mut self,
        id: &str,
        kind: &str,
        codec: &str,
        tee: &gst::Element,
    ) -> Result<(), String> {
        let decode = decoder(codec).ok_or_else(|| format!("no decoder for {codec}"))?;
        let video = kind == "video";
        let (template, mixer) = if video {
            (&self.templates.video_input, &self.compositor)
        } else {
            (&self.templates.audio_input, &self.audiomixer)
        };
        self.count += 1;
        let n = self.count;
        let branch = parse_bin(&template.replace("{decode}", decode))?;
        branch.set_property("name", format!("in-{n}"));
        self.bin.add(&branch).map_err(|e| e.to_string())?;
        let undo = |bin: &RecordingBin, branch: &gst::Bin| {
            let _ = bin.remove(branch);
        };
        let Some(mixer_pad) = mixer.request_pad_simple("sink_%u") else {
            undo(&self.bin, &branch);
            return Err(format!("{} gave no sink pad", mixer.name()));
        };
        if video {
            // Hidden until placed (its tile is set below, under the layout lock).
            mixer_pad.set_property("zorder", 1u32);
            mixer_pad.set_property("width", 1i32);
            mixer_pad.set_property("height", 1i32);
            mixer_pad.set_property("alpha", 0.0f64);
        }
        let linked = branch
            .static_pad("src")
            .ok_or_else(|| "the input pipeline has no src pad".to_string())
            .and_then(|src| {
                src.link(&mixer_pad)
                    .map_err(|e| format!("{codec} into {}: {e}", mixer.name()))
            });
        if let Err(e) = linked {
            mixer.release_request_pad(&mixer_pad);
            undo(&self.bin, &branch);
            return Err(e);
        }
        if let Some(src) = branch.static_pad("src") {
            drop_untimed(&src);
        }
        let attached = (|| {
            let inner = branch
                .static_pad("sink")
                .ok_or("the input pipeline has no sink pad")?;
            let ghost = gst::GhostPad::builder_with_target(&inner)
                .map_err(|e| e.to_string())?
                .name(format!("sink-{n}"))
                .build();
            let _ = ghost.set_active(true);
            self.bin.add_pad(&ghost).map_err(|e| e.to_string())?;
            if video {
                drop_until_keyframe(ghost.upcast_ref());
                self.watch_size(&mixer_pad);
            }
            branch
                .sync_state_with_parent()
                .map_err(|e| format!("starting the input of {id}: {e}"))?;
            let input = Input::attach(tee, ghost.upcast_ref(), video)?;
            Ok::<_, String>((ghost, input))
        })();
        let (ghost, input) = match attached {
            Ok(a) => a,
            Err(e) => {
                let _ = branch.set_state(gst::State::Null);
                mixer.release_request_pad(&mixer_pad);
                undo(&self.bin, &branch);
                if let Some(ghost) = self.bin.static_pad(&format!("sink-{n}")) {
                    let _ = self.bin.remove_pad(&ghost);
                }
                return Err(e);
            }
        };
        if video {
            let mut layout = self.layout.lock().unwrap_or_else(|p| p.into_inner());
            layout.tiles.push(Tile {
                id: id.to_string(),
                pad: mixer_pad.clone(),
                size: (0, 0),
            });
            mixer_pad.set_property("alpha", 1.0f64);
            layout.apply();
        }
        self.branches.push(Branch {
            id: id.to_string(),
            bin: branch,
            ghost,
            mixer: mixer.clone(),
            mixer_pad,
            input,
        });
        Ok(())
    }

    /// Lays the grid out again when the video on `pad` gets (or changes) its size.
    fn watch_size(&self, pad: &gst::Pad) {
        let layout = Arc::downgrade(&self.layout);
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
            let Some(gst::EventView::Caps(caps)) = info.event().map(|e| e.view()) else {
                return gst::PadProbeReturn::Ok;
            };
            let size = caps.caps().structure(0).and_then(|s| {
                Some((
                    s.get::<i32>("width").ok()? as u32,
                    s.get::<i32>("height").ok()? as u32,
                ))
            });
            if let (Some(size), Some(layout)) = (size, layout.upgrade()) {
                let mut layout = layout.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(tile) = layout.tiles.iter_mut().find(|t| &t.pad == pad) {
                    tile.size = size;
                }
                layout.apply();
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Whether track `id` is in the mix.
    pub fn has(&self, id: &str) -> bool {
        self.branches.iter().any(|b| b.id == id)
    }

    /// The track whose input holds the element at `path` (a failing decoder, say).
    pub fn input_at(&self, path: &str) -> Option<String> {
        let composite = self.bin.path_string();
        self.branches
            .iter()
            .find(|b| path.starts_with(&format!("{composite}/{}/", b.bin.name())))
            .map(|b| b.id.clone())
    }

    /// Takes track `id` out of the mix: no more data from its tee, and the grid is laid out
    /// again without it. Returns its branch, to [`Branch::dispose`] outside any lock.
    pub fn remove(&mut self, id: &str) -> Option<Branch> {
        let i = self.branches.iter().position(|b| b.id == id)?;
        let branch = self.branches.remove(i);
        branch.input.detach();
        let mut layout = self.layout.lock().unwrap_or_else(|p| p.into_inner());
        let before = layout.tiles.len();
        layout.tiles.retain(|t| t.id != id);
        if layout.tiles.len() != before {
            // Hidden now: its last frame would stay on screen until the pad is released.
            branch.mixer_pad.set_property("alpha", 0.0f64);
            layout.apply();
        }
        Some(branch)
    }

    /// Ends the recording: every input is detached and ended, the background sources end, and
    /// splitmuxsink finalizes the last segment and posts the end of stream
    /// ([`crate::recbin::Notice::Finished`]).
    pub fn finish(&mut self) {
        for branch in &self.branches {
            branch.input.detach();
            let _ = branch.input.sink.send_event(gst::event::Eos::new());
        }
        for source in &self.background {
            let _ = source.send_event(gst::event::Eos::new());
        }
    }

    /// Stops and removes the recording from its pipeline. Not from a streaming thread.
    pub fn remove_from_pipeline(&self) {
        let _ = self.bin.set_state(gst::State::Null);
        if let Some(parent) = self.bin.parent().and_downcast::<gst::Bin>() {
            let _ = parent.remove(&self.bin);
        }
    }
}

impl Branch {
    /// Stops the branch and releases its mixer pad. Not from a streaming thread, nor under a
    /// lock a streaming thread takes: stopping waits for the branch's threads.
    pub fn dispose(self, composite: &RecordingBin) {
        // The mixer pad first: releasing it flushes it, which wakes a branch thread waiting in
        // the mixer for room (a mixer that lags under load), so stopping the branch never waits
        // for the mixer.
        self.mixer.release_request_pad(&self.mixer_pad);
        let _ = self.bin.set_state(gst::State::Null);
        let _ = composite.remove(&self.bin);
        let _ = self.ghost.set_active(false);
        let _ = composite.remove_pad(&self.ghost);
    }
}

/// Drops buffers without a timestamp before they reach a mixer: the aggregators fail the whole
/// recording on one ("Need timestamped buffers!", seen from `avdec_h264` now and then on a
/// track's first frames), where losing that one frame costs nothing.
fn drop_untimed(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
        Some(b) if b.pts().is_none() => crate::probe::drop_buffer(info),
        _ => gst::PadProbeReturn::Ok,
    });
}

/// Drops a video's frames until its first keyframe: a decoder cannot start elsewhere (the
/// input asks for one when it links).
fn drop_until_keyframe(pad: &gst::Pad) {
    let started = AtomicBool::new(false);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if started.load(Ordering::Relaxed) {
            return gst::PadProbeReturn::Remove;
        }
        match info.buffer() {
            Some(b) if b.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
                crate::probe::drop_buffer(info)
            }
            _ => {
                started.store(true, Ordering::Relaxed);
                gst::PadProbeReturn::Remove
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recbin::Notice;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Waits (bounded) for a notice that satisfies `want`; fails on a failure notice.
    /// A notifier for the mixer and the receiving end of what it reports.
    fn notices() -> (Notify, mpsc::Receiver<Notice>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let notify: Notify = Box::new(move |n: Notice| {
            let _ = tx.lock().unwrap().send(n);
        });
        (notify, rx)
    }

    /// The shipped templates, with `video_encoder` as the encoder.
    fn templates(video_encoder: &str) -> Templates {
        Templates {
            video_input: VIDEO_INPUT_TEMPLATE.into(),
            audio_input: AUDIO_INPUT_TEMPLATE.into(),
            video_encoder: video_encoder.into(),
            audio_encoder: AUDIO_ENCODER_TEMPLATE.into(),
        }
    }

    fn wait_for(rx: &mpsc::Receiver<Notice>, want: impl Fn(&Notice) -> bool) -> Vec<Notice> {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(100)) {
                assert!(!matches!(n, Notice::Failed(_)), "{n:?} after {seen:?}");
                let done = want(&n);
                seen.push(n);
                if done {
                    return seen;
                }
            }
        }
        panic!("no such notice in 20 s: {seen:?}");
    }

    /// Encoded live tracks into the mixer (H.264 in Matroska), one removed mid-way, then the
    /// end: every segment is reported, the end comes, nothing fails.
    #[test]
    fn tracks_come_and_go_and_the_recording_ends() {
        gst::init().unwrap();
        let pipeline = gst::parse::launch(
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 \
             ! vp8enc deadline=1 ! tee name=v allow-not-linked=true \
             videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=160,framerate=10/1 \
             ! vp8enc deadline=1 ! tee name=w allow-not-linked=true \
             audiotestsrc is-live=true ! opusenc ! tee name=a allow-not-linked=true",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let tee = |n: &str| pipeline.by_name(n).unwrap();
        let dir = std::env::temp_dir().join(format!("recorder-mixer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (notify, rx) = notices();
        let templates = templates(H264_ENCODER_TEMPLATE);
        let format = Format {
            width: 320,
            height: 180,
            framerate: 15,
            container: Container::Mkv,
        };
        let output = Output {
            folder: &dir,
            pattern: "01-%05d.mkv",
            segment_ns: 1_000_000_000,
            segment_bytes: 0,
        };
        let bin = pipeline.clone().upcast::<gst::Bin>();
        let mut mixer = Mixer::start(&bin, format, templates, &output, notify).unwrap();
        mixer.add("v", "video", "VP8", &tee("v")).unwrap();
        mixer.add("w", "video", "VP8", &tee("w")).unwrap();
        mixer.add("a", "audio", "OPUS", &tee("a")).unwrap();
        assert!(mixer.add("x", "video", "AV1", &tee("v")).is_err());
        wait_for(&rx, |n| matches!(n, Notice::SegmentClosed { .. }));
        assert_eq!(mixer.layout.lock().unwrap().tiles.len(), 2);
        mixer.remove("v").unwrap().dispose(&mixer.bin);
        assert!(mixer.remove("v").is_none());
        assert_eq!(mixer.layout.lock().unwrap().tiles.len(), 1);
        wait_for(&rx, |n| matches!(n, Notice::SegmentClosed { .. }));
        mixer.finish();
        wait_for(&rx, |n| matches!(n, Notice::Finished));
        mixer.remove_from_pipeline();
        pipeline.set_state(gst::State::Null).unwrap();
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert!(files >= 3, "{files} segment files");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The folder turns unwritable: the next segment cannot be opened, and the mixer reports a
    /// write failure (which stops this recording only).
    #[test]
    fn a_write_error_is_reported() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let dir = std::env::temp_dir().join(format!("recorder-mixer-we-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (notify, rx) = notices();
        let templates = templates(VP8_ENCODER_TEMPLATE);
        let format = Format {
            width: 160,
            height: 90,
            framerate: 10,
            container: Container::Webm,
        };
        let output = Output {
            folder: &dir,
            pattern: "01-%05d.webm",
            segment_ns: 1_000_000_000,
            segment_bytes: 0,
        };
        pipeline.set_state(gst::State::Playing).unwrap();
        let bin = pipeline.clone().upcast::<gst::Bin>();
        let mixer = Mixer::start(&bin, format, templates, &output, notify).unwrap();
        // An empty room records too (black and silence).
        wait_for(&rx, |n| matches!(n, Notice::SegmentClosed { .. }));
        std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
        std::fs::write(&dir, "not a folder").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let failure = loop {
            assert!(std::time::Instant::now() < deadline, "no failure in 20 s");
            if let Ok(Notice::Failed(f)) = rx.recv_timeout(Duration::from_millis(100)) {
                break f;
            }
        };
        assert!(failure.write, "{failure:?}");
        assert!(mixer.input_at(&failure.source).is_none(), "{failure:?}");
        mixer.remove_from_pipeline();
        pipeline.set_state(gst::State::Null).unwrap();
        std::fs::remove_file(&dir).unwrap();
        std::fs::remove_dir_all(dir.with_extension("moved")).unwrap();
    }
}
