//! Into the pool: outlets in the endpoint's pipeline, one per published stream.

pub mod codec;
pub mod outlet;
pub mod profile;
pub mod relay;
pub mod sps;
