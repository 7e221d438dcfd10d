//! [`Endpoint`]: poolgate as a member of a pool. It joins over signalling (hosted or remote),
//! keeps one [`PeerConnection`] per remote endpoint in one GStreamer pipeline, publishes its
//! media to all of them, and reports what happens as [`EndpointEvent`]s.
//!
//! One pipeline per endpoint, not per peer: the published media is encoded once and reaches
//! the peers through a `tee`, each peer's branch behind a fuse (and a gate or a leaky queue; see
//! [`super::gate`]), so a slow or failing peer loses its own buffers without stalling the
//! encoder or the others.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::datachannel::{ChannelSignal, ChannelSpec, Payload};
use super::media::{MediaSource, PublicationId, Published};
use super::negotiation::Event;
use super::peer::{Outgoing, PeerConnection, PeerEvent, PeerSignal};
use super::stats::PeerStats;
use super::track::Track;
use crate::config::IceServer;
use crate::signalling::{ClientMessage, EndpointId, ServerMessage, Signaller, SignallingTarget};

/// How long a source published at run time may take to produce its first caps.
pub const PUBLISH_CAPS_LIMIT: Duration = Duration::from_secs(10);

/// How to join and what to send.
#[derive(Clone, Debug)]
pub struct EndpointOptions {
    /// The pool server: this process's own, or another by URL.
    pub target: SignallingTarget,
    /// The pool to join.
    pub pool: String,
    /// STUN/TURN servers for the peer connections.
    pub ice_servers: Vec<IceServer>,
    /// The only local addresses host candidates may use (empty: every address libnice finds,
    /// which excludes loopback).
    pub ice_local_addresses: Vec<std::net::IpAddr>,
    /// What to send to every peer, each encoded once (empty: receive only).
    pub media: Vec<MediaSource>,
}

/// What a consumer of the endpoint can follow.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointEvent {
    /// Joined the pool (again, after a reconnect: with a new id).
    Joined {
        /// Our id in the pool (`client_id`).
        id: EndpointId,
        /// The pool joined.
        pool: String,
        /// The members already there; we are polite toward each of them.
        peers: Vec<EndpointId>,
    },
    /// A member joined after us (or was there when we joined): a peer connection to it starts.
    PeerJoined {
        /// The member.
        id: EndpointId,
        /// Its trusted description, when the server sent one.
        description: Option<Value>,
    },
    /// A member left; its peer connection and everything it added are gone.
    PeerLeft {
        /// The member.
        id: EndpointId,
    },
    /// The operator changed a member's description (`rtc:describe`).
    DescriptionChanged {
        /// The member.
        id: EndpointId,
        /// The new description, or `None` when cleared.
        description: Option<Value>,
    },
    /// A peer connection's state, as webrtcbin reports it (`connected`, `failed`, ...).
    PeerState {
        /// The member.
        id: EndpointId,
        /// `new`, `connecting`, `connected`, `disconnected`, `failed` or `closed`.
        state: String,
    },
    /// A peer started sending a track: link to `track.source` in [`Endpoint::pipeline`].
    TrackAdded(Track),
    /// A track is gone (its peer left, or its peer connection was rebuilt): unlink from it.
    TrackRemoved {
        /// The member that sent it.
        peer: EndpointId,
        /// The [`Track::id`] given in `TrackAdded`.
        id: String,
    },
    /// A data channel (ours or the peer's) opened.
    ChannelOpen {
        /// The member at the other end.
        peer: EndpointId,
        /// The channel's label.
        label: String,
    },
    /// A data channel closed.
    ChannelClosed {
        /// The member at the other end.
        peer: EndpointId,
        /// The channel's label.
        label: String,
    },
    /// A message on a data channel.
    Message {
        /// The member that sent it.
        peer: EndpointId,
        /// The channel's label.
        label: String,
        /// Text or bytes, as sent.
        payload: Payload,
    },
    /// The endpoint has ended (`rtc:stop`, or asked to stop).
    Stopped {
        /// Why, in words for an operator.
        reason: String,
    },
}

