//! Encode once, send from many endpoints. A pipeline of its own encodes VP8 and Opus into RTP
//! and ends in two `appsink`s; every sample is pushed into an `appsrc` per sending endpoint
//! (each a [`MediaSource::Element`]). The appsrcs restamp buffers with their own pipeline's
//! clock (each endpoint has its own). Keyframe requests reaching an appsrc (a recorder's PLI,
//! a new peer) go on to the one VP8 encoder: all senders get the keyframe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use poolgate::endpoint::MediaSource;

/// One encoded stream and the appsrcs it feeds.
struct Fanout {
    sink: gst_app::AppSink,
    outputs: Arc<Mutex<Vec<gst_app::AppSrc>>>,
    caps: gst::Caps,
}

/// The running encoders. Dropping it stops them.
pub struct SharedSender {
    pipeline: gst::Pipeline,
    video: Fanout,
    audio: Fanout,
}

impl SharedSender {
    /// Starts `video` and `audio` (gst-launch descriptions ending in an RTP payloader) and
    /// waits, bounded, until both have produced their caps.
    pub fn start(video: &str, audio: &str) -> anyhow::Result<SharedSender> {
        gst::init()?;
        let description = format!(
            "{video} ! appsink name=video sync=false emit-signals=false \
             {audio} ! appsink name=audio sync=false emit-signals=false"
        );
        let pipeline = gst::parse::launch(&description)
            .context("the shared sender's pipeline")?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
        let sink = |name: &str| -> anyhow::Result<gst_app::AppSink> {
            pipeline
                .by_name(name)
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .with_context(|| format!("no appsink {name}"))
        };
        let (video_sink, audio_sink) = (sink("video")?, sink("audio")?);
        let video_outputs = fan_out(&video_sink);
        let audio_outputs = fan_out(&audio_sink);
        pipeline.set_state(gst::State::Playing)?;
        let caps_of = |s: &gst_app::AppSink| s.static_pad("sink").and_then(|p| p.current_caps());
        let deadline = Instant::now() + Duration::from_secs(10);
        let (video_caps, audio_caps) = loop {
            if let (Some(v), Some(a)) = (caps_of(&video_sink), caps_of(&audio_sink)) {
                break (v, a);
            }
            if Instant::now() > deadline {
                let _ = pipeline.set_state(gst::State::Null);
                bail!("the shared sender produced no caps within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(SharedSender {
            pipeline,
            video: Fanout {
                sink: video_sink,
                outputs: video_outputs,
                caps: video_caps,
            },
            audio: Fanout {
                sink: audio_sink,
                outputs: audio_outputs,
                caps: audio_caps,
            },
        })
    }

    /// A new pair of sources (video, audio) for one endpoint, fed from now on.
    pub fn sources(&self) -> anyhow::Result<Vec<MediaSource>> {
        Ok(vec![
            MediaSource::Element(self.output(&self.video, true)?),
            MediaSource::Element(self.output(&self.audio, false)?),
        ])
    }

    fn output(&self, fanout: &Fanout, video: bool) -> anyhow::Result<gst::Element> {
        let src = gst_app::AppSrc::builder()
            .caps(&fanout.caps)
            .is_live(true)
            .format(gst::Format::Time)
            .do_timestamp(true)
            .build();
        if video {
            // The appsrc is where a keyframe request stops: send it on to the encoder.
            let encoder_side = fanout.sink.static_pad("sink").context("appsink pad")?;
            src.static_pad("src").context("appsrc pad")?.add_probe(
                gst::PadProbeType::EVENT_UPSTREAM,
                move |_, info| {
                    if let Some(event) = info.event() {
                        if event
                            .structure()
                            .is_some_and(|s| s.name() == "GstForceKeyUnit")
                        {
                            // Pushed from the appsink's sink pad, it travels upstream.
                            let _ = encoder_side.push_event(event.clone());
                        }
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
        fanout
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(src.clone());
        Ok(src.upcast())
    }
}

impl Drop for SharedSender {
    fn drop(&mut self) {
        for fanout in [&self.video, &self.audio] {
            fanout
                .outputs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Pushes every sample of `sink` into each registered appsrc, untimestamped (each appsrc
/// stamps it with its own pipeline's running time).
fn fan_out(sink: &gst_app::AppSink) -> Arc<Mutex<Vec<gst_app::AppSrc>>> {
    let outputs: Arc<Mutex<Vec<gst_app::AppSrc>>> = Arc::default();
    let targets = outputs.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buffer) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let mut copy = buffer.copy();
                {
                    let copy = copy.make_mut();
                    copy.set_pts(gst::ClockTime::NONE);
                    copy.set_dts(gst::ClockTime::NONE);
                }
                let targets = targets.lock().unwrap_or_else(|p| p.into_inner());
                for src in targets.iter() {
                    // A stopped endpoint's appsrc refuses: that is its business.
                    let _ = src.push_buffer(copy.clone());
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    outputs
}
