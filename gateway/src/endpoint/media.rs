//! Published media: each source is encoded once, then a `tee` feeds one leaky branch per peer,
//! so a slow or failing peer drops its own buffers and never stalls the encoder or the others.

use gstreamer as gst;
use gstreamer::prelude::*;

/// Something the endpoint sends to every current and future peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaSource {
    /// A moving test pattern, VP8.
    TestVideo,
    /// A 440 Hz tone, Opus.
    TestAudio,
    /// A `gst-launch` description whose last element outputs RTP (an encoder and payloader,
    /// ending in caps with `media`, `encoding-name`, `payload` and `clock-rate`), e.g.
    /// `videotestsrc is-live=true ! x264enc tune=zerolatency ! rtph264pay ! capsfilter caps=…`.
    Launch(String),
}

impl MediaSource {
    fn description(&self) -> String {
        match self {
            MediaSource::TestVideo => "videotestsrc is-live=true pattern=ball \
                ! video/x-raw,width=640,height=480,framerate=30/1 ! videoconvert \
                ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 error-resilient=partitions \
                ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit \
                ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\""
                .to_string(),
            MediaSource::TestAudio => "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
                ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 \
                ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\""
                .to_string(),
            MediaSource::Launch(d) => d.clone(),
        }
    }
}

/// One published source: its tee, which every peer's branch links to.
#[derive(Clone)]
pub struct Published {
    tee: gst::Element,
}

impl Published {
    /// Builds `source` into `pipeline`: the source bin (with a ghost src pad) and its tee beside
    /// it, so peer branches (also in the pipeline) link to the tee directly.
    pub fn build(pipeline: &gst::Pipeline, source: &MediaSource) -> anyhow::Result<Published> {
        let bin = gst::parse::bin_from_description(&source.description(), true)?;
        let tee = gst::ElementFactory::make("tee")
            .property("allow-not-linked", true)
            .build()?;
        pipeline.add_many([bin.upcast_ref::<gst::Element>(), &tee])?;
        bin.link(&tee)?;
        bin.sync_state_with_parent()?;
        tee.sync_state_with_parent()?;
        Ok(Published { tee })
    }

    /// Links a new branch (its first element's sink pad) to the tee and asks the encoder for a
    /// keyframe, so the new peer gets a picture at once rather than at the next keyframe.
    pub fn attach(&self, branch_head: &gst::Element) -> anyhow::Result<gst::Pad> {
        let tee_pad = self
            .tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| anyhow::anyhow!("the tee gave no src pad"))?;
        tee_pad.link(&branch_head.static_pad("sink").unwrap())?;
        let event = gst::event::CustomUpstream::builder(
            gst::Structure::builder("GstForceKeyUnit")
                .field("all-headers", true)
                .build(),
        )
        .build();
        tee_pad.send_event(event);
        Ok(tee_pad)
    }

    /// Unlinks and releases a branch's tee pad.
    pub fn detach(&self, tee_pad: &gst::Pad) {
        if let Some(peer) = tee_pad.peer() {
            let _ = tee_pad.unlink(&peer);
        }
        self.tee.release_request_pad(tee_pad);
    }
}

/// Sets `element` to NULL without letting a hang block the caller. webrtcbin 1.22 has known
/// teardown deadlocks (sctpenc shutdown among them): the state change runs on its own thread,
/// and after `limit` the caller goes on and logs that the element was abandoned.
pub fn stop_element(element: gst::Element, limit: std::time::Duration) {
    let (done_tx, done) = std::sync::mpsc::channel();
    let name = element.name().to_string();
    std::thread::spawn(move || {
        let _ = element.set_state(gst::State::Null);
        let _ = done_tx.send(());
    });
    if done.recv_timeout(limit).is_err() {
        tracing::error!(element = %name,
            "GStreamer did not stop this element within {limit:?} (a known webrtcbin 1.22 teardown hang); abandoning it");
    }
}
