//! Why a signalling message or an operator request was refused. Each error becomes an
//! `rtc:error` (for clients) or an API error (for operators) with a message a person can act on.

use thiserror::Error;

use super::endpoint::EndpointId;

/// A frame or event that is not a well-formed ssp v2 message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("message is not valid JSON: {0}")]
    NotJson(String),
    #[error("binary frames are not signalling messages; send JSON text frames")]
    BinaryFrame,
    #[error("a signalling frame must be a JSON object {{\"type\": ..., \"data\": {{...}}}}")]
    FrameNotObject,
    #[error("frame has no \"type\" field")]
    MissingType,
    #[error("frame field \"type\" must be a string")]
    TypeNotString,
    #[error("{event}: \"data\" must be an object")]
    DataNotObject { event: String },
    #[error("{event}: missing field \"{field}\"")]
    MissingField { event: String, field: String },
    #[error("{event}: field \"{field}\" must be {expected}")]
    WrongType {
        event: String,
        field: String,
        expected: &'static str,
    },
    #[error("unknown signalling event \"{event}\"")]
    UnknownEvent { event: String },
}

impl ProtocolError {
    /// Prefixes the field name with its parent object's, e.g. `description.sdp`.
    pub(crate) fn nested(self, parent: &str) -> Self {
        match self {
            ProtocolError::MissingField { event, field } => ProtocolError::MissingField {
                event,
                field: format!("{parent}.{field}"),
            },
            ProtocolError::WrongType {
                event,
                field,
                expected,
            } => ProtocolError::WrongType {
                event,
                field: format!("{parent}.{field}"),
                expected,
            },
            other => other,
        }
    }

    /// The event the error is about, when known.
    pub fn event(&self) -> Option<&str> {
        match self {
            ProtocolError::DataNotObject { event }
            | ProtocolError::MissingField { event, .. }
            | ProtocolError::WrongType { event, .. }
            | ProtocolError::UnknownEvent { event } => Some(event),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::TooLarge { .. } => "message_too_large",
            ProtocolError::NotJson(_)
            | ProtocolError::BinaryFrame
            | ProtocolError::FrameNotObject
            | ProtocolError::MissingType
            | ProtocolError::TypeNotString => "malformed_frame",
            ProtocolError::DataNotObject { .. }
            | ProtocolError::MissingField { .. }
            | ProtocolError::WrongType { .. } => "invalid_field",
            ProtocolError::UnknownEvent { .. } => "unknown_event",
        }
    }
}

/// A well-formed message that the pool rules refuse.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("{event} before rtc:join: join a pool first")]
    NotJoined { event: &'static str },
    #[error("already joined pool \"{pool}\"; an endpoint joins one pool once")]
    AlreadyJoined { pool: String },
    #[error("pool \"{pool}\" is full ({max} endpoints)")]
    PoolFull { pool: String, max: usize },
    #[error("the server already has {max} pools, its limit")]
    TooManyPools { max: usize },
    #[error(
        "pool \"{pool}\" does not exist and this server only hosts pools created by its operator"
    )]
    NoSuchPool { pool: String },
    #[error("invalid pool name: {reason}")]
    InvalidPoolName { reason: &'static str },
    #[error("no endpoint {target} in pool \"{pool}\"")]
    UnknownTarget { target: EndpointId, pool: String },
    #[error("an endpoint cannot signal itself")]
    SelfTarget,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotJoined { .. } => "not_joined",
            Refusal::AlreadyJoined { .. } => "already_joined",
            Refusal::PoolFull { .. } => "pool_full",
            Refusal::TooManyPools { .. } => "too_many_pools",
            Refusal::NoSuchPool { .. } => "no_such_pool",
            Refusal::InvalidPoolName { .. } => "invalid_pool_name",
            Refusal::UnknownTarget { .. } => "unknown_target",
            Refusal::SelfTarget => "self_target",
        }
    }
}

/// Either kind of refusal of a client's message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SignallingError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl SignallingError {
    pub fn code(&self) -> &'static str {
        match self {
            SignallingError::Protocol(e) => e.code(),
            SignallingError::Refused(e) => e.code(),
        }
    }
}

/// An operator request (through the library API) that cannot be carried out.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum OperatorError {
    #[error("no endpoint {0} is connected")]
    UnknownEndpoint(EndpointId),
    #[error("no pool named \"{0}\"")]
    UnknownPool(String),
    #[error("pool \"{0}\" already exists")]
    PoolExists(String),
    #[error("a description must be a JSON object or null")]
    DescriptionNotObject,
    #[error(transparent)]
    Refused(#[from] Refusal),
}
