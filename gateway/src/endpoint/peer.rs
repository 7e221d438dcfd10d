//! One remote peer on GStreamer: a `webrtcbin` in the endpoint's pipeline, fed by the published
//! media's tee, driven by the peer's negotiation [`Machine`]. This file only performs the
//! machine's actions and reports webrtcbin's callbacks back as events; every decision is the
//! machine's.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::mpsc;

use super::media::Publisher;
use super::negotiation::{Action, Event, Machine};
use crate::config::IceServer;
use crate::signalling::protocol::{IceCandidate, SdpType, SessionDescription};
use crate::signalling::EndpointId;

/// An event from a webrtcbin, tagged with the peer and the webrtcbin generation that produced
/// it: events of a torn-down webrtcbin are recognised and dropped.
#[derive(Debug)]
pub struct PeerEvent {
    pub peer: EndpointId,
    pub generation: u64,
    pub event: PeerSignal,
}

#[derive(Debug)]
pub enum PeerSignal {
    /// Feed this to the negotiation machine.
    Negotiation(Event),
    /// The peer connection state changed (for logs, stats and tests).
    ConnectionState(gst_webrtc::WebRTCPeerConnectionState),
}

/// What the peer asks the endpoint to send on signalling.
#[derive(Debug)]
pub enum Outgoing {
    Sdp(SessionDescription),
    Candidate(Option<IceCandidate>),
}

/// One webrtcbin and its branch of the pipeline.
struct Branch {
    webrtcbin: gst::Element,
    queue: gst::Element,
    tee_pad: gst::Pad,
    generation: u64,
}

pub struct PeerConnection {
    pub id: EndpointId,
    pub machine: Machine,
    pipeline: gst::Pipeline,
    publisher: Publisher,
    ice_servers: Vec<IceServer>,
    local_addresses: Vec<std::net::IpAddr>,
    events: mpsc::UnboundedSender<PeerEvent>,
    branch: Option<Branch>,
    next_generation: u64,
    pub state: gst_webrtc::WebRTCPeerConnectionState,
}

impl PeerConnection {
    pub fn new(
        id: EndpointId,
        polite: bool,
        pipeline: gst::Pipeline,
        publisher: Publisher,
        ice_servers: Vec<IceServer>,
        local_addresses: Vec<std::net::IpAddr>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> anyhow::Result<PeerConnection> {
        let mut peer = PeerConnection {
            id,
            machine: Machine::new(polite),
            pipeline,
            publisher,
            ice_servers,
            local_addresses,
            events,
            branch: None,
            next_generation: 1,
            state: gst_webrtc::WebRTCPeerConnectionState::New,
        };
        peer.build()?;
        Ok(peer)
    }

    /// The generation of the live webrtcbin; events of any other are stale.
    pub fn generation(&self) -> u64 {
        self.branch.as_ref().map(|b| b.generation).unwrap_or(0)
    }

    /// Feeds an event to the machine and performs what it asks. Signalling output is returned
    /// for the endpoint to send, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Outgoing> {
        let mut outgoing = Vec::new();
        let mut pending = vec![event];
        while let Some(event) = pending.pop() {
            for action in self.machine.on(event) {
                if let Some(follow_up) = self.perform(action, &mut outgoing) {
                    pending.push(follow_up);
                }
            }
        }
        outgoing
    }

