//! One remote peer on GStreamer: a `webrtcbin` in the endpoint's pipeline, fed by the published
//! media's tee, driven by the peer's negotiation [`Machine`]. This file only performs the
//! machine's actions and reports webrtcbin's callbacks back as events; every decision is the
//! machine's.

use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::mpsc;

use std::mem;
use std::sync::{Arc, Mutex};

use super::datachannel::{self, ChannelSignal, ChannelSpec, Payload};
use super::gate::Gate;
use super::media::Published;
use super::negotiation::{Action, CapsStep, Diagnostic, Event, Machine, Offerer};
use super::sdp_map::{self, SectionMap, WireSection};
use super::track::{self, Received, Track};
use crate::config::IceServer;
use crate::signalling::protocol::{IceCandidate, SdpType, SessionDescription};
use crate::signalling::EndpointId;

/// How long a fresh webrtcbin's sending branches may take to bring their caps before it
/// offers without the missing ones. A running source's caps come within milliseconds.
const CAPS_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a webrtcbin may take to stop before it is abandoned.
const TEARDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An event from a webrtcbin, tagged with the peer and the webrtcbin generation that produced
/// it: events of a torn-down webrtcbin are recognised and dropped.
#[derive(Debug)]
pub struct PeerEvent {
    /// The remote endpoint.
    pub peer: EndpointId,
    /// The webrtcbin that produced it (0: delivered whatever the current generation is).
    pub generation: u64,
    /// What happened.
    pub event: PeerSignal,
}

#[derive(Debug)]
/// What a webrtcbin reports, as the endpoint's runner consumes it.
pub enum PeerSignal {
    /// Feed this to the negotiation machine.
    Negotiation(Event),
    /// The peer connection state changed (for logs, stats and tests).
    ConnectionState(gst_webrtc::WebRTCPeerConnectionState),
    /// A data channel opened, closed or delivered a message.
    Channel(ChannelSignal),
    /// A sending branch's caps reached webrtcbin (see [`PeerConnection::caps_arrived`]).
    CapsArrived,
    /// The sending branches of a fresh webrtcbin took too long to bring their caps (see
    /// [`PeerConnection::caps_arrived`]).
    CapsOverdue,
    /// The peer opened a channel: it is reopened from our side on a rebuilt webrtcbin (see
    /// [`PeerConnection::remember_remote_channel`]).
    RemoteChannel(ChannelSpec),
    /// The peer started sending a track.
    TrackAdded(Track),
    /// A track's webrtcbin was torn down (a rebuild): consumers must let go of it.
    TrackRemoved(String),
}

/// What the peer asks the endpoint to send on signalling.
#[derive(Debug)]
pub enum Outgoing {
    /// Send `rtc:sdp`.
    Sdp(SessionDescription),
    /// Send `rtc:candidate` (`None`: end of candidates).
    Candidate(Option<IceCandidate>),
}

/// One webrtcbin and its branch of the pipeline.
struct Branch {
    webrtcbin: gst::Element,
    /// Per published source: the branch into webrtcbin and the tee pad feeding it.
    outputs: Vec<Output>,
    generation: u64,
    /// Live data channels, ours and the remote's (the remote's arrive on a GStreamer thread).
    channels: Arc<Mutex<Vec<gst_webrtc::WebRTCDataChannel>>>,
    /// What the peer's incoming streams added to the pipeline.
    /// `None` once the branch is torn down: a stream that webrtcbin announces after that (its
    /// pad-added comes on a streaming thread) must not add elements nobody will remove.
    received: Arc<Mutex<Option<Vec<Received>>>>,
    /// The transceivers our published media goes out on.
    sending: Vec<gst_webrtc::WebRTCRTPTransceiver>,
    /// The `a=fingerprint:` value of this webrtcbin's own certificate.
    fingerprint: String,
    /// Open while the connection is up: what the direct branches wait for.
    gate: Arc<Gate>,
    /// The session's sections this webrtcbin was built to continue (it offers first after a
    /// rebuild); empty for one that starts a session or answers.
    layout: Vec<WireSection>,
    /// Translates between this webrtcbin's sections and the session's (see [`sdp_map`]).
    map: SectionMap,
    /// The map is settled: this webrtcbin has been given a description.
    map_fixed: bool,
    /// This webrtcbin offers a data section whether or not a channel is open: we open channels,
    /// or it has the session channel (see [`add_session_channel`]).
    data_section: bool,
}

/// One published source's way into this peer's webrtcbin.
struct Output {
    source: Published,
    /// The peer branch (see [`super::fuse::peer_branch`]).
    queue: gst::Element,
    /// The branch sends from the source's thread (it holds one of the source's direct slots).
    direct: bool,
    /// The tee pad feeding the queue; `None` while a source in alternative formats waits for
    /// the exchange that says which one this peer takes.
    tee_pad: Option<gst::Pad>,
    /// The alternative linked now (see [`super::alternative`]).
    alternative: Option<usize>,
    /// The transceiver the queue feeds.
    transceiver: Option<gst_webrtc::WebRTCRTPTransceiver>,
}

impl Output {
    fn detach(&self, pipeline: &gst::Pipeline) {
        if let Some(tee_pad) = &self.tee_pad {
            self.source.detach(tee_pad);
        }
        // webrtcbin holds buffers on a sink pad whose transceiver is not negotiated yet, so the
        // queue's thread may be blocked inside a push; stopping the queue then waits for that
        // thread forever (seen in gdb: gst_pad_stop_task under PeerConnection::teardown). A
        // flush-start toward webrtcbin releases the push first.
        if let Some(src) = self.queue.static_pad("src") {
            src.push_event(gst::event::FlushStart::new());
        }
        let _ = self.queue.set_state(gst::State::Null);
        let _ = pipeline.remove(&self.queue);
        if self.direct {
            self.source.release_direct();
        }
    }
}

