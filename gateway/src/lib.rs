//! poolgate: a plugin-based WebRTC media gateway that hosts and joins rtcpool pools.

pub mod admin;
pub mod bridge;
pub mod config;
pub mod endpoint;
pub mod gateway;
pub mod http;
pub mod plugin;
pub mod signalling;

pub use config::Config;
pub use gateway::Gateway;
