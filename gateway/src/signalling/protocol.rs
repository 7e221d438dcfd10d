//! The ssp v2 wire messages: typed client requests parsed from untrusted input, and the server
//! events sent back. Parsing is strict so that bad input stops here, as a typed error, before it
//! can reach the registry.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::endpoint::EndpointId;
use super::error::ProtocolError;

/// The prefix of every signalling event. Other events share the socket and are ignored.
pub const EVENT_PREFIX: &str = "rtc:";

/// The kind of an SDP description, as `RTCSessionDescription.type`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SdpType {
    Offer,
    Answer,
    Pranswer,
    Rollback,
}

impl SdpType {
    pub fn as_str(self) -> &'static str {
        match self {
            SdpType::Offer => "offer",
            SdpType::Answer => "answer",
            SdpType::Pranswer => "pranswer",
            SdpType::Rollback => "rollback",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "offer" => SdpType::Offer,
            "answer" => SdpType::Answer,
            "pranswer" => SdpType::Pranswer,
            "rollback" => SdpType::Rollback,
            _ => return None,
        })
    }
}

/// An `RTCSessionDescriptionInit`: `{type, sdp}`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionDescription {
    pub kind: SdpType,
    pub sdp: String,
}

impl SessionDescription {
    pub fn to_json(&self) -> Value {
        json!({ "type": self.kind.as_str(), "sdp": self.sdp })
    }
}

/// An `RTCIceCandidateInit`, or `None` for the end-of-candidates marker the client sends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IceCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u32>,
    pub username_fragment: Option<String>,
}

impl IceCandidate {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("candidate".into(), Value::from(self.candidate.clone()));
        m.insert("sdpMid".into(), json!(self.sdp_mid));
        m.insert("sdpMLineIndex".into(), json!(self.sdp_mline_index));
        if let Some(u) = &self.username_fragment {
            m.insert("usernameFragment".into(), Value::from(u.clone()));
        }
        Value::Object(m)
    }
}

/// A request from a client, already validated field by field.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ClientMessage {
    /// `rtc:join {pool}`
    Join { pool: String },
    /// `rtc:sdp {to, description}`
    Sdp {
        to: EndpointId,
        description: SessionDescription,
    },
    /// `rtc:candidate {for, candidate}` (`from` is ignored: the server knows the sender).
    Candidate {
        to: EndpointId,
        candidate: Option<IceCandidate>,
    },
    /// `describe` with the description as data: how the reference server's test program
    /// (`pyrtc.test`) lets an endpoint describe itself. Not part of ssp v2, so poolgate's own
    /// server never parses it from the wire (its descriptions come from the operator).
    Describe { description: Value },
}

impl ClientMessage {
    /// The wire event name, for logs and for encoding in clients of our own.
    pub fn event_type(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "rtc:join",
            ClientMessage::Sdp { .. } => "rtc:sdp",
            ClientMessage::Candidate { .. } => "rtc:candidate",
            ClientMessage::Describe { .. } => "describe",
        }
    }

    /// The event's data object, as a client would send it.
    pub fn data(&self) -> Value {
        match self {
            ClientMessage::Join { pool } => json!({ "pool": pool }),
            ClientMessage::Sdp { to, description } => {
                json!({ "to": to.to_string(), "description": description.to_json() })
            }
            ClientMessage::Candidate { to, candidate } => json!({
                "for": to.to_string(),
                "candidate": candidate.as_ref().map(IceCandidate::to_json),
            }),
            ClientMessage::Describe { description } => description.clone(),
        }
    }
}

/// An event from the server to a client.
#[derive(Clone, PartialEq, Debug)]
pub enum ServerMessage {
    Joined {
        client_id: EndpointId,
        pool: String,
        peers: Vec<EndpointId>,
        descriptions: BTreeMap<EndpointId, Option<Value>>,
    },
    Peer {
        id: EndpointId,
    },
    Sdp {
        peer: EndpointId,
        description: SessionDescription,
    },
    Candidate {
        from: EndpointId,
        candidate: Option<IceCandidate>,
    },
    Close {
        id: EndpointId,
    },
    Describe {
        id: EndpointId,
        description: Option<Value>,
    },
    Stop,
    Error {
        message: String,
        code: &'static str,
        event: Option<String>,
    },
}

