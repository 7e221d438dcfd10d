//! The admin API over real HTTP on loopback: every route's success, 401 (missing and wrong
//! token), 400 on each bad field, 404 and 409; descriptions reaching pool members over raw
//! WebSocket; force-close; `/metrics` parsed strictly and checked against what the test did.

#[path = "support/prometheus_text.rs"]
mod prometheus_text;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poolgate::admin::{AdminServer, Readiness};
use poolgate::bridge::Bridges;
use poolgate::config::AdminConfig;
use poolgate::plugin::Plugins;
use poolgate::signalling::{Limits, PoolMode, PoolServer};
use poolgate::{Config, Gateway};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TOKEN: &str = "test-token-0123456789abcdef";

async fn gateway(extra: &str) -> Gateway {
    let config = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n{extra}"
    ))
    .unwrap();
    Gateway::start(&config).await.unwrap()
}

struct Api {
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {:?}", self.text))
    }

    /// Checks the status and the error shape, and that the message mentions `needle`.
    fn error(&self, status: u16, code: &str, needle: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let body = self.json();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "message"], "error shape: {body}");
        assert_eq!(body["error"], code, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

impl Api {
    fn new(g: &Gateway) -> Api {
        Api::at(g.admin().expect("admin API running").addr())
    }

    fn at(addr: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = tokio::time::timeout(Duration::from_secs(10), req.send())
            .await
            .expect("no answer within 10 s")
            .unwrap();
        Answer {
            status: res.status(),
            headers: res.headers().clone(),
            text: res.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Some(TOKEN), None).await
    }

    async fn send(&self, method: Method, path: &str, body: &str) -> Answer {
        self.call(method, path, Some(TOKEN), Some(body)).await
    }
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

/// The next signalling event, skipping control frames; `None` when the socket closes.
async fn next_event(ws: &mut Ws) -> Option<(String, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("nothing from the server within 10 s");
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                return Some((v["type"].as_str().unwrap().to_string(), v["data"].clone()));
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn next(ws: &mut Ws) -> (String, Value) {
    next_event(ws).await.expect("socket closed")
}

async fn join(ws: &mut Ws, pool: &str) -> Value {
    send(ws, "rtc:join", json!({ "pool": pool })).await;
    let (t, d) = next(ws).await;
    assert_eq!(t, "rtc:joined", "{d}");
    d
}

#[tokio::test]
async fn every_protected_route_wants_the_token_and_does_nothing_without_it() {
    let g = gateway("[pools]\ncreate = [\"keep\"]\n").await;
    let api = Api::new(&g);
    let mut a = connect(&g).await;
    let a_id = join(&mut a, "keep").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let routes = [
        (Method::GET, "/api/v1/pools".to_string(), None),
        (
            Method::POST,
            "/api/v1/pools".into(),
            Some(r#"{"name": "new"}"#),
        ),
        (Method::GET, "/api/v1/pools/keep".into(), None),
        (Method::DELETE, "/api/v1/pools/keep".into(), None),
        (Method::GET, format!("/api/v1/endpoints/{a_id}"), None),
        (
            Method::GET,
            format!("/api/v1/endpoints/{a_id}/description"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/endpoints/{a_id}/description"),
            Some(r#"{"description": {"x": 1}}"#),
        ),
        (Method::GET, "/metrics".into(), None),
        (Method::GET, "/api/v1/openapi.json".into(), None),
        (Method::GET, "/api/v1/no-such-route".into(), None),
    ];
    for (method, path, body) in &routes {
        let missing = api.call(method.clone(), path, None, *body).await;
        missing.error(401, "unauthorized", "missing Authorization");
        assert_eq!(
            missing.headers["www-authenticate"], "Bearer realm=\"poolgate admin\"",
            "{method} {path}"
        );
        let wrong = api
            .call(
                method.clone(),
                path,
                Some("test-token-0123456789abcdeX"),
                *body,
            )
            .await;
        wrong.error(401, "unauthorized", "wrong token");
        let short = api.call(method.clone(), path, Some("test"), *body).await;
        short.error(401, "unauthorized", "wrong token");
        let basic = api
            .http
            .request(method.clone(), format!("{}{path}", api.base))
            .header("authorization", format!("Basic {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401, "{method} {path} with Basic");
        let opaque = api
            .http
            .request(method.clone(), format!("{}{path}", api.base))
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(b"Bearer \xfftoken").unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            opaque.status(),
            401,
            "{method} {path} with a non-ASCII header"
        );
    }
    // Nothing happened: no pool created or closed, no description set, nothing sent to a.
    let names: Vec<String> = g.pools().pools().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["keep"]);
    assert_eq!(g.pools().pool("keep").unwrap().endpoints.len(), 1);
    assert_eq!(
        g.pools().pool("keep").unwrap().endpoints[0].description,
        None
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), a.next())
            .await
            .is_err(),
        "a was sent something"
    );
    // /health needs no token.
    let health = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.json(),
        json!({"live": true, "ready": true, "pools": 1, "endpoints": 1})
    );
    g.stop().await;
}

#[tokio::test]
async fn health_says_not_ready_until_the_gateway_is() {
    let config = AdminConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(poolgate::config::Secret::new(TOKEN)),
        ..AdminConfig::default()
    };
    let readiness = Readiness::default();
    let pools = PoolServer::new(PoolMode::Public, Limits::default());
    let bridges = Bridges::new(Plugins::default(), pools.clone(), Vec::new(), Vec::new());
    let server = AdminServer::start(&config, pools, bridges, readiness.clone())
        .await
        .unwrap();
    let api = Api::at(server.addr());
    let h = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(h.status, 503);
    assert_eq!(h.json()["ready"], false);
    assert_eq!(h.json()["live"], true);
    readiness.set(true);
    assert_eq!(
        api.call(Method::GET, "/health", None, None).await.status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn pools_list_create_get_and_conflicts() {
    let g = gateway("[pools]\ncreate = [\"lobby\"]\n[limits]\nmax_pools = 3\n").await;
    let api = Api::new(&g);
    let list = api.get("/api/v1/pools").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json(),
        json!({"pools": [{"name": "lobby", "origin": "operator", "endpoints": 0}]})
    );

    let created = api
        .send(Method::POST, "/api/v1/pools", r#"{"name": "stage two"}"#)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["location"], "/api/v1/pools/stage%20two");
    assert_eq!(
        created.json(),
        json!({"name": "stage two", "origin": "operator", "endpoints": []})
    );
    assert!(g.pools().pool("stage two").is_some());
    let detail = api.get("/api/v1/pools/stage%20two").await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.json()["name"], "stage two");

    api.send(Method::POST, "/api/v1/pools", r#"{"name": "lobby"}"#)
        .await
        .error(409, "pool_exists", "lobby");
    api.send(Method::POST, "/api/v1/pools", r#"{"name": "third"}"#)
        .await;
    api.send(Method::POST, "/api/v1/pools", r#"{"name": "fourth"}"#)
        .await
        .error(409, "too_many_pools", "3");

    // Each bad body is refused with 400 naming the field, and creates nothing.
    let long = "x".repeat(257);
    let bad = [
        ("", "invalid_json", "empty"),
        ("{", "invalid_json", "not valid JSON"),
        (r#"["lobby2"]"#, "invalid_json", "must be a JSON object"),
        ("{}", "invalid_field", "missing field `name`"),
        (
            r#"{"name": 7}"#,
            "invalid_field",
            "name: invalid type: integer `7`",
        ),
        (
            r#"{"name": null}"#,
            "invalid_field",
            "name: invalid type: null",
        ),
        (
            r#"{"name": "ok", "mode": "x"}"#,
            "invalid_field",
            "unknown field `mode`",
        ),
        (
            r#"{"name": ""}"#,
            "invalid_field",
            "name: invalid pool name: it is empty",
        ),
        (
            r#"{"name": "a\nb"}"#,
            "invalid_field",
            "name: invalid pool name: it contains control",
        ),
    ];
    for (body, code, needle) in bad {
        api.send(Method::POST, "/api/v1/pools", body)
            .await
            .error(400, code, needle);
    }
    api.send(
        Method::POST,
        "/api/v1/pools",
        &json!({"name": long}).to_string(),
    )
    .await
    .error(400, "invalid_field", "longer than 256 bytes");
    assert_eq!(g.pools().pools().len(), 3);

    api.get("/api/v1/pools/nowhere")
        .await
        .error(404, "unknown_pool", "nowhere");
    api.get("/api/v1/pools/%FF")
        .await
        .error(400, "invalid_field", "name");
    api.call(Method::PATCH, "/api/v1/pools", Some(TOKEN), None)
        .await
        .error(405, "method_not_allowed", "openapi");
    api.get("/api/v1/nothing")
        .await
        .error(404, "not_found", "route");
    let big = json!({"name": "y".repeat(70_000)}).to_string();
    api.send(Method::POST, "/api/v1/pools", &big).await.error(
        413,
        "body_too_large",
        "max_body_bytes",
    );
    g.stop().await;
}

#[tokio::test]
async fn private_mode_pools_come_from_the_api() {
    let g = gateway("[pools]\nmode = \"private\"\n").await;
    let api = Api::new(&g);
    let mut a = connect(&g).await;
    send(&mut a, "rtc:join", json!({"pool": "room"})).await;
    let (t, d) = next(&mut a).await;
    assert_eq!(
        (t.as_str(), d["code"].as_str()),
        ("rtc:error", Some("no_such_pool"))
    );
    let created = api
        .send(Method::POST, "/api/v1/pools", r#"{"name": "room"}"#)
        .await;
    assert_eq!(created.status, 201);
    join(&mut a, "room").await;
    g.stop().await;
}

#[tokio::test]
async fn pool_detail_lists_endpoints_and_force_close_stops_them() {
    let g = gateway("").await;
    let api = Api::new(&g);
    let mut a = connect(&g).await;
    let mut b = connect(&g).await;
    let a_id = join(&mut a, "room").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_id = join(&mut b, "room").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    next(&mut a).await; // rtc:peer
    api.send(
        Method::PUT,
        &format!("/api/v1/endpoints/{b_id}/description"),
        r#"{"description": {"name": "bob"}}"#,
    )
    .await;
    next(&mut a).await; // rtc:describe
    let detail = api.get("/api/v1/pools/room").await;
    assert_eq!(detail.status, 200);
    assert_eq!(
        detail.json(),
        json!({"name": "room", "origin": "joined", "endpoints": [
            {"id": a_id, "pool": "room", "description": null},
            {"id": b_id, "pool": "room", "description": {"name": "bob"}},
        ]})
    );

    let closed = api
        .call(Method::DELETE, "/api/v1/pools/room", Some(TOKEN), None)
        .await;
    assert_eq!(closed.status, 200, "{}", closed.text);
    assert_eq!(
        closed.json(),
        json!({"name": "room", "disconnected": [a_id, b_id]})
    );
    for ws in [&mut a, &mut b] {
        assert_eq!(next(ws).await, ("rtc:stop".to_string(), json!({})));
        assert_eq!(
            next_event(ws).await,
            None,
            "the socket is closed after rtc:stop"
        );
    }
    api.get("/api/v1/pools/room")
        .await
        .error(404, "unknown_pool", "room");
    api.call(Method::DELETE, "/api/v1/pools/room", Some(TOKEN), None)
        .await
        .error(404, "unknown_pool", "room");
    g.stop().await;
}

#[tokio::test]
async fn descriptions_are_read_and_written_and_reach_the_pool() {
    let g = gateway("").await;
    let api = Api::new(&g);
    let mut a = connect(&g).await;
    let mut b = connect(&g).await;
    let a_id = join(&mut a, "room").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    join(&mut b, "room").await;
    next(&mut a).await; // rtc:peer
    let path = format!("/api/v1/endpoints/{a_id}/description");

    let got = api.get(&format!("/api/v1/endpoints/{a_id}")).await;
    assert_eq!(
        got.json(),
        json!({"id": a_id, "pool": "room", "description": null})
    );
    assert_eq!(api.get(&path).await.json(), json!({"description": null}));

    let description = json!({"name": "alice", "role": "presenter"});
    let put = api
        .send(
            Method::PUT,
            &path,
            &json!({"description": description}).to_string(),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json(), json!({"description": description}));
    assert_eq!(
        next(&mut b).await,
        (
            "rtc:describe".to_string(),
            json!({"id": a_id, "uid": a_id, "description": description})
        )
    );
    assert_eq!(
        api.get(&path).await.json(),
        json!({"description": description})
    );

    // A later joiner finds it in rtc:joined.
    let mut c = connect(&g).await;
    let joined = join(&mut c, "room").await;
    assert_eq!(joined["descriptions"][&a_id], description);
    assert_eq!(next(&mut b).await.0, "rtc:peer");

    // Each bad body: 400 naming the field, and nothing changes or is sent.
    let bad = [
        ("", "invalid_json", "empty"),
        ("{\"description\": ", "invalid_json", "not valid JSON"),
        ("{}", "invalid_field", "missing field `description`"),
        (
            r#"{"description": "text"}"#,
            "invalid_field",
            "description: a description must be a JSON object",
        ),
        (r#"{"description": [1]}"#, "invalid_field", "description"),
        (
            r#"{"description": {}, "extra": 1}"#,
            "invalid_field",
            "unknown field `extra`",
        ),
        ("[]", "invalid_json", "must be a JSON object"),
    ];
    for (body, code, needle) in bad {
        api.send(Method::PUT, &path, body)
            .await
            .error(400, code, needle);
    }
    assert_eq!(
        api.get(&path).await.json(),
        json!({"description": description})
    );

    // Unknown and malformed ids.
    let unknown = uuid::Uuid::new_v4();
    for p in [
        format!("/api/v1/endpoints/{unknown}"),
        format!("/api/v1/endpoints/{unknown}/description"),
    ] {
        api.get(&p)
            .await
            .error(404, "unknown_endpoint", &unknown.to_string());
    }
    api.send(
        Method::PUT,
        &format!("/api/v1/endpoints/{unknown}/description"),
        r#"{"description": null}"#,
    )
    .await
    .error(404, "unknown_endpoint", &unknown.to_string());
    api.get("/api/v1/endpoints/not-a-uuid")
        .await
        .error(400, "invalid_field", "id");
    api.send(
        Method::PUT,
        "/api/v1/endpoints/not-a-uuid/description",
        r#"{"description": null}"#,
    )
    .await
    .error(400, "invalid_field", "id");

    // Clearing: null, broadcast as null.
    let cleared = api
        .send(Method::PUT, &path, r#"{"description": null}"#)
        .await;
    assert_eq!(cleared.json(), json!({"description": null}));
    let (t, d) = next(&mut b).await;
    assert_eq!(
        (t.as_str(), &d["description"]),
        ("rtc:describe", &Value::Null)
    );
    g.stop().await;
}

#[tokio::test]
async fn metrics_parse_and_count_what_happened() {
    let g = gateway("").await;
    let api = Api::new(&g);
    let mut a = connect(&g).await;
    let mut b = connect(&g).await;
    let a_id = join(&mut a, "m").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_id = join(&mut b, "m").await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    next(&mut a).await; // rtc:peer
                        // Routed: one sdp and two candidates.
    send(
        &mut a,
        "rtc:sdp",
        json!({"to": b_id, "description": {"type": "offer", "sdp": "v=0\r\n"}}),
    )
    .await;
    next(&mut b).await;
    for _ in 0..2 {
        send(
            &mut b,
            "rtc:candidate",
            json!({"for": a_id, "candidate": null}),
        )
        .await;
        next(&mut a).await;
    }
    // Rejected: a malformed frame and an unknown target.
    a.send(Message::text("not json")).await.unwrap();
    next(&mut a).await;
    send(
        &mut a,
        "rtc:candidate",
        json!({"for": uuid::Uuid::new_v4().to_string(), "candidate": null}),
    )
    .await;
    next(&mut a).await;
    // One description, then b leaves.
    api.send(
        Method::PUT,
        &format!("/api/v1/endpoints/{a_id}/description"),
        r#"{"description": {"k": 1}}"#,
    )
    .await;
    next(&mut b).await;
    b.close(None).await.unwrap();
    assert_eq!(next(&mut a).await.0, "rtc:close");
    // One unauthorized request, so the admin counter has something to show.
    api.call(Method::GET, "/api/v1/pools", None, None).await;

    let res = api.get("/metrics").await;
    assert_eq!(res.status, 200);
    assert!(res.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = prometheus_text::parse(&res.text).unwrap_or_else(|e| panic!("{e}\n{}", res.text));
    let v = |name: &str, labels: &[(&str, &str)]| {
        m.value(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", res.text))
    };
    assert_eq!(
        m.types["poolgate_signalling_messages_routed_total"],
        "counter"
    );
    assert_eq!(m.types["poolgate_pools"], "gauge");
    assert_eq!(
        v(
            "poolgate_signalling_messages_routed_total",
            &[("type", "rtc:sdp")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "poolgate_signalling_messages_routed_total",
            &[("type", "rtc:candidate")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "poolgate_signalling_messages_rejected_total",
            &[("code", "malformed_frame")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "poolgate_signalling_messages_rejected_total",
            &[("code", "unknown_target")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "poolgate_signalling_messages_sent_total",
            &[("type", "rtc:error")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "poolgate_signalling_messages_sent_total",
            &[("type", "rtc:describe")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "poolgate_signalling_messages_sent_total",
            &[("type", "rtc:close")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "poolgate_connections_opened_total",
            &[("transport", "websocket")]
        ),
        2.0
    );
    assert_eq!(
        v("poolgate_connections", &[("transport", "websocket")]),
        1.0
    );
    assert_eq!(v("poolgate_pool_joins_total", &[]), 2.0);
    assert_eq!(
        v("poolgate_pool_leaves_total", &[("reason", "client_closed")]),
        1.0
    );
    assert_eq!(v("poolgate_pools", &[("origin", "joined")]), 1.0);
    assert_eq!(v("poolgate_pools", &[("origin", "operator")]), 0.0);
    assert_eq!(
        v("poolgate_pools_created_total", &[("origin", "joined")]),
        1.0
    );
    assert_eq!(v("poolgate_pool_endpoints", &[]), 1.0);
    assert_eq!(v("poolgate_endpoints", &[]), 1.0);
    assert_eq!(v("poolgate_descriptions_set_total", &[]), 1.0);
    assert_eq!(
        v("poolgate_admin_responses_total", &[("status", "401")]),
        1.0
    );
    assert_eq!(
        v("poolgate_admin_responses_total", &[("status", "200")]),
        1.0
    );
    assert_eq!(v("poolgate_ready", &[]), 1.0);
    g.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_committed_copy() {
    let g = gateway("").await;
    let api = Api::new(&g);
    let res = api.get("/api/v1/openapi.json").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["content-type"], "application/json");
    let generated = poolgate::admin::openapi::document();
    assert_eq!(res.text, generated);
    let doc = res.json();
    for path in [
        "/api/v1/pools",
        "/api/v1/pools/{name}",
        "/api/v1/endpoints/{id}",
        "/api/v1/endpoints/{id}/description",
        "/api/v1/plugins",
        "/api/v1/bridges",
        "/api/v1/bridges/{name}",
        "/api/v1/bridges/{name}/restart",
        "/health",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    g.stop().await;

    // The committed copy is what the code generates. To update it after changing the API:
    // POOLGATE_WRITE_OPENAPI=1 cargo test --release -p poolgate --test admin_api openapi
    let committed_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("POOLGATE_WRITE_OPENAPI").is_some() {
        std::fs::write(&committed_path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "gateway/openapi.json differs from the API the code serves; regenerate it with \
         POOLGATE_WRITE_OPENAPI=1 cargo test --release -p poolgate --test admin_api openapi"
    );
}
