//! Gateway-added latency measured from outside the server, on the wire: every UDP packet on
//! `lo` is captured with its kernel timestamp ([`capture`]), the server's own UDP ports are
//! read from /proc ([`ports`]), and the RTP frames going into the server (from the camera) are
//! matched with the frames it sends to a viewer ([`frames`]). The server is a black box, so
//! poolgate and Janus are measured the same way.
//!
//! A frame ends with the RTP packet that has the marker bit. RTP headers stay in clear under
//! SRTP, so the outgoing side is readable too. The server re-packetises and re-timestamps, so
//! frames are matched by order, and the order is checked against frame sizes.

pub mod capture;
pub mod frames;
pub mod ports;
