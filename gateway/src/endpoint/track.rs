//! Incoming tracks: every RTP stream a peer sends is depayloaded once and offered to consumers
//! through a `tee`, so any number of them (a recorder, a decoder, a bridge) can link to it.
//! Streams nobody links are still drained: an unlinked webrtcbin src pad would stop the shared
//! nicesrc and with it all incoming traffic.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::signalling::EndpointId;

/// An incoming track as a consumer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// The peer that sends it.
    pub peer: EndpointId,
    /// A name unique within the endpoint, for logs and removal events.
    pub id: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The RTP encoding name: `VP8`, `H264`, `OPUS`, `PCMU`, ...
    pub codec: String,
    /// A `tee` carrying the depayloaded (still encoded) stream: request a `src_%u` pad from it
    /// and link it to elements in [`super::Endpoint::pipeline`]. Unlink and release the pad when
    /// the track is removed.
    pub source: gst::Element,
}

/// The elements a received stream added to the pipeline, removed with its peer.
pub struct Received {
    /// The track offered to consumers (`None` for a stream in a codec we only drain).
    pub track: Option<Track>,
    /// Every element this stream added to the pipeline, removed with it.
    pub elements: Vec<gst::Element>,
}

/// The depayloader for an RTP encoding name, if poolgate knows the codec.
fn depayloader(codec: &str) -> Option<&'static str> {
    Some(match codec {
        "VP8" => "rtpvp8depay",
        "VP9" => "rtpvp9depay",
        "H264" => "rtph264depay",
        "OPUS" => "rtpopusdepay",
        "PCMU" => "rtppcmudepay",
        "PCMA" => "rtppcmadepay",
        _ => return None,
    })
}

/// Links a new webrtcbin src pad: to `depayloader ! tee` for a known codec (a [`Track`]), or to a
/// `fakesink` for anything else.
pub fn receive(pipeline: &gst::Pipeline, peer: EndpointId, pad: &gst::Pad) -> Received {
    let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
    let s = caps.as_ref().and_then(|c| c.structure(0));
    let kind = s
        .and_then(|s| s.get::<String>("media").ok())
        .unwrap_or_default();
    let codec = s
        .and_then(|s| s.get::<String>("encoding-name").ok())
        .unwrap_or_default()
        .to_uppercase();
    let id = format!("{peer}/{}", pad.name());
    if let Some(factory) = depayloader(&codec) {
        match track_branch(pipeline, pad, factory) {
            Ok((elements, tee)) => {
                return Received {
                    track: Some(Track {
                        peer,
                        id,
                        kind,
                        codec,
                        source: tee,
                    }),
                    elements,
                }
            }
            Err(e) => tracing::warn!(%peer, %codec, "cannot depayload an incoming track: {e:#}"),
        }
    }
    Received {
        track: None,
        elements: drain(pipeline, pad).into_iter().collect(),
    }
}

fn track_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    depay: &str,
) -> anyhow::Result<(Vec<gst::Element>, gst::Element)> {
    let depay = gst::ElementFactory::make(depay).build()?;
    let tee = gst::ElementFactory::make("tee")
        .property("allow-not-linked", true)
        .build()?;
    // A tee with no consumer yet must still drain, or the pad would stall: a fakesink branch.
    // No queue before it: an unsynced fakesink never blocks, and a queue would cost a thread
    // and a wake-up per buffer for every track, recorded or not (the bulk of a recorder's
    // per-track CPU was such wake-ups).
    let sink = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .property("sync", false)
        .build()?;
    let elements = vec![depay, tee.clone(), sink];
    pipeline.add_many(&elements)?;
    gst::Element::link_many(&elements)?;
    for e in &elements {
        e.sync_state_with_parent()?;
    }
    pad.link(&elements[0].static_pad("sink").unwrap())?;
    Ok((elements, tee))
}

fn drain(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Option<gst::Element> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .property("sync", false)
        .build()
        .ok()?;
    pipeline.add(&sink).ok()?;
    let _ = sink.sync_state_with_parent();
    let _ = pad.link(&sink.static_pad("sink").unwrap());
    Some(sink)
}

/// Removes a received stream's elements (after its webrtcbin is gone).
pub fn remove(pipeline: &gst::Pipeline, received: &Received) {
    if let Some(track) = &received.track {
        // Release what consumers still hold, so their elements see the end of the stream.
        for pad in track.source.src_pads() {
            if let Some(peer) = pad.peer() {
                let _ = pad.unlink(&peer);
            }
            track.source.release_request_pad(&pad);
        }
    }
    for e in &received.elements {
        let _ = e.set_state(gst::State::Null);
        let _ = pipeline.remove(e);
    }
}
