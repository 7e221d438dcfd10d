//! The pool server on tokio: one [`Registry`] shared by every connection, each connection's
//! outgoing queue, and the library API the rest of poolgate uses.
//!
//! Every input takes the registry lock, runs the state machine and queues its outputs before
//! the lock is released, so messages reach each client in the order the registry produced
//! them. The lock is never held across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;

use super::endpoint::EndpointId;
use super::error::{OperatorError, ProtocolError};
use super::output::{LeaveReason, Notice, Output};
use super::protocol::ClientMessage;
use super::registry::{EndpointInfo, PoolInfo, Registry};
use super::settings::{Limits, PoolMode};
use super::stats::SignallingStats;
use super::ServerMessage;

/// What a connection's transport is told to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// Send this event to the client.
    Message(ServerMessage),
    /// Close the connection (after the messages queued before this).
    Close,
}

/// A handle on a running pool server. Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct PoolServer {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    queue_capacity: usize,
}

struct State {
    registry: Registry,
    links: HashMap<EndpointId, Link>,
    stats: SignallingStats,
}

struct Link {
    transport: &'static str,
    tx: mpsc::Sender<Delivery>,
}

impl PoolServer {
    pub fn new(mode: PoolMode, limits: Limits) -> Self {
        PoolServer {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    registry: Registry::new(mode, limits),
                    links: HashMap::new(),
                    stats: SignallingStats::default(),
                }),
                queue_capacity: limits.max_queued_messages,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in the registry; the state it left is
        // still the best there is, so keep serving rather than poisoning every connection.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limits(&self) -> Limits {
        *self.lock().registry.limits()
    }

    /// Registers a new connection. The returned [`Connection`] receives what the server sends
    /// it; dropping it disconnects the endpoint.
    pub fn connect(&self, transport: &'static str) -> Connection {
        let id = EndpointId::new_random();
        let (tx, rx) = mpsc::channel(self.inner.queue_capacity);
        let mut state = self.lock();
        state.registry.connect(id);
        state.links.insert(id, Link { transport, tx });
        state.stats.connection_opened(transport);
        tracing::debug!(endpoint = %id, transport, "connection opened");
        Connection {
            id,
            rx,
            server: self.clone(),
            reason: Some(LeaveReason::ClientClosed),
        }
    }

    /// A raw-WebSocket text frame from a client.
    pub fn receive_frame(&self, id: EndpointId, text: &str) {
        tracing::trace!(endpoint = %id, bytes = text.len(), "received a frame");
        self.run(|r| r.receive_frame(id, text));
    }

    /// A socket.io event from a client.
    pub fn receive_event(&self, id: EndpointId, event: &str, data: Value) {
        tracing::trace!(endpoint = %id, event, "received");
        let size = serde_json::to_string(&data).map(|s| s.len()).unwrap_or(0);
        self.run(|r| r.receive_event(id, event, data, size));
    }

    /// Input the transport could not even decode.
    pub fn receive_invalid(&self, id: EndpointId, error: ProtocolError) {
        self.run(|r| r.receive_invalid(id, error));
    }

    /// A typed message from an in-process endpoint.
    pub fn send(&self, id: EndpointId, message: ClientMessage) {
        self.run(|r| r.receive(id, Ok(Some(message))));
    }

    /// The connection is gone. Idempotent.
    pub fn disconnect(&self, id: EndpointId, reason: LeaveReason) {
        let mut state = self.lock();
        state.links.remove(&id);
        let out = state.registry.disconnect(id, reason);
        dispatch(&mut state, out);
    }

    fn run(&self, f: impl FnOnce(&mut Registry) -> Vec<Output>) {
        let mut state = self.lock();
        let out = f(&mut state.registry);
        dispatch(&mut state, out);
    }

    // ----- library API ---------------------------------------------------------------------

    /// Joins `pool` as an in-process endpoint: same rules and messages as a remote client,
    /// without a network hop. The first delivery is `rtc:joined` or `rtc:error`.
    pub fn join_local(&self, pool: &str) -> Connection {
        let connection = self.connect("in-process");
        self.send(
            connection.id,
            ClientMessage::Join {
                pool: pool.to_string(),
            },
        );
        connection
    }

    pub fn pools(&self) -> Vec<PoolInfo> {
        self.lock().registry.pools()
    }

    pub fn pool(&self, name: &str) -> Option<PoolInfo> {
        self.lock().registry.pool(name)
    }

    pub fn endpoint(&self, id: EndpointId) -> Option<EndpointInfo> {
        self.lock().registry.endpoint(id)
    }

    /// Number of connected endpoints, joined or not.
    pub fn endpoint_count(&self) -> usize {
        self.lock().registry.endpoint_count()
    }

    /// Open connections by transport (`websocket`, `socketio`, `in-process`).
    pub fn connections_by_transport(&self) -> HashMap<&'static str, usize> {
        let state = self.lock();
        let mut counts = HashMap::new();
        for link in state.links.values() {
            *counts.entry(link.transport).or_default() += 1;
        }
        counts
    }

    /// What the server has done since it started, for metrics.
    pub fn stats(&self) -> SignallingStats {
        self.lock().stats.clone()
    }

    /// Creates an operator pool (the only way pools exist in private mode).
    pub fn create_pool(&self, name: &str) -> Result<(), OperatorError> {
        self.operate(|r| r.create_pool(name))
    }

    /// Force-closes a pool: `rtc:stop` to each member, then its connection is closed.
    pub fn close_pool(&self, name: &str) -> Result<(), OperatorError> {
        self.operate(|r| r.close_pool(name))
    }

    /// Sets or clears an endpoint's trusted description, broadcasting `rtc:describe`.
    pub fn set_description(
        &self,
        id: EndpointId,
        description: Option<Value>,
    ) -> Result<(), OperatorError> {
        self.operate(|r| r.set_description(id, description))
    }

    /// Closes every connection, for shutdown.
    pub fn close_all(&self) {
        let mut state = self.lock();
        let ids: Vec<EndpointId> = state.links.keys().copied().collect();
        for id in ids {
            if let Some(link) = state.links.remove(&id) {
                let _ = link.tx.try_send(Delivery::Close);
            }
            let out = state.registry.disconnect(id, LeaveReason::Shutdown);
            dispatch(&mut state, out);
        }
    }

    fn operate(
        &self,
        f: impl FnOnce(&mut Registry) -> Result<Vec<Output>, OperatorError>,
    ) -> Result<(), OperatorError> {
        let mut state = self.lock();
        let out = f(&mut state.registry)?;
        dispatch(&mut state, out);
        Ok(())
    }
}