/// Whom a data channel is opened to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelTarget {
    /// Every current peer and every later one.
    All,
    /// One peer.
    Peer(EndpointId),
}

enum Command {
    CreateChannel(ChannelSpec, ChannelTarget),
    Publish(MediaSource, oneshot::Sender<anyhow::Result<PublicationId>>),
    /// A source published at run time has caps: feed it to the peers.
    PublicationReady(Published),
    /// A source published at run time produced no caps in time.
    PublicationFailed(Published),
    Unpublish(PublicationId, oneshot::Sender<bool>),
    Renegotiate(Option<EndpointId>),
    RestartIce(Option<EndpointId>),
    Stats(oneshot::Sender<Vec<PeerStats>>),
    Send {
        peer: EndpointId,
        label: String,
        payload: Payload,
        sent: oneshot::Sender<bool>,
    },
    Broadcast {
        label: String,
        payload: Payload,
        sent: oneshot::Sender<usize>,
    },
    DescribeSelf(Value),
}

/// Controls a running endpoint; cheap to clone, usable while another task reads its events.
#[derive(Clone)]
pub struct EndpointHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl EndpointHandle {
    /// Opens a data channel to one peer, or to every current and later peer.
    pub fn create_channel(&self, spec: ChannelSpec, target: ChannelTarget) {
        let _ = self.commands.send(Command::CreateChannel(spec, target));
    }

    /// Sends on an open channel labelled `label` to `peer` (ours or the peer's). False when
    /// there is no such open channel.
    pub async fn send(&self, peer: EndpointId, label: &str, payload: Payload) -> bool {
        let (sent, result) = oneshot::channel();
        let command = Command::Send {
            peer,
            label: label.to_string(),
            payload,
            sent,
        };
        self.commands.send(command).is_ok() && result.await.unwrap_or(false)
    }

    /// Asks a remote pool server to set this endpoint's description, the way `pyrtc`'s test
    /// server accepts it (a `describe` event with the description as data). Sent on the current
    /// signalling session only: call it again after every `Joined`. A hosted pool ignores it
    /// (describe through `PoolServer::set_description`).
    pub fn describe_self(&self, description: Value) {
        let _ = self.commands.send(Command::DescribeSelf(description));
    }

