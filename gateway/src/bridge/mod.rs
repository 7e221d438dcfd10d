//! Bridges: running plugin instances, each one endpoint in one pool.
//!
//! - [`spec`]: a bridge's declaration ([`BridgeSpec`], the `[[bridge]]` config entry and the
//!   admin API's body), checked before anything starts.
//! - [`redact`]: secrets kept out of logs and API output.
//! - [`status`]: what operators see of a bridge ([`BridgeStatus`]).
//! - [`host`]: the host side a bridge instance calls (status, metrics, channels, publishing).
//! - [`runner`]: one bridge's life: endpoint, plugin instance, events, failure and restarts.
//! - [`manager`]: [`Bridges`], every bridge of the gateway: create, update, restart, delete.

pub mod host;
pub mod manager;
pub mod redact;
pub mod runner;
pub mod spec;
pub mod status;

pub use manager::{BridgeError, Bridges};
pub use spec::{BridgeSpec, RestartMode, RestartPolicy};
pub use status::BridgeStatus;
