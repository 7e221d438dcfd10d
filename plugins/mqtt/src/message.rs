//! A data-channel message owned by the bridge (the API's `Payload` only borrows).

use poolgate_plugin_api::Payload;

/// A text or binary message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

impl Message {
    /// An owned copy of a borrowed payload.
    pub fn from_payload(payload: Payload<'_>) -> Message {
        match payload {
            Payload::Text(t) => Message::Text(t.to_string()),
            Payload::Binary(b) => Message::Binary(b.to_vec()),
        }
    }

    /// An MQTT payload as the pool gets it: text when it is UTF-8, else binary (MQTT itself
    /// does not say).
    pub fn from_mqtt(bytes: &[u8]) -> Message {
        match std::str::from_utf8(bytes) {
            Ok(t) => Message::Text(t.to_string()),
            Err(_) => Message::Binary(bytes.to_vec()),
        }
    }

    /// The borrowed form the host's `send` takes.
    pub fn as_payload(&self) -> Payload<'_> {
        match self {
            Message::Text(t) => Payload::Text(t),
            Message::Binary(b) => Payload::Binary(b),
        }
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}
