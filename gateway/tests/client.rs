//! poolgate's own ssp client against poolgate's server: in-process, raw WebSocket and
//! socket.io connections meet in one pool and signal each other the same way.

use std::time::Duration;

use poolgate::signalling::protocol::{SdpType, SessionDescription};
use poolgate::signalling::{ClientMessage, ServerMessage, Signaller, SignallingTarget};
use poolgate::{Config, Gateway};

async fn next(s: &mut Signaller) -> ServerMessage {
    tokio::time::timeout(Duration::from_secs(10), s.recv())
        .await
        .expect("no message within 10 s")
        .expect("connection closed")
}

async fn joined(s: &mut Signaller, pool: &str) -> (poolgate::signalling::EndpointId, usize) {
    s.send(ClientMessage::Join { pool: pool.into() });
    match next(s).await {
        ServerMessage::Joined {
            client_id, peers, ..
        } => (client_id, peers.len()),
        other => panic!("expected rtc:joined, got {other:?}"),
    }
}

#[tokio::test]
async fn hosted_websocket_and_socketio_clients_meet() {
    let config = Config::parse("[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let g = Gateway::start(&config).await.unwrap();
    let targets = [
        SignallingTarget::Hosted(g.pools().clone()),
        SignallingTarget::Remote(format!("ws://{}/ws", g.addr())),
        SignallingTarget::Remote(format!("http://{}", g.addr())),
    ];
    let mut clients = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let mut s = Signaller::connect(t).await.unwrap();
        let (id, peers) = joined(&mut s, "mixed").await;
        assert_eq!(peers, i, "{t:?}");
        for (_, earlier) in clients.iter_mut() {
            assert_eq!(next(earlier).await, ServerMessage::Peer { id });
        }
        clients.push((id, s));
    }
    // Each one sends an offer to the next; it arrives with the true sender.
    for i in 0..3 {
        let (from, to) = (clients[i].0, clients[(i + 1) % 3].0);
        let description = SessionDescription {
            kind: SdpType::Offer,
            sdp: format!("v=0 from {i}"),
        };
        clients[i].1.send(ClientMessage::Sdp {
            to,
            description: description.clone(),
        });
        let receiver = &mut clients[(i + 1) % 3].1;
        assert_eq!(
            next(receiver).await,
            ServerMessage::Sdp {
                peer: from,
                description
            }
        );
    }
    // The socket.io client leaves: the others hear rtc:close.
    let (gone, s) = clients.pop().unwrap();
    drop(s);
    for (_, s) in clients.iter_mut() {
        assert_eq!(next(s).await, ServerMessage::Close { id: gone });
    }
    // Force-closing the pool ends every client's stream after rtc:stop.
    g.pools().close_pool("mixed").unwrap();
    for (_, s) in clients.iter_mut() {
        assert_eq!(next(s).await, ServerMessage::Stop);
        let end = tokio::time::timeout(Duration::from_secs(10), s.recv()).await;
        assert_eq!(end.expect("stream did not end"), None);
    }
    g.stop().await;
}

#[tokio::test]
async fn unreachable_and_unsupported_urls_are_clear_errors() {
    let bad = Signaller::connect(&SignallingTarget::Remote("ftp://x".into())).await;
    assert!(bad.err().unwrap().to_string().contains("ws://"));
    // Nothing listens on port 9 of loopback.
    let refused = Signaller::connect(&SignallingTarget::Remote("ws://127.0.0.1:9/ws".into())).await;
    assert!(refused
        .err()
        .unwrap()
        .to_string()
        .contains("cannot connect"));
}
