//! A managed pool member: poolgate's own endpoint in a pool, with one GStreamer `webrtcbin`
//! per remote peer.
//!
//! - [`negotiation`]: the pure perfect-negotiation state machine, one per remote peer. Events
//!   from signalling and webrtcbin go in, actions for webrtcbin and signalling come out. Glare,
//!   the no-rollback workaround of GStreamer 1.22 (rebuild the webrtcbin), candidate buffering
//!   and the DTLS role rule all live there, tested without GStreamer.
//! - [`sdp`]: the pure SDP text helpers the machine uses.
//! - [`sdp_map`]: the pure translation between a rebuilt webrtcbin's media sections and the
//!   session's, so that a fresh webrtcbin that offers keeps the session's m-lines and mids.
//! - [`peer`]: one webrtcbin per remote peer; performs the machine's actions on GStreamer and
//!   reports webrtcbin's callbacks back as events (tagged with the webrtcbin's generation, so
//!   a rebuilt-away webrtcbin's late events are dropped).
//! - [`datachannel`]: data channels, ours (recreated on rebuilds) and the remote's.
//! - [`media`]: published media, encoded once and fed to every peer through a tee.
//! - [`fuse`]: each peer's branch off that tee (`queue ! fuse`), which keeps a peer's flow
//!   errors from stopping the source for the others.
//! - [`alternative`]: which format of a track published in alternatives a peer takes (pure).
//! - [`stats`]: per-peer figures (negotiation, bytes, packets, round-trip time).
//! - [`track`]: incoming tracks, depayloaded once and offered to consumers through a tee.
//! - [`member`]: [`Endpoint`], the running pool member: signalling (hosted or remote), peers,
//!   rejoining after a lost connection, events for its consumer.

pub mod alternative;
mod bus;
mod certificate;
pub mod datachannel;
mod fec_encoder;
pub mod fuse;
pub mod gate;
pub mod media;
pub mod member;
pub mod negotiation;
pub mod peer;
pub mod sdp;
pub mod sdp_map;
pub mod stats;
pub mod track;

pub use datachannel::{ChannelSpec, Payload};
pub use media::{MediaSource, PublicationId};
pub use member::{ChannelTarget, Endpoint, EndpointEvent, EndpointHandle, EndpointOptions};
pub use stats::PeerStats;
pub use track::Track;
