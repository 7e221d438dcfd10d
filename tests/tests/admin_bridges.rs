//! The admin API's plugin and bridge routes over real HTTP: every route's success, 401 (missing
//! and wrong token), 400 on each bad field, 404 and 409; secrets never in an answer; `/metrics`
//! showing each bridge's state and the metrics its plugin reports.
//!
//! The bridges use the workspace's real example-echo plugin. Trials named `endpoint_*` start
//! bridge endpoints and a managed endpoint talking to them (the Makefile runs each in its own
//! process); the whole binary runs in a network namespace that has only `lo`.

#[path = "../../gateway/tests/support/prometheus_text.rs"]
mod prometheus_text;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use libtest_mimic::Trial;
use poolgate::endpoint::{EndpointEvent, Payload};
use poolgate::signalling::EndpointId;
use poolgate::{Config, Gateway};
use poolgate_tests::plugins::PluginDir;
use poolgate_tests::scenario::{answer_pings, expect, run, run_trials, start_endpoint};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "bridge-test-token-0123456789";
const ECHO: &str = "poolgate_example_echo";
const BAD_VERSION: &str = "poolgate_test_bad_version";
/// Bounds a hang on a loaded 2-core machine; measures nothing.
const STATUS_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    run_trials(|| {
        vec![
            Trial::test(
                "admin_plugin_and_bridge_routes_refuse_what_they_must",
                || run(refusals()),
            ),
            Trial::test(
                "endpoint_admin_bridges_are_created_updated_restarted_and_deleted",
                || run(lifecycle()),
            ),
        ]
    });
}

/// A gateway with the admin API on loopback, `dir` as its plugin folder, and `extra` TOML.
async fn start_gateway(dir: &PluginDir, extra: &str) -> anyhow::Result<Gateway> {
    let config = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         token = \"{TOKEN}\"\n[plugins]\ndir = {:?}\n{extra}",
        dir.path().display().to_string(),
    ))
    .map_err(anyhow::Error::msg)?;
    Gateway::start(&config).await
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
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.text).with_context(|| format!("not JSON: {:?}", self.text))
    }

    /// Checks the status and the error shape, and that the message mentions `needle`.
    fn error(&self, status: u16, code: &str, needle: &str) -> anyhow::Result<()> {
        ensure!(
            self.status.as_u16() == status,
            "want {status}: {}",
            self.text
        );
        let body = self.json()?;
        let keys: Vec<&String> = body.as_object().context("not an object")?.keys().collect();
        ensure!(keys == ["error", "message"], "error shape: {body}");
        ensure!(body["error"] == code, "want {code}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        ensure!(message.contains(needle), "{message:?} lacks {needle:?}");
        Ok(())
    }

    fn ok(&self, status: u16) -> anyhow::Result<Value> {
        ensure!(
            self.status.as_u16() == status,
            "want {status}: {}",
            self.text
        );
        self.json()
    }
}

