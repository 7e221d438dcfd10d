//! Published media: each source is encoded once, then a `tee` feeds one branch per peer, so a
//! slow or failing peer drops its own buffers and never stalls the encoder or the others (the
//! first peers' branches send from the source's thread behind a gate, the others through a
//! leaky queue: see [`super::gate`]).

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
    /// One track in alternative formats, each an element as for [`MediaSource::Element`] with a
    /// payload type of its own, the first preferred. Every peer is offered all of them in one
    /// media section and fed the one its side of the exchange accepted (see
    /// [`super::alternative`]); each is produced once, whatever the number of peers.
    Alternatives(Vec<gst::Element>),
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
            MediaSource::Element(_) | MediaSource::Alternatives(_) => None,
        }
    }
}

/// One published source: its tee (one per alternative format), which peers' branches link to.
#[derive(Clone, Debug)]
pub struct Published {
    id: PublicationId,
    /// The source element and its tee, per alternative (one for a plain source).
    alternatives: Vec<(gst::Element, gst::Element)>,
    /// How many peers each alternative feeds, over every peer connection.
    demand: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
    /// How many peers' branches send from the source's thread (see [`super::gate`]).
    direct: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How many peers of one source get a direct branch (no queue; see [`super::gate`]); the
/// others get a queue, so the sending spreads over threads once one thread's share grows.
/// Each costs the source's thread about half a percent of a core at 4 Mbit/s (measured with the
/// camera relay), so eight keep it under a twentieth of a core.
pub const DIRECT_PEERS: usize = 8;

impl Published {
    /// Builds `source` into `pipeline`: the source bin (with a ghost src pad) and its tee beside
    /// it, so peer branches (also in the pipeline) link to the tee directly.
    pub fn build(
        pipeline: &gst::Pipeline,
        id: PublicationId,
        source: &MediaSource,
    ) -> anyhow::Result<Published> {
        let elements: Vec<gst::Element> = match (source, source.description()) {
            (MediaSource::Element(e), _) => vec![e.clone()],
            (MediaSource::Alternatives(list), _) if !list.is_empty() => list.clone(),
            (MediaSource::Alternatives(_), _) => anyhow::bail!("no alternative to publish"),
            (_, Some(d)) => vec![gst::parse::bin_from_description(&d, true)?.upcast()],
            (_, None) => unreachable!("every other source has a launch description"),
        };
        let mut alternatives: Vec<(gst::Element, gst::Element)> = Vec::new();
        for (n, element) in elements.into_iter().enumerate() {
            let tee = gst::ElementFactory::make("tee")
                .name(format!("{id}-tee-{n}"))
                .property("allow-not-linked", true)
                .build()?;
            let added = pipeline
                .add_many([&element, &tee])
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    element.link(&tee).map_err(|e| {
                        let _ = pipeline.remove_many([&element, &tee]);
                        anyhow::anyhow!("the source has no src pad that can feed a tee: {e}")
                    })
                });
            if let Err(e) = added {
                for (source, tee) in &alternatives {
                    let _ = pipeline.remove_many([source, tee]);
                }
                return Err(e);
            }
            alternatives.push((element, tee));
        }
        for (element, tee) in &alternatives {
            tee.sync_state_with_parent()?;
            element.sync_state_with_parent()?;
        }
        let demand = std::sync::Arc::new(std::sync::Mutex::new(vec![0; alternatives.len()]));
        Ok(Published {
            id,
            alternatives,
            demand,
            direct: Default::default(),
        })
    }

    /// Which publication this is.
    pub fn id(&self) -> PublicationId {
        self.id
    }

    /// The RTP caps the source settled on, once it has produced them (the first alternative's).
    /// Peers are only fed a source with caps: webrtcbin builds the m-line of an offer from them.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.alternatives[0]
            .1
            .static_pad("sink")
            .and_then(|p| p.current_caps())
    }

    /// Whether the source comes in more than one format (see [`MediaSource::Alternatives`]).
    pub fn has_alternatives(&self) -> bool {
        self.alternatives.len() > 1
    }

    /// The payload type of each alternative, in order (from the caps it settled on, else from
    /// what its src pad can output).
    pub fn payloads(&self) -> Vec<Option<u8>> {
        self.formats()
            .iter()
            .map(|s| {
                s.get::<i32>("payload")
                    .ok()
                    .and_then(|p| u8::try_from(p).ok())
            })
            .collect()
    }

    /// Every alternative's format as a transceiver's codec preferences: webrtcbin offers them
    /// all in one media section, in this order.
    pub fn preferences(&self) -> gst::Caps {
        let mut caps = gst::Caps::new_empty();
        let caps_mut = caps.get_mut().expect("a new caps is writable");
        for s in self.formats() {
            caps_mut.append_structure(s);
        }
        caps
    }

    /// Each alternative's fixed RTP fields (the ones that go into the SDP).
    fn formats(&self) -> Vec<gst::Structure> {
        self.alternatives
            .iter()
            .map(|(source, tee)| {
                let caps = tee
                    .static_pad("sink")
                    .and_then(|p| p.current_caps())
                    .or_else(|| source.static_pad("src").map(|p| p.query_caps(None)));
                let mut format = gst::Structure::builder("application/x-rtp");
                if let Some(s) = caps.as_ref().and_then(|c| c.structure(0)) {
                    for (field, value) in s.iter() {
                        // SSRCs, sequence numbers and timestamps belong to the stream, not the
                        // format; ranges are not a choice made yet.
                        // Parameter sets change with the stream, too; a preference that
                        // disagrees with the caps the pad gets would empty a later offer.
                        let stream_field = matches!(
                            field.as_str(),
                            "ssrc"
                                | "timestamp-offset"
                                | "seqnum-offset"
                                | "a-framerate"
                                | "sprop-parameter-sets"
                        );
                        if !stream_field && (value.is::<i32>() || value.is::<String>()) {
                            format = format.field(field.as_str(), value.clone());
                        }
                    }
                }
                format.build()
            })
            .collect()
    }

    /// Stops the source and removes it from the pipeline (its peers' branches are detached
    /// first, by their peer connections).
    pub fn remove(&self, pipeline: &gst::Pipeline) {
        for (source, tee) in &self.alternatives {
            let _ = pipeline.remove_many([source, tee]);
            stop_element(source.clone(), std::time::Duration::from_secs(5));
            let _ = tee.set_state(gst::State::Null);
        }
    }

    /// Takes one of the source's direct branches, if one of the [`DIRECT_PEERS`] is free.
    pub fn take_direct(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.direct
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < DIRECT_PEERS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a direct branch taken with [`Published::take_direct`].
    pub fn release_direct(&self) {
        use std::sync::atomic::Ordering;
        let _ = self
            .direct
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Links a new branch (its first element's sink pad) to the tee and asks the encoder for a
    /// keyframe, so the new peer gets a picture at once rather than at the next keyframe.
    pub fn attach(&self, branch_head: &gst::Element) -> anyhow::Result<gst::Pad> {
        self.attach_to(0, branch_head)
    }

    /// As [`Published::attach`], to the tee of alternative `index`.
    pub fn attach_to(&self, index: usize, branch_head: &gst::Element) -> anyhow::Result<gst::Pad> {
        let tee = &self
            .alternatives
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("no alternative {index}"))?
            .1;
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| anyhow::anyhow!("the tee gave no src pad"))?;
        tee_pad.link(&branch_head.static_pad("sink").unwrap())?;
        tee_pad.send_event(keyframe_request());
        self.count(index, 1);
        Ok(tee_pad)
    }

    /// Adds `change` to the peers alternative `index` feeds and, for a source in alternatives,
    /// tells the source the new number (see `publish_alternatives` in the plugin contract), so
    /// it may produce only what some peer takes.
    fn count(&self, index: usize, change: i32) {
        let peers = {
            let mut demand = self.demand.lock().unwrap_or_else(|p| p.into_inner());
            let Some(n) = demand.get_mut(index) else {
                return;
            };
            *n = n.saturating_add_signed(change);
            *n
        };
        if !self.has_alternatives() {
            return;
        }
        let event = gst::event::CustomUpstream::builder(
            gst::Structure::builder(poolgate_plugin_api::contract::DEMAND_EVENT)
                .field("peers", peers)
                .build(),
        )
        .build();
        if let Some(sink) = self.alternatives[index].1.static_pad("sink") {
            sink.push_event(event);
        }
    }

    /// Unlinks and releases a branch's tee pad.
    pub fn detach(&self, tee_pad: &gst::Pad) {
        if let Some(peer) = tee_pad.peer() {
            let _ = tee_pad.unlink(&peer);
        }
        if let Some(tee) = tee_pad.parent_element() {
            tee.release_request_pad(tee_pad);
            if let Some(index) = self.alternatives.iter().position(|(_, t)| *t == tee) {
                self.count(index, -1);
            }
        }
    }
}

/// The upstream event that asks a source for a keyframe with its parameter sets (an encoder
/// makes one; the camera relay asks the camera).
pub fn keyframe_request() -> gst::Event {
    gst::event::CustomUpstream::builder(
        gst::Structure::builder("GstForceKeyUnit")
            .field("all-headers", true)
            .build(),
    )
    .build()
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
