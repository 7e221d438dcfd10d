//! The pool registry: a sans-IO state machine. Connections, client messages and operator
//! requests go in; messages to send, connections to close and notices come out. It owns no
//! sockets and never waits, so every rule of the protocol is checked by plain unit tests.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::endpoint::{Endpoint, EndpointId};
use super::error::{OperatorError, ProtocolError, Refusal, SignallingError};
use super::output::{LeaveReason, Notice, Output, PoolRemoval};
use super::pool::{Pool, PoolOrigin};
use super::protocol::{self, ClientMessage, IceCandidate, ServerMessage, SessionDescription};
use super::settings::{Limits, PoolMode, MAX_POOL_NAME_BYTES};

/// A snapshot of one pool for the library API.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolInfo {
    pub name: String,
    pub origin: PoolOrigin,
    /// Members in join order, with their descriptions.
    pub endpoints: Vec<EndpointInfo>,
}

/// A snapshot of one endpoint for the library API.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointInfo {
    pub id: EndpointId,
    pub pool: Option<String>,
    pub description: Option<Value>,
}

/// All pools and endpoints of one server.
#[derive(Debug)]
pub struct Registry {
    mode: PoolMode,
    limits: Limits,
    endpoints: HashMap<EndpointId, Endpoint>,
    pools: BTreeMap<String, Pool>,
}