    /// Performs one action. Returns an event to feed back at once (a rebuild completes
    /// synchronously).
    fn perform(&mut self, action: Action, outgoing: &mut Vec<Outgoing>) -> Option<Event> {
        tracing::trace!(peer = %self.id, ?action, "negotiation action");
        let Some(branch) = &self.branch else {
            return None;
        };
        let webrtcbin = branch.webrtcbin.clone();
        let generation = branch.generation;
        match action {
            Action::CreateOffer | Action::RestartIce => {
                let options = (action == Action::RestartIce).then(|| {
                    gst::Structure::builder("options")
                        .field("ice-restart", true)
                        .build()
                });
                let promise =
                    self.promise(generation, |reply| match description_in(reply, "offer") {
                        Ok(sdp) => Event::OfferCreated { sdp },
                        Err(error) => Event::OfferFailed { error },
                    });
                webrtcbin.emit_by_name::<()>("create-offer", &[&options, &promise]);
            }
            Action::CreateAnswer => {
                let promise =
                    self.promise(generation, |reply| match description_in(reply, "answer") {
                        Ok(sdp) => Event::AnswerCreated { sdp },
                        Err(error) => Event::AnswerFailed { error },
                    });
                webrtcbin.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
            }
            Action::SetLocalDescription(desc) => match to_gst(&desc) {
                Ok(d) => {
                    let promise = self.promise(generation, |reply| match error_in(reply) {
                        None => Event::LocalDescriptionSet,
                        Some(error) => Event::LocalDescriptionFailed { error },
                    });
                    webrtcbin.emit_by_name::<()>("set-local-description", &[&d, &promise]);
                }
                Err(error) => return Some(Event::LocalDescriptionFailed { error }),
            },
            Action::SetRemoteDescription(desc) => match to_gst(&desc) {
                Ok(d) => {
                    let promise = self.promise(generation, |reply| match error_in(reply) {
                        None => Event::RemoteDescriptionSet,
                        Some(error) => Event::RemoteDescriptionFailed { error },
                    });
                    webrtcbin.emit_by_name::<()>("set-remote-description", &[&d, &promise]);
                }
                Err(error) => return Some(Event::RemoteDescriptionFailed { error }),
            },
            Action::AddRemoteCandidate(Some(c)) => {
                // webrtcbin 1.22 wants the m-line index; browsers send it with every candidate.
                let mline = c.sdp_mline_index.unwrap_or(0);
                webrtcbin.emit_by_name::<()>("add-ice-candidate", &[&mline, &c.candidate]);
            }
            // webrtcbin 1.22 has no use for the end-of-candidates marker.
            Action::AddRemoteCandidate(None) => {}
            Action::SendSdp(desc) => outgoing.push(Outgoing::Sdp(desc)),
            Action::SendCandidate(c) => outgoing.push(Outgoing::Candidate(c)),
            Action::Rebuild { reason } => {
                tracing::info!(peer = %self.id, ?reason, "rebuilding the peer connection");
                self.teardown();
                return match self.build() {
                    Ok(()) => Some(Event::Rebuilt),
                    Err(e) => {
                        tracing::error!(peer = %self.id, "cannot rebuild the peer connection: {e:#}");
                        None
                    }
                };
            }
            Action::Failed { reason } => {
                tracing::warn!(peer = %self.id, "negotiation gave up: {reason}");
                self.teardown();
            }
            Action::Diagnostic(d) => tracing::debug!(peer = %self.id, ?d, "negotiation"),
        }
        None
    }

    /// A promise whose reply becomes one machine event, tagged with the webrtcbin generation.
    fn promise(
        &self,
        generation: u64,
        to_event: impl FnOnce(Result<Option<&gst::StructureRef>, gst::PromiseError>) -> Event
            + Send
            + 'static,
    ) -> gst::Promise {
        let events = self.events.clone();
        let peer = self.id;
        gst::Promise::with_change_func(move |reply| {
            let event = to_event(reply);
            let _ = events.send(PeerEvent {
                peer,
                generation,
                event: PeerSignal::Negotiation(event),
            });
        })
    }

