//! `POST /api/v1/recorders`: the body that starts a recording, and the recorder bridge it
//! becomes.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::places::{Place, RECORDER};
use crate::bridge::{BridgeSpec, RestartPolicy};

/// Start recording a pool: a recorder bridge is created with these settings. Every field but
/// `pool` is optional; the recorder's own keys (`directory` to `segment_bytes`) have its
/// defaults (README, "Recorder bridge").
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRecording {
    /// The pool to record.
    #[schema(example = "lobby")]
    pub pool: String,
    /// The recorder bridge's name; default `rec-<pool>` (then `-2`, `-3`, ... when taken).
    pub name: Option<String>,
    /// The folder recordings go under; default: the directory of the recorder the gateway
    /// saw last (one of its `[[bridge]]` entries, or one started before).
    pub directory: Option<String>,
    /// Where a peer's files go under `directory`; default: that recorder's, else
    /// `{pool}/{session}/{peer}`.
    pub path_template: Option<String>,
    /// `webm`, `mkv` or `mp4`.
    pub container: Option<String>,
    /// A new segment starts every this many seconds (at the next keyframe).
    pub segment_seconds: Option<u64>,
    /// A new segment also starts when one reaches this size.
    pub segment_bytes: Option<u64>,
    /// The recorder's description, shown to the pool's members.
    #[schema(value_type = Option<Object>)]
    pub description: Option<Value>,
    /// Another ssp server's URL, for a pool it hosts.
    pub signalling: Option<String>,
    /// The addresses the recorder's ICE host candidates may use.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub ice_local_addresses: Vec<IpAddr>,
}

/// The longest bridge name (the bridge rules').
const MAX_NAME: usize = 64;

/// The default name for a recorder of `pool`: `rec-<pool>` with characters a bridge name
/// cannot hold replaced, then the first of `-2`, `-3`, ... that `taken` does not refuse.
pub fn default_name(pool: &str, taken: impl Fn(&str) -> bool) -> String {
    let cleaned: String = pool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME - 8)
        .collect();
    let base = format!("rec-{cleaned}");
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

impl StartRecording {
    /// The recorder bridge to create. `fallback` is the place to default `directory` (and
    /// `path_template`) from; with none and no `directory`, the error names the field.
    pub fn into_spec(
        self,
        fallback: Option<&Place>,
        taken: impl Fn(&str) -> bool,
    ) -> Result<BridgeSpec, String> {
        let (directory, template) = match (self.directory, fallback) {
            (Some(d), _) => (d, self.path_template),
            (None, Some(p)) => (
                p.directory.display().to_string(),
                self.path_template.or_else(|| Some(p.path_template.clone())),
            ),
            (None, None) => {
                return Err(
                    "directory: required: the gateway knows no recorder to take it from".into(),
                )
            }
        };
        let mut config = Map::new();
        config.insert("directory".into(), Value::String(directory));
        if let Some(t) = template {
            config.insert("path_template".into(), Value::String(t));
        }
        if let Some(c) = self.container {
            config.insert("container".into(), Value::String(c));
        }
        if let Some(s) = self.segment_seconds {
            config.insert("segment_seconds".into(), s.into());
        }
        if let Some(b) = self.segment_bytes {
            config.insert("segment_bytes".into(), b.into());
        }
        let name = match self.name {
            Some(n) => n,
            None => default_name(&self.pool, taken),
        };
        Ok(BridgeSpec {
            name,
            plugin: RECORDER.into(),
            pool: self.pool,
            signalling: self.signalling,
            description: self.description,
            config: Value::Object(config),
            restart: RestartPolicy::default(),
            ice_local_addresses: self.ice_local_addresses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn start(body: Value) -> StartRecording {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn names_default_from_the_pool() {
        assert_eq!(default_name("lobby", |_| false), "rec-lobby");
        assert_eq!(default_name("a b/ü", |_| false), "rec-a_b__");
        assert_eq!(
            default_name("x", |n| n == "rec-x" || n == "rec-x-2"),
            "rec-x-3"
        );
        let long = "p".repeat(200);
        assert!(default_name(&long, |_| false).len() <= MAX_NAME);
    }

    #[test]
    fn a_body_becomes_a_recorder_bridge() {
        let spec = start(
            json!({"pool": "lobby", "directory": "/rec", "container": "mp4",
                                "segment_seconds": 4, "segment_bytes": 100000}),
        )
        .into_spec(None, |_| false)
        .unwrap();
        assert_eq!(spec.name, "rec-lobby");
        assert_eq!(spec.plugin, "recorder");
        assert_eq!(
            spec.config,
            json!({"directory": "/rec", "container": "mp4", "segment_seconds": 4,
                   "segment_bytes": 100000})
        );
        let fallback = Place {
            directory: "/var/rec".into(),
            path_template: "{session}/{peer}".into(),
        };
        let spec = start(json!({"pool": "p", "name": "mine"}))
            .into_spec(Some(&fallback), |_| false)
            .unwrap();
        assert_eq!(spec.name, "mine");
        assert_eq!(
            spec.config,
            json!({"directory": "/var/rec", "path_template": "{session}/{peer}"})
        );
        let e = start(json!({"pool": "p"}))
            .into_spec(None, |_| false)
            .unwrap_err();
        assert!(e.starts_with("directory: "), "{e}");
    }
}
