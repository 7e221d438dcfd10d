//! The ssp v2 pool server.
//!
//! - [`protocol`], [`registry`], [`pool`], [`endpoint`]: the sans-IO core. Plain types and a
//!   state machine (`Registry`), no sockets, no async.
//! - [`server`]: the core shared by every connection on tokio, and the library API the rest of
//!   poolgate uses (list pools, set descriptions, force-close, in-process join).
//! - [`ws`], [`socketio`]: the two transports, adapters from sockets to the server.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod output;
pub mod pool;
pub mod protocol;
pub mod registry;
pub mod settings;
pub mod stats;

pub use endpoint::EndpointId;
pub use error::{OperatorError, ProtocolError, Refusal, SignallingError};
pub use output::{LeaveReason, Notice, Output};
pub use protocol::{ClientMessage, ServerMessage};
pub use registry::{EndpointInfo, PoolInfo, Registry};
pub use settings::{Limits, PoolMode};
pub use stats::SignallingStats;
pub mod server;
pub mod socketio;
pub mod ws;

pub use client::{Signaller, SignallingTarget};
pub use server::{Connection, Delivery, PoolServer};
pub use settings::Keepalive;
