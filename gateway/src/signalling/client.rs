//! The client side of ssp v2, for poolgate's own endpoints: one interface over an in-process
//! connection to the hosted pool server, a raw WebSocket (`ws://`, `wss://`) or socket.io
//! (`http://`, `https://`) connection to another ssp server.

use std::fmt;

use futures_util::{FutureExt, SinkExt, StreamExt};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{self, ClientMessage, ServerMessage};
use super::server::{Connection, Delivery, PoolServer};

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where an endpoint's pool lives.
#[derive(Clone)]
pub enum SignallingTarget {
    /// A pool on this process's own pool server: no network hop.
    Hosted(PoolServer),
    /// A pool on another ssp server, by URL: `ws(s)://…` for raw WebSocket, `http(s)://…` for
    /// socket.io.
    Remote(String),
}

impl fmt::Debug for SignallingTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignallingTarget::Hosted(_) => write!(f, "hosted"),
            SignallingTarget::Remote(url) => write!(f, "{}", redact_url(url)),
        }
    }
}

/// Hides credentials in a URL (`user:password@`, `?token=`) for logs and API output.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out.replace_range(scheme_end + 3..scheme_end + 3 + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        out.truncate(q);
        out.push_str("?***");
    }
    out
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("unsupported signalling URL {0}: use ws://, wss://, http:// or https://")]
    UnsupportedUrl(String),
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// A signalling connection as an endpoint sees it: typed messages both ways.
pub struct Signaller {
    inner: Inner,
}

enum Inner {
    Local(Connection),
    Remote {
        outgoing: mpsc::UnboundedSender<ClientMessage>,
        incoming: mpsc::UnboundedReceiver<ServerMessage>,
        /// Ends by itself once `outgoing` is dropped: it then closes the connection properly
        /// (aborting it would leave socket.io's background poller connected).
        task: JoinHandle<()>,
        finished: bool,
    },
}

impl Signaller {
    /// Connects (it does not join: send `ClientMessage::Join` next).
    pub async fn connect(target: &SignallingTarget) -> Result<Signaller, ClientError> {
        match target {
            SignallingTarget::Hosted(server) => Ok(Signaller {
                inner: Inner::Local(server.connect("in-process")),
            }),
            SignallingTarget::Remote(url) => {
                let (outgoing, out_rx) = mpsc::unbounded_channel();
                let (in_tx, incoming) = mpsc::unbounded_channel();
                let task = if url.starts_with("ws://") || url.starts_with("wss://") {
                    websocket(url, out_rx, in_tx).await?
                } else if url.starts_with("http://") || url.starts_with("https://") {
                    socketio(url, out_rx, in_tx).await?
                } else {
                    return Err(ClientError::UnsupportedUrl(redact_url(url)));
                };
                Ok(Signaller {
                    inner: Inner::Remote {
                        outgoing,
                        incoming,
                        task,
                        finished: false,
                    },
                })
            }
        }
    }

    pub fn send(&self, message: ClientMessage) {
        match &self.inner {
            Inner::Local(c) => c.send(message),
            Inner::Remote { outgoing, .. } => {
                let _ = outgoing.send(message);
            }
        }
    }

    /// The next message from the server; `None` once the connection is gone.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        match &mut self.inner {
            Inner::Local(c) => match c.recv().await? {
                Delivery::Message(m) => Some(m),
                Delivery::Close => None,
            },
            Inner::Remote {
                incoming,
                task,
                finished,
                ..
            } => {
                if *finished {
                    return incoming.try_recv().ok();
                }
                tokio::select! {
                    m = incoming.recv() => m,
                    _ = task => {
                        // The connection task ended: deliver what it left, then report the end.
                        *finished = true;
                        incoming.try_recv().ok()
                    }
                }
            }
        }
    }
}

async fn websocket(
    url: &str,
    mut outgoing: mpsc::UnboundedReceiver<ClientMessage>,
    incoming: mpsc::UnboundedSender<ServerMessage>,
) -> Result<JoinHandle<()>, ClientError> {
    // Bounded: a server that accepts but never upgrades (pyrtc's accept loop drops some
    // sockets that way) must not hang the endpoint; it retries instead.
    let (ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| ClientError::Connect {
            url: redact_url(url),
            reason: format!("no WebSocket upgrade within {CONNECT_TIMEOUT:?}"),
        })?
        .map_err(|e| ClientError::Connect {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
    let (mut tx, mut rx) = ws.split();
    let shown = redact_url(url);
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = rx.next() => match frame {
                    Some(Ok(Message::Text(text))) => match protocol::parse_server_frame(&text) {
                        Ok(Some(m)) => {
                            if incoming.send(m).is_err() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(server = %shown, "ignoring a bad frame from the signalling server: {e}"),
                    },
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(server = %shown, "signalling connection failed: {e}");
                        break;
                    }
                },
                message = outgoing.recv() => {
                    let Some(m) = message else { break };
                    let frame = serde_json::json!({"type": m.event_type(), "data": m.data()}).to_string();
                    if tx.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.close().await;
    }))
}

async fn socketio(
    url: &str,
    mut outgoing: mpsc::UnboundedReceiver<ClientMessage>,
    incoming: mpsc::UnboundedSender<ServerMessage>,
) -> Result<JoinHandle<()>, ClientError> {
    use rust_socketio::asynchronous::ClientBuilder;
    use rust_socketio::{Event, Payload};

    let events = incoming.clone();
    let shown = redact_url(url);
    let on_event_shown = shown.clone();
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<()>();
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<()>();
    let client = ClientBuilder::new(url)
        // The endpoint rejoins by itself (with a new id, as the protocol implies).
        .reconnect(false)
        .on_any(move |event, payload, _| {
            let name = String::from(event);
            if let Payload::Text(mut args) = payload {
                let data = if args.is_empty() {
                    serde_json::Value::Null
                } else {
                    args.swap_remove(0)
                };
                match protocol::parse_server_event(&name, data) {
                    Ok(Some(m)) => {
                        let _ = events.send(m);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(server = %on_event_shown,
                        "ignoring a bad event from the signalling server: {e}"),
                }
            }
            async {}.boxed()
        })
        .on(Event::Close, move |_, _| {
            let _ = closed_tx.send(());
            async {}.boxed()
        })
        .on(Event::Connect, move |_, _| {
            let _ = connected_tx.send(());
            async {}.boxed()
        })
        .connect()
        .await
        .map_err(|e| ClientError::Connect {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
    // Events sent before the server acknowledged the namespace are refused (socketioxide
    // closes the connection), so wait for the acknowledgement, as socket.io-client does.
    let acknowledged = tokio::time::timeout(CONNECT_TIMEOUT, connected_rx.recv()).await;
    if !matches!(acknowledged, Ok(Some(()))) {
        let _ = client.disconnect().await;
        return Err(ClientError::Connect {
            url: shown,
            reason: format!("no socket.io connection acknowledgement within {CONNECT_TIMEOUT:?}"),
        });
    }
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                message = outgoing.recv() => {
                    let Some(m) = message else { break };
                    if let Err(e) = client.emit(m.event_type(), m.data()).await {
                        tracing::warn!(server = %shown, "socket.io send failed: {e}");
                        break;
                    }
                }
                _ = closed_rx.recv() => break,
            }
        }
        let _ = client.disconnect().await;
        // Dropping `incoming` tells the endpoint the connection is gone.
        drop(incoming);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("wss://user:secret@example.net/ws?token=abc"),
            "wss://***@example.net/ws?***"
        );
        assert_eq!(redact_url("ws://127.0.0.1:7001"), "ws://127.0.0.1:7001");
    }
}