impl ServerMessage {
    pub fn event_type(&self) -> &'static str {
        match self {
            ServerMessage::Joined { .. } => "rtc:joined",
            ServerMessage::Peer { .. } => "rtc:peer",
            ServerMessage::Sdp { .. } => "rtc:sdp",
            ServerMessage::Candidate { .. } => "rtc:candidate",
            ServerMessage::Close { .. } => "rtc:close",
            ServerMessage::Describe { .. } => "rtc:describe",
            ServerMessage::Stop => "rtc:stop",
            ServerMessage::Error { .. } => "rtc:error",
        }
    }

    /// The event's data object.
    pub fn data(&self) -> Value {
        match self {
            ServerMessage::Joined {
                client_id,
                pool,
                peers,
                descriptions,
            } => {
                let descriptions: Map<String, Value> = descriptions
                    .iter()
                    .map(|(id, d)| (id.to_string(), d.clone().unwrap_or(Value::Null)))
                    .collect();
                json!({
                    "client_id": client_id.to_string(),
                    "pool": pool,
                    "peers": peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "descriptions": descriptions,
                })
            }
            ServerMessage::Peer { id } => json!({ "id": id.to_string() }),
            ServerMessage::Sdp { peer, description } => {
                json!({ "peer": peer.to_string(), "description": description.to_json() })
            }
            ServerMessage::Candidate { from, candidate } => json!({
                "from": from.to_string(),
                "candidate": candidate.as_ref().map(IceCandidate::to_json),
            }),
            // RTCPool 3.0.0 reads `uid`, later versions `id`: send both.
            ServerMessage::Close { id } => json!({ "id": id.to_string(), "uid": id.to_string() }),
            ServerMessage::Describe { id, description } => json!({
                "id": id.to_string(),
                "uid": id.to_string(),
                "description": description,
            }),
            ServerMessage::Stop => json!({}),
            ServerMessage::Error {
                message,
                code,
                event,
            } => {
                let mut data = json!({ "message": message, "code": code });
                if let Some(event) = event {
                    data["event"] = Value::from(event.clone());
                }
                data
            }
        }
    }

    /// The raw-WebSocket text frame: `{"type": ..., "data": {...}}`.
    pub fn to_frame(&self) -> String {
        json!({ "type": self.event_type(), "data": self.data() }).to_string()
    }
}

/// Parses a raw-WebSocket text frame. `Ok(None)` for events that are not signalling.
pub fn parse_frame(text: &str) -> Result<Option<ClientMessage>, ProtocolError> {
    let (event, data) = split_frame(text)?;
    parse_event(&event, data)
}

/// A raw-WebSocket frame's envelope `{"type": ..., "data": ...}`, in either direction.
fn split_frame(text: &str) -> Result<(String, Value), ProtocolError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
    let Value::Object(mut frame) = value else {
        return Err(ProtocolError::FrameNotObject);
    };
    let event = match frame.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(ProtocolError::TypeNotString),
        None => return Err(ProtocolError::MissingType),
    };
    Ok((event, frame.remove("data").unwrap_or(Value::Null)))
}

/// Parses one event given its name and data (how socket.io delivers it).
/// `Ok(None)` for events that are not signalling.
pub fn parse_event(event: &str, data: Value) -> Result<Option<ClientMessage>, ProtocolError> {
    if !event.starts_with(EVENT_PREFIX) {
        return Ok(None);
    }
    let Value::Object(data) = data else {
        return Err(ProtocolError::DataNotObject {
            event: event.to_string(),
        });
    };
    let fields = Fields { event, data: &data };
    let message = match event {
        "rtc:join" => ClientMessage::Join {
            pool: fields.string("pool")?.to_string(),
        },
        "rtc:sdp" => ClientMessage::Sdp {
            to: fields.endpoint_id("to")?,
            description: fields.description("description")?,
        },
        "rtc:candidate" => ClientMessage::Candidate {
            to: fields.endpoint_id("for")?,
            candidate: fields.candidate("candidate")?,
        },
        _ => {
            return Err(ProtocolError::UnknownEvent {
                event: event.to_string(),
            })
        }
    };
    Ok(Some(message))
}