/// One remote peer: its negotiation machine and its current webrtcbin.
pub struct PeerConnection {
    /// The remote endpoint.
    pub id: EndpointId,
    /// Its perfect-negotiation state machine.
    pub machine: Machine,
    pipeline: gst::Pipeline,
    published: Vec<Published>,
    ice_servers: Vec<IceServer>,
    local_addresses: Vec<std::net::IpAddr>,
    events: mpsc::UnboundedSender<PeerEvent>,
    branch: Option<Branch>,
    next_generation: u64,
    /// The channels this endpoint opens to the peer, recreated on every rebuild.
    channel_specs: Vec<ChannelSpec>,
    /// The channels the peer opened and has not closed: a rebuilt webrtcbin (a new SCTP
    /// association) opens them from our side, since the peer does not open them again.
    remote_channel_specs: Vec<ChannelSpec>,
    /// A sending branch's caps arrived during an exchange: whether to offer is decided when
    /// the exchange ends (see [`Self::caps_arrived`]).
    caps_during_exchange: bool,
    /// Sending branches of the live webrtcbin whose caps have not reached it yet: no offer is
    /// made before they all have (see [`Self::caps_arrived`]).
    caps_pending: usize,
    /// An offer was asked for while caps were pending: it is made once they are in.
    offer_waits_for_caps: bool,
    /// The latest connection state webrtcbin reported.
    pub state: gst_webrtc::WebRTCPeerConnectionState,
}

impl PeerConnection {
    /// A peer connection to `id` on a fresh webrtcbin in `pipeline`, fed by `published`, opening
    /// `channel_specs`. We offer as soon as our media's caps reach webrtcbin, polite or not:
    /// a collision with the peer's own first offer is ordinary glare (see
    /// [`Self::caps_arrived`] for the one offer we leave out).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: EndpointId,
        polite: bool,
        pipeline: gst::Pipeline,
        published: Vec<Published>,
        ice_servers: Vec<IceServer>,
        local_addresses: Vec<std::net::IpAddr>,
        channel_specs: Vec<ChannelSpec>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> anyhow::Result<PeerConnection> {
        let mut peer = PeerConnection {
            id,
            machine: Machine::new(polite),
            pipeline,
            published,
            ice_servers,
            local_addresses,
            events,
            branch: None,
            next_generation: 1,
            channel_specs,
            remote_channel_specs: Vec::new(),
            caps_during_exchange: false,
            caps_pending: 0,
            offer_waits_for_caps: false,
            state: gst_webrtc::WebRTCPeerConnectionState::New,
        };
        peer.build(Vec::new())?;
        Ok(peer)
    }

    /// Opens a data channel to this peer (and again on every rebuilt webrtcbin).
    pub fn add_channel(&mut self, spec: ChannelSpec) {
        if let Some(branch) = &self.branch {
            open_channel(
                &branch.webrtcbin,
                &spec,
                &branch.channels,
                self.reporter(branch.generation),
            );
            // The first channel adds a data section; later ones ride on it, which an offer
            // without changes confirms harmlessly.
            self.ask_for_offer(branch.generation);
        }
        self.channel_specs.push(spec);
    }

    /// The peer opened `spec` on the live webrtcbin: remembered for the next rebuild.
    pub fn remember_remote_channel(&mut self, spec: ChannelSpec) {
        let known = |s: &ChannelSpec| s.label == spec.label;
        if !self.channel_specs.iter().any(known) && !self.remote_channel_specs.iter().any(known) {
            self.remote_channel_specs.push(spec);
        }
    }

    /// A channel labelled `label` closed on the live webrtcbin: if the peer had opened it, it
    /// is not reopened on a rebuild.
    pub fn forget_remote_channel(&mut self, label: &str) {
        self.remote_channel_specs.retain(|s| s.label != label);
    }

    /// Every channel a new webrtcbin opens: ours, then the ones the peer opened before.
    fn channels_to_open(&self) -> Vec<ChannelSpec> {
        self.channel_specs
            .iter()
            .chain(&self.remote_channel_specs)
            .cloned()
            .collect()
    }

