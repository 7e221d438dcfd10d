//! The plugin host: loads plugin libraries, checks their contract version before running any of
//! their code, and runs bridge instances through the C ABI of `poolgate_plugin_api::contract`.
//!
//! - [`check`]: the pure version check of a plugin's tag.
//! - [`library`]: opening one library file ([`LoadedPlugin`]).
//! - [`registry`]: [`Plugins`], every plugin of the plugin folder, loaded or refused.
//! - [`instance`]: [`Instance`], one running bridge instance, called safely.
//! - [`host_api`]: the functions a plugin calls back, forwarded to a [`BridgeHost`].

pub mod check;
pub mod host_api;
pub mod instance;
pub mod library;
pub mod registry;

use std::path::PathBuf;

use serde::Deserialize;

pub use check::LoadError;
pub use host_api::BridgeHost;
pub use instance::{Instance, PluginError};
pub use library::LoadedPlugin;
pub use registry::{FindError, PluginInfo, Plugins};

/// `[plugins]`: where plugin libraries are.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Folder of plugin libraries (`*.so`), all loaded at start. Relative to the config file.
    pub dir: Option<PathBuf>,
}
