//! The Janus WebRTC server (Debian's `janus`, streaming plugin) as a point of comparison for
//! the camera bridge: a config written for one RTSP mountpoint on loopback, the server process,
//! its HTTP API, and a receive-only webrtcbin viewer driven through that API.
//!
//! Janus does ICE, so it must run in the loopback-only namespace like everything else
//! ([`crate::namespace::enter_loopback_only`] before [`server::JanusServer::start`]).

pub mod api;
pub mod config;
pub mod server;
pub mod viewer;