/// Carries out the registry's outputs: queue messages, close links, log notices. A client whose
/// queue is full is disconnected on the spot, and what that causes is carried out too.
fn dispatch(state: &mut State, out: Vec<Output>) {
    let mut pending = out;
    while !pending.is_empty() {
        let mut slow = Vec::new();
        for output in pending.drain(..) {
            match output {
                Output::Send { to, message } => {
                    let Some(link) = state.links.get(&to) else {
                        continue;
                    };
                    if tracing::enabled!(tracing::Level::TRACE) {
                        let detail = match &message {
                            ServerMessage::Sdp { peer, description } => {
                                format!("{} from {peer}", description.kind.as_str())
                            }
                            ServerMessage::Candidate { from, candidate } => format!(
                                "{} from {from}",
                                if candidate.is_some() {
                                    "candidate"
                                } else {
                                    "end-of-candidates"
                                }
                            ),
                            _ => String::new(),
                        };
                        tracing::trace!(endpoint = %to, event = message.event_type(), %detail, "queued");
                    }
                    let event = message.event_type();
                    match link.tx.try_send(Delivery::Message(message)) {
                        Ok(()) => state.stats.queued(event),
                        Err(mpsc::error::TrySendError::Full(_)) => slow.push(to),
                        // The transport is already gone; its disconnect is on its way.
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                }
                Output::Close { endpoint } => {
                    if let Some(link) = state.links.remove(&endpoint) {
                        let _ = link.tx.try_send(Delivery::Close);
                    }
                }
                Output::Notice(notice) => {
                    state.stats.notice(&notice);
                    log_notice(state, &notice);
                }
            }
        }
        for id in slow {
            // Dropping the sender ends the transport's receive loop, which closes the socket.
            if let Some(link) = state.links.remove(&id) {
                tracing::warn!(endpoint = %id, transport = link.transport,
                    "disconnecting a client that stopped reading its messages");
            }
            pending.extend(state.registry.disconnect(id, LeaveReason::SlowConsumer));
        }
    }
}

fn log_notice(state: &State, notice: &Notice) {
    let transport = |id: &EndpointId| state.links.get(id).map(|l| l.transport).unwrap_or("-");
    match notice {
        Notice::Joined {
            endpoint,
            pool,
            peers,
        } => tracing::info!(%endpoint, %pool, peers, transport = transport(endpoint),
            "endpoint joined pool \"{pool}\" ({peers} other endpoints there)"),
        Notice::Left {
            endpoint,
            pool,
            reason,
        } => tracing::info!(%endpoint, %pool, "endpoint left pool \"{pool}\": {reason}"),
        Notice::PoolCreated { pool, origin } => {
            tracing::info!(%pool, ?origin, "pool \"{pool}\" created")
        }
        Notice::PoolRemoved { pool, reason } => {
            tracing::info!(%pool, "pool \"{pool}\" removed: {reason}")
        }
        Notice::DescriptionChanged { endpoint, pool } => {
            tracing::info!(%endpoint, pool = pool.as_deref().unwrap_or("-"), "endpoint description set")
        }
        Notice::Refused { endpoint, error } => tracing::warn!(%endpoint, code = error.code(),
            transport = transport(endpoint), "refused a signalling message: {error}"),
    }
}

/// One endpoint's connection to the server: its id and what the server sends it.
/// Dropping it disconnects the endpoint.
pub struct Connection {
    id: EndpointId,
    rx: mpsc::Receiver<Delivery>,
    server: PoolServer,
    reason: Option<LeaveReason>,
}

impl Connection {
    pub fn id(&self) -> EndpointId {
        self.id
    }

    pub fn server(&self) -> &PoolServer {
        &self.server
    }

    /// The next delivery; `None` once the server has dropped this connection.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// Sends a typed message as this endpoint.
    pub fn send(&self, message: ClientMessage) {
        self.server.send(self.id, message);
    }

    /// Disconnects, telling the pool why.
    pub fn close(mut self, reason: LeaveReason) {
        self.reason = Some(reason);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let reason = self.reason.take().unwrap_or(LeaveReason::ClientClosed);
        self.server.disconnect(self.id, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_endpoints_meet_and_leave() {
        let server = PoolServer::new(PoolMode::Public, Limits::default());
        let mut a = server.join_local("room");
        let Some(Delivery::Message(ServerMessage::Joined { peers, .. })) = a.recv().await else {
            panic!("expected rtc:joined");
        };
        assert!(peers.is_empty());
        let mut b = server.join_local("room");
        assert!(matches!(
            b.recv().await,
            Some(Delivery::Message(ServerMessage::Joined { peers, .. })) if peers == vec![a.id()]
        ));
        assert_eq!(
            a.recv().await,
            Some(Delivery::Message(ServerMessage::Peer { id: b.id() }))
        );
        let b_id = b.id();
        b.close(LeaveReason::ClientClosed);
        assert_eq!(
            a.recv().await,
            Some(Delivery::Message(ServerMessage::Close { id: b_id }))
        );
        assert_eq!(server.pool("room").unwrap().endpoints.len(), 1);
        drop(a);
        assert!(server.pools().is_empty());
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_disconnected() {
        let limits = Limits {
            max_queued_messages: 4,
            ..Limits::default()
        };
        let server = PoolServer::new(PoolMode::Public, limits);
        let mut slow = server.join_local("room");
        let fast = server.join_local("room");
        // The slow endpoint never reads: rtc:joined, rtc:peer and two candidates fill its queue;
        // the third candidate overflows it.
        for _ in 0..3 {
            fast.send(ClientMessage::Candidate {
                to: slow.id(),
                candidate: None,
            });
        }
        let members = server.pool("room").unwrap().endpoints;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].id, fast.id());
        // Its queue ends (after what it already held): the transport then closes the socket.
        let mut n = 0;
        while slow.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[tokio::test]
    async fn stats_count_what_was_delivered() {
        let server = PoolServer::new(PoolMode::Public, Limits::default());
        let a = server.join_local("room");
        let b = server.join_local("room");
        a.send(ClientMessage::Candidate {
            to: b.id(),
            candidate: None,
        });
        // Refused: a second join, and a target that is not in the pool.
        a.send(ClientMessage::Join {
            pool: "other".into(),
        });
        a.send(ClientMessage::Candidate {
            to: EndpointId::new_random(),
            candidate: None,
        });
        server
            .set_description(a.id(), Some(serde_json::json!({"n": 1})))
            .unwrap();
        drop(b);
        let s = server.stats();
        assert_eq!(s.connections_opened.get("in-process"), Some(&2));
        assert_eq!(s.joins, 2);
        assert_eq!(s.routed.get("rtc:candidate"), Some(&1));
        assert_eq!(s.routed.get("rtc:sdp"), None);
        assert_eq!(s.rejected.get("already_joined"), Some(&1));
        assert_eq!(s.rejected.get("unknown_target"), Some(&1));
        assert_eq!(s.sent.get("rtc:describe"), Some(&1));
        assert_eq!(s.sent.get("rtc:error"), Some(&2));
        assert_eq!(s.descriptions_set, 1);
        assert_eq!(s.leaves.get("client_closed"), Some(&1));
        assert_eq!(s.pools_created.get("joined"), Some(&1));
        drop(a);
        let s = server.stats();
        assert_eq!(s.pools_removed.get("empty"), Some(&1));
        assert_eq!(s.leaves.get("client_closed"), Some(&2));
    }

    #[tokio::test]
    async fn force_close_delivers_stop_then_close() {
        let server = PoolServer::new(PoolMode::Public, Limits::default());
        let mut a = server.join_local("room");
        a.recv().await;
        server.close_pool("room").unwrap();
        assert_eq!(a.recv().await, Some(Delivery::Message(ServerMessage::Stop)));
        assert_eq!(a.recv().await, Some(Delivery::Close));
        assert_eq!(a.recv().await, None);
        assert!(server.pools().is_empty());
    }
}
