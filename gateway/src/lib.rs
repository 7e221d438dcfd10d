//! poolgate: a plugin-based WebRTC media gateway that hosts and joins rtcpool pools.

pub mod admin;
pub mod bridge;
pub mod config;
// Plugins are written against the endpoint: every public item there is documented.
#[warn(missing_docs)]
pub mod endpoint;
pub mod gateway;
pub mod http;
pub mod memory;
pub mod plugin;
pub mod signalling;

pub use config::Config;
pub use gateway::Gateway;