    /// Starts sending `source` to every current and later peer, encoded once. Current peers
    /// get it through a renegotiation, as soon as the source has produced its caps (within
    /// [`PUBLISH_CAPS_LIMIT`], else the source is removed and this fails).
    pub async fn publish(&self, source: MediaSource) -> anyhow::Result<PublicationId> {
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Publish(source, done))
            .map_err(|_| anyhow::anyhow!("the endpoint has stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("the endpoint has stopped"))?
    }

    /// Stops sending a published source and removes it. False if there is no such source.
    pub async fn unpublish(&self, id: PublicationId) -> bool {
        let (done, result) = oneshot::channel();
        self.commands.send(Command::Unpublish(id, done)).is_ok() && result.await.unwrap_or(false)
    }

    /// Starts a fresh offer/answer exchange with one peer, or with every peer, without a media
    /// change (after the remote changed codec preferences, say; tests use it to force
    /// collisions). The exchange follows the usual perfect-negotiation rules.
    pub fn renegotiate(&self, peer: Option<EndpointId>) {
        let _ = self.commands.send(Command::Renegotiate(peer));
    }

    /// Restarts ICE with one peer, or with every peer, as an ICE failure would: new ICE
    /// credentials offered to the peer (on GStreamer 1.22, from a rebuilt webrtcbin that keeps
    /// the session's media sections). A peer without a completed exchange ignores it.
    pub fn restart_ice(&self, peer: Option<EndpointId>) {
        let _ = self.commands.send(Command::RestartIce(peer));
    }

    /// Every peer connection's figures now (negotiation state, bytes, packets, round-trip
    /// time). Empty when the endpoint has stopped.
    pub async fn stats(&self) -> Vec<PeerStats> {
        let (done, result) = oneshot::channel();
        if self.commands.send(Command::Stats(done)).is_err() {
            return Vec::new();
        }
        result.await.unwrap_or_default()
    }

    /// Sends on the open channel labelled `label` of every peer; returns how many got it.
    pub async fn broadcast(&self, label: &str, payload: Payload) -> usize {
        let (sent, result) = oneshot::channel();
        let command = Command::Broadcast {
            label: label.to_string(),
            payload,
            sent,
        };
        if self.commands.send(command).is_err() {
            return 0;
        }
        result.await.unwrap_or(0)
    }
}

/// A running endpoint. Dropping it stops it.
pub struct Endpoint {
    handle: EndpointHandle,
    pipeline: gst::Pipeline,
    events: mpsc::UnboundedReceiver<EndpointEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Builds the pipeline and its published media, then joins the pool in the background.
    pub async fn start(options: EndpointOptions) -> anyhow::Result<Endpoint> {
        gst::init().context("initialising GStreamer")?;
        let pipeline = gst::Pipeline::with_name(&format!("endpoint-{}", options.pool));
        super::bus::drain(&pipeline, &options.pool);
        let published = options
            .media
            .iter()
            .zip(0..)
            .map(|(m, n)| {
                Published::build(&pipeline, PublicationId(n), m)
                    .with_context(|| format!("building the published source {m:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        pipeline
            .set_state(gst::State::Playing)
            .context("starting the endpoint pipeline")?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let runner = Runner {
            next_publication: published.len() as u64,
            options,
            pipeline: pipeline.clone(),
            published,
            peers: HashMap::new(),
            broadcast_channels: Vec::new(),
            events: events_tx,
            commands: command_rx,
            own_commands: commands.clone(),
            media_stopped: false,
        };
        let task = tokio::spawn(runner.run(stopped));
        Ok(Endpoint {
            handle: EndpointHandle { commands },
            pipeline,
            events,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The pipeline incoming tracks live in: consumers add their elements here.
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// A handle for data channels, usable from another task.
    pub fn handle(&self) -> EndpointHandle {
        self.handle.clone()
    }

    /// The next event; `None` after `Stopped`.
    pub async fn next_event(&mut self) -> Option<EndpointEvent> {
        self.events.recv().await
    }

    /// Leaves the pool and tears everything down.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        // The pipeline's last reference goes with `self`; then what it freed can go back.
        drop(self);
        crate::memory::release_after_endpoint_stop();
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Runner {
    options: EndpointOptions,
    pipeline: gst::Pipeline,
    /// Published sources that have caps (those still waiting are not here).
    published: Vec<Published>,
    next_publication: u64,
    peers: HashMap<EndpointId, PeerConnection>,
    /// Channels opened to every peer, later ones included.
    broadcast_channels: Vec<ChannelSpec>,
    events: mpsc::UnboundedSender<EndpointEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// For tasks that report back to the runner (a published source got its caps).
    own_commands: mpsc::UnboundedSender<Command>,
    /// [`Runner::stop_media`] has run.
    media_stopped: bool,
}

impl Drop for Runner {
    /// A runner dropped before `run` finished (its task aborted, or the runtime shut down
    /// right after the endpoint was dropped) still stops its pipeline: GStreamer disposing a
    /// PLAYING pipeline whose streaming threads still run crashed a test process at exit
    /// (SIGSEGV after "Trying to dispose element endpoint-glare2, but it is in PLAYING").
    /// After a finished `run` this does nothing.
    fn drop(&mut self) {
        self.stop_media();
    }
}

/// Why one signalling session ended.
enum SessionEnd {
    Stopped(String),
    ConnectionLost,
}

impl Runner {
    /// Drops every peer and stops the pipeline, once: at the end of `run`, or when the runner
    /// is dropped before (a stop that hung for its 5 s is not waited for twice).
    fn stop_media(&mut self) {
        if std::mem::replace(&mut self.media_stopped, true) {
            return;
        }
        self.peers.clear();
        super::media::stop_element(
            self.pipeline.clone().upcast(),
            std::time::Duration::from_secs(5),
        );
    }

    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let (peer_tx, mut peer_rx) = mpsc::unbounded_channel::<PeerEvent>();
        let mut backoff = Duration::from_millis(250);
        let reason = loop {
            let session = tokio::select! {
                s = Signaller::connect(&self.options.target) => s,
                _ = &mut stopped => break "asked to stop".to_string(),
            };
            let end = match session {
                Ok(mut signaller) => {
                    signaller.send(ClientMessage::Join {
                        pool: self.options.pool.clone(),
                    });
                    let end = self
                        .session(&mut signaller, &peer_tx, &mut peer_rx, &mut stopped)
                        .await;
                    if matches!(end, SessionEnd::ConnectionLost) {
                        backoff = Duration::from_millis(250);
                    }
                    end
                }
                Err(e) => {
                    tracing::warn!(pool = %self.options.pool, "cannot reach the signalling server: {e}");
                    SessionEnd::ConnectionLost
                }
            };
            match end {
                SessionEnd::Stopped(reason) => break reason,
                SessionEnd::ConnectionLost => {
                    // The old id is gone with the connection: drop every peer, rejoin fresh.
                    self.peers.clear();
                    tracing::info!(pool = %self.options.pool, "signalling lost; rejoining in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut stopped => break "asked to stop".to_string(),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        };
        self.stop_media();
        tracing::info!(pool = %self.options.pool, "endpoint stopped: {reason}");
        let _ = self.events.send(EndpointEvent::Stopped { reason });
    }

    async fn session(
        &mut self,
        signaller: &mut Signaller,
        peer_tx: &mpsc::UnboundedSender<PeerEvent>,
        peer_rx: &mut mpsc::UnboundedReceiver<PeerEvent>,
        stopped: &mut oneshot::Receiver<()>,
    ) -> SessionEnd {
        loop {
            tokio::select! {
                message = signaller.recv() => match message {
                    None => return SessionEnd::ConnectionLost,
                    Some(ServerMessage::Stop) => {
                        return SessionEnd::Stopped("the server closed the pool (rtc:stop)".into())
                    }
                    Some(m) => self.on_server(m, signaller, peer_tx),
                },
                Some(event) = peer_rx.recv() => self.on_peer(event, signaller),
                Some(command) = self.commands.recv() => self.on_command(command, signaller),
                _ = &mut *stopped => return SessionEnd::Stopped("asked to stop".into()),
            }
        }
    }

    fn on_server(
        &mut self,
        message: ServerMessage,
        signaller: &Signaller,
        peer_tx: &mpsc::UnboundedSender<PeerEvent>,
    ) {
        match message {
            ServerMessage::Joined {
                client_id,
                pool,
                peers,
                descriptions,
            } => {
                tracing::info!(endpoint = %client_id, %pool, peers = peers.len(), "joined pool");
                let _ = self.events.send(EndpointEvent::Joined {
                    id: client_id,
                    pool,
                    peers: peers.clone(),
                });
                for id in peers {
                    // We joined after them: we are the polite one.
                    self.add_peer(id, true, peer_tx);
                    let description = descriptions.get(&id).cloned().flatten();
                    let _ = self
                        .events
                        .send(EndpointEvent::PeerJoined { id, description });
                }
            }
            ServerMessage::Peer { id } => {
                self.add_peer(id, false, peer_tx);
                let _ = self.events.send(EndpointEvent::PeerJoined {
                    id,
                    description: None,
                });
            }
            ServerMessage::Sdp { peer, description } => {
                self.feed(peer, Event::RemoteSdp(description), signaller)
            }
            ServerMessage::Candidate { from, candidate } => {
                self.feed(from, Event::RemoteCandidate(candidate), signaller)
            }
            ServerMessage::Close { id } => {
                if let Some(peer) = self.peers.remove(&id) {
                    let tracks = peer.tracks();
                    drop(peer);
                    for t in tracks {
                        let _ = self
                            .events
                            .send(EndpointEvent::TrackRemoved { peer: id, id: t.id });
                    }
                    let _ = self.events.send(EndpointEvent::PeerLeft { id });
                }
            }
            ServerMessage::Describe { id, description } => {
                let _ = self
                    .events
                    .send(EndpointEvent::DescriptionChanged { id, description });
            }
            ServerMessage::Error { message, .. } => {
                tracing::warn!(pool = %self.options.pool, "the signalling server refused a message: {message}")
            }
            ServerMessage::Stop => {}
        }
    }

    fn on_command(&mut self, command: Command, signaller: &Signaller) {
        match command {
            Command::Renegotiate(target) => {
                let ids: Vec<EndpointId> = match target {
                    Some(id) => vec![id],
                    None => self.peers.keys().copied().collect(),
                };
                for id in ids {
                    self.feed(id, Event::NegotiationNeeded, signaller);
                }
            }
            Command::RestartIce(target) => {
                let ids: Vec<EndpointId> = match target {
                    Some(id) => vec![id],
                    None => self.peers.keys().copied().collect(),
                };
                for id in ids {
                    self.feed(id, Event::IceRestartRequested, signaller);
                }
            }
            Command::Stats(done) => {
                let pending: Vec<_> = self.peers.values().map(|p| p.stats()).collect();
                // webrtcbin answers on its own thread; a peer that does not answer in time is
                // reported without its RTP figures.
                tokio::spawn(async move {
                    let mut all = Vec::new();
                    for (mut stats, reply) in pending {
                        if let Some(reply) = reply {
                            if let Ok(Ok(report)) =
                                tokio::time::timeout(Duration::from_secs(2), reply).await
                            {
                                stats.add_webrtcbin_report(&report);
                            }
                        }
                        all.push(stats);
                    }
                    let _ = done.send(all);
                });
            }
            Command::DescribeSelf(description) => {
                signaller.send(ClientMessage::Describe { description })
            }
            Command::Publish(source, done) => {
                let id = PublicationId(self.next_publication);
                self.next_publication += 1;
                match Published::build(&self.pipeline, id, &source) {
                    Ok(published) => {
                        let _ = done.send(Ok(id));
                        self.await_caps(published);
                    }
                    Err(e) => {
                        let _ = done.send(Err(e.context("publishing a source")));
                    }
                }
            }
            Command::PublicationReady(published) => {
                tracing::info!(pool = %self.options.pool, publication = %published.id(),
                    caps = ?published.caps(), "publishing a new source to every peer");
                for peer in self.peers.values_mut() {
                    if let Err(e) = peer.publish(published.clone()) {
                        tracing::error!(peer = %peer.id, "cannot send a new source to this peer: {e:#}");
                    }
                }
                self.published.push(published);
            }
            Command::PublicationFailed(published) => {
                tracing::error!(pool = %self.options.pool, publication = %published.id(),
                    "a published source produced no media within {PUBLISH_CAPS_LIMIT:?}; removed it");
                published.remove(&self.pipeline);
            }
            Command::Unpublish(id, done) => {
                let Some(i) = self.published.iter().position(|p| p.id() == id) else {
                    let _ = done.send(false);
                    return;
                };
                let published = self.published.remove(i);
                for peer in self.peers.values_mut() {
                    peer.unpublish(id);
                }
                published.remove(&self.pipeline);
                let _ = done.send(true);
            }
            Command::CreateChannel(spec, ChannelTarget::All) => {
                for peer in self.peers.values_mut() {
                    peer.add_channel(spec.clone());
                }
                self.broadcast_channels.push(spec);
            }
            Command::CreateChannel(spec, ChannelTarget::Peer(id)) => {
                match self.peers.get_mut(&id) {
                    Some(peer) => peer.add_channel(spec),
                    None => {
                        tracing::warn!(peer = %id, label = %spec.label, "no such peer for a data channel")
                    }
                }
            }
            Command::Send {
                peer,
                label,
                payload,
                sent,
            } => {
                let ok = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| p.send(&label, &payload));
                let _ = sent.send(ok);
            }
            Command::Broadcast {
                label,
                payload,
                sent,
            } => {
                let n = self
                    .peers
                    .values()
                    .filter(|p| p.send(&label, &payload))
                    .count();
                let _ = sent.send(n);
            }
        }
    }

    /// Waits (off the runner) for a new source's caps, then hands it back to the runner.
    fn await_caps(&self, published: Published) {
        let commands = self.own_commands.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + PUBLISH_CAPS_LIMIT;
            while published.caps().is_none() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = commands.send(if published.caps().is_some() {
                Command::PublicationReady(published)
            } else {
                Command::PublicationFailed(published)
            });
        });
    }

    fn add_peer(
        &mut self,
        id: EndpointId,
        polite: bool,
        peer_tx: &mpsc::UnboundedSender<PeerEvent>,
    ) {
        match PeerConnection::new(
            id,
            polite,
            self.pipeline.clone(),
            self.published.clone(),
            self.options.ice_servers.clone(),
            self.options.ice_local_addresses.clone(),
            self.broadcast_channels.clone(),
            peer_tx.clone(),
        ) {
            Ok(peer) => {
                self.peers.insert(id, peer);
            }
            Err(e) => tracing::error!(peer = %id, "cannot create a peer connection: {e:#}"),
        }
    }

    fn on_peer(&mut self, event: PeerEvent, signaller: &Signaller) {
        let Some(peer) = self.peers.get_mut(&event.peer) else {
            return;
        };
        // A removed track is reported whatever webrtcbin it came from: it is a rebuild's.
        if let PeerSignal::TrackRemoved(id) = event.event {
            let _ = self.events.send(EndpointEvent::TrackRemoved {
                peer: event.peer,
                id,
            });
            return;
        }
        if peer.generation() != event.generation {
            // From a webrtcbin that was rebuilt away.
            return;
        }
        match event.event {
            PeerSignal::Negotiation(e) => self.feed(event.peer, e, signaller),
            PeerSignal::CapsArrived => {
                let outgoing = peer.caps_arrived();
                self.send_all(event.peer, outgoing, signaller);
            }
            PeerSignal::CapsOverdue => {
                let outgoing = peer.caps_overdue();
                self.send_all(event.peer, outgoing, signaller);
            }
            PeerSignal::RemoteChannel(spec) => peer.remember_remote_channel(spec),
            PeerSignal::Channel(signal) => {
                if let ChannelSignal::Closed { label } = &signal {
                    peer.forget_remote_channel(label);
                }
                let peer = event.peer;
                let _ = self.events.send(match signal {
                    ChannelSignal::Open { label } => EndpointEvent::ChannelOpen { peer, label },
                    ChannelSignal::Closed { label } => EndpointEvent::ChannelClosed { peer, label },
                    ChannelSignal::Message { label, payload } => EndpointEvent::Message {
                        peer,
                        label,
                        payload,
                    },
                });
            }
            PeerSignal::TrackAdded(track) => {
                let _ = self.events.send(EndpointEvent::TrackAdded(track));
            }
            PeerSignal::TrackRemoved(_) => {}
            PeerSignal::ConnectionState(state) => {
                peer.state = state;
                let state = connection_state_name(state);
                tracing::debug!(peer = %event.peer, state, "peer connection state");
                let _ = self.events.send(EndpointEvent::PeerState {
                    id: event.peer,
                    state: state.to_string(),
                });
            }
        }
    }

    fn feed(&mut self, id: EndpointId, event: Event, signaller: &Signaller) {
        let Some(peer) = self.peers.get_mut(&id) else {
            tracing::debug!(peer = %id, "signalling for an unknown peer ignored");
            return;
        };
        let outgoing = peer.handle(event);
        self.send_all(id, outgoing, signaller);
    }

    fn send_all(&self, id: EndpointId, outgoing: Vec<Outgoing>, signaller: &Signaller) {
        for out in outgoing {
            signaller.send(match out {
                Outgoing::Sdp(description) => ClientMessage::Sdp {
                    to: id,
                    description,
                },
                Outgoing::Candidate(candidate) => ClientMessage::Candidate { to: id, candidate },
            });
        }
    }
}

pub(super) fn connection_state_name(state: gst_webrtc::WebRTCPeerConnectionState) -> &'static str {
    use gst_webrtc::WebRTCPeerConnectionState as S;
    match state {
        S::New => "new",
        S::Connecting => "connecting",
        S::Connected => "connected",
        S::Disconnected => "disconnected",
        S::Failed => "failed",
        S::Closed => "closed",
        _ => "unknown",
    }
}
