//! The raw-WebSocket transport: `GET /ws`, one JSON text frame per event.

use futures_util::{SinkExt, StreamExt};
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::Filter;

use super::error::ProtocolError;
use super::output::LeaveReason;
use super::server::{Delivery, PoolServer};
use super::settings::Keepalive;

/// Frames larger than this are cut off by the transport (closing the socket). Anything between
/// `max_message_bytes` and this gets a polite rtc:error instead, so the transport limit sits
/// well above the protocol limit.
fn transport_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(4).max(1 << 20)
}

/// The `GET /ws` route.
pub fn route(
    server: PoolServer,
    keepalive: Keepalive,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path("ws")
        .and(warp::path::end())
        .and(warp::ws())
        .map(move |ws: Ws| {
            let server = server.clone();
            let limit = transport_limit(server.limits().max_message_bytes);
            ws.max_message_size(limit)
                .max_frame_size(limit)
                .on_upgrade(move |socket| serve(socket, server, keepalive))
        })
}

async fn serve(socket: WebSocket, server: PoolServer, keepalive: Keepalive) {
    let mut connection = server.connect("websocket");
    let id = connection.id();
    let (mut tx, mut rx) = socket.split();
    let mut ping = interval_at(Instant::now() + keepalive.interval(), keepalive.interval());
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();

    let reason = loop {
        tokio::select! {
            incoming = rx.next() => {
                let msg = match incoming {
                    None => break LeaveReason::ClientClosed,
                    Some(Err(e)) => break LeaveReason::TransportError(e.to_string()),
                    Some(Ok(msg)) => msg,
                };
                last_heard = Instant::now();
                if msg.is_close() {
                    break LeaveReason::ClientClosed;
                } else if let Ok(text) = msg.to_str() {
                    server.receive_frame(id, text);
                } else if msg.is_binary() {
                    server.receive_invalid(id, ProtocolError::BinaryFrame);
                }
                // Pings are answered by the transport; pongs only prove liveness.
            }
            delivery = connection.recv() => {
                let result = match delivery {
                    Some(Delivery::Message(m)) => send(&mut tx, Message::text(m.to_frame()), &keepalive).await,
                    Some(Delivery::Close) => {
                        let _ = tx.send(Message::close_with(1000u16, "pool closed")).await;
                        break LeaveReason::PoolClosed;
                    }
                    None => {
                        let _ = tx.send(Message::close_with(1008u16, "too slow to read")).await;
                        break LeaveReason::SlowConsumer;
                    }
                };
                if let Err(e) = result {
                    break LeaveReason::TransportError(e);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= keepalive.timeout() {
                    break LeaveReason::KeepaliveTimeout;
                }
                if let Err(e) = send(&mut tx, Message::ping(Vec::new()), &keepalive).await {
                    break LeaveReason::TransportError(e);
                }
            }
        }
    };
    let _ = tx.close().await;
    connection.close(reason);
}

/// Sends one frame, giving up when the client has not taken it within the keepalive timeout
/// (a client that stops reading must not pin this connection forever).
async fn send(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    msg: Message,
    keepalive: &Keepalive,
) -> Result<(), String> {
    match tokio::time::timeout(keepalive.timeout(), tx.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the client did not read for the whole keepalive timeout".into()),
    }
}