    /// Creates a fresh webrtcbin fed by the publisher's tee, and connects its callbacks.
    fn build(&mut self) -> anyhow::Result<()> {
        let generation = self.next_generation;
        self.next_generation += 1;
        let webrtcbin = gst::ElementFactory::make("webrtcbin")
            .name(format!("peer-{}-{generation}", self.id))
            .property_from_str("bundle-policy", "max-bundle")
            .build()?;
        for server in &self.ice_servers {
            configure_ice_server(&webrtcbin, server);
        }
        // An allow-list of host candidate addresses. libnice leaves loopback out of its own
        // choice, so on one machine (and in the tests) 127.0.0.1 must be listed here.
        if !self.local_addresses.is_empty() {
            let agent = webrtcbin.property::<gst::glib::Object>("ice-agent");
            for address in &self.local_addresses {
                let added =
                    agent.emit_by_name::<bool>("add-local-ip-address", &[&address.to_string()]);
                if !added {
                    tracing::warn!(peer = %self.id, %address, "webrtcbin refused a local ICE address");
                }
            }
        }
        let queue = gst::ElementFactory::make("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 200u32)
            .property("max-size-time", 0u64)
            .property("max-size-bytes", 0u32)
            .build()?;
        self.pipeline.add_many([&queue, &webrtcbin])?;
        let sink = webrtcbin
            .request_pad_simple("sink_%u")
            .ok_or_else(|| anyhow::anyhow!("webrtcbin gave no sink pad"))?;
        queue.static_pad("src").unwrap().link(&sink)?;
        if let Some(transceiver) =
            sink.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
        {
            transceiver.set_property(
                "direction",
                gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv,
            );
        }
        let tee_pad = self.publisher.attach(&queue)?;

        let events = self.events.clone();
        let peer = self.id;
        let send = move |event: PeerSignal| {
            let _ = events.send(PeerEvent {
                peer,
                generation,
                event,
            });
        };
        let s = send.clone();
        webrtcbin.connect("on-negotiation-needed", false, move |_| {
            s(PeerSignal::Negotiation(Event::NegotiationNeeded));
            None
        });
        let s = send.clone();
        webrtcbin.connect("on-ice-candidate", false, move |values| {
            let mline = values[1].get::<u32>().unwrap_or(0);
            let candidate = values[2].get::<String>().unwrap_or_default();
            // An empty candidate marks the end of gathering.
            let c = if candidate.is_empty() {
                None
            } else {
                Some(IceCandidate {
                    candidate,
                    sdp_mid: None,
                    sdp_mline_index: Some(mline),
                    username_fragment: None,
                })
            };
            s(PeerSignal::Negotiation(Event::LocalCandidate(c)));
            None
        });
        let s = send.clone();
        webrtcbin.connect_notify(Some("ice-connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCICEConnectionState>("ice-connection-state");
            if state == gst_webrtc::WebRTCICEConnectionState::Failed {
                s(PeerSignal::Negotiation(Event::IceFailed));
            }
        });
        let s = send.clone();
        webrtcbin.connect_notify(Some("connection-state"), move |w, _| {
            s(PeerSignal::ConnectionState(
                w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state"),
            ));
        });
        let pipeline = self.pipeline.clone();
        webrtcbin.connect_pad_added(move |_, pad| {
            if pad.direction() == gst::PadDirection::Src {
                link_to_fakesink(&pipeline, pad);
            }
        });
        // Browsers' data channels arrive here; until the data-channel API exists they are
        // accepted and left alone.
        webrtcbin.connect("on-data-channel", false, |_| None);

        queue.sync_state_with_parent()?;
        webrtcbin.sync_state_with_parent()?;
        self.branch = Some(Branch {
            webrtcbin,
            queue,
            tee_pad,
            generation,
        });
        Ok(())
    }

    /// Removes the webrtcbin and its branch from the pipeline.
    fn teardown(&mut self) {
        let Some(branch) = self.branch.take() else {
            return;
        };
        self.publisher.detach(&branch.tee_pad);
        for element in [&branch.webrtcbin, &branch.queue] {
            let _ = element.set_state(gst::State::Null);
            let _ = self.pipeline.remove(element);
        }
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Every webrtcbin src pad must be linked: an unlinked one returns not-linked, which stops the
/// shared nicesrc and with it all incoming traffic, data channels included.
fn link_to_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) {
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .property("sync", false)
        .build()
    else {
        return;
    };
    if pipeline.add(&sink).is_ok() {
        let _ = sink.sync_state_with_parent();
        let _ = pad.link(&sink.static_pad("sink").unwrap());
    }
}

fn configure_ice_server(webrtcbin: &gst::Element, server: &IceServer) {
    for url in &server.urls {
        // webrtcbin wants credentials inside the URL: turn://user:pass@host:port.
        if let Some(rest) = url.strip_prefix("stun:") {
            webrtcbin.set_property("stun-server", format!("stun://{rest}"));
        } else if let Some((scheme, rest)) = url.split_once(':') {
            let (user, pass) = (
                server.username.clone().unwrap_or_default(),
                server.credential.clone().unwrap_or_default(),
            );
            let gst_url = format!("{scheme}://{user}:{pass}@{rest}");
            let _ = webrtcbin.emit_by_name::<bool>("add-turn-server", &[&gst_url]);
        }
    }
}

fn to_gst(desc: &SessionDescription) -> Result<gst_webrtc::WebRTCSessionDescription, String> {
    let kind = match desc.kind {
        SdpType::Offer => gst_webrtc::WebRTCSDPType::Offer,
        SdpType::Answer => gst_webrtc::WebRTCSDPType::Answer,
        SdpType::Pranswer => gst_webrtc::WebRTCSDPType::Pranswer,
        SdpType::Rollback => gst_webrtc::WebRTCSDPType::Rollback,
    };
    let sdp = gst_sdp::SDPMessage::parse_buffer(desc.sdp.as_bytes())
        .map_err(|e| format!("unparsable SDP: {e}"))?;
    Ok(gst_webrtc::WebRTCSessionDescription::new(kind, sdp))
}

/// The SDP text of the description named `field` in a create-offer/answer reply.
fn description_in(
    reply: Result<Option<&gst::StructureRef>, gst::PromiseError>,
    field: &str,
) -> Result<String, String> {
    let reply = match reply {
        Ok(Some(r)) => r,
        Ok(None) => return Err("webrtcbin gave an empty reply".into()),
        Err(e) => return Err(format!("webrtcbin promise failed: {e:?}")),
    };
    if let Some(e) = error_in(Ok(Some(reply))) {
        return Err(e);
    }
    reply
        .get::<gst_webrtc::WebRTCSessionDescription>(field)
        .map_err(|e| format!("no {field} in the reply: {e}"))?
        .sdp()
        .as_text()
        .map_err(|e| format!("cannot print the {field}: {e}"))
}

/// The error a webrtcbin promise reply carries, if any.
fn error_in(reply: Result<Option<&gst::StructureRef>, gst::PromiseError>) -> Option<String> {
    match reply {
        Ok(Some(r)) => r
            .get::<gst::glib::Error>("error")
            .ok()
            .map(|e| e.message().to_string()),
        Ok(None) => None,
        Err(e) => Some(format!("webrtcbin promise failed: {e:?}")),
    }
}
