//! [`BridgeSpec`]: one bridge as declared in `[[bridge]]` (or sent to the admin API).

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::redact::redact_json;
use crate::signalling::client::redact_url;
use crate::signalling::registry::validate_pool_name;

/// A bridge: which plugin runs it, in which pool, with which config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// Unique among the gateway's bridges; names it in logs and the admin API.
    pub name: String,
    /// A loaded plugin's name, or a library file (ending in `.so`) in the plugin folder.
    pub plugin: String,
    /// The pool the bridge's endpoint joins.
    pub pool: String,
    /// Another ssp server's URL (`ws://…` raw WebSocket, `http://…` socket.io). Absent: the pool
    /// is hosted by this gateway. Credentials in it are never logged nor shown.
    #[serde(default)]
    pub signalling: Option<String>,
    /// The endpoint's description (a JSON object) shown to the pool's members.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub description: Option<Value>,
    /// The plugin's own config; the plugin validates it.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    /// What to do when the bridge fails.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The only addresses the endpoint's ICE host candidates may use (e.g. `["127.0.0.1"]` on a
    /// single machine; empty: every address libnice finds, which leaves out loopback).
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["127.0.0.1"]))]
    pub ice_local_addresses: Vec<IpAddr>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Whether a failed bridge is started again.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Restart after a failure, waiting the backoff.
    #[default]
    OnFailure,
    /// Stay `failed`.
    Never,
}

/// `restart = { mode = "on-failure", backoff_initial_ms = 1000, backoff_max_ms = 60000 }`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// The wait before the first restart; doubled after each failure up to `backoff_max_ms`, and
    /// back to this after a bridge ran for a minute.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::OnFailure,
            backoff_initial_ms: 1000,
            backoff_max_ms: 60_000,
        }
    }
}

impl RestartPolicy {
    pub fn initial(&self) -> Duration {
        Duration::from_millis(self.backoff_initial_ms)
    }

    pub fn max(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms)
    }
}

impl BridgeSpec {
    /// Rules serde cannot check. The error names the bridge and the key.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "bridge name {name:?}: use 1 to 64 letters, digits, `-`, `_` or `.`"
            ));
        }
        if self.plugin.is_empty() {
            return Err(format!("bridge {name:?}: plugin must not be empty"));
        }
        validate_pool_name(&self.pool).map_err(|e| format!("bridge {name:?}: pool: {e}"))?;
        if let Some(url) = &self.signalling {
            let ok = ["ws://", "wss://", "http://", "https://"]
                .iter()
                .any(|s| url.starts_with(s));
            if !ok {
                return Err(format!(
                    "bridge {name:?}: signalling {} must start with ws://, wss://, http:// or https://",
                    redact_url(url)
                ));
            }
        }
        if let Some(d) = &self.description {
            if !d.is_object() {
                return Err(format!(
                    "bridge {name:?}: description must be a table (a JSON object)"
                ));
            }
        }
        if !self.config.is_object() {
            return Err(format!(
                "bridge {name:?}: config must be a table (a JSON object)"
            ));
        }
        if self.restart.backoff_initial_ms == 0
            || self.restart.backoff_max_ms < self.restart.backoff_initial_ms
        {
            return Err(format!(
                "bridge {name:?}: restart.backoff_initial_ms must be at least 1 and at most \
                 restart.backoff_max_ms"
            ));
        }
        Ok(())
    }

    /// Where the pool is, for logs and the API: `hosted`, or the URL without credentials.
    pub fn signalling_shown(&self) -> String {
        match &self.signalling {
            None => "hosted".into(),
            Some(url) => redact_url(url),
        }
    }

    /// The config with secrets masked.
    pub fn config_shown(&self) -> Value {
        redact_json(&self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> Result<BridgeSpec, String> {
        let spec: BridgeSpec = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        spec.validate()?;
        Ok(spec)
    }

    #[test]
    fn a_full_bridge_parses() {
        let s = spec(
            r#"
name = "cam-1"
plugin = "camera"
pool = "lobby"
signalling = "ws://u:p@example.net/ws"
description = { kind = "camera", label = "Door" }
config = { url = "rtsp://cam/1", password = "x", retry = { every_ms = 500 } }
restart = { mode = "never" }
ice_local_addresses = ["127.0.0.1"]
"#,
        )
        .unwrap();
        assert_eq!(s.description.as_ref().unwrap()["label"], "Door");
        assert_eq!(s.config["retry"]["every_ms"], 500);
        assert_eq!(s.restart.mode, RestartMode::Never);
        assert_eq!(s.restart.backoff_initial_ms, 1000);
        assert_eq!(s.signalling_shown(), "ws://***@example.net/ws");
        assert_eq!(s.config_shown()["password"], "***");
    }

    #[test]
    fn defaults_are_hosted_with_restarts() {
        let s = spec("name = \"e\"\nplugin = \"p\"\npool = \"x\"\n").unwrap();
        assert_eq!(s.signalling, None);
        assert_eq!(s.signalling_shown(), "hosted");
        assert_eq!(s.config, empty_object());
        assert_eq!(s.restart, RestartPolicy::default());
    }

    #[test]
    fn bad_bridges_are_refused_naming_the_key() {
        let base = "plugin = \"p\"\npool = \"x\"\n";
        let cases = [
            (format!("name = \"a b\"\n{base}"), "bridge name"),
            (
                format!("name = \"a\"\n{base}extra = 1\n"),
                "unknown field `extra`",
            ),
            (
                format!("name = \"a\"\n{base}signalling = \"ftp://x\"\n"),
                "signalling",
            ),
            (
                format!("name = \"a\"\n{base}description = 3\n"),
                "description",
            ),
            (format!("name = \"a\"\n{base}config = [1]\n"), "config"),
            (
                format!("name = \"a\"\n{base}restart = {{ mode = \"sometimes\" }}\n"),
                "sometimes",
            ),
            (
                format!("name = \"a\"\n{base}restart = {{ backoff_initial_ms = 0 }}\n"),
                "backoff_initial_ms",
            ),
            ("name = \"a\"\nplugin = \"p\"\npool = \"\"\n".into(), "pool"),
            (
                "name = \"a\"\npool = \"x\"\n".into(),
                "missing field `plugin`",
            ),
        ];
        for (text, want) in cases {
            let err = spec(&text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn secrets_never_show() {
        let s = spec(
            "name = \"a\"\nplugin = \"p\"\npool = \"x\"\nsignalling = \"http://h/?token=s3cret\"\n\
             config = { token = \"s3cret\" }\n",
        )
        .unwrap();
        assert!(!s.signalling_shown().contains("s3cret"));
        assert!(!s.config_shown().to_string().contains("s3cret"));
    }
}
