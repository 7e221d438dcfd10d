//! The recordings admin routes over real HTTP on loopback, without a recorder running: sessions
//! written as the recorder writes them into a folder the admin server is told about; every
//! route's 401, the 400s (body, fields, query, encoding), 404s (unknown recorder, session,
//! unlisted file, traversal), 416s, a download whole and by range, and a delete. The 409 of a
//! session being recorded needs a running recorder: see tests/tests/recordings_api.rs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use poolgate::admin::recordings::places::Place;
use poolgate::admin::{AdminServer, Readiness};
use poolgate::bridge::Bridges;
use poolgate::config::AdminConfig;
use poolgate::plugin::Plugins;
use poolgate::signalling::{Limits, PoolMode, PoolServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "test-token-0123456789abcdef";

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.bytes)))
    }

    /// Checks the status, the error shape, and that the message mentions `needle`.
    fn error(&self, status: u16, code: &str, needle: &str) {
        let body = self.json();
        assert_eq!(self.status.as_u16(), status, "{body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "message"], "error shape: {body}");
        assert_eq!(body["error"], code, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
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
            bytes: res.bytes().await.unwrap().to_vec(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Some(TOKEN), &[], None).await
    }

    async fn range(&self, path: &str, range: &str) -> Answer {
        self.call(Method::GET, path, Some(TOKEN), &[("range", range)], None)
            .await
    }
}

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FILE: &str = "peer-1/01-00000.webm";

/// A stopped session of `pool` as the recorder writes it, with one 10 000-byte segment.
fn write_session(root: &Path, pool: &str, session: &str, started: u64) -> Vec<u8> {
    let dir = root.join(pool).join(session);
    std::fs::create_dir_all(dir.join("peer-1")).unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(dir.join(FILE), &data).unwrap();
    std::fs::write(dir.join("peer-1/01-00001.webm"), b"in progress, not listed").unwrap();
    let instant = |ms: u64| json!({"at": "2026-11-27T19:05:00.000Z", "unix_ms": ms});
    let index = json!({
        "pool": pool, "session": session, "status": "stopped",
        "started": instant(started), "stopped": instant(started + 5000),
        "peers": {"peer-1": {"description": {"name": "alice"}, "folder": "peer-1", "left": null,
            "recordings": [{"number": 1, "container": "webm", "status": "finished",
                "tracks": [{"id": "v", "kind": "video", "codec": "VP8"},
                           {"id": "a", "kind": "audio", "codec": "OPUS"}],
                "started": instant(started), "stopped": instant(started + 5000),
                "segments": [{"file": FILE, "duration_s": 4.9, "bytes": data.len(),
                              "closed": instant(started + 5000)}]}]}}
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    data
}

async fn server() -> AdminServer {
    let config = AdminConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(poolgate::config::Secret::new(TOKEN)),
        ..AdminConfig::default()
    };
    let pools = PoolServer::new(PoolMode::Public, Limits::default());
    let bridges = Bridges::new(Plugins::default(), pools.clone(), Vec::new(), Vec::new());
    AdminServer::start(&config, pools, bridges, Readiness::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn recordings_routes_list_download_delete_and_refuse() {
    let root = Scratch(
        std::env::temp_dir().join(format!("poolgate-admin-recordings-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&root.0);
    let data = write_session(&root.0, "room a", "20261127T190500Z", 1_000);
    write_session(&root.0, "other", "20261127T190600Z", 2_000);
    std::fs::write(root.0.join("room a/secret.txt"), b"not a segment").unwrap();
    let server = server().await;
    let api = Api {
        base: format!("http://{}", server.addr()),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    // Nothing known yet.
    assert_eq!(
        api.get("/api/v1/recordings").await.json(),
        json!({"sessions": []})
    );
    server.recording_places().remember(Place {
        directory: root.0.clone(),
        path_template: "{pool}/{session}/{peer}".into(),
    });
    let session = "/api/v1/recordings/room%20a/20261127T190500Z";
    let file = format!("{session}/files/peer-1/01-00000.webm");

    // Every route wants the token.
    for (method, path) in [
        (Method::GET, "/api/v1/recorders"),
        (Method::POST, "/api/v1/recorders"),
        (Method::GET, "/api/v1/recorders/x"),
        (Method::DELETE, "/api/v1/recorders/x"),
        (Method::GET, "/api/v1/recordings"),
        (Method::GET, session),
        (Method::DELETE, session),
        (Method::GET, &file),
    ] {
        for token in [None, Some("wrong")] {
            api.call(method.clone(), path, token, &[], None)
                .await
                .error(401, "unauthorized", "");
        }
    }

    // Lists and reads.
    let list = api.get("/api/v1/recordings").await.json();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(sessions[0]["pool"], "room a");
    assert_eq!(sessions[0]["status"], "stopped");
    assert_eq!(sessions[0]["live"], false);
    assert_eq!(sessions[0]["segments"], 1);
    assert_eq!(sessions[0]["bytes"], 10_000);
    assert_eq!(sessions[0]["url"], session);
    let only = api.get("/api/v1/recordings?pool=other").await.json();
    assert_eq!(only["sessions"].as_array().unwrap().len(), 1, "{only}");
    assert_eq!(only["sessions"][0]["pool"], "other");
    let detail = api.get(session).await.json();
    let peer = &detail["peers"]["peer-1"];
    assert_eq!(peer["description"], json!({"name": "alice"}));
    let recording = &peer["recordings"][0];
    assert_eq!(recording["tracks"][0]["codec"], "VP8");
    assert_eq!(recording["segments"][0]["duration_s"], 4.9);
    assert_eq!(
        recording["segments"][0]["url"],
        format!("{session}/files/peer%2D1/01%2D00000%2Ewebm")
    );
    assert_eq!(
        api.get("/api/v1/recorders").await.json(),
        json!({"recorders": []})
    );

    // Downloads: whole, by the URL the index gives, by range, and refused ranges.
    let whole = api.get(&file).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.headers["content-type"], "video/webm");
    assert_eq!(whole.headers["accept-ranges"], "bytes");
    assert_eq!(whole.bytes, data);
    let by_url = api
        .get(recording["segments"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!(by_url.bytes, data);
    for (range, first, last) in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-2999", 1000, 2999),
        ("bytes=9000-", 9000, 9999),
        ("bytes=9990-20000", 9990, 9999),
        ("bytes=-100", 9900, 9999),
    ] {
        let part = api.range(&file, range).await;
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(
            part.headers["content-range"],
            format!("bytes {first}-{last}/10000").as_str()
        );
        assert_eq!(part.bytes, &data[first..=last], "{range}");
    }
    for (range, needle) in [
        ("bytes=10000-", "no byte"),
        ("bytes=-0", "no byte"),
        ("bytes=5-1", "use bytes="),
        ("bytes=x-", "use bytes="),
        ("lines=1-2", "use bytes="),
        ("bytes=0-1,4-5", "one range"),
    ] {
        let refused = api.range(&file, range).await;
        refused.error(416, "range_not_satisfiable", needle);
        assert_eq!(refused.headers["content-range"], "bytes */10000", "{range}");
    }

    // 404s: no such session, recorder, file; nothing outside what the index lists.
    api.get("/api/v1/recordings/room%20a/nope")
        .await
        .error(404, "unknown_session", "nope");
    api.get("/api/v1/recordings/nope/20261127T190500Z")
        .await
        .error(404, "unknown_session", "nope");
    api.get("/api/v1/recorders/nope")
        .await
        .error(404, "unknown_recorder", "nope");
    api.call(
        Method::DELETE,
        "/api/v1/recorders/nope",
        Some(TOKEN),
        &[],
        None,
    )
    .await
    .error(404, "unknown_recorder", "nope");
    for bad in [
        "peer-1/01-00001.webm",
        "index.json",
        "..%2Fsecret.txt",
        "peer-1/..%2F..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
    ] {
        api.get(&format!("{session}/files/{bad}")).await.error(
            404,
            "unknown_file",
            "lists no segment",
        );
    }

    // 400s: the body and its fields, the query, the path's encoding.
    let post = |body: &'static str| {
        let api = &api;
        async move {
            api.call(
                Method::POST,
                "/api/v1/recorders",
                Some(TOKEN),
                &[],
                Some(body),
            )
            .await
        }
    };
    post("").await.error(400, "invalid_json", "empty");
    post("{").await.error(400, "invalid_json", "not valid JSON");
    post("[]").await.error(400, "invalid_json", "JSON object");
    post(r#"{"directory": "/x"}"#)
        .await
        .error(400, "invalid_field", "missing field `pool`");
    post(r#"{"pool": "p", "segment_secs": 3}"#).await.error(
        400,
        "invalid_field",
        "unknown field `segment_secs`",
    );
    post(r#"{"pool": "p", "segment_seconds": "3"}"#)
        .await
        .error(400, "invalid_field", "segment_seconds");
    // No recorder plugin in this gateway: the plugin is named.
    post(r#"{"pool": "p", "directory": "/x"}"#)
        .await
        .error(400, "invalid_field", "recorder");
    post(r#"{"pool": "p", "name": "a b", "directory": "/x"}"#)
        .await
        .error(400, "invalid_field", "bridge name");
    api.get("/api/v1/recordings?limit=3")
        .await
        .error(400, "invalid_field", "limit");
    api.get("/api/v1/recordings/%FF/x")
        .await
        .error(400, "invalid_field", "pool");
    api.get("/api/v1/recorders/%FF")
        .await
        .error(400, "invalid_field", "name");
    api.call(Method::PUT, session, Some(TOKEN), &[], Some("{}"))
        .await
        .error(405, "method_not_allowed", "");

    // Nothing was changed by any refusal.
    assert_eq!(api.get(&file).await.bytes, data);
    assert_eq!(
        api.get("/api/v1/recordings").await.json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The same pool and session name in a second directory: each session's url picks it by
    // folder; without one, 409.
    let second = root.0.join("second");
    let second_data = write_session(&second, "other", "20261127T190600Z", 3_000);
    server.recording_places().remember(Place {
        directory: second.clone(),
        path_template: "{pool}/{session}/{peer}".into(),
    });
    let twins = api.get("/api/v1/recordings?pool=other").await.json();
    let twins = twins["sessions"].as_array().unwrap().clone();
    assert_eq!(twins.len(), 2, "{twins:?}");
    api.get("/api/v1/recordings/other/20261127T190600Z")
        .await
        .error(409, "ambiguous_session", "folder");
    let url = twins[1]["url"].as_str().unwrap();
    assert!(url.contains("?folder="), "{url}");
    let detail = api.get(url).await.json();
    assert_eq!(detail["folder"], twins[1]["folder"]);
    let segment_url = detail["peers"]["peer-1"]["recordings"][0]["segments"][0]["url"]
        .as_str()
        .unwrap();
    assert_eq!(api.get(segment_url).await.bytes, second_data);
    api.get("/api/v1/recordings/other/20261127T190600Z?folder=%2Fnowhere")
        .await
        .error(404, "unknown_session", "nowhere");
    api.get("/api/v1/recordings/other/20261127T190600Z?fold=x")
        .await
        .error(400, "invalid_field", "fold");
    let gone = api.call(Method::DELETE, url, Some(TOKEN), &[], None).await;
    assert_eq!(gone.status, 204);
    assert!(!second.join("other/20261127T190600Z").exists());

    // Delete: gone from the disk and the API; the other session stays.
    let deleted = api
        .call(Method::DELETE, session, Some(TOKEN), &[], None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(!root.0.join("room a/20261127T190500Z").exists());
    assert!(root.0.join("room a/secret.txt").exists());
    api.get(session).await.error(404, "unknown_session", "");
    api.get(&file).await.error(404, "unknown_session", "");
    api.call(Method::DELETE, session, Some(TOKEN), &[], None)
        .await
        .error(404, "unknown_session", "");
    let left = api.get("/api/v1/recordings").await.json();
    assert_eq!(left["sessions"].as_array().unwrap().len(), 1, "{left}");
    server.stop().await;
}
