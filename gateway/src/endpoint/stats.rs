//! Per-peer figures: what the negotiation machine knows (state, exchanges, rebuilds) plus
//! webrtcbin's `get-stats` (bytes, packets, round-trip time), for operators and metrics.

use gstreamer as gst;
use gstreamer_webrtc as gst_webrtc;
use serde::Serialize;

use crate::signalling::EndpointId;

/// One peer connection's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PeerStats {
    /// The remote endpoint.
    pub peer: Option<EndpointId>,
    /// The peer connection state (`new`, `connecting`, `connected`, `failed`, ...).
    pub state: String,
    /// Where the offer/answer machine is (`Stable`, `HaveLocalOffer`, `Rebuilding`, ...).
    pub negotiation: String,
    /// Stable with nothing queued: no exchange is under way or waiting.
    pub settled: bool,
    /// Offer/answer exchanges completed, both directions.
    pub exchanges: u64,
    /// webrtcbins replaced (collisions as the polite side, ICE restarts, failures).
    pub rebuilds: u64,
    /// RTP bytes sent to the peer, all streams.
    pub bytes_sent: u64,
    /// RTP packets sent to the peer, all streams.
    pub packets_sent: u64,
    /// RTP bytes received from the peer, all streams.
    pub bytes_received: u64,
    /// RTP packets received from the peer, all streams.
    pub packets_received: u64,
    /// The latest round-trip time the peer's receiver reports (RTCP), in seconds.
    pub round_trip_time: Option<f64>,
}

impl PeerStats {
    /// Adds what a webrtcbin `get-stats` reply holds: one structure per stats object.
    pub fn add_webrtcbin_report(&mut self, report: &gst::StructureRef) {
        use gst_webrtc::WebRTCStatsType as T;
        for (_, value) in report.iter() {
            let Ok(s) = value.get::<gst::Structure>() else {
                continue;
            };
            match s.get::<T>("type") {
                Ok(T::OutboundRtp) => {
                    self.bytes_sent += number(&s, "bytes-sent");
                    self.packets_sent += number(&s, "packets-sent");
                }
                Ok(T::InboundRtp) => {
                    self.bytes_received += number(&s, "bytes-received");
                    self.packets_received += number(&s, "packets-received");
                }
                Ok(T::RemoteInboundRtp) => {
                    if let Ok(rtt) = s.get::<f64>("round-trip-time") {
                        self.round_trip_time =
                            Some(self.round_trip_time.map_or(rtt, |r: f64| r.max(rtt)));
                    }
                }
                _ => {}
            }
        }
    }
}

/// A counter field, whichever integer type this GStreamer version gives it.
fn number(s: &gst::StructureRef, field: &str) -> u64 {
    s.get::<u64>(field)
        .or_else(|_| s.get::<u32>(field).map(u64::from))
        .or_else(|_| s.get::<i64>(field).map(|v| v.max(0) as u64))
        .or_else(|_| s.get::<i32>(field).map(|v| v.max(0) as u64))
        .unwrap_or(0)
}
