//! Composite mode: one recording for the whole pool, a grid of every video and a mix of every
//! audio, encoded once (README, "Composite mode").

pub mod grid;
mod mixer;
mod session;

pub use session::CompositeSession;
