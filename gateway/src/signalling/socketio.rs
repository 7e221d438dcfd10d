//! The socket.io transport (Engine.IO v4, as `socket.io-client` 4.x speaks it), on the default
//! namespace at `/socket.io/`. The event name is the type; the first argument is the data.

use serde_json::Value;
use socketioxide::extract::{Event, SocketRef, TryData};
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;

use super::error::ProtocolError;
use super::output::LeaveReason;
use super::server::{Delivery, PoolServer};
use super::settings::Keepalive;

/// Builds the socket.io layer that serves the pool server beside the HTTP routes.
pub fn layer(server: PoolServer, keepalive: Keepalive) -> SocketIoLayer {
    let max = server.limits().max_message_bytes;
    let (layer, io) = SocketIo::builder()
        .ping_interval(keepalive.interval())
        .ping_timeout(keepalive.timeout())
        // Engine.IO closes the connection above this; the protocol limit below it answers with
        // an rtc:error instead, as on the raw WebSocket.
        .max_payload(max.saturating_mul(4).max(1 << 20) as u64)
        .build_layer();
    io.ns("/", move |socket: SocketRef| {
        // Done before returning, so the handlers exist before the socket's first message is
        // dispatched (socketioxide spawns the returned future).
        on_connect(socket, server.clone());
        std::future::ready(())
    });
    layer
}

fn on_connect(socket: SocketRef, server: PoolServer) {
    let mut connection = server.connect("socket.io");
    let id = connection.id();

    // socketioxide runs a handler's synchronous part in the order messages arrive and spawns
    // its future; doing all the work before returning the (empty) future keeps each client's
    // messages in order, which signalling depends on (an answer before its candidates).
    let events_server = server.clone();
    socket.on_fallback(move |Event(event): Event, TryData(data): TryData<Value>| {
        match data {
            Ok(data) => events_server.receive_event(id, &event, data),
            Err(e) if event.starts_with("rtc:") => events_server.receive_invalid(
                id,
                ProtocolError::NotJson(format!("{event}: unreadable data: {e}")),
            ),
            Err(_) => {}
        }
        std::future::ready(())
    });
    let disconnect_server = server.clone();
    socket.on_disconnect(move |reason: socketioxide::socket::DisconnectReason| {
        disconnect_server.disconnect(id, leave_reason(reason));
        std::future::ready(())
    });

    tokio::spawn(async move {
        while let Some(delivery) = connection.recv().await {
            match delivery {
                Delivery::Message(m) => {
                    if let Err(e) = socket.emit(m.event_type(), &m.data()) {
                        tracing::debug!(endpoint = %id, "socket.io emit failed: {e}");
                        break;
                    }
                }
                Delivery::Close => break,
            }
        }
        // Queue ended (slow reader or pool closed) or the socket is gone: make sure it is closed.
        let _ = socket.disconnect();
        connection.close(LeaveReason::ClientClosed);
    });
}

fn leave_reason(reason: socketioxide::socket::DisconnectReason) -> LeaveReason {
    use socketioxide::socket::DisconnectReason as R;
    match reason {
        R::ClientNSDisconnect | R::TransportClose => LeaveReason::ClientClosed,
        R::HeartbeatTimeout => LeaveReason::KeepaliveTimeout,
        R::ServerNSDisconnect | R::ClosingServer => LeaveReason::Shutdown,
        other => LeaveReason::TransportError(format!("{other:?}")),
    }
}
