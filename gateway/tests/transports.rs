//! The pool server over real sockets on loopback: raw WebSocket and socket.io framing, bad
//! input over the wire, keepalive, force-close and the HTTP routes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poolgate::{Config, Gateway};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn gateway(extra: &str) -> Gateway {
    let config = Config::parse(&format!("[server]\nlisten = \"127.0.0.1:0\"\n{extra}")).unwrap();
    Gateway::start(&config).await.unwrap()
}

async fn connect(g: &Gateway) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", g.addr()))
        .await
        .unwrap();
    ws
}

async fn send(ws: &mut Ws, t: &str, data: Value) {
    ws.send(Message::text(json!({"type": t, "data": data}).to_string()))
        .await
        .unwrap();
}

/// The next signalling event, skipping control frames; fails after 10 s.
async fn next(ws: &mut Ws) -> (String, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no message within 10 s")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            return (v["type"].as_str().unwrap().to_string(), v["data"].clone());
        }
    }
}

async fn join(ws: &mut Ws, pool: &str) -> Value {
    send(ws, "rtc:join", json!({ "pool": pool })).await;
    let (t, d) = next(ws).await;
    assert_eq!(t, "rtc:joined", "{d}");
    d
}

#[tokio::test]
async fn websocket_clients_join_route_and_leave() {
    let g = gateway("").await;
    let mut a = connect(&g).await;
    let mut b = connect(&g).await;
    let ja = join(&mut a, "room").await;
    let a_id = ja["client_id"].as_str().unwrap().to_string();
    assert_eq!(uuid::Uuid::parse_str(&a_id).unwrap().get_version_num(), 4);
    let jb = join(&mut b, "room").await;
    let b_id = jb["client_id"].as_str().unwrap().to_string();
    assert_eq!(jb["peers"], json!([a_id]));
    assert_eq!(jb["pool"], "room");
    assert_eq!(
        next(&mut a).await,
        ("rtc:peer".into(), json!({ "id": b_id }))
    );

    let offer = json!({"type": "offer", "sdp": "v=0\r\n"});
    send(&mut b, "rtc:sdp", json!({"to": a_id, "description": offer})).await;
    assert_eq!(
        next(&mut a).await,
        (
            "rtc:sdp".into(),
            json!({"peer": b_id, "description": offer})
        )
    );
    send(
        &mut a,
        "rtc:candidate",
        json!({"for": b_id, "from": a_id, "candidate": null}),
    )
    .await;
    assert_eq!(
        next(&mut b).await,
        (
            "rtc:candidate".into(),
            json!({"from": a_id, "candidate": null})
        )
    );

    b.close(None).await.unwrap();
    assert_eq!(
        next(&mut a).await,
        ("rtc:close".into(), json!({"id": b_id, "uid": b_id}))
    );
    g.stop().await;
}

#[tokio::test]
async fn bad_frames_get_rtc_error_and_the_socket_stays_open() {
    let g = gateway("[limits]\nmax_message_bytes = 2000\n").await;
    let mut a = connect(&g).await;
    let bad = [
        Message::text("not json"),
        Message::text("[]"),
        Message::text(json!({"type": "rtc:join", "data": {"pool": 7}}).to_string()),
        Message::text(json!({"type": "rtc:sdp", "data": {"to": "x"}}).to_string()),
        Message::text("y".repeat(3000)),
        Message::binary(vec![1u8, 2, 3]),
    ];
    for m in bad {
        let shown = format!("{m:?}");
        a.send(m).await.unwrap();
        let (t, d) = next(&mut a).await;
        assert_eq!(t, "rtc:error", "for {shown}");
        assert!(d["message"].as_str().unwrap().len() > 10, "{d}");
        assert!(d["code"].is_string(), "{d}");
    }
    // Events that are not signalling are ignored, and the socket still works.
    send(&mut a, "app:hello", json!({"x": 1})).await;
    join(&mut a, "room").await;
    assert_eq!(g.pools().pool("room").unwrap().endpoints.len(), 1);
    g.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_disconnected_by_keepalive() {
    let g = gateway("[keepalive]\ninterval_secs = 1\ntimeout_secs = 2\n").await;
    let mut quiet = connect(&g).await;
    join(&mut quiet, "room").await;
    let mut alive = connect(&g).await;
    join(&mut alive, "room").await;
    // `quiet` is never read again, so it never answers a ping; `alive` keeps reading (and so
    // answers pings) and must be told that `quiet` left.
    let (t, _) = next(&mut alive).await;
    assert_eq!(t, "rtc:close");
    assert_eq!(g.pools().pool("room").unwrap().endpoints.len(), 1);
    drop(quiet);
    g.stop().await;
}

#[tokio::test]
async fn force_closed_pool_sends_rtc_stop_and_closes_sockets() {
    let g = gateway("").await;
    let mut a = connect(&g).await;
    join(&mut a, "room").await;
    g.pools().close_pool("room").unwrap();
    assert_eq!(next(&mut a).await, ("rtc:stop".into(), json!({})));
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match a.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "socket not closed after rtc:stop");
    g.stop().await;
}

#[tokio::test]
async fn description_reaches_peers_and_later_joiners_over_the_wire() {
    let g = gateway("").await;
    let mut a = connect(&g).await;
    let mut b = connect(&g).await;
    let a_id = join(&mut a, "room").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    join(&mut b, "room").await;
    next(&mut a).await; // rtc:peer
    let id = poolgate::signalling::EndpointId(uuid::Uuid::parse_str(&a_id).unwrap());
    g.pools()
        .set_description(id, Some(json!({"name": "alice"})))
        .unwrap();
    assert_eq!(
        next(&mut b).await,
        (
            "rtc:describe".into(),
            json!({"id": a_id, "uid": a_id, "description": {"name": "alice"}})
        )
    );
    let mut c = connect(&g).await;
    let jc = join(&mut c, "room").await;
    assert_eq!(jc["descriptions"][&a_id], json!({"name": "alice"}));
    g.stop().await;
}

#[tokio::test]
async fn rtc_config_lists_the_ice_servers() {
    let g = gateway("[[ice_servers]]\nurls = \"stun:127.0.0.1:3478\"\n").await;
    let body = http_get(&g, "/rtc-config").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let json_start = body.find("\r\n\r\n").unwrap() + 4;
    let v: Value = serde_json::from_str(&body[json_start..]).unwrap();
    assert_eq!(
        v,
        json!({"iceServers": [{"urls": ["stun:127.0.0.1:3478"]}]})
    );
    // No demo page configured: `/` says so instead of a bare 404.
    let body = http_get(&g, "/").await;
    assert!(body.starts_with("HTTP/1.1 503"), "{body}");
    assert!(body.contains("web_root"), "{body}");
    g.stop().await;
}

#[tokio::test]
async fn socketio_handshake_is_served_on_the_same_port() {
    let g = gateway("").await;
    let body = http_get(&g, "/socket.io/?EIO=4&transport=polling").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    // Engine.IO v4 open packet: "0{"sid":...,"pingInterval":10000,...}"
    assert!(body.contains("\"sid\""), "{body}");
    assert!(body.contains("\"pingInterval\":10000"), "{body}");
    g.stop().await;
}

async fn http_get(g: &Gateway, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(g.addr()).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}
