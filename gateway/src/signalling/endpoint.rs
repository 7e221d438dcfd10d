//! An endpoint: one member (or would-be member) of a pool, identified by a UUIDv4.

use std::fmt;

use serde_json::Value;
use uuid::Uuid;

/// The id of an endpoint. One per signalling connection; the client learns it from `rtc:joined`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EndpointId(pub Uuid);

impl EndpointId {
    /// A fresh random (version 4) id.
    pub fn new_random() -> Self {
        EndpointId(Uuid::new_v4())
    }
}

/// As its canonical UUID text, the way the protocol writes it.
impl serde::Serialize for EndpointId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the registry keeps about a connected endpoint.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    /// The pool it joined, if any. An endpoint joins at most once.
    pub pool: Option<String>,
    /// The trusted description set by the operator (never by the client), or `None`.
    pub description: Option<Value>,
}
