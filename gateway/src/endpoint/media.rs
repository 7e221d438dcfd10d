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
    /// An element (typically a bin with a ghost `src` pad) that outputs RTP with the same caps
    /// fields as [`MediaSource::Launch`]; it must not be in a bin yet. This is how a consumer
    /// sends something it built itself, e.g. an incoming track re-payloaded.
    Element(gst::Element),
}

/// Identifies one published source of an endpoint, for [`unpublish`](super::EndpointHandle::unpublish).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicationId(pub u64);

impl std::fmt::Display for PublicationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "publication-{}", self.0)
    }
}

impl MediaSource {
    fn description(&self) -> Option<String> {
        match self {
            MediaSource::TestVideo => "videotestsrc is-live=true pattern=ball \
                ! video/x-raw,width=640,height=480,framerate=30/1 ! videoconvert \
                ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 error-resilient=partitions \
                ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit \
                ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\""
                .to_string().into(),
            MediaSource::TestAudio => "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
                ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 \
                ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\""
                .to_string().into(),
            MediaSource::Launch(d) => Some(d.clone()),
            MediaSource::Element(_) => None,
        }
    }
}

/// One published source: its tee, which every peer's branch links to.
#[derive(Clone, Debug)]
pub struct Published {
    id: PublicationId,
    source: gst::Element,
    tee: gst::Element,
}

impl Published {
    /// Builds `source` into `pipeline`: the source bin (with a ghost src pad) and its tee beside
    /// it, so peer branches (also in the pipeline) link to the tee directly.
    pub fn build(
        pipeline: &gst::Pipeline,
        id: PublicationId,
        source: &MediaSource,
    ) -> anyhow::Result<Published> {
        let element: gst::Element = match (source, source.description()) {
            (MediaSource::Element(e), _) => e.clone(),
            (_, Some(d)) => gst::parse::bin_from_description(&d, true)?.upcast(),
            (_, None) => unreachable!("every other source has a launch description"),
        };
        let tee = gst::ElementFactory::make("tee")
            .name(format!("{id}-tee"))
            .property("allow-not-linked", true)
            .build()?;
        pipeline.add_many([&element, &tee])?;
        if let Err(e) = element.link(&tee) {
            let _ = pipeline.remove_many([&element, &tee]);
            anyhow::bail!("the source has no src pad that can feed a tee: {e}");
        }
        tee.sync_state_with_parent()?;
        element.sync_state_with_parent()?;
        Ok(Published {
            id,
            source: element,
            tee,
        })
    }

    /// Which publication this is.
    pub fn id(&self) -> PublicationId {
        self.id
    }

    /// The RTP caps the source settled on, once it has produced them. Peers are only fed a
    /// source with caps: webrtcbin builds the m-line of an offer from them.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.tee.static_pad("sink").and_then(|p| p.current_caps())
    }

    /// Stops the source and removes it from the pipeline (its peers' branches are detached
    /// first, by their peer connections).
    pub fn remove(&self, pipeline: &gst::Pipeline) {
        let _ = pipeline.remove_many([&self.source, &self.tee]);
        stop_element(self.source.clone(), std::time::Duration::from_secs(5));
        let _ = self.tee.set_state(gst::State::Null);
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
