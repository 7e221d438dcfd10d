//! A viewer harness's decoding branch, for the time from joining to the first frame a viewer
//! could show: the first keyframe depayloaded is when the data is there, the first frame
//! decoded is when it was complete and decodable (parameter sets included). Only the joining
//! viewers of `bench-camera` decode: for the N receiving viewers it would be CPU the machine
//! shares with the measured server.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;

/// The decoder for an RTP encoding name (depayloaded input), in `gst-launch` syntax.
pub fn decoder_description(encoding: &str) -> Option<&'static str> {
    match encoding.to_ascii_uppercase().as_str() {
        // Without `output-corrupt=false` libav shows frames decoded from before the first
        // keyframe (measured: a "first frame" 900 ms before the first keyframe came).
        "H264" => Some("h264parse ! avdec_h264 output-corrupt=false"),
        "VP8" => Some("vp8dec"),
        _ => None,
    }
}

/// `decoder ! fakesink` for `encoding`, as one bin with a ghost sink pad, added to `pipeline`
/// and started: link the depayloaded stream to it, and remove it as one element. `first`: the
/// instant of a join; the first decoded frame after it takes it and calls `on_first` with the
/// milliseconds since (once per join).
pub fn decoding_branch(
    pipeline: &gst::Pipeline,
    encoding: &str,
    first: Arc<Mutex<Option<Instant>>>,
    on_first: impl Fn(u64) + Send + Sync + 'static,
) -> anyhow::Result<gst::Element> {
    let decoder =
        decoder_description(encoding).with_context(|| format!("no decoder for {encoding}"))?;
    let description = format!("{decoder} ! fakesink name=decoded sync=false async=false");
    let bin = gst::parse::bin_from_description(&description, true)
        .with_context(|| format!("building {description}"))?;
    bin.by_name("decoded")
        .and_then(|sink| sink.static_pad("sink"))
        .context("the decoding branch has no fakesink")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let since = first.lock().ok().and_then(|mut f| f.take());
            if let Some(at) = since {
                on_first(at.elapsed().as_millis() as u64);
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.add(&bin)?;
    bin.sync_state_with_parent()?;
    Ok(bin.upcast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_encodings_have_decoders_and_the_factories_exist() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        for encoding in ["H264", "VP8", "h264"] {
            decoding_branch(&pipeline, encoding, Default::default(), |_| {})
                .unwrap_or_else(|e| panic!("{encoding}: {e:#}"));
        }
        assert!(decoder_description("OPUS").is_none());
    }

    #[test]
    fn the_first_decoded_frame_is_reported_once_per_join() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let source = gst::parse::bin_from_description(
            "videotestsrc num-buffers=10 ! video/x-raw,width=64,height=48 \
             ! vp8enc deadline=1",
            true,
        )
        .unwrap();
        let first = Arc::new(Mutex::new(Some(Instant::now())));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        pipeline.add(&source).unwrap();
        let decoder = decoding_branch(&pipeline, "VP8", first.clone(), move |ms| {
            seen.lock().unwrap().push(ms)
        })
        .unwrap();
        source.link(&decoder).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(
            matches!(
                ended.as_ref().map(|m| m.view()),
                Some(gst::MessageView::Eos(_))
            ),
            "the branch decoded to the end: {ended:?}"
        );
        assert_eq!(reports.lock().unwrap().len(), 1, "ten frames, one report");
        assert!(
            first.lock().unwrap().is_none(),
            "the join instant was taken"
        );
    }
}
