//! Routing, both ways: which pool messages go to which topic with which payload, and which
//! incoming topics go to which peers on which channel. Pure: no sockets.

use base64::Engine;
use serde_json::{json, Value};

use crate::config::{Config, Templates};
use crate::message::Message;
use crate::template::TemplateError;

/// An MQTT publish the bridge makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

/// Where an incoming MQTT message goes in the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every peer, on channel `label`.
    All { label: String },
    /// One peer, on channel `label`.
    Peer { peer: String, label: String },
}

/// The routes of one bridge.
#[derive(Clone, Debug)]
pub struct Router {
    templates: Templates,
    /// `None`: every label.
    channels: Option<Vec<String>>,
    envelope: bool,
    qos: u8,
    retain: bool,
}

/// What the JSON envelope says about a message's sender.
pub struct Sender<'a> {
    pub peer: &'a str,
    pub description: Option<&'a Value>,
}

impl Router {
    pub fn new(config: &Config, templates: Templates) -> Router {
        let all = config.channels.iter().any(|c| c == "*");
        Router {
            templates,
            channels: (!all).then(|| config.channels.clone()),
            envelope: config.envelope,
            qos: config.qos,
            retain: config.retain,
        }
    }

    /// The labels the bridge opens to every peer itself (none with `["*"]`).
    pub fn own_channels(&self) -> &[String] {
        self.channels.as_deref().unwrap_or(&[])
    }

    /// Whether messages on `label` go to MQTT.
    pub fn forwards(&self, label: &str) -> bool {
        match &self.channels {
            None => true,
            Some(labels) => labels.iter().any(|l| l == label),
        }
    }

    /// The publish for a message from `sender` on `label`, or `None` when that channel is not
    /// forwarded. An id or label that cannot be in a topic is an error.
    pub fn outgoing(
        &self,
        pool: &str,
        sender: &Sender<'_>,
        label: &str,
        message: &Message,
        timestamp_ms: u64,
    ) -> Result<Option<Publish>, TemplateError> {
        if !self.forwards(label) {
            return Ok(None);
        }
        let topic = self.templates.topic.render(pool, sender.peer, label)?;
        let payload = if self.envelope {
            envelope(sender, label, message, timestamp_ms)
        } else {
            message.bytes().to_vec()
        };
        Ok(Some(Publish {
            topic,
            payload,
            qos: self.qos,
            retain: self.retain,
        }))
    }

    /// Where a message on `topic` goes: the all-peers template wins over the one-peer one
    /// (with the defaults, `to/all/x` would also read as peer `all`).
    pub fn incoming(&self, pool: &str, topic: &str) -> Option<Target> {
        if let Some(c) = self.templates.to_all.matches(pool, topic) {
            return Some(Target::All { label: c.label? });
        }
        let c = self.templates.to_peer.matches(pool, topic)?;
        Some(Target::Peer {
            peer: c.peer?,
            label: c.label?,
        })
    }
}

/// The JSON envelope: `peer`, `description`, `label`, `timestamp` (ms since the Unix epoch),
/// `payload` (the text, or base64 of binary) and `binary`.
pub fn envelope(sender: &Sender<'_>, label: &str, message: &Message, timestamp_ms: u64) -> Vec<u8> {
    let (payload, binary) = match message {
        Message::Text(t) => (Value::String(t.clone()), false),
        Message::Binary(b) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            true,
        ),
    };
    json!({
        "peer": sender.peer,
        "description": sender.description.cloned().unwrap_or(Value::Null),
        "label": label,
        "timestamp": timestamp_ms,
        "payload": payload,
        "binary": binary,
    })
    .to_string()
    .into_bytes()
}

/// Presence topics.
pub mod presence {
    /// The bridge's retained `online`/`offline` status (also its last will).
    pub fn status_topic(pool: &str, id: &str) -> String {
        format!("poolgate/{pool}/bridges/{id}/status")
    }

    /// A peer's retained description; emptied when it leaves.
    pub fn peer_topic(pool: &str, peer: &str) -> String {
        format!("poolgate/{pool}/peers/{peer}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolgate_plugin_api::parse_config;

    fn router(json: &str) -> Router {
        let config: Config = parse_config(json).unwrap();
        let (_, templates) = config.validate().unwrap();
        Router::new(&config, templates)
    }

    fn from(peer: &str) -> Sender<'_> {
        Sender {
            peer,
            description: None,
        }
    }

    #[test]
    fn forwards_raw_bytes_on_configured_channels() {
        let r = router(
            r#"{"broker": "mqtt://h", "channels": ["telemetry"], "qos": 2, "retain": true}"#,
        );
        let bytes = vec![0u8, 159, 255];
        let p = r
            .outgoing(
                "p",
                &from("a"),
                "telemetry",
                &Message::Binary(bytes.clone()),
                5,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            Publish {
                topic: "poolgate/p/a/telemetry".into(),
                payload: bytes,
                qos: 2,
                retain: true
            }
        );
        assert_eq!(
            r.outgoing("p", &from("a"), "chat", &Message::Text("x".into()), 5),
            Ok(None)
        );
        assert_eq!(r.own_channels(), ["telemetry"]);
    }

    #[test]
    fn every_channel_with_a_star() {
        let r = router(r#"{"broker": "mqtt://h"}"#);
        assert!(r.forwards("anything"));
        assert!(r.own_channels().is_empty());
        let p = r
            .outgoing("p", &from("a"), "chat", &Message::Text("héllo".into()), 5)
            .unwrap()
            .unwrap();
        assert_eq!(p.payload, "héllo".as_bytes());
        assert!(r
            .outgoing("p", &from("a"), "bad+label", &Message::Text("x".into()), 5)
            .is_err());
    }

    #[test]
    fn envelope_fields() {
        let r = router(r#"{"broker": "mqtt://h", "envelope": true}"#);
        let description = json!({"name": "cam"});
        let sender = Sender {
            peer: "a",
            description: Some(&description),
        };
        let p = r
            .outgoing("p", &sender, "c", &Message::Binary(vec![1, 2, 3]), 42)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(
            v,
            json!({"peer": "a", "description": {"name": "cam"}, "label": "c", "timestamp": 42,
                   "payload": "AQID", "binary": true})
        );
        let p = r
            .outgoing("p", &from("a"), "c", &Message::Text("hi".into()), 42)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(
            (v["payload"].as_str(), v["binary"].as_bool()),
            (Some("hi"), Some(false))
        );
        assert_eq!(v["description"], Value::Null);
    }

    #[test]
    fn incoming_topics() {
        let r = router(r#"{"broker": "mqtt://h"}"#);
        assert_eq!(
            r.incoming("p", "poolgate/p/to/all/cmd"),
            Some(Target::All {
                label: "cmd".into()
            })
        );
        assert_eq!(
            r.incoming("p", "poolgate/p/to/abc/cmd"),
            Some(Target::Peer {
                peer: "abc".into(),
                label: "cmd".into()
            })
        );
        assert_eq!(r.incoming("p", "poolgate/p/abc/cmd"), None);
        assert_eq!(r.incoming("p", "poolgate/q/to/all/cmd"), None);
    }
}
