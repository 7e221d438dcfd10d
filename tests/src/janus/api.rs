//! The Janus HTTP API (plain JSON over HTTP, long-poll for events), enough for a streaming
//! viewer: create a session, attach a plugin, send messages with or without JSEP, trickle,
//! keepalive, and poll events.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// One Janus session with one plugin handle.
#[derive(Clone)]
pub struct JanusHandle {
    client: reqwest::Client,
    session_url: String,
    handle_url: String,
}

fn transaction() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Posts `body` (a transaction is added) and returns the reply, failing on `"janus":"error"`.
async fn post(client: &reqwest::Client, url: &str, mut body: Value) -> anyhow::Result<Value> {
    body["transaction"] = json!(transaction());
    let reply: Value = client
        .post(url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?
        .json()
        .await
        .context("the reply is not JSON")?;
    if reply["janus"] == "error" {
        bail!("janus error: {}", reply["error"]);
    }
    Ok(reply)
}

fn data_id(reply: &Value) -> anyhow::Result<u64> {
    reply["data"]["id"]
        .as_u64()
        .with_context(|| format!("no data.id in {reply}"))
}

impl JanusHandle {
    /// Creates a session on `api` (`http://127.0.0.1:PORT/janus`) and attaches `plugin`.
    pub async fn attach(api: &str, plugin: &str) -> anyhow::Result<JanusHandle> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()?;
        let session = data_id(&post(&client, api, json!({"janus": "create"})).await?)?;
        let session_url = format!("{api}/{session}");
        let reply = post(
            &client,
            &session_url,
            json!({"janus": "attach", "plugin": plugin}),
        )
        .await?;
        let handle = data_id(&reply)?;
        Ok(JanusHandle {
            client,
            handle_url: format!("{session_url}/{handle}"),
            session_url,
        })
    }

    /// Sends a plugin message, with `jsep` when given; returns the immediate reply (`ack` or a
    /// synchronous `success`).
    pub async fn message(&self, body: Value, jsep: Option<Value>) -> anyhow::Result<Value> {
        let mut request = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        post(&self.client, &self.handle_url, request).await
    }

    /// Tells Janus this side has no more candidates (they were all in the SDP).
    pub async fn trickle_completed(&self) -> anyhow::Result<()> {
        post(
            &self.client,
            &self.handle_url,
            json!({"janus": "trickle", "candidate": {"completed": true}}),
        )
        .await
        .map(|_| ())
    }

    /// Keeps the session alive (Janus drops sessions idle for `session_timeout`).
    pub async fn keepalive(&self) -> anyhow::Result<()> {
        post(
            &self.client,
            &self.session_url,
            json!({"janus": "keepalive"}),
        )
        .await
        .map(|_| ())
    }

    /// Long-polls the next events (up to `max`); an empty list when Janus had none (its
    /// long-poll returns a `keepalive` after 30 s).
    pub async fn poll(&self, max: u32) -> anyhow::Result<Vec<Value>> {
        let url = format!("{}?maxev={max}", self.session_url);
        let reply: Value = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .json()
            .await?;
        let events = match reply {
            Value::Array(list) => list,
            one => vec![one],
        };
        Ok(events
            .into_iter()
            .filter(|e| e["janus"] != "keepalive")
            .collect())
    }

    /// Destroys the session (and so the handle and its PeerConnection).
    pub async fn destroy(&self) -> anyhow::Result<()> {
        post(&self.client, &self.session_url, json!({"janus": "destroy"}))
            .await
            .map(|_| ())
    }
}
