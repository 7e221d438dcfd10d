//! Published media: a source encoded once, then a `tee` with one leaky branch per peer, so a
//! slow or failing peer drops its own buffers and never stalls the encoder or the others.

use gstreamer as gst;
use gstreamer::prelude::*;

/// What the endpoint sends to every current and future peer.
#[derive(Clone)]
pub struct Publisher {
    tee: gst::Element,
}

impl Publisher {
    /// A moving VP8 test pattern (`videotestsrc`), encoded once, in `pipeline`.
    pub fn test_pattern(pipeline: &gst::Pipeline) -> anyhow::Result<Publisher> {
        let description = "videotestsrc is-live=true pattern=ball \
            ! video/x-raw,width=640,height=480,framerate=30/1 ! videoconvert \
            ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 error-resilient=partitions \
            ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit \
            ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\"";
        // The source is a bin with a ghost src pad; the tee sits beside it in the pipeline, so
        // that peer branches (also in the pipeline) can link to it directly.
        let source = gst::parse::bin_from_description(description, true)?;
        let tee = gst::ElementFactory::make("tee")
            .name("published")
            .property("allow-not-linked", true)
            .build()?;
        pipeline.add_many([source.upcast_ref::<gst::Element>(), &tee])?;
        source.link(&tee)?;
        source.sync_state_with_parent()?;
        tee.sync_state_with_parent()?;
        Ok(Publisher { tee })
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
