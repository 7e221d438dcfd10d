//! What operators see of a bridge: [`BridgeStatus`], a snapshot with no secret in it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::spec::BridgeSpec;

/// A bridge as the admin API and logs show it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct BridgeStatus {
    pub name: String,
    /// The `plugin` key, and the loaded plugin's version once found.
    pub plugin: String,
    pub plugin_version: Option<String>,
    pub pool: String,
    /// `hosted`, or the remote signalling URL without credentials.
    pub signalling: String,
    /// `starting`, then what the plugin reports (`connecting`, `live`, `retrying: …`), or
    /// `failed: <reason>`, `restarting in 2s`, `stopped`.
    pub status: String,
    /// The endpoint's id in its pool, once joined.
    pub endpoint: Option<String>,
    /// How many times the bridge was restarted after a failure.
    pub restarts: u32,
    /// The reason of the latest failure (a plugin's panic message, a refused config, ...).
    pub last_failure: Option<String>,
    /// The plugin's metrics.
    pub metrics: BTreeMap<String, f64>,
    #[schema(value_type = Option<Object>)]
    pub description: Option<Value>,
    /// The plugin config with secrets masked.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// A bridge's live state, shared by its runner and the manager.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub status: String,
    pub plugin_version: Option<String>,
    pub endpoint: Option<String>,
    pub restarts: u32,
    pub last_failure: Option<String>,
    pub metrics: BTreeMap<String, f64>,
}

impl Live {
    /// The snapshot of a bridge in this state.
    pub fn snapshot(&self, spec: &BridgeSpec) -> BridgeStatus {
        BridgeStatus {
            name: spec.name.clone(),
            plugin: spec.plugin.clone(),
            plugin_version: self.plugin_version.clone(),
            pool: spec.pool.clone(),
            signalling: spec.signalling_shown(),
            status: self.status.clone(),
            endpoint: self.endpoint.clone(),
            restarts: self.restarts,
            last_failure: self.last_failure.clone(),
            metrics: self.metrics.clone(),
            description: spec.description.clone(),
            config: spec.config_shown(),
        }
    }
}
