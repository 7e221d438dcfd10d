//! The admin API's description PUT reaches real browsers: headless Chromium pages running the
//! real `rtcpool` 3.0.2 bundle see `pool.getConnection(id).description` change, and so does a
//! page that joins later; a raw WebSocket client that joins later finds it in `rtc:joined`.
//!
//! The binary re-executes itself in a network namespace that has only `lo`, because the pages'
//! peer connections do ICE.

use std::time::Duration;

use anyhow::{ensure, Context};
use futures_util::{SinkExt, StreamExt};
use libtest_mimic::Trial;
use poolgate::{Config, Gateway};
use poolgate_tests::browser::{harness_web_root, Browser};
use poolgate_tests::scenario::{run_trials, run_within};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Bounds a hang on a loaded 2-core machine; measures nothing.
const LIMIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "browser-test-token-0123456789";

fn main() {
    run_trials(|| {
        vec![Trial::test(
            "admin_description_put_reaches_browsers_and_later_joiners",
            || run_within(Duration::from_secs(180), description_scenario()),
        )]
    });
}

/// `PUT /api/v1/endpoints/{id}/description` through the admin listener.
async fn put_description(
    http: &reqwest::Client,
    gateway: &Gateway,
    id: &str,
    description: &Value,
) -> anyhow::Result<Value> {
    let admin = gateway.admin().context("admin API not running")?.addr();
    let res = http
        .put(format!("http://{admin}/api/v1/endpoints/{id}/description"))
        .bearer_auth(TOKEN)
        .json(&json!({ "description": description }))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    ensure!(status == 200, "PUT description answered {status}: {body}");
    Ok(body)
}

/// `page`'s view of `id`'s description through rtcpool's own API.
fn description_of(id: &str) -> String {
    format!(
        "(() => {{ const c = harness.pool && harness.pool.getConnection({id:?}); \
         return c ? {{found: true, description: c.description ?? null}} : {{found: false}}; }})()"
    )
}

async fn description_scenario() -> anyhow::Result<()> {
    let config = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nweb_root = {:?}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n",
        harness_web_root()?.display().to_string()
    ))
    .map_err(anyhow::Error::msg)?;
    let gateway = Gateway::start(&config).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;

    // Two pages, one per transport.
    let mut ids = Vec::new();
    for (page, transport) in [("a", "ws"), ("b", "socketio")] {
        b.open(page, &url).await?;
        let id = b
            .eval(
                page,
                &format!("harness.join({{transport: {transport:?}, pool: 'described'}})"),
            )
            .await?;
        ids.push(id.as_str().context("join returned no id")?.to_string());
    }
    let (a_id, b_id) = (&ids[0], &ids[1]);

    // The operator describes a: b's rtcpool shows it on its connection to a.
    let description = json!({"name": "front desk", "seats": 2});
    let answer = put_description(&http, &gateway, a_id, &description).await?;
    ensure!(answer == json!({ "description": description }), "{answer}");
    b.wait_for("b", &description_of(a_id), LIMIT, |v| {
        v["description"] == description
    })
    .await
    .context("page b never saw a's description")?;

    // And b's description reaches a.
    let b_description = json!({"name": "visitor"});
    put_description(&http, &gateway, b_id, &b_description).await?;
    b.wait_for("a", &description_of(b_id), LIMIT, |v| {
        v["description"] == b_description
    })
    .await
    .context("page a never saw b's description")?;

    // A page that joins later reads both from rtc:joined.
    b.open("c", &url).await?;
    b.eval("c", "harness.join({transport: 'ws', pool: 'described'})")
        .await?;
    let c_view = b.eval("c", &description_of(a_id)).await?;
    ensure!(
        c_view["description"] == description,
        "late page sees a as {c_view}"
    );
    let c_view = b.eval("c", &description_of(b_id)).await?;
    ensure!(
        c_view["description"] == b_description,
        "late page sees b as {c_view}"
    );

    // So does a raw WebSocket client that joins later.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws", gateway.addr())).await?;
    ws.send(Message::text(
        json!({"type": "rtc:join", "data": {"pool": "described"}}).to_string(),
    ))
    .await?;
    let joined = loop {
        let msg = tokio::time::timeout(LIMIT, ws.next())
            .await
            .context("no rtc:joined")?
            .context("socket closed")??;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t)?;
            if v["type"] == "rtc:joined" {
                break v["data"].clone();
            }
        }
    };
    ensure!(
        joined["descriptions"][a_id.as_str()] == description
            && joined["descriptions"][b_id.as_str()] == b_description,
        "rtc:joined descriptions: {}",
        joined["descriptions"]
    );

    // Clearing reaches the pages as null.
    put_description(&http, &gateway, a_id, &Value::Null).await?;
    for page in ["b", "c"] {
        b.wait_for(page, &description_of(a_id), LIMIT, |v| {
            v["found"] == true && v["description"].is_null()
        })
        .await
        .with_context(|| format!("page {page} still shows a's description"))?;
    }
    let errors = b.eval("b", "harness.state().errors").await?;
    ensure!(
        errors.as_array().is_some_and(|e| e.is_empty()),
        "page b errors: {errors}"
    );

    drop(ws);
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}