impl Registry {
    pub fn new(mode: PoolMode, limits: Limits) -> Self {
        Registry {
            mode,
            limits,
            endpoints: HashMap::new(),
            pools: BTreeMap::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    // ----- connections -------------------------------------------------------------------

    /// A connection opened. It may then join one pool.
    pub fn connect(&mut self, id: EndpointId) {
        self.endpoints.entry(id).or_default();
    }

    /// A connection closed; the endpoint leaves its pool and the others are told.
    pub fn disconnect(&mut self, id: EndpointId, reason: LeaveReason) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(endpoint) = self.endpoints.remove(&id) else {
            return out;
        };
        if let Some(name) = endpoint.pool {
            self.leave_pool(id, &name, reason, &mut out);
        }
        out
    }

    // ----- client input ------------------------------------------------------------------

    /// A raw-WebSocket text frame from `id`.
    pub fn receive_frame(&mut self, id: EndpointId, text: &str) -> Vec<Output> {
        let parsed = self
            .check_size(text.len())
            .and_then(|()| protocol::parse_frame(text));
        self.receive(id, parsed)
    }

    /// A socket.io event from `id`; `size` is the encoded size of its data.
    pub fn receive_event(
        &mut self,
        id: EndpointId,
        event: &str,
        data: Value,
        size: usize,
    ) -> Vec<Output> {
        if !event.starts_with(protocol::EVENT_PREFIX) {
            return Vec::new();
        }
        let parsed = self
            .check_size(size)
            .and_then(|()| protocol::parse_event(event, data));
        self.receive(id, parsed)
    }

    /// A message that the transport refused before parsing (e.g. a binary frame).
    pub fn receive_invalid(&mut self, id: EndpointId, error: ProtocolError) -> Vec<Output> {
        self.receive(id, Err(error))
    }

    /// A message already parsed (in-process endpoints send typed messages).
    pub fn receive(
        &mut self,
        id: EndpointId,
        parsed: Result<Option<ClientMessage>, ProtocolError>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if !self.endpoints.contains_key(&id) {
            // Its connection is already being closed (e.g. its pool was force-closed).
            return out;
        }
        let result = match parsed {
            Ok(None) => Ok(()),
            Ok(Some(message)) => self.apply(id, message, &mut out),
            Err(e) => Err(e.into()),
        };
        if let Err(error) = result {
            out.push(Output::Send {
                to: id,
                message: ServerMessage::Error {
                    message: error.to_string(),
                    code: error.code(),
                    event: match &error {
                        SignallingError::Protocol(e) => e.event().map(str::to_string),
                        SignallingError::Refused(_) => None,
                    },
                },
            });
            out.push(Output::Notice(Notice::Refused {
                endpoint: id,
                error,
            }));
        }
        out
    }

    fn check_size(&self, size: usize) -> Result<(), ProtocolError> {
        let max = self.limits.max_message_bytes;
        if size > max {
            return Err(ProtocolError::TooLarge { size, max });
        }
        Ok(())
    }

    fn apply(
        &mut self,
        id: EndpointId,
        message: ClientMessage,
        out: &mut Vec<Output>,
    ) -> Result<(), SignallingError> {
        match message {
            ClientMessage::Join { pool } => self.join(id, pool, out)?,
            ClientMessage::Sdp { to, description } => self.route_sdp(id, to, description, out)?,
            ClientMessage::Candidate { to, candidate } => {
                self.route_candidate(id, to, candidate, out)?
            }
            // Only the operator describes endpoints here; an in-process client's own claim
            // (never parsed from the wire) changes nothing.
            ClientMessage::Describe { .. } => {}
        }
        Ok(())
    }

    fn join(&mut self, id: EndpointId, name: String, out: &mut Vec<Output>) -> Result<(), Refusal> {
        if let Some(pool) = &self.endpoints[&id].pool {
            return Err(Refusal::AlreadyJoined { pool: pool.clone() });
        }
        validate_pool_name(&name)?;
        match self.pools.get(&name) {
            Some(pool) if pool.members.len() >= self.limits.max_endpoints_per_pool => {
                return Err(Refusal::PoolFull {
                    pool: name,
                    max: self.limits.max_endpoints_per_pool,
                });
            }
            Some(_) => {}
            None if self.mode == PoolMode::Private => {
                return Err(Refusal::NoSuchPool { pool: name });
            }
            None => {
                self.insert_pool(name.clone(), PoolOrigin::Joined, out)?;
            }
        }
        let pool = self
            .pools
            .get_mut(&name)
            .expect("pool exists or was created");
        let peers: Vec<EndpointId> = pool.members.clone();
        pool.members.push(id);
        self.endpoints.get_mut(&id).expect("connected").pool = Some(name.clone());

        let descriptions = pool
            .members
            .iter()
            .map(|m| (*m, self.endpoints[m].description.clone()))
            .collect();
        out.push(Output::Send {
            to: id,
            message: ServerMessage::Joined {
                client_id: id,
                pool: name.clone(),
                peers: peers.clone(),
                descriptions,
            },
        });
        for peer in &peers {
            out.push(Output::Send {
                to: *peer,
                message: ServerMessage::Peer { id },
            });
        }
        out.push(Output::Notice(Notice::Joined {
            endpoint: id,
            pool: name,
            peers: peers.len(),
        }));
        Ok(())
    }

    /// Checks that `from` may signal `to`: both in the same pool, and not the same endpoint.
    fn route_target(
        &self,
        from: EndpointId,
        to: EndpointId,
        event: &'static str,
    ) -> Result<(), Refusal> {
        let Some(pool_name) = &self.endpoints[&from].pool else {
            return Err(Refusal::NotJoined { event });
        };
        if from == to {
            return Err(Refusal::SelfTarget);
        }
        // Other pools' members are reported exactly like ids that do not exist, so a client
        // cannot probe which endpoints exist elsewhere.
        if !self.pools[pool_name].contains(to) {
            return Err(Refusal::UnknownTarget {
                target: to,
                pool: pool_name.clone(),
            });
        }
        Ok(())
    }

    fn route_sdp(
        &mut self,
        from: EndpointId,
        to: EndpointId,
        description: SessionDescription,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        self.route_target(from, to, "rtc:sdp")?;
        out.push(Output::Send {
            to,
            message: ServerMessage::Sdp {
                peer: from,
                description,
            },
        });
        Ok(())
    }

    fn route_candidate(
        &mut self,
        from: EndpointId,
        to: EndpointId,
        candidate: Option<IceCandidate>,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        self.route_target(from, to, "rtc:candidate")?;
        out.push(Output::Send {
            to,
            message: ServerMessage::Candidate { from, candidate },
        });
        Ok(())
    }

    fn insert_pool(
        &mut self,
        name: String,
        origin: PoolOrigin,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        if self.pools.len() >= self.limits.max_pools {
            return Err(Refusal::TooManyPools {
                max: self.limits.max_pools,
            });
        }
        self.pools.insert(name.clone(), Pool::new(origin));
        out.push(Output::Notice(Notice::PoolCreated { pool: name, origin }));
        Ok(())
    }

    fn leave_pool(
        &mut self,
        id: EndpointId,
        name: &str,
        reason: LeaveReason,
        out: &mut Vec<Output>,
    ) {
        let Some(pool) = self.pools.get_mut(name) else {
            return;
        };
        pool.remove(id);
        for peer in &pool.members {
            out.push(Output::Send {
                to: *peer,
                message: ServerMessage::Close { id },
            });
        }
        out.push(Output::Notice(Notice::Left {
            endpoint: id,
            pool: name.to_string(),
            reason,
        }));
        if pool.is_disposable() {
            self.pools.remove(name);
            out.push(Output::Notice(Notice::PoolRemoved {
                pool: name.to_string(),
                reason: PoolRemoval::Empty,
            }));
        }
    }

    // ----- operator requests -------------------------------------------------------------

    /// Creates an operator pool, which lives until the operator closes it.
    pub fn create_pool(&mut self, name: &str) -> Result<Vec<Output>, OperatorError> {
        validate_pool_name(name)?;
        if self.pools.contains_key(name) {
            return Err(OperatorError::PoolExists(name.to_string()));
        }
        let mut out = Vec::new();
        self.insert_pool(name.to_string(), PoolOrigin::Operator, &mut out)?;
        Ok(out)
    }

    /// Force-closes a pool: every member gets `rtc:stop`, then its connection is closed.
    pub fn close_pool(&mut self, name: &str) -> Result<Vec<Output>, OperatorError> {
        let pool = self
            .pools
            .remove(name)
            .ok_or_else(|| OperatorError::UnknownPool(name.to_string()))?;
        let mut out = Vec::new();
        for member in &pool.members {
            self.endpoints.remove(member);
            out.push(Output::Send {
                to: *member,
                message: ServerMessage::Stop,
            });
            out.push(Output::Close { endpoint: *member });
            out.push(Output::Notice(Notice::Left {
                endpoint: *member,
                pool: name.to_string(),
                reason: LeaveReason::PoolClosed,
            }));
        }
        out.push(Output::Notice(Notice::PoolRemoved {
            pool: name.to_string(),
            reason: PoolRemoval::ClosedByOperator,
        }));
        Ok(out)
    }

    /// Sets (or, with `None`, clears) an endpoint's trusted description. The other members of
    /// its pool get `rtc:describe`; later joiners find it in `rtc:joined`.
    pub fn set_description(
        &mut self,
        id: EndpointId,
        description: Option<Value>,
    ) -> Result<Vec<Output>, OperatorError> {
        if matches!(&description, Some(v) if !v.is_object()) {
            return Err(OperatorError::DescriptionNotObject);
        }
        let endpoint = self
            .endpoints
            .get_mut(&id)
            .ok_or(OperatorError::UnknownEndpoint(id))?;
        endpoint.description = description.clone();
        let pool = endpoint.pool.clone();
        let mut out = Vec::new();
        if let Some(name) = &pool {
            // Not sent to the endpoint itself: the reference client looks the id up among its
            // peer connections and throws when it is its own.
            for peer in self.pools[name].others(id) {
                out.push(Output::Send {
                    to: peer,
                    message: ServerMessage::Describe {
                        id,
                        description: description.clone(),
                    },
                });
            }
        }
        out.push(Output::Notice(Notice::DescriptionChanged {
            endpoint: id,
            pool,
        }));
        Ok(out)
    }

    // ----- queries -----------------------------------------------------------------------

    pub fn pools(&self) -> Vec<PoolInfo> {
        self.pools.keys().filter_map(|n| self.pool(n)).collect()
    }

    pub fn pool(&self, name: &str) -> Option<PoolInfo> {
        let pool = self.pools.get(name)?;
        Some(PoolInfo {
            name: name.to_string(),
            origin: pool.origin,
            endpoints: pool
                .members
                .iter()
                .filter_map(|m| self.endpoint(*m))
                .collect(),
        })
    }

    pub fn endpoint(&self, id: EndpointId) -> Option<EndpointInfo> {
        let e = self.endpoints.get(&id)?;
        Some(EndpointInfo {
            id,
            pool: e.pool.clone(),
            description: e.description.clone(),
        })
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }
}

/// Whether `name` can name a pool: 1 to 256 bytes, no control characters.
pub fn validate_pool_name(name: &str) -> Result<(), Refusal> {
    if name.is_empty() {
        return Err(Refusal::InvalidPoolName {
            reason: "it is empty",
        });
    }
    if name.len() > MAX_POOL_NAME_BYTES {
        return Err(Refusal::InvalidPoolName {
            reason: "it is longer than 256 bytes",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(Refusal::InvalidPoolName {
            reason: "it contains control characters",
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
