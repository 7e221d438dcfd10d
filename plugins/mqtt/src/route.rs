//! Routing, both ways: which pool messages go to which topic with which payload, and which
//! incoming topics go to which peers on which channel. Pure: no sockets.

use base64::Engine;
use serde_json::{json, Value};

use crate::config::Templates;
use crate::message::Message;
use crate::template::{Template, TemplateError};

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

/// One pool -> MQTT route: the labels it takes and how it publishes them.
#[derive(Clone, Debug)]
pub struct Route {
    /// `None`: every label (`["*"]`).
    channels: Option<Vec<String>>,
    topic: Template,
    envelope: bool,
    qos: u8,
    retain: bool,
}

impl Route {
    /// A route from checked settings; a `*` among `channels` takes every label.
    pub fn new(
        channels: &[String],
        topic: Template,
        envelope: bool,
        qos: u8,
        retain: bool,
    ) -> Route {
        let all = channels.iter().any(|c| c == "*");
        Route {
            channels: (!all).then(|| channels.to_vec()),
            topic,
            envelope,
            qos,
            retain,
        }
    }

    /// Whether this route takes messages on `label`.
    fn takes(&self, label: &str) -> bool {
        match &self.channels {
            None => true,
            Some(labels) => labels.iter().any(|l| l == label),
        }
    }
}

/// The routes of one bridge.
#[derive(Clone, Debug)]
pub struct Router {
    templates: Templates,
    /// The labels named by the routes, each once, in config order.
    own: Vec<String>,
}

/// What the JSON envelope says about a message's sender.
pub struct Sender<'a> {
    pub peer: &'a str,
    pub description: Option<&'a Value>,
}

impl Router {
    pub fn new(templates: Templates) -> Router {
        let mut own: Vec<String> = Vec::new();
        for route in &templates.routes {
            for label in route.channels.iter().flatten() {
                if !own.contains(label) {
                    own.push(label.clone());
                }
            }
        }
        Router { templates, own }
    }

    /// The labels the bridge opens to every peer itself: those the routes name (a `["*"]`
    /// route names none).
    pub fn own_channels(&self) -> &[String] {
        &self.own
    }

    /// The route of messages on `label`: the first whose channels match.
    pub fn route(&self, label: &str) -> Option<&Route> {
        self.templates.routes.iter().find(|r| r.takes(label))
    }

    /// Whether messages on `label` go to MQTT.
    pub fn forwards(&self, label: &str) -> bool {
        self.route(label).is_some()
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
        let Some(route) = self.route(label) else {
            return Ok(None);
        };
        let topic = route.topic.render(pool, sender.peer, label)?;
        let payload = if route.envelope {
            envelope(sender, label, message, timestamp_ms)
        } else {
            message.bytes().to_vec()
        };
        Ok(Some(Publish {
            topic,
            payload,
            qos: route.qos,
            retain: route.retain,
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
    use crate::config::Config;
    use poolgate_plugin_api::parse_config;

    fn router(json: &str) -> Router {
        let config: Config = parse_config(json).unwrap();
        let (_, templates) = config.validate().unwrap();
        Router::new(templates)
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

    fn publish(r: &Router, label: &str) -> Option<Publish> {
        r.outgoing("p", &from("a"), label, &Message::Text("x".into()), 5)
            .unwrap()
    }

    #[test]
    fn first_matching_route_wins() {
        let r = router(
            r#"{"broker": "mqtt://h", "routes": [
                {"channels": ["alarm"], "qos": 2, "retain": true, "topic_template": "alarms/{peer}"},
                {"channels": ["alarm", "telemetry"], "qos": 0},
                {"channels": ["*"], "envelope": true}
            ]}"#,
        );
        let p = publish(&r, "alarm").unwrap();
        assert_eq!((p.topic.as_str(), p.qos, p.retain), ("alarms/a", 2, true));
        assert_eq!(p.payload, b"x");
        let p = publish(&r, "telemetry").unwrap();
        assert_eq!(
            (p.topic.as_str(), p.qos, p.retain),
            ("poolgate/p/a/telemetry", 0, false)
        );
        // Only the `*` route takes `chat`: its envelope, the top-level QoS.
        let p = publish(&r, "chat").unwrap();
        assert_eq!((p.qos, p.retain), (1, false));
        let v: Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(v["label"], "chat");
        assert_eq!(r.own_channels(), ["alarm", "telemetry"]);
    }

    #[test]
    fn routes_inherit_the_top_level_keys() {
        let r = router(
            r#"{"broker": "mqtt://h", "qos": 2, "retain": true, "envelope": true,
                "topic_template": "t/{label}/{peer}",
                "routes": [{"channels": ["a"]}, {"channels": ["b"], "qos": 0, "retain": false,
                            "envelope": false, "topic_template": "b/{peer}"}]}"#,
        );
        let p = publish(&r, "a").unwrap();
        assert_eq!((p.topic.as_str(), p.qos, p.retain), ("t/a/a", 2, true));
        assert!(serde_json::from_slice::<Value>(&p.payload).is_ok());
        let p = publish(&r, "b").unwrap();
        assert_eq!((p.topic.as_str(), p.qos, p.retain), ("b/a", 0, false));
        assert_eq!(p.payload, b"x");
    }

    #[test]
    fn a_label_no_route_takes_is_not_forwarded() {
        let r = router(
            r#"{"broker": "mqtt://h", "routes": [{"channels": ["a"]}, {"channels": ["b"]}]}"#,
        );
        assert!(r.forwards("a") && r.forwards("b"));
        assert!(!r.forwards("c"));
        assert_eq!(publish(&r, "c"), None);
        assert_eq!(r.own_channels(), ["a", "b"]);
    }

    #[test]
    fn a_star_route_takes_every_label_and_opens_none() {
        let r = router(r#"{"broker": "mqtt://h", "qos": 0, "routes": [{"channels": ["*"]}]}"#);
        assert!(r.forwards("anything"));
        assert!(r.own_channels().is_empty());
        assert_eq!(publish(&r, "anything").unwrap().qos, 0);
        // Without `routes`, the top-level keys are the one route.
        let r = router(r#"{"broker": "mqtt://h", "channels": ["a"], "qos": 0, "retain": true}"#);
        let p = publish(&r, "a").unwrap();
        assert_eq!((p.qos, p.retain), (0, true));
        assert_eq!(publish(&r, "b"), None);
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