    /// Reports when a sending branch's caps have reached webrtcbin: webrtcbin builds the
    /// branch's m-line from them, and an offer made earlier would leave it out. Reported at the
    /// first buffer after the caps event, not at the event: a pad pushes its sticky events to
    /// the peer pad before a buffer's probes run, so webrtcbin has handled the caps by then (an
    /// offer may follow at once; see [`Self::caps_arrived`] for why it must find them there).
    fn ask_when_caps_arrive(&self, queue: &gst::Element, direct: bool, generation: u64) {
        let (events, peer) = (self.events.clone(), self.id);
        // A direct branch drops buffers until the peer is connected, so none would come out of
        // it before the offer; but it hands events on in the source's thread, so a buffer
        // coming in after the caps means webrtcbin has them.
        let Some(src) = queue.static_pad(if direct { "sink" } else { "src" }) else {
            return;
        };
        let caps_seen = std::sync::atomic::AtomicBool::new(false);
        let watched = gst::PadProbeType::EVENT_DOWNSTREAM
            | gst::PadProbeType::BUFFER
            | gst::PadProbeType::BUFFER_LIST;
        src.add_probe(watched, move |_, info| {
            match info.data {
                Some(gst::PadProbeData::Event(ref e)) => {
                    if e.type_() == gst::EventType::Caps {
                        caps_seen.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    return gst::PadProbeReturn::Ok;
                }
                Some(gst::PadProbeData::Buffer(_) | gst::PadProbeData::BufferList(_))
                    if caps_seen.load(std::sync::atomic::Ordering::Relaxed) => {}
                _ => return gst::PadProbeReturn::Ok,
            }
            let _ = events.send(PeerEvent {
                peer,
                generation,
                event: PeerSignal::CapsArrived,
            });
            gst::PadProbeReturn::Remove
        });
    }

    /// Queues a negotiation-needed for the webrtcbin of `generation` (see [`Self::build`]).
    fn ask_for_offer(&self, generation: u64) {
        let _ = self.events.send(PeerEvent {
            peer: self.id,
            generation,
            event: PeerSignal::Negotiation(Event::NegotiationNeeded),
        });
    }

    /// Sends on an open channel labelled `label`. False when there is none.
    pub fn send(&self, label: &str, payload: &Payload) -> bool {
        let Some(branch) = &self.branch else {
            return false;
        };
        let channels = branch.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .iter()
            .filter(|c| c.label().as_deref() == Some(label) && datachannel::is_open(c))
            .any(|c| datachannel::send(c, payload))
    }

    /// A function that reports a channel's signals as this peer's events of `generation`.
    fn reporter(&self, generation: u64) -> impl Fn(ChannelSignal) + Clone + Send + Sync + 'static {
        let events = self.events.clone();
        let peer = self.id;
        move |signal| {
            let _ = events.send(PeerEvent {
                peer,
                generation,
                event: PeerSignal::Channel(signal),
            });
        }
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
            if matches!(event, Event::NegotiationNeeded) && self.caps_pending > 0 {
                self.offer_waits_for_caps = true;
                continue;
            }
            let event = self.translate_for_machine(event);
            for action in self.machine.on(event) {
                if let Some(follow_up) = self.perform(action, &mut outgoing) {
                    pending.push(follow_up);
                }
            }
        }
        outgoing
    }

    /// Whether every published source has a transceiver that a completed exchange made send.
    fn sending_negotiated(&self) -> bool {
        let Some(branch) = &self.branch else {
            return false;
        };
        branch.sending.len() >= self.published.len()
            && branch.sending.iter().all(|t| {
                use gst_webrtc::WebRTCRTPTransceiverDirection as D;
                let mid = t.property::<Option<String>>("mid");
                let direction = t.property::<D>("current-direction");
                mid.is_some() && matches!(direction, D::Sendrecv | D::Sendonly)
            })
    }

    /// Whether the session carries everything this webrtcbin sends: every published source,
    /// sending, and a data section when it has channels to open. An answer cannot add a data
    /// section the remote's offer left out, so after such an exchange only our offer brings our
    /// channels (seen in the churn benchmark under CPU load: a joiner that published video
    /// offered first, and the older endpoint's broadcast channel never opened to it).
    fn everything_negotiated(&self) -> bool {
        let Some(branch) = &self.branch else {
            return false;
        };
        let data_negotiated = || {
            branch
                .webrtcbin
                .property::<Option<gst_webrtc::WebRTCSessionDescription>>(
                    "current-local-description",
                )
                .and_then(|d| d.sdp().as_text().ok())
                .is_some_and(|sdp| sdp.contains("\nm=application"))
        };
        self.sending_negotiated() && (!branch.data_section || data_negotiated())
    }

    /// A sending branch's caps reached webrtcbin: normally a reason to offer. Not when an
    /// exchange has already put every published source into the session, sending: that offer
    /// would change nothing, and toward a newcomer it lands just when the browser offers again
    /// (an rtcpool page opens its channel once the first exchange is done). Chromium, polite,
    /// then rolls its offer back, takes ours and fails its answer: "Failed to setup RTCP mux"
    /// (measured in the churn trial under CPU load). Caps that arrive during an exchange wait
    /// for its end, which tells whether it carried them.
    ///
    /// A fresh webrtcbin offers only once every sending branch's caps are in: an offer created
    /// while one sink pad had none yet got its m-line from queried caps, the answer was then
    /// applied to the wrong transceiver, and the next offer aborted the process (webrtcbin
    /// 1.22: assertion `trans->mline == -1 || trans->mline == media_idx` in
    /// `sdp_media_from_transceiver`; seen with a camera's audio and video and a browser that
    /// joined after it).
    pub fn caps_arrived(&mut self) -> Vec<Outgoing> {
        if self.caps_pending > 0 {
            self.caps_pending -= 1;
            if self.caps_pending > 0 {
                return Vec::new();
            }
            if self.offer_waits_for_caps {
                return self.make_waiting_offer();
            }
        }
        match self
            .machine
            .phase()
            .on_sending_caps(self.everything_negotiated())
        {
            CapsStep::Nothing => {
                tracing::debug!(peer = %self.id, "caps arrived for media already negotiated: no offer");
                Vec::new()
            }
            CapsStep::DecideAfterExchange => {
                self.caps_during_exchange = true;
                Vec::new()
            }
            CapsStep::Offer => self.handle(Event::NegotiationNeeded),
        }
    }

    /// What webrtcbin generated, in the session's numbering the machine and the remote use
    /// (see [`sdp_map`]). A fresh webrtcbin that continues a session maps its sections from
    /// each offer it creates until it is given a description.
    fn translate_for_machine(&mut self, event: Event) -> Event {
        let Some(branch) = &mut self.branch else {
            return event;
        };
        match event {
            Event::OfferCreated { sdp } => {
                if !branch.map_fixed && !branch.layout.is_empty() {
                    let (map, missing) = SectionMap::matching(&sdp, &branch.layout);
                    if !missing.is_empty() {
                        // The machine retries an offer that leaves session sections out.
                        tracing::debug!(peer = %self.id, ?missing, "the fresh webrtcbin's offer lacks session sections");
                    }
                    branch.map = map;
                }
                Event::OfferCreated {
                    sdp: branch.map.to_wire(&sdp),
                }
            }
            Event::AnswerCreated { sdp } => Event::AnswerCreated {
                sdp: branch.map.to_wire(&sdp),
            },
            Event::LocalCandidate(Some(c)) => {
                let mline = c.sdp_mline_index.unwrap_or(0);
                Event::LocalCandidate(Some(branch.map.candidate_to_wire(mline, c.candidate)))
            }
            other => other,
        }
    }

    /// Performs one action. Returns an event to feed back at once (a rebuild completes
    /// synchronously).
    fn perform(&mut self, action: Action, outgoing: &mut Vec<Outgoing>) -> Option<Event> {
        tracing::trace!(peer = %self.id, ?action, "negotiation action");
        if let (Action::SetLocalDescription(_) | Action::SetRemoteDescription(_), Some(branch)) =
            (&action, &mut self.branch)
        {
            if !branch.map_fixed {
                branch.map_fixed = true;
                if matches!(action, Action::SetRemoteDescription(_)) {
                    // A remote offer applied first: webrtcbin takes the remote's numbering.
                    branch.map = SectionMap::default();
                }
                tracing::debug!(peer = %self.id, map = ?branch.map, "section map settled");
            }
        }
        let Some(branch) = &self.branch else {
            return None;
        };
        let map = branch.map.clone();
        let webrtcbin = branch.webrtcbin.clone();
        let generation = branch.generation;
        match action {
            Action::CreateOffer | Action::RestartIce => {
                let options = (action == Action::RestartIce).then(|| {
                    gst::Structure::builder("options")
                        .field("ice-restart", true)
                        .build()
                });
                let fingerprint = branch.fingerprint.clone();
                let promise = self.promise(generation, move |reply| {
                    match description_in(reply, "offer") {
                        Ok(sdp) => Event::OfferCreated {
                            sdp: super::sdp::with_fingerprint(&sdp, &fingerprint),
                        },
                        Err(error) => Event::OfferFailed { error },
                    }
                });
                webrtcbin.emit_by_name::<()>("create-offer", &[&options, &promise]);
            }
            Action::CreateAnswer => {
                let fingerprint = branch.fingerprint.clone();
                let promise = self.promise(generation, move |reply| {
                    match description_in(reply, "answer") {
                        Ok(sdp) => Event::AnswerCreated {
                            sdp: super::sdp::with_fingerprint(&sdp, &fingerprint),
                        },
                        Err(error) => Event::AnswerFailed { error },
                    }
                });
                webrtcbin.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
            }
            Action::SetLocalDescription(desc) => match to_gst(&SessionDescription {
                kind: desc.kind,
                sdp: map.to_bin(&desc.sdp),
            }) {
                Ok(d) => {
                    let promise = self.promise(generation, |reply| match error_in(reply) {
                        None => Event::LocalDescriptionSet,
                        Some(error) => Event::LocalDescriptionFailed { error },
                    });
                    webrtcbin.emit_by_name::<()>("set-local-description", &[&d, &promise]);
                }
                Err(error) => return Some(Event::LocalDescriptionFailed { error }),
            },
            Action::SetRemoteDescription(desc) => match to_gst(&SessionDescription {
                kind: desc.kind,
                sdp: map.to_bin(&desc.sdp),
            }) {
                Ok(d) => {
                    // The remote's data section must stay in our later offers. webrtcbin 1.22
                    // leaves it out when only the remote opened channels (measured: 25 offers
                    // in a row without it), and Chromium refuses an offer that drops a section.
                    if desc.sdp.contains("\nm=application") {
                        if let Some(branch) = self.branch.as_mut().filter(|b| !b.data_section) {
                            branch.data_section = add_session_channel(&webrtcbin);
                        }
                    }
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
                let mline = map.candidate_to_bin(&c);
                webrtcbin.emit_by_name::<()>("add-ice-candidate", &[&mline, &c.candidate]);
            }
            // webrtcbin 1.22 has no use for the end-of-candidates marker.
            Action::AddRemoteCandidate(None) => {}
            Action::SendSdp(mut desc) => {
                // Only the copy the browser sees: webrtcbin keeps its own name for the section
                // and accepts the browser's answer under the new one (measured).
                if desc.kind == SdpType::Offer {
                    desc.sdp = super::sdp::number_new_data_section(&desc.sdp);
                }
                outgoing.push(Outgoing::Sdp(desc));
            }
            Action::SendCandidate(c) => outgoing.push(Outgoing::Candidate(c)),
            Action::Rebuild { reason } => {
                tracing::info!(peer = %self.id, ?reason, "rebuilding the peer connection");
                // A fresh webrtcbin that will offer continues the session: it needs a section
                // for each of the session's (see `sdp_map`).
                let layout = match self.machine.negotiated_session() {
                    Some((local, remote)) if self.machine.rebuilding_to_offer() => {
                        sdp_map::layout(local, remote)
                    }
                    _ => Vec::new(),
                };
                self.teardown();
                return match self.build(layout) {
                    Ok(()) => Some(Event::Rebuilt),
                    Err(e) => {
                        tracing::error!(peer = %self.id, "cannot rebuild the peer connection: {e:#}");
                        None
                    }
                };
            }
            Action::RetryOfferLater(delay) => {
                let (events, peer) = (self.events.clone(), self.id);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = events.send(PeerEvent {
                        peer,
                        generation,
                        event: PeerSignal::Negotiation(Event::RetryOffer),
                    });
                });
            }
            Action::Failed { reason } => {
                tracing::warn!(peer = %self.id, "negotiation gave up: {reason}");
                self.teardown();
            }
            Action::Diagnostic(d) => {
                tracing::debug!(peer = %self.id, ?d, "negotiation");
                // webrtcbin 1.22 does not put our sending transceiver into an answer to an
                // offer that arrived before it ever offered, and then never fires
                // negotiation-needed for it: ask for an offer ourselves.
                let unsent = branch.sending.iter().any(|t| t.mid().is_none());
                if let Diagnostic::ExchangeCompleted { offerer, .. } = d {
                    self.link_alternatives(offerer);
                    if mem::take(&mut self.caps_during_exchange) && !self.everything_negotiated() {
                        tracing::debug!(peer = %self.id, "caps arrived during an exchange that left our media or channels out: offering them");
                        return Some(Event::NegotiationNeeded);
                    }
                }
                if let Diagnostic::ExchangeCompleted {
                    offerer: Offerer::Remote,
                    ..
                } = d
                {
                    if unsent {
                        tracing::debug!(peer = %self.id, "our media is not in the answer: offering it");
                        return Some(Event::NegotiationNeeded);
                    }
                }
            }
        }
        None
    }

    /// Feeds each source published in alternative formats from the alternative this peer took
    /// in the exchange just completed (the answer's first format that is one of ours; the last,
    /// most widely decoded one when the answer names none). A change of mind in a later
    /// exchange moves the branch to the other tee.
    fn link_alternatives(&mut self, offerer: Offerer) {
        let Some(branch) = &mut self.branch else {
            return;
        };
        let property = match offerer {
            Offerer::Local => "current-remote-description",
            Offerer::Remote => "current-local-description",
        };
        let answer = branch
            .webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>(property)
            .and_then(|d| d.sdp().as_text().ok());
        let Some(answer) = answer else {
            return;
        };
        for output in &mut branch.outputs {
            if !output.source.has_alternatives() {
                continue;
            }
            let Some(mline) = output
                .transceiver
                .as_ref()
                .map(|t| t.property::<u32>("mlineindex"))
                .filter(|m| *m != u32::MAX)
            else {
                continue; // not in the session yet
            };
            let payloads = output.source.payloads();
            let choice = super::alternative::choose(&answer, mline as usize, &payloads)
                .unwrap_or(payloads.len() - 1);
            if output.alternative == Some(choice) {
                continue;
            }
            tracing::info!(peer = %self.id, publication = %output.source.id(), choice,
                payload = ?payloads[choice], "feeding this peer the alternative it accepted");
            if let Some(old) = output.tee_pad.take() {
                output.source.detach(&old);
            }
            match output.source.attach_to(choice, &output.queue) {
                Ok(pad) => {
                    output.tee_pad = Some(pad);
                    output.alternative = Some(choice);
                }
                Err(e) => {
                    output.alternative = None;
                    tracing::error!(peer = %self.id, "cannot link the accepted alternative: {e:#}");
                }
            }
        }
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

    /// Creates a fresh webrtcbin fed by every published source's tee, and connects its
    /// callbacks. `layout`: the session's sections it must offer (see [`sdp_map`]); it gets a
    /// receive-only transceiver for each one no published source covers, and a data section.
    fn build(&mut self, layout: Vec<WireSection>) -> anyhow::Result<()> {
        // Caps reported by the webrtcbin being replaced no longer count.
        self.caps_during_exchange = false;
        self.offer_waits_for_caps = false;
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
        let fingerprint = give_own_certificate(&webrtcbin)?;
        super::fec_encoder::keep_out(&webrtcbin);
        self.pipeline.add(&webrtcbin)?;
        let gate = Arc::new(Gate::default());
        let mut queues: Vec<SendingBranch> = Vec::new();
        let mut sending = Vec::new();
        for source in &self.published {
            match sending_branch(&self.pipeline, &webrtcbin, source, &gate) {
                Ok(branch) => {
                    sending.extend(branch.transceiver.clone());
                    queues.push(branch);
                }
                Err(e) => {
                    for (branch, source) in queues.iter().zip(&self.published) {
                        if branch.direct {
                            source.release_direct();
                        }
                    }
                    return Err(e);
                }
            }
        }

        let events = self.events.clone();
        let peer = self.id;
        let send = move |event: PeerSignal| {
            let _ = events.send(PeerEvent {
                peer,
                generation,
                event,
            });
        };
        // webrtcbin's own on-negotiation-needed is not used: between two webrtcbins 1.22 it
        // fires again after every completed exchange, so two endpoints renegotiate forever
        // (measured). We know every change that needs an offer (a fresh webrtcbin with media
        // or channels, a new source, a new channel) and ask for it ourselves.
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
        let (s, opens) = (send.clone(), gate.clone());
        webrtcbin.connect_notify(Some("connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            opens.set_open(state == gst_webrtc::WebRTCPeerConnectionState::Connected);
            s(PeerSignal::ConnectionState(state));
        });
        let pipeline = self.pipeline.clone();
        let received = Arc::new(Mutex::new(Some(Vec::new())));
        let (incoming, s) = (received.clone(), send.clone());
        webrtcbin.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let mut incoming = incoming.lock().unwrap_or_else(|p| p.into_inner());
            let Some(incoming) = incoming.as_mut() else {
                return; // torn down meanwhile
            };
            remember_codec(pad);
            let r = track::receive(&pipeline, peer, pad);
            if let Some(t) = &r.track {
                tracing::info!(%peer, kind = %t.kind, codec = %t.codec, "incoming track");
                s(PeerSignal::TrackAdded(t.clone()));
            }
            incoming.push(r);
        });
        // Channels the remote opens: watched like ours, and announced at once when they are
        // already open (webrtcbin emits this once the channel's open message arrived).
        let channels = Arc::new(Mutex::new(Vec::new()));
        let (accepted, report) = (channels.clone(), self.reporter(generation));
        let (remember, peer) = (self.events.clone(), self.id);
        webrtcbin.connect("on-data-channel", false, move |values| {
            if let Ok(channel) = values[1].get::<gst_webrtc::WebRTCDataChannel>() {
                let _ = remember.send(PeerEvent {
                    peer,
                    generation,
                    event: PeerSignal::RemoteChannel(datachannel::spec_of(&channel)),
                });
                // Listed before it is announced: a send made on the strength of the `Open`
                // event must find the channel.
                accepted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(channel.clone());
                datachannel::watch(&channel, report.clone());
                if datachannel::is_open(&channel) {
                    let label = channel.label().map(|l| l.to_string()).unwrap_or_default();
                    report(ChannelSignal::Open { label });
                }
            }
            None
        });

        // Downstream first, the tee link last: a buffer pushed into a branch that is not running
        // yet returns FLUSHING, which a tee with one branch passes up and the source then
        // stops for good (seen as a peer that never gets a frame).
        webrtcbin.sync_state_with_parent()?;
        let mut outputs = Vec::new();
        for (branch, source) in queues.into_iter().zip(&self.published) {
            outputs.push(self.start_output(source.clone(), branch, generation)?);
        }
        self.caps_pending = outputs.iter().filter(|o| o.tee_pad.is_some()).count();
        if self.caps_pending > 0 {
            let send = send.clone();
            tokio::spawn(async move {
                tokio::time::sleep(CAPS_LIMIT).await;
                send(PeerSignal::CapsOverdue);
            });
        }
        let to_open = self.channels_to_open();
        for spec in &to_open {
            open_channel(&webrtcbin, spec, &channels, self.reporter(generation));
        }
        let has_channels = !to_open.is_empty();
        let session_channel = continue_session(&webrtcbin, &layout, &self.published, has_channels);
        let data_section = has_channels || session_channel;
        // With media, each sending branch asks (see `start_output`); with channels only, ask now.
        if self.published.is_empty() && has_channels {
            send(PeerSignal::Negotiation(Event::NegotiationNeeded));
        }
        self.branch = Some(Branch {
            webrtcbin,
            outputs,
            generation,
            channels,
            received,
            sending,
            fingerprint,
            gate,
            layout,
            map: SectionMap::default(),
            map_fixed: false,
            data_section,
        });
        Ok(())
    }

    /// Removes the webrtcbin and its branch from the pipeline.
    fn teardown(&mut self) {
        let Some(branch) = self.branch.take() else {
            return;
        };
        for output in &branch.outputs {
            output.detach(&self.pipeline);
        }
        // Out of the pipeline first, so a hang in its teardown cannot hold the pipeline.
        let _ = self.pipeline.remove(&branch.webrtcbin);
        super::media::stop_element(branch.webrtcbin.clone(), TEARDOWN_LIMIT);
        let received = branch
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        for r in &received {
            if let Some(t) = &r.track {
                // Generation 0: delivered even though this webrtcbin is gone.
                let _ = self.events.send(PeerEvent {
                    peer: self.id,
                    generation: 0,
                    event: PeerSignal::TrackRemoved(t.id.clone()),
                });
            }
            track::remove(&self.pipeline, r);
        }
    }

    /// Starts sending `source` to this peer (now, and after every rebuild). Adding a
    /// transceiver makes webrtcbin ask for a negotiation, which the machine runs as usual.
    pub fn publish(&mut self, source: Published) -> anyhow::Result<()> {
        self.published.push(source.clone());
        let Some(generation) = self.branch.as_ref().map(|b| b.generation) else {
            return Ok(());
        };
        let branch = self.branch.as_mut().expect("checked above");
        let sending = sending_branch(&self.pipeline, &branch.webrtcbin, &source, &branch.gate)?;
        branch.sending.extend(sending.transceiver.clone());
        let output = self.start_output(source, sending, generation)?;
        let branch = self.branch.as_mut().expect("checked above");
        branch.outputs.push(output);
        Ok(())
    }

    /// Starts `queue` (a sending branch of webrtcbin `generation`) and feeds it `source`. A
    /// plain source is linked to its tee now, and the branch asks for an offer once its caps
    /// reach webrtcbin. A source in alternative formats is linked once an exchange says which
    /// one this peer takes (`link_alternatives`), so it asks at once: its codec preferences
    /// make that offer.
    fn start_output(
        &self,
        source: Published,
        branch: SendingBranch,
        generation: u64,
    ) -> anyhow::Result<Output> {
        let SendingBranch {
            queue,
            direct,
            transceiver,
        } = branch;
        if let Err(e) = queue.sync_state_with_parent() {
            if direct {
                source.release_direct();
            }
            return Err(e.into());
        }
        let tee_pad = if source.has_alternatives() {
            self.ask_for_offer(generation);
            None
        } else {
            self.ask_when_caps_arrive(&queue, direct, generation);
            Some(source.attach(&queue)?)
        };
        Ok(Output {
            source,
            queue,
            direct,
            tee_pad,
            alternative: None,
            transceiver,
        })
    }

    /// The caps limit passed with some sending branch's caps still missing (a source that
    /// stalled): offer without them rather than never; their caps, when they come, ask again.
    pub fn caps_overdue(&mut self) -> Vec<Outgoing> {
        if self.caps_pending == 0 {
            return Vec::new();
        }
        tracing::warn!(peer = %self.id, missing = self.caps_pending,
            "a published source brought no caps to this peer in time: offering without it");
        self.caps_pending = 0;
        self.make_waiting_offer()
    }

    /// Makes the offer that waited for caps, if one did.
    fn make_waiting_offer(&mut self) -> Vec<Outgoing> {
        if mem::take(&mut self.offer_waits_for_caps) {
            self.handle(Event::NegotiationNeeded)
        } else {
            Vec::new()
        }
    }

    /// Stops sending a source to this peer. Its transceiver stays in the session, idle, until
    /// the peer connection is next rebuilt: webrtcbin 1.22 cannot remove a transceiver.
    pub fn unpublish(&mut self, id: super::media::PublicationId) {
        self.published.retain(|p| p.id() != id);
        let Some(branch) = &mut self.branch else {
            return;
        };
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut branch.outputs)
            .into_iter()
            .partition(|o| o.source.id() == id);
        branch.outputs = kept;
        for output in &gone {
            output.detach(&self.pipeline);
        }
    }

    /// What the machine knows now, and webrtcbin's `get-stats` reply to come (none while
    /// there is no webrtcbin).
    pub fn stats(
        &self,
    ) -> (
        super::stats::PeerStats,
        Option<tokio::sync::oneshot::Receiver<gst::Structure>>,
    ) {
        let base = super::stats::PeerStats {
            peer: Some(self.id),
            state: super::member::connection_state_name(self.state).to_string(),
            negotiation: format!("{:?}", self.machine.phase()),
            settled: self.machine.is_settled(),
            exchanges: self.machine.completed_exchanges(),
            rebuilds: self.machine.rebuilds(),
            ..Default::default()
        };
        let Some(branch) = &self.branch else {
            return (base, None);
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Mutex::new(Some(tx));
        let promise = gst::Promise::with_change_func(move |reply| {
            if let (Ok(Some(report)), Some(tx)) = (reply, tx.lock().ok().and_then(|mut t| t.take()))
            {
                let _ = tx.send(report.to_owned());
            }
        });
        branch
            .webrtcbin
            .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        (base, Some(rx))
    }

    /// The tracks the peer is sending now.
    pub fn tracks(&self) -> Vec<Track> {
        let Some(branch) = &self.branch else {
            return Vec::new();
        };
        let received = branch.received.lock().unwrap_or_else(|p| p.into_inner());
        received
            .iter()
            .flatten()
            .filter_map(|r| r.track.clone())
            .collect()
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Gives the transceiver of an incoming stream the codec it carries. webrtcbin 1.22 creates a
/// receive-only transceiver for each m-line a remote offer adds, with no codec of its own; a
/// later offer of ours then fails with "Could not reuse transceiver" (measured with a browser
/// that offered camera and microphone first).
fn remember_codec(pad: &gst::Pad) {
    let Some(transceiver) = pad.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
    else {
        return;
    };
    if transceiver
        .property::<Option<gst::Caps>>("codec-preferences")
        .is_some()
    {
        return;
    }
    let Some(caps) = pad.current_caps() else {
        return;
    };
    let Some(s) = caps.structure(0) else {
        return;
    };
    let mut preference = gst::Structure::builder("application/x-rtp");
    for field in [
        "media",
        "encoding-name",
        "payload",
        "clock-rate",
        "encoding-params",
    ] {
        if let Ok(value) = s.value(field) {
            preference = preference.field(field, value.clone());
        }
    }
    let caps = gst::Caps::builder_full()
        .structure(preference.build())
        .build();
    transceiver.set_property("codec-preferences", &caps);
}

/// Gives a fresh webrtcbin what it needs to offer every section of the session in `layout`:
/// a receive-only transceiver (with the remote's codec and payload type) for each audio/video
/// section that no published source of that kind covers, and a data section (a negotiated
/// channel the remote never hears of) when the session has one and we open no channel.
/// Returns whether it gave the webrtcbin that data section.
fn continue_session(
    webrtcbin: &gst::Element,
    layout: &[WireSection],
    published: &[Published],
    has_channels: bool,
) -> bool {
    let mut data_section = false;
    let mut unclaimed: Vec<String> = published
        .iter()
        .filter_map(|p| {
            let caps = p.caps()?;
            caps.structure(0)?.get::<String>("media").ok()
        })
        .collect();
    for section in layout {
        if section.is_data() {
            if !has_channels {
                data_section = add_session_channel(webrtcbin);
            }
            continue;
        }
        if section.ours {
            if let Some(i) = unclaimed.iter().position(|k| *k == section.kind) {
                unclaimed.remove(i);
                continue;
            }
        }
        let Some(codec) = &section.codec else {
            tracing::warn!(mid = %section.mid, "a session section without a codec is left out");
            continue;
        };
        let mut caps = gst::Structure::builder("application/x-rtp")
            .field("media", section.kind.as_str())
            .field("encoding-name", codec.name.to_uppercase())
            .field("payload", i32::from(codec.payload))
            .field("clock-rate", codec.clock_rate as i32);
        if let Some(channels) = codec.channels {
            caps = caps.field("encoding-params", channels.to_string());
        }
        let caps = gst::Caps::builder_full().structure(caps.build()).build();
        let _ = webrtcbin.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
            "add-transceiver",
            &[&gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly, &caps],
        );
    }
    data_section
}

/// Creates the negotiated channel that makes webrtcbin offer a data section (a channel the
/// remote never hears of and nobody sends on). Returns false when webrtcbin cannot take it yet:
/// once an SCTP transport exists, webrtcbin refuses ids above its stream count, which is 0 until
/// the association is up; the next remote description tries again.
fn add_session_channel(webrtcbin: &gst::Element) -> bool {
    let max_channels = webrtcbin
        .property::<Option<gst::glib::Object>>("sctp-transport")
        .map(|t| t.property::<u32>("max-channels"));
    let id = match max_channels {
        None => SESSION_CHANNEL_ID,
        Some(0) => {
            tracing::debug!("no session channel before the SCTP association is up");
            return false;
        }
        Some(max) => SESSION_CHANNEL_ID.min(i32::try_from(max).unwrap_or(i32::MAX)),
    };
    let options = gst::Structure::builder("config")
        .field("negotiated", true)
        .field("id", id)
        .build();
    let channel = webrtcbin.emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>(
        "create-data-channel",
        &[&"poolgate-session", &options],
    );
    if channel.is_none() {
        tracing::warn!(id, "webrtcbin refused the session's data section");
    }
    channel.is_some()
}

/// The SCTP stream of the negotiated channel that gives a fresh webrtcbin its data section
/// (see [`continue_session`]): high, out of the way of channels either end opens (lowered to
/// the association's stream count once that is known).
const SESSION_CHANNEL_ID: i32 = 1000;

/// A peer's branch for one published source, before it is linked to the source.
struct SendingBranch {
    queue: gst::Element,
    /// It holds one of the source's direct slots (see [`super::gate`]).
    direct: bool,
    transceiver: Option<gst_webrtc::WebRTCRTPTransceiver>,
}

/// Builds a peer's branch for `source` into webrtcbin: direct (behind `gate`) while the source
/// has a direct slot free, queued otherwise.
fn sending_branch(
    pipeline: &gst::Pipeline,
    webrtcbin: &gst::Element,
    source: &Published,
    gate: &Arc<Gate>,
) -> anyhow::Result<SendingBranch> {
    let direct = source.take_direct();
    let built = sending_branch_of(pipeline, webrtcbin, source, direct.then_some(gate));
    if built.is_err() && direct {
        source.release_direct();
    }
    built.map(|(queue, transceiver)| SendingBranch {
        queue,
        direct,
        transceiver,
    })
}

/// A peer branch ([`super::fuse::peer_branch`]; behind `gate` if given) for `source`, feeding a
/// new webrtcbin sink pad (a new transceiver, set to send).
///
/// The transceiver of a source in alternative formats gets all of them as its codec
/// preferences: webrtcbin then offers them in one media section, in order (measured: one
/// m-line with both payload types). Its sink pad gets no caps before the exchange (see
/// [`PeerConnection::link_alternatives`]): webrtcbin builds an offer from the preferences
/// intersected with the caps the pad received, which would leave one format (read in
/// webrtcbin's source, not measured here).
fn sending_branch_of(
    pipeline: &gst::Pipeline,
    webrtcbin: &gst::Element,
    source: &Published,
    gate: Option<&Arc<Gate>>,
) -> anyhow::Result<(gst::Element, Option<gst_webrtc::WebRTCRTPTransceiver>)> {
    let name = format!("{}-send{}", webrtcbin.name(), webrtcbin.num_sink_pads());
    let queue: gst::Element = super::fuse::peer_branch(&name, gate)?.upcast();
    pipeline.add(&queue)?;
    let sink = webrtcbin
        .request_pad_simple("sink_%u")
        .ok_or_else(|| anyhow::anyhow!("webrtcbin gave no sink pad"))?;
    queue.static_pad("src").unwrap().link(&sink)?;
    let transceiver = sink.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver");
    if let Some(t) = &transceiver {
        t.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv,
        );
        if source.has_alternatives() {
            t.set_property("codec-preferences", source.preferences());
        }
    }
    Ok((queue, transceiver))
}

