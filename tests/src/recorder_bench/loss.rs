//! Data lost on the way into a recording, seen in the segments: every track is sent at a
//! steady frame rate (VP8 at 15 fps, Opus in 20 ms frames), so a gap between two frames'
//! timestamps longer than 1.5 intervals means frames that never made it into the file (lost
//! packets make the depayloader drop a frame; a leaky queue drops whole frames).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;

/// Frames in a track and the frames missing between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub frames: u64,
    pub missing: u64,
}

impl std::ops::AddAssign for Count {
    fn add_assign(&mut self, other: Count) {
        self.frames += other.frames;
        self.missing += other.missing;
    }
}

/// Counts frames and the frames missing in the gaps between their timestamps (nanoseconds, in
/// any order), given the sender's frame interval.
pub fn count(timestamps: &[u64], interval_ns: u64) -> Count {
    let mut sorted = timestamps.to_vec();
    sorted.sort_unstable();
    let missing = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        // A gap of up to 1.5 intervals is timestamp jitter, not a lost frame.
        .filter(|gap| gap * 2 > interval_ns * 3)
        .map(|gap| (gap + interval_ns / 2) / interval_ns - 1)
        .sum();
    Count {
        frames: sorted.len() as u64,
        missing,
    }
}

/// Seconds of a peer's time left out between its recordings, each given as (last segment
/// closed at in Unix ms, seconds since its first segment started): a new recording after a
/// reconnection starts later than the previous one ended. Gaps under half a second are the
/// closing's own delay, not media.
pub fn uncovered_s(segments: &[(u64, f64)]) -> f64 {
    let mut spans: Vec<(f64, f64)> = segments
        .iter()
        .map(|&(closed, duration)| (closed as f64 / 1000.0 - duration, closed as f64 / 1000.0))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    spans
        .windows(2)
        .map(|w| w[1].0 - w[0].1)
        .filter(|gap| *gap > 0.5)
        .sum()
}

/// The buffer timestamps of each stream in a Matroska/WebM file, by stream kind (`video`,
/// `audio`): demuxed only, nothing decoded. Bounded to 30 s.
pub fn timestamps(file: &Path) -> anyhow::Result<BTreeMap<String, Vec<u64>>> {
    gst::init()?;
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", file.to_string_lossy().to_string())
        .build()?;
    let demux = gst::ElementFactory::make("matroskademux").build()?;
    pipeline.add_many([&src, &demux])?;
    src.link(&demux)?;
    let found: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<u64>>>> = Default::default();
    let weak = pipeline.downgrade();
    let sink_found = found.clone();
    demux.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let kind = if pad.name().starts_with("video") {
            "video"
        } else {
            "audio"
        };
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        let _ = pipeline.add(&sink);
        let _ = sink.sync_state_with_parent();
        let _ = pad.link(&sink.static_pad("sink").unwrap());
        let found = sink_found.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                found
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(kind.to_string())
                    .or_default()
                    .push(pts.nseconds());
            }
            gst::PadProbeReturn::Ok
        });
    });
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("no bus")?;
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match end.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => bail!(
            "{}: {} ({})",
            file.display(),
            e.error(),
            e.debug().unwrap_or_default()
        ),
        _ => bail!("{}: not read within 30 s", file.display()),
    }
    // The pipeline is stopped: no probe runs any more.
    let found = found.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn steady_frames_lack_nothing() {
        let ts: Vec<u64> = (0..50).map(|i| i * 20 * MS).collect();
        assert_eq!(
            count(&ts, 20 * MS),
            Count {
                frames: 50,
                missing: 0
            }
        );
    }

    #[test]
    fn jitter_is_not_loss() {
        assert_eq!(count(&[0, 25 * MS, 40 * MS, 69 * MS], 20 * MS).missing, 0);
    }

    #[test]
    fn gaps_count_the_frames_they_hold() {
        // 0, 20, [40, 60 missing], 80, [100 missing], 120
        let ts = [0, 20 * MS, 80 * MS, 120 * MS];
        assert_eq!(
            count(&ts, 20 * MS),
            Count {
                frames: 4,
                missing: 3
            }
        );
        // Out of order in, same answer.
        assert_eq!(count(&[120 * MS, 0, 80 * MS, 20 * MS], 20 * MS).missing, 3);
    }

    #[test]
    fn uncovered_time_is_between_segments() {
        // 0-10 s, 10-20 s, then a new recording 23-28 s.
        let segments = [(20_000, 10.0), (10_050, 10.0), (28_000, 5.0)];
        assert!((uncovered_s(&segments) - 3.0).abs() < 1e-6);
        assert_eq!(uncovered_s(&[(10_000, 10.0)]), 0.0);
    }

    #[test]
    fn nothing_to_count() {
        assert_eq!(count(&[], 20 * MS), Count::default());
        assert_eq!(count(&[5], 20 * MS).frames, 1);
    }
}