/// Parses an event a server sent (what poolgate's own endpoints receive from a remote pool).
/// `Ok(None)` for events that are not signalling. Lenient where servers differ: pyrtc lists
/// the joiner itself in `descriptions`, RTCPool 3.0.0-era servers send only `uid` on close.
pub fn parse_server_event(
    event: &str,
    data: Value,
) -> Result<Option<ServerMessage>, ProtocolError> {
    if !event.starts_with(EVENT_PREFIX) {
        return Ok(None);
    }
    let data = match data {
        Value::Object(data) => data,
        // rtc:stop may come with no data at all.
        Value::Null if event == "rtc:stop" => Map::new(),
        _ => {
            return Err(ProtocolError::DataNotObject {
                event: event.to_string(),
            })
        }
    };
    let fields = Fields { event, data: &data };
    let message = match event {
        "rtc:joined" => {
            let client_id = fields.endpoint_id("client_id")?;
            let peers = match fields.get("peers")? {
                Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .and_then(|s| Uuid::parse_str(s).ok())
                            .map(EndpointId)
                            .ok_or_else(|| fields.wrong("peers", "a list of endpoint ids"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err(fields.wrong("peers", "a list of endpoint ids")),
            };
            let mut descriptions = BTreeMap::new();
            if let Some(Value::Object(map)) = data.get("descriptions") {
                for (id, d) in map {
                    if let Ok(uuid) = Uuid::parse_str(id) {
                        let d = (!d.is_null()).then(|| d.clone());
                        descriptions.insert(EndpointId(uuid), d);
                    }
                }
            }
            let pool = data
                .get("pool")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            ServerMessage::Joined {
                client_id,
                pool,
                peers,
                descriptions,
            }
        }
        "rtc:peer" => ServerMessage::Peer {
            id: fields.endpoint_id("id")?,
        },
        "rtc:sdp" => ServerMessage::Sdp {
            peer: fields.endpoint_id("peer")?,
            description: fields.description("description")?,
        },
        "rtc:candidate" => ServerMessage::Candidate {
            from: fields.endpoint_id("from")?,
            candidate: fields.candidate("candidate")?,
        },
        "rtc:close" => ServerMessage::Close {
            id: fields
                .endpoint_id("id")
                .or_else(|_| fields.endpoint_id("uid"))?,
        },
        "rtc:describe" => ServerMessage::Describe {
            id: fields
                .endpoint_id("id")
                .or_else(|_| fields.endpoint_id("uid"))?,
            description: data.get("description").filter(|d| !d.is_null()).cloned(),
        },
        "rtc:stop" => ServerMessage::Stop,
        "rtc:error" => ServerMessage::Error {
            message: data
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string(),
            code: "remote",
            event: data
                .get("event")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        _ => {
            return Err(ProtocolError::UnknownEvent {
                event: event.to_string(),
            })
        }
    };
    Ok(Some(message))
}

/// Parses a raw-WebSocket text frame from a server.
pub fn parse_server_frame(text: &str) -> Result<Option<ServerMessage>, ProtocolError> {
    let (event, data) = split_frame(text)?;
    parse_server_event(&event, data)
}

/// Field access on an event's data with errors that name the event and the field.
struct Fields<'a> {
    event: &'a str,
    data: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn missing(&self, field: &str) -> ProtocolError {
        ProtocolError::MissingField {
            event: self.event.to_string(),
            field: field.to_string(),
        }
    }

    fn wrong(&self, field: &str, expected: &'static str) -> ProtocolError {
        ProtocolError::WrongType {
            event: self.event.to_string(),
            field: field.to_string(),
            expected,
        }
    }

    fn get(&self, field: &str) -> Result<&'a Value, ProtocolError> {
        self.data.get(field).ok_or_else(|| self.missing(field))
    }

    fn string(&self, field: &str) -> Result<&'a str, ProtocolError> {
        self.get(field)?
            .as_str()
            .ok_or_else(|| self.wrong(field, "a string"))
    }

    fn endpoint_id(&self, field: &str) -> Result<EndpointId, ProtocolError> {
        let text = self.string(field)?;
        Uuid::parse_str(text)
            .map(EndpointId)
            .map_err(|_| self.wrong(field, "an endpoint id (UUID)"))
    }

    fn description(&self, field: &str) -> Result<SessionDescription, ProtocolError> {
        let obj = self
            .get(field)?
            .as_object()
            .ok_or_else(|| self.wrong(field, "an object {type, sdp}"))?;
        let inner = Fields {
            event: self.event,
            data: obj,
        };
        let kind = inner
            .string("type")
            .map_err(|e| e.nested(field))
            .and_then(|t| {
                SdpType::parse(t).ok_or_else(|| {
                    inner
                        .wrong("type", "one of offer, answer, pranswer, rollback")
                        .nested(field)
                })
            })?;
        let sdp = match obj.get("sdp") {
            Some(Value::String(s)) => s.clone(),
            // A rollback carries no SDP.
            None | Some(Value::Null) if kind == SdpType::Rollback => String::new(),
            None => return Err(inner.missing("sdp").nested(field)),
            Some(_) => return Err(inner.wrong("sdp", "a string").nested(field)),
        };
        Ok(SessionDescription { kind, sdp })
    }

    fn candidate(&self, field: &str) -> Result<Option<IceCandidate>, ProtocolError> {
        let obj = match self.get(field)? {
            Value::Null => return Ok(None),
            Value::Object(obj) => obj,
            _ => {
                return Err(self.wrong(
                    field,
                    "an object {candidate, sdpMid, sdpMLineIndex} or null",
                ))
            }
        };
        let inner = Fields {
            event: self.event,
            data: obj,
        };
        let candidate = inner
            .string("candidate")
            .map_err(|e| e.nested(field))?
            .to_string();
        let sdp_mid = match obj.get("sdpMid") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(inner.wrong("sdpMid", "a string or null").nested(field)),
        };
        let sdp_mline_index =
            match obj.get("sdpMLineIndex") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || {
                        inner
                            .wrong("sdpMLineIndex", "a non-negative integer or null")
                            .nested(field)
                    },
                )?),
            };
        let username_fragment = match obj.get("usernameFragment") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(inner
                    .wrong("usernameFragment", "a string or null")
                    .nested(field))
            }
        };
        Ok(Some(IceCandidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
            username_fragment,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> EndpointId {
        EndpointId(Uuid::parse_str("6f1c2a4e-0000-4000-8000-000000000001").unwrap())
    }

    #[test]
    fn parses_join() {
        let m = parse_frame(r#"{"type":"rtc:join","data":{"pool":"room"}}"#).unwrap();
        assert_eq!(
            m,
            Some(ClientMessage::Join {
                pool: "room".into()
            })
        );
    }

    #[test]
    fn parses_sdp_and_candidate_including_end_of_candidates() {
        let sdp = parse_event(
            "rtc:sdp",
            json!({"to": id().to_string(), "description": {"type": "offer", "sdp": "v=0\r\n"}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            sdp,
            ClientMessage::Sdp {
                to: id(),
                description: SessionDescription {
                    kind: SdpType::Offer,
                    sdp: "v=0\r\n".into()
                }
            }
        );
        let cand = parse_event(
            "rtc:candidate",
            json!({"for": id().to_string(), "from": "whatever", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}),
        )
        .unwrap()
        .unwrap();
        let ClientMessage::Candidate { to, candidate } = cand else {
            panic!("not a candidate")
        };
        assert_eq!(to, id());
        let c = candidate.unwrap();
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c.sdp_mline_index, Some(0));
        let end = parse_event(
            "rtc:candidate",
            json!({"for": id().to_string(), "candidate": null}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            end,
            ClientMessage::Candidate {
                to: id(),
                candidate: None
            }
        );
    }

    #[test]
    fn rollback_needs_no_sdp() {
        let m = parse_event(
            "rtc:sdp",
            json!({"to": id().to_string(), "description": {"type": "rollback"}}),
        )
        .unwrap()
        .unwrap();
        assert!(
            matches!(m, ClientMessage::Sdp { description, .. } if description.kind == SdpType::Rollback)
        );
    }

    #[test]
    fn other_events_are_not_signalling() {
        assert_eq!(
            parse_frame(r#"{"type":"chat","data":"not even an object"}"#).unwrap(),
            None
        );
        assert_eq!(parse_event("hello", Value::Null).unwrap(), None);
    }

    #[test]
    fn bad_frames_have_precise_errors() {
        let cases: &[(&str, &str)] = &[
            ("not json", "not valid JSON"),
            ("[1,2]", "must be a JSON object"),
            (r#"{"data":{}}"#, "no \"type\""),
            (r#"{"type":5,"data":{}}"#, "\"type\" must be a string"),
            (
                r#"{"type":"rtc:join","data":[]}"#,
                "rtc:join: \"data\" must be an object",
            ),
            (
                r#"{"type":"rtc:join","data":{}}"#,
                "rtc:join: missing field \"pool\"",
            ),
            (
                r#"{"type":"rtc:join","data":{"pool":3}}"#,
                "rtc:join: field \"pool\" must be a string",
            ),
            (
                r#"{"type":"rtc:sdp","data":{"to":"nope","description":{"type":"offer","sdp":""}}}"#,
                "field \"to\" must be an endpoint id",
            ),
            (
                r#"{"type":"rtc:sdp","data":{"to":"6f1c2a4e-0000-4000-8000-000000000001","description":{"type":"bogus","sdp":""}}}"#,
                "field \"description.type\" must be one of offer",
            ),
            (
                r#"{"type":"rtc:sdp","data":{"to":"6f1c2a4e-0000-4000-8000-000000000001","description":{"type":"offer"}}}"#,
                "missing field \"description.sdp\"",
            ),
            (
                r#"{"type":"rtc:candidate","data":{"for":"6f1c2a4e-0000-4000-8000-000000000001","candidate":5}}"#,
                "field \"candidate\" must be an object",
            ),
            (
                r#"{"type":"rtc:candidate","data":{"for":"6f1c2a4e-0000-4000-8000-000000000001","candidate":{"candidate":"x","sdpMLineIndex":-1}}}"#,
                "\"candidate.sdpMLineIndex\" must be a non-negative integer",
            ),
            (
                r#"{"type":"rtc:candidate","data":{"for":"6f1c2a4e-0000-4000-8000-000000000001"}}"#,
                "missing field \"candidate\"",
            ),
            (
                r#"{"type":"rtc:dance","data":{}}"#,
                "unknown signalling event \"rtc:dance\"",
            ),
        ];
        for (frame, expected) in cases {
            let err = parse_frame(frame).expect_err(frame).to_string();
            assert!(
                err.contains(expected),
                "frame {frame}: error {err:?} does not contain {expected:?}"
            );
        }
    }

    #[test]
    fn server_messages_encode_as_the_protocol_says() {
        let close = ServerMessage::Close { id: id() };
        let v: Value = serde_json::from_str(&close.to_frame()).unwrap();
        assert_eq!(v["type"], "rtc:close");
        assert_eq!(v["data"]["id"], id().to_string());
        assert_eq!(v["data"]["uid"], id().to_string());

        let joined = ServerMessage::Joined {
            client_id: id(),
            pool: "p".into(),
            peers: vec![],
            descriptions: BTreeMap::from([(id(), None)]),
        };
        let d = joined.data();
        assert_eq!(d["client_id"], id().to_string());
        assert_eq!(d["peers"], json!([]));
        assert_eq!(d["descriptions"][id().to_string()], Value::Null);
        assert_eq!(ServerMessage::Stop.data(), json!({}));

        let err = ServerMessage::Error {
            message: "m".into(),
            code: "c",
            event: Some("rtc:sdp".into()),
        };
        assert_eq!(
            err.data(),
            json!({"message": "m", "code": "c", "event": "rtc:sdp"})
        );
    }

    #[test]
    fn server_messages_round_trip_through_the_client_side_parser() {
        let messages = [
            ServerMessage::Joined {
                client_id: id(),
                pool: "p".into(),
                peers: vec![id()],
                descriptions: BTreeMap::from([(id(), Some(json!({"a": 1})))]),
            },
            ServerMessage::Peer { id: id() },
            ServerMessage::Sdp {
                peer: id(),
                description: SessionDescription {
                    kind: SdpType::Offer,
                    sdp: "v=0".into(),
                },
            },
            ServerMessage::Candidate {
                from: id(),
                candidate: None,
            },
            ServerMessage::Close { id: id() },
            ServerMessage::Describe {
                id: id(),
                description: None,
            },
            ServerMessage::Stop,
        ];
        for m in messages {
            assert_eq!(parse_server_frame(&m.to_frame()).unwrap(), Some(m));
        }
        // A 3.0.0-era close with only `uid`, and an error from another server.
        let close = parse_server_event("rtc:close", json!({"uid": id().to_string()})).unwrap();
        assert_eq!(close, Some(ServerMessage::Close { id: id() }));
        let err = parse_server_event("rtc:error", json!({"message": "nope"})).unwrap();
        assert!(matches!(err, Some(ServerMessage::Error { message, .. }) if message == "nope"));
        assert!(parse_server_event("rtc:peer", json!({"id": 3})).is_err());
        assert_eq!(parse_server_event("other", json!(1)).unwrap(), None);
    }

    #[test]
    fn client_messages_round_trip_through_the_parser() {
        let messages = [
            ClientMessage::Join { pool: "x".into() },
            ClientMessage::Sdp {
                to: id(),
                description: SessionDescription {
                    kind: SdpType::Answer,
                    sdp: "v=0".into(),
                },
            },
            ClientMessage::Candidate {
                to: id(),
                candidate: Some(IceCandidate {
                    candidate: "c".into(),
                    sdp_mid: None,
                    sdp_mline_index: Some(1),
                    username_fragment: Some("u".into()),
                }),
            },
        ];
        for m in messages {
            assert_eq!(parse_event(m.event_type(), m.data()).unwrap(), Some(m));
        }
    }
}
