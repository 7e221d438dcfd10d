//! Pieces of `bench-recorder`: cheap senders and the loss check.
//!
//! - [`shared_sender`]: one VP8 and one Opus encoder whose RTP feeds any number of endpoints,
//!   so 25 sending peers cost two encoders, not 25 pairs.
//! - [`loss`]: what a recorded segment lacks: frames missing between its timestamps.

pub mod loss;
pub mod shared_sender;
