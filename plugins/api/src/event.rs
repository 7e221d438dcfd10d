//! The JSON shapes that cross the boundary in [`crate::contract::Str`]s: endpoint events, track
//! descriptions and data-channel specs. Host and plugin each (de)serialize them with their own
//! `serde`; only the JSON text is shared.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Something that happened to the bridge's endpoint. Endpoint ids are UUID strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The endpoint joined its pool (again after a lost connection, with a new id).
    Joined {
        id: String,
        pool: String,
        peers: Vec<String>,
    },
    /// A peer is in the pool (joined after us, or was there when we joined).
    PeerJoined {
        id: String,
        description: Option<Value>,
    },
    PeerLeft {
        id: String,
    },
    DescriptionChanged {
        id: String,
        description: Option<Value>,
    },
    /// A peer connection's state: `new`, `connecting`, `connected`, `disconnected`, `failed`,
    /// `closed`.
    PeerState {
        id: String,
        state: String,
    },
    ChannelOpen {
        peer: String,
        label: String,
    },
    ChannelClosed {
        peer: String,
        label: String,
    },
    /// A track given to `on_track` is gone: unlink from its source and release the pad.
    TrackRemoved {
        peer: String,
        id: String,
    },
    /// An event a newer host sends that this plugin does not know.
    #[serde(other)]
    Other,
}

/// A peer's track, as `on_track` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The sending peer.
    pub peer: String,
    /// Unique within the endpoint; `TrackRemoved` names it.
    pub id: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The RTP encoding name: `VP8`, `VP9`, `H264`, `OPUS`, `PCMU`, `PCMA`.
    pub codec: String,
}

/// A data channel a plugin opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub label: String,
    /// In-order delivery (the WebRTC default).
    #[serde(default = "yes")]
    pub ordered: bool,
    /// Retransmissions before a message is given up; `None`: reliable.
    #[serde(default)]
    pub max_retransmits: Option<u32>,
}

fn yes() -> bool {
    true
}

impl ChannelSpec {
    /// A reliable, ordered channel.
    pub fn reliable(label: &str) -> ChannelSpec {
        ChannelSpec {
            label: label.to_string(),
            ordered: true,
            max_retransmits: None,
        }
    }
}

/// Parses a bridge's JSON config into the plugin's config type. The error names the field path,
/// e.g. `` `topics[2].qos`: invalid value: integer `7`, expected 0, 1 or 2 ``.
pub fn parse_config<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("`{path}`: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        name: String,
        limits: Limits,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        rate: u32,
    }

    #[test]
    fn config_errors_name_the_field() {
        let cases = [
            (
                r#"{"name": 3, "limits": {"rate": 1}}"#,
                "`name`: invalid type",
            ),
            (
                r#"{"name": "a", "limits": {"rate": "x"}}"#,
                "`limits.rate`: invalid type: string \"x\"",
            ),
            (
                r#"{"name": "a", "limits": {"rate": 1, "burst": 2}}"#,
                "`limits.burst`: unknown field `burst`",
            ),
            (r#"{"limits": {"rate": 1}}"#, "missing field `name`"),
        ];
        for (json, want) in cases {
            let err = parse_config::<Config>(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
        assert!(parse_config::<Config>(r#"{"name": "a", "limits": {"rate": 1}}"#).is_ok());
    }

    #[test]
    fn unknown_events_are_tolerated() {
        let e: Event = serde_json::from_str(r#"{"type": "future_thing", "x": 1}"#).unwrap();
        assert_eq!(e, Event::Other);
        let e: Event = serde_json::from_str(r#"{"type": "peer_left", "id": "p"}"#).unwrap();
        assert_eq!(e, Event::PeerLeft { id: "p".into() });
    }
}