impl Api {
    fn new(g: &Gateway) -> anyhow::Result<Api> {
        let addr = g.admin().context("admin API not running")?.addr();
        Ok(Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build()?,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = tokio::time::timeout(STATUS_LIMIT, req.send())
            .await
            .context("no answer")??;
        Ok(Answer {
            status: res.status(),
            headers: res.headers().clone(),
            text: res.text().await?,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::GET, path, Some(TOKEN), None).await
    }

    async fn send(&self, method: Method, path: &str, body: &str) -> anyhow::Result<Answer> {
        self.call(method, path, Some(TOKEN), Some(body)).await
    }

    /// Polls `GET /api/v1/bridges/{name}` until `done` accepts it.
    async fn wait_bridge(
        &self,
        name: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + STATUS_LIMIT;
        loop {
            let status = self
                .get(&format!("/api/v1/bridges/{name}"))
                .await?
                .ok(200)?;
            if done(&status) {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("bridge {name} still {status:#} after {STATUS_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metrics(&self) -> anyhow::Result<(prometheus_text::Exposition, String)> {
        let res = self.get("/metrics").await?;
        ensure!(res.status == 200, "{}", res.text);
        let m =
            prometheus_text::parse(&res.text).map_err(|e| anyhow::anyhow!("{e}\n{}", res.text))?;
        Ok((m, res.text))
    }
}

fn metric(
    m: &prometheus_text::Exposition,
    text: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> anyhow::Result<f64> {
    m.value(name, labels)
        .with_context(|| format!("no {name}{labels:?} in\n{text}"))
}

/// Everything the routes must refuse, against a gateway whose only bridge was declared with a
/// config its plugin rejects (so no endpoint ever starts): 401 on each new route, 400 on each
/// bad field, 404, 409; the plugin list; secrets masked; a failed bridge in `/metrics`.
async fn refusals() -> anyhow::Result<()> {
    let dir = PluginDir::new("admin-refusals")?;
    dir.add_built(ECHO)?;
    dir.add_built(BAD_VERSION)?;
    let g = start_gateway(
        &dir,
        r#"
[[bridge]]
name = "declared"
plugin = "example-echo"
pool = "p"
signalling = "ws://operator:s3cret-url@127.0.0.1:9/ws"
config = { prefix = "> ", password = "hunter2" }
"#,
    )
    .await?;
    let api = Api::new(&g)?;

    // The plugin folder: the echo plugin loaded, the other ABI's library refused.
    let plugins = api.get("/api/v1/plugins").await?.ok(200)?;
    ensure!(
        plugins["dir"] == dir.path().display().to_string(),
        "{plugins:#}"
    );
    let loaded = plugins["plugins"].as_array().context("plugins")?;
    ensure!(loaded.len() == 1, "{plugins:#}");
    ensure!(
        loaded[0]["name"] == "example-echo"
            && loaded[0]["version"] == "0.1.0"
            && loaded[0]["summary"]
                .as_str()
                .is_some_and(|s| s.contains("echoes"))
            && loaded[0]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("lib{ECHO}.so"))),
        "{plugins:#}"
    );
    let refused = plugins["refused"].as_array().context("refused")?;
    ensure!(
        refused.len() == 1
            && refused[0]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("lib{BAD_VERSION}.so")))
            && refused[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("ABI version")),
        "{plugins:#}"
    );

    // The declared bridge failed on its config, with its secrets masked in every answer.
    let failed = api
        .wait_bridge("declared", |s| {
            s["status"]
                .as_str()
                .is_some_and(|t| t.starts_with("failed: "))
        })
        .await?;
    ensure!(
        failed["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("unknown field `password`")),
        "{failed:#}"
    );
    ensure!(
        failed["config"] == json!({"prefix": "> ", "password": "***"}),
        "{failed:#}"
    );
    ensure!(
        failed["signalling"] == "ws://***@127.0.0.1:9/ws",
        "{failed:#}"
    );
    let list = api.get("/api/v1/bridges").await?;
    let listed = list.ok(200)?;
    ensure!(
        listed["bridges"].as_array().map(Vec::len) == Some(1)
            && listed["bridges"][0]["name"] == "declared",
        "{listed:#}"
    );
    let (m, text) = api.metrics().await?;
    ensure!(metric(&m, &text, "poolgate_bridges", &[("state", "failed")])? == 1.0);
    ensure!(metric(&m, &text, "poolgate_bridges", &[("state", "live")])? == 0.0);
    ensure!(
        metric(
            &m,
            &text,
            "poolgate_bridge_state",
            &[
                ("bridge", "declared"),
                ("plugin", "example-echo"),
                ("state", "failed")
            ]
        )? == 1.0
    );
    ensure!(metric(&m, &text, "poolgate_plugins", &[("result", "loaded")])? == 1.0);
    ensure!(metric(&m, &text, "poolgate_plugins", &[("result", "refused")])? == 1.0);
    for answer in [&list.text, &text] {
        for secret in ["hunter2", "s3cret-url", "operator:"] {
            ensure!(!answer.contains(secret), "{secret} leaked: {answer}");
        }
    }

    // 401 on every new route, missing or wrong token, and nothing done.
    let valid = r#"{"name": "new", "plugin": "example-echo", "pool": "p"}"#;
    let routes = [
        (Method::GET, "/api/v1/plugins", None),
        (Method::GET, "/api/v1/bridges", None),
        (Method::POST, "/api/v1/bridges", Some(valid)),
        (Method::GET, "/api/v1/bridges/declared", None),
        (
            Method::PUT,
            "/api/v1/bridges/declared",
            Some(r#"{"plugin": "example-echo", "pool": "p"}"#),
        ),
        (Method::DELETE, "/api/v1/bridges/declared", None),
        (Method::POST, "/api/v1/bridges/declared/restart", None),
    ];
    for (method, path, body) in &routes {
        api.call(method.clone(), path, None, *body)
            .await?
            .error(401, "unauthorized", "missing Authorization")
            .with_context(|| format!("{method} {path} without a token"))?;
        api.call(
            method.clone(),
            path,
            Some("bridge-test-token-012345678X"),
            *body,
        )
        .await?
        .error(401, "unauthorized", "wrong token")
        .with_context(|| format!("{method} {path} with a wrong token"))?;
    }
    let after = g.bridges().list();
    ensure!(
        after.len() == 1 && after[0].name == "declared" && after[0].restarts == 0,
        "a refused request changed the bridges: {after:#?}"
    );

    // 400 on each bad field of a create, naming it; nothing is created.
    let bad_version = format!("lib{BAD_VERSION}.so");
    let with = |extra: Value| -> String {
        let mut body = json!({"name": "b", "plugin": "example-echo", "pool": "p"});
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        body.to_string()
    };
    let cases: Vec<(String, &str, &str)> =
        vec![
        ("".into(), "invalid_json", "empty"),
        ("{".into(), "invalid_json", "not valid JSON"),
        ("[]".into(), "invalid_json", "must be a JSON object"),
        ("{}".into(), "invalid_field", "missing field `name`"),
        (
            r#"{"name": "b", "pool": "p"}"#.into(),
            "invalid_field",
            "missing field `plugin`",
        ),
        (with(json!({"name": 7})), "invalid_field", "name: invalid type: integer `7`"),
        (with(json!({"extra": 1})), "invalid_field", "unknown field `extra`"),
        (with(json!({"name": "a b"})), "invalid_field", "bridge name \"a b\""),
        (with(json!({"plugin": ""})), "invalid_field", "plugin must not be empty"),
        (
            with(json!({"plugin": "nope"})),
            "invalid_field",
            "plugin: bridge \"b\": no plugin named \"nope\"",
        ),
        (
            with(json!({"plugin": bad_version})),
            "invalid_field",
            "plugin: bridge \"b\": plugin \"libpoolgate_test_bad_version.so\" was refused",
        ),
        (with(json!({"pool": ""})), "invalid_field", "pool: invalid pool name"),
        (with(json!({"pool": 3})), "invalid_field", "pool: invalid type: integer"),
        (
            with(json!({"signalling": "ftp://u:pw-secret@host/x"})),
            "invalid_field",
            "signalling ftp://***@host/x must start with",
        ),
        (with(json!({"description": 3})), "invalid_field", "description must be a table"),
        (with(json!({"config": [1]})), "invalid_field", "config must be a table"),
        (
            with(json!({"config": {"prefix": 3}})),
            "invalid_field",
            "config: bridge \"b\": invalid config for plugin example-echo: `prefix`: invalid type",
        ),
        (
            with(json!({"config": {"prefx": ""}})),
            "invalid_field",
            "unknown field `prefx`",
        ),
        (
            with(json!({"config": {"loop_video": "yes"}})),
            "invalid_field",
            "`loop_video`: invalid type: string",
        ),
        (
            with(json!({"restart": {"mode": "sometimes"}})),
            "invalid_field",
            "restart.mode: unknown variant `sometimes`",
        ),
        (
            with(json!({"restart": {"backoff_initial_ms": 0}})),
            "invalid_field",
            "restart.backoff_initial_ms must be at least 1",
        ),
        (
            with(json!({"restart": {"backoff_max_ms": -1}})),
            "invalid_field",
            "restart.backoff_max_ms: invalid value: integer `-1`",
        ),
        (
            with(json!({"ice_local_addresses": ["localhost"]})),
            "invalid_field",
            "ice_local_addresses[0]: invalid IP address syntax",
        ),
    ];
    for (body, code, needle) in &cases {
        let answer = api.send(Method::POST, "/api/v1/bridges", body).await?;
        answer
            .error(400, code, needle)
            .with_context(|| format!("POST {body}"))?;
        ensure!(!answer.text.contains("pw-secret"), "{}", answer.text);
    }
    ensure!(
        g.bridges().list().len() == 1,
        "a refused create created a bridge"
    );

    // 409: the name is taken (the declaration is otherwise valid).
    api.send(
        Method::POST,
        "/api/v1/bridges",
        r#"{"name": "declared", "plugin": "example-echo", "pool": "p"}"#,
    )
    .await?
    .error(409, "bridge_exists", "\"declared\" already exists")?;

    // 404 on each route that names a bridge; 400 on a name that is not UTF-8.
    let some = r#"{"plugin": "example-echo", "pool": "p"}"#;
    for (method, path, body) in [
        (Method::GET, "/api/v1/bridges/nobody", None),
        (Method::PUT, "/api/v1/bridges/nobody", Some(some)),
        (Method::DELETE, "/api/v1/bridges/nobody", None),
        (Method::POST, "/api/v1/bridges/nobody/restart", None),
    ] {
        api.call(method.clone(), path, Some(TOKEN), body)
            .await?
            .error(404, "unknown_bridge", "\"nobody\"")
            .with_context(|| format!("{method} {path}"))?;
    }
    api.get("/api/v1/bridges/%FF")
        .await?
        .error(400, "invalid_field", "name")?;

    // A refused update leaves the bridge as it was; an update cannot rename.
    for (body, needle) in [
        (
            r#"{"plugin": "example-echo", "pool": "p", "config": {"prefix": 1}}"#,
            "`prefix`",
        ),
        (
            r#"{"name": "renamed", "plugin": "example-echo", "pool": "p"}"#,
            "name: a bridge cannot be renamed",
        ),
        (r#"{"plugin": "example-echo"}"#, "missing field `pool`"),
        (
            r#"{"plugin": "example-echo", "pool": "p", "x": 1}"#,
            "unknown field `x`",
        ),
    ] {
        api.send(Method::PUT, "/api/v1/bridges/declared", body)
            .await?
            .error(400, "invalid_field", needle)
            .with_context(|| format!("PUT {body}"))?;
    }
    let same = g.bridges().get("declared")?;
    ensure!(
        same.config["prefix"] == "> " && same.restarts == 0,
        "a refused update changed the bridge: {same:?}"
    );

    // Restart (a failed bridge included): counted, and it fails again on its config.
    let restarted = api
        .call(
            Method::POST,
            "/api/v1/bridges/declared/restart",
            Some(TOKEN),
            None,
        )
        .await?
        .ok(200)?;
    ensure!(restarted["restarts"] == 1, "{restarted:#}");
    api.wait_bridge("declared", |s| {
        s["status"]
            .as_str()
            .is_some_and(|t| t.starts_with("failed: "))
    })
    .await?;

    // Delete: 204 with no body, then gone.
    let deleted = api
        .call(
            Method::DELETE,
            "/api/v1/bridges/declared",
            Some(TOKEN),
            None,
        )
        .await?;
    ensure!(
        deleted.status == 204 && deleted.text.is_empty(),
        "{} {:?}",
        deleted.status,
        deleted.text
    );
    api.get("/api/v1/bridges/declared")
        .await?
        .error(404, "unknown_bridge", "declared")?;
    ensure!(api.get("/api/v1/bridges").await?.ok(200)? == json!({"bridges": []}));
    g.stop().await;
    Ok(())
}

/// A bridge's whole life through the API: created (201, Location), live in its pool, echoing a
/// managed endpoint's message, its plugin's metric in `/metrics`; updated (a new endpoint with
/// the new config), restarted, deleted (its endpoint leaves the pool).
async fn lifecycle() -> anyhow::Result<()> {
    let dir = PluginDir::new("admin-lifecycle")?;
    dir.add_built(ECHO)?;
    let g = start_gateway(&dir, "").await?;
    let api = Api::new(&g)?;
    let spec = |prefix: &str| {
        json!({
            "name": "echo", "plugin": "example-echo", "pool": "room",
            "description": {"role": "echo"},
            "config": {"prefix": prefix, "loop_video": false, "api_token": "t0ken-value"},
            "ice_local_addresses": ["127.0.0.1"],
        })
    };
    // The echo plugin refuses unknown keys: the token is only there to be masked in the 400.
    let refused = api
        .send(Method::POST, "/api/v1/bridges", &spec("1> ").to_string())
        .await?;
    refused.error(400, "invalid_field", "unknown field `api_token`")?;
    ensure!(!refused.text.contains("t0ken-value"), "{}", refused.text);
    let spec = |prefix: &str| {
        let mut s = spec(prefix);
        s["config"].as_object_mut().unwrap().remove("api_token");
        s
    };

    let created = api
        .send(Method::POST, "/api/v1/bridges", &spec("1> ").to_string())
        .await?;
    let body = created.ok(201)?;
    ensure!(
        created.headers["location"] == "/api/v1/bridges/echo",
        "{:?}",
        created.headers
    );
    ensure!(
        body["name"] == "echo"
            && body["pool"] == "room"
            && body["signalling"] == "hosted"
            && body["config"] == json!({"prefix": "1> ", "loop_video": false}),
        "{body:#}"
    );
    let live = |s: &Value| s["status"] == "live" && s["endpoint"].is_string();
    let first = api.wait_bridge("echo", live).await?;
    ensure!(first["plugin_version"] == "0.1.0", "{first:#}");
    let bridge_id = first["endpoint"].as_str().unwrap().to_string();

    // A managed endpoint in the pool: the bridge opens `echo` to it and echoes what it sends.
    let (endpoint, _id) = start_endpoint(&g, "room").await?;
    let handle = endpoint.handle();
    let (pump, mut seen) = answer_pings(endpoint);
    let bridge = EndpointId(uuid::Uuid::parse_str(&bridge_id)?);
    expect(&mut seen, "the bridge's echo channel opens", |e| {
        matches!(e, EndpointEvent::ChannelOpen { peer, label } if *peer == bridge && label == "echo")
    })
    .await?;
    ensure!(
        handle
            .send(bridge, "echo", Payload::Text("hello".into()))
            .await,
        "the endpoint could not send on `echo`"
    );
    expect(&mut seen, "the echo of hello", |e| {
        matches!(e, EndpointEvent::Message { peer, label, payload: Payload::Text(t) }
            if *peer == bridge && label == "echo" && t == "1> hello")
    })
    .await?;

    let (m, text) = api.metrics().await?;
    let key = |k| [("bridge", "echo"), ("plugin", "example-echo"), ("key", k)];
    ensure!(metric(&m, &text, "poolgate_bridge_metric", &key("messages_echoed"))? == 1.0);
    ensure!(m.types["poolgate_bridge_metric"] == "gauge");
    ensure!(
        metric(
            &m,
            &text,
            "poolgate_bridge_state",
            &[
                ("bridge", "echo"),
                ("plugin", "example-echo"),
                ("state", "live")
            ]
        )? == 1.0
    );
    ensure!(metric(&m, &text, "poolgate_bridges", &[("state", "live")])? == 1.0);

    // Update: replaced and restarted, a new endpoint with the new config.
    let updated = api
        .send(
            Method::PUT,
            "/api/v1/bridges/echo",
            &spec("2> ").to_string(),
        )
        .await?
        .ok(200)?;
    ensure!(updated["config"]["prefix"] == "2> ", "{updated:#}");
    let second = api
        .wait_bridge("echo", |s| live(s) && s["endpoint"] != first["endpoint"])
        .await?;
    let members = |g: &Gateway| -> Vec<String> {
        g.pools()
            .pool("room")
            .map(|p| p.endpoints.iter().map(|e| e.id.to_string()).collect())
            .unwrap_or_default()
    };
    ensure!(
        !members(&g).contains(&bridge_id)
            && members(&g).contains(&second["endpoint"].as_str().unwrap().to_string()),
        "{:?}",
        members(&g)
    );

    // Restart: counted, a new endpoint again.
    let restarted = api
        .call(
            Method::POST,
            "/api/v1/bridges/echo/restart",
            Some(TOKEN),
            None,
        )
        .await?
        .ok(200)?;
    ensure!(restarted["restarts"] == 1, "{restarted:#}");
    let third = api
        .wait_bridge("echo", |s| live(s) && s["endpoint"] != second["endpoint"])
        .await?;
    let (m, text) = api.metrics().await?;
    ensure!(
        metric(
            &m,
            &text,
            "poolgate_bridge_restarts_total",
            &[("bridge", "echo"), ("plugin", "example-echo")]
        )? == 1.0
    );

    // Delete: 204, its endpoint leaves the pool, the list is empty.
    let deleted = api
        .call(Method::DELETE, "/api/v1/bridges/echo", Some(TOKEN), None)
        .await?;
    ensure!(deleted.status == 204, "{}", deleted.text);
    let third_id = third["endpoint"].as_str().unwrap().to_string();
    ensure!(!members(&g).contains(&third_id), "{:?}", members(&g));
    ensure!(api.get("/api/v1/bridges").await?.ok(200)? == json!({"bridges": []}));
    let (m, text) = api.metrics().await?;
    ensure!(metric(&m, &text, "poolgate_bridges", &[("state", "live")])? == 0.0);
    ensure!(m
        .value("poolgate_bridge_metric", &key("messages_echoed"))
        .is_none());

    pump.abort();
    g.stop().await;
    Ok(())
}
