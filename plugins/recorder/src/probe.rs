//! Pad probes' shared steps: dropping the buffer they see, and giving frames a duration.

use std::sync::atomic::{AtomicU64, Ordering};

use poolgate_plugin_api::gst;
use poolgate_plugin_api::gst::prelude::*;

/// Drops the probed buffer. Not with `PadProbeReturn::Drop`: through the Rust bindings that
/// logged "gst_mini_object_unref: assertion 'mini_object != NULL' failed" for every buffer
/// dropped (seen in the composite recording trials); the buffer is released here and the probe
/// reports it handled.
pub(crate) fn drop_buffer(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    info.data = None;
    gst::PadProbeReturn::Handled
}

/// Gives each buffer leaving `pad` without a duration the time since the one before it.
///
/// Depayloaded video from browsers has timestamps but no durations, and the muxer takes a
/// track's length from its first buffer's start to its last buffer's end. A segment holding a
/// single frame (a stop that came just after a cut) thus had a length of 0, which the muxer
/// does not write, and players then read the last cluster's time instead: such a 1-frame file
/// claimed 23 s (seen in CI: `endpoint_recorder_two_browsers`). The time since the previous
/// frame stands for the frame interval.
pub(crate) fn fill_durations(pad: &gst::Pad) {
    const NONE: u64 = u64::MAX;
    let previous = AtomicU64::new(NONE);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts().map(gst::ClockTime::nseconds) else {
            return gst::PadProbeReturn::Ok;
        };
        let before = previous.swap(pts, Ordering::Relaxed);
        if buffer.duration().is_none() && before != NONE && pts > before {
            buffer
                .make_mut()
                .set_duration(gst::ClockTime::from_nseconds(pts - before));
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames without durations through an appsrc whose src pad has the probe: the first has
    /// nothing to go by, each later one gets the interval since the one before.
    #[test]
    fn frames_without_duration_get_the_interval_since_the_last() {
        gst::init().unwrap();
        let pipeline = gst::parse::launch("appsrc name=src format=time ! fakesink name=sink")
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let src = pipeline.by_name("src").unwrap();
        fill_durations(&src.static_pad("src").unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink_pad = pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap();
        let record = seen.clone();
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                record
                    .lock()
                    .unwrap()
                    .push(b.duration().map(gst::ClockTime::mseconds));
            }
            gst::PadProbeReturn::Ok
        });
        src.set_property("caps", gst::Caps::builder("video/x-vp8").build());
        pipeline.set_state(gst::State::Playing).unwrap();
        for (pts_ms, duration_ms) in [
            (20_000, None),
            (20_033, None),
            (20_066, Some(10)),
            (20_100, None),
        ] {
            let mut buffer = gst::Buffer::with_size(8).unwrap();
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
            b.set_duration(duration_ms.map(gst::ClockTime::from_mseconds));
            let flow = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer]);
            assert_eq!(flow, gst::FlowReturn::Ok);
        }
        let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
        let bus = pipeline.bus().unwrap();
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Eos])
            .expect("end of stream");
        pipeline.set_state(gst::State::Null).unwrap();
        // A duration the buffer had is kept.
        assert_eq!(*seen.lock().unwrap(), [None, Some(33), Some(10), Some(34)]);
    }
}
