//! Shared harness for poolgate's integration tests and benchmarks.
//!
//! Everything that does ICE (Chromium, webrtcbin) must run in a network namespace that has only
//! `lo`, so no packet can leave the machine. [`namespace::enter_loopback_only`] re-executes the
//! current program inside such a namespace before any test runs.

pub mod browser;
pub mod decoding;
pub mod endpoint_bench;
pub mod janus;
pub mod mqtt;
pub mod namespace;
pub mod plugins;
pub mod pyrtc;
pub mod recorder_bench;
pub mod recordings;
pub mod rtp_latency;
pub mod rtsp_server;
pub mod scenario;
pub mod signalling_load;