fn open_channel(
    webrtcbin: &gst::Element,
    spec: &ChannelSpec,
    channels: &Mutex<Vec<gst_webrtc::WebRTCDataChannel>>,
    report: impl Fn(ChannelSignal) + Clone + Send + Sync + 'static,
) {
    match datachannel::create(webrtcbin, spec) {
        Some(channel) => {
            datachannel::watch(&channel, report);
            channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(channel);
        }
        None => tracing::warn!(label = %spec.label, "webrtcbin refused to create a data channel"),
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

/// Gives `webrtcbin`'s DTLS transport a certificate of its own (see [`super::certificate`])
/// and returns its fingerprint, which the descriptions webrtcbin creates must carry. webrtcbin
/// makes its transport's DTLS elements while negotiating; the decoder holds the certificate
/// and is added to the bin before anything starts, so setting it there replaces the
/// process-wide default before the encoder takes the connection.
fn give_own_certificate(webrtcbin: &gst::Element) -> anyhow::Result<String> {
    let certificate =
        super::certificate::Certificate::fresh().context("cannot make a DTLS certificate")?;
    let pem = certificate.pem;
    let bin = webrtcbin
        .downcast_ref::<gst::Bin>()
        .context("webrtcbin is not a bin")?;
    bin.connect_deep_element_added(move |_, _, element| {
        let is_decoder = element.factory().is_some_and(|f| f.name() == "dtlssrtpdec");
        if is_decoder {
            element.set_property("pem", &pem);
        }
    });
    Ok(certificate.fingerprint)
}
