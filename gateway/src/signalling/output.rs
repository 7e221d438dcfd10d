//! What the registry asks its adapter to do after each input.

use std::fmt;

use super::endpoint::EndpointId;
use super::error::SignallingError;
use super::pool::PoolOrigin;
use super::protocol::ServerMessage;

/// One effect of handling an input, in the order they must be carried out.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Deliver a message to a connected endpoint.
    Send {
        to: EndpointId,
        message: ServerMessage,
    },
    /// Close an endpoint's connection (its pool was force-closed). The registry has already
    /// forgotten it.
    Close { endpoint: EndpointId },
    /// Something an operator wants in the log (and, later, in metrics).
    Notice(Notice),
}

/// A change worth telling the operator about.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    Joined {
        endpoint: EndpointId,
        pool: String,
        peers: usize,
    },
    Left {
        endpoint: EndpointId,
        pool: String,
        reason: LeaveReason,
    },
    PoolCreated {
        pool: String,
        origin: PoolOrigin,
    },
    PoolRemoved {
        pool: String,
        reason: PoolRemoval,
    },
    DescriptionChanged {
        endpoint: EndpointId,
        pool: Option<String>,
    },
    Refused {
        endpoint: EndpointId,
        error: SignallingError,
    },
}

/// Why an endpoint left its pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// The client closed its connection.
    ClientClosed,
    /// No traffic (not even a pong) within the keepalive timeout.
    KeepaliveTimeout,
    /// It did not read its messages fast enough; its queue overflowed.
    SlowConsumer,
    /// The transport failed (reset, protocol error).
    TransportError(String),
    /// The operator force-closed its pool.
    PoolClosed,
    /// The server is shutting down.
    Shutdown,
}

impl LeaveReason {
    /// A short stable name, for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            LeaveReason::ClientClosed => "client_closed",
            LeaveReason::KeepaliveTimeout => "keepalive_timeout",
            LeaveReason::SlowConsumer => "slow_consumer",
            LeaveReason::TransportError(_) => "transport_error",
            LeaveReason::PoolClosed => "pool_closed",
            LeaveReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaveReason::ClientClosed => write!(f, "the client closed its connection"),
            LeaveReason::KeepaliveTimeout => {
                write!(f, "no keepalive answer in time (dead connection)")
            }
            LeaveReason::SlowConsumer => {
                write!(f, "it did not read its messages in time (queue full)")
            }
            LeaveReason::TransportError(e) => write!(f, "transport error: {e}"),
            LeaveReason::PoolClosed => write!(f, "the operator closed its pool"),
            LeaveReason::Shutdown => write!(f, "the server is shutting down"),
        }
    }
}

/// Why a pool went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolRemoval {
    /// Its last member left and nobody created it on purpose.
    Empty,
    /// The operator force-closed it.
    ClosedByOperator,
}

impl fmt::Display for PoolRemoval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolRemoval::Empty => write!(f, "its last endpoint left"),
            PoolRemoval::ClosedByOperator => write!(f, "the operator closed it"),
        }
    }
}
