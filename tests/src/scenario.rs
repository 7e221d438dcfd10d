//! The pieces every end-to-end scenario uses: a bounded runner, a gateway serving the browser
//! test page, managed endpoints that have joined, and waits for what they and the pages report.

use std::time::Duration;

use anyhow::Context;
use poolgate::endpoint::{Endpoint, EndpointEvent, EndpointOptions, MediaSource, Payload};
use poolgate::signalling::SignallingTarget;
use poolgate::{Config, Gateway};
use serde_json::Value;

use crate::browser::{harness_web_root, Browser};
use crate::namespace;

/// The `main` of a scenario test binary: re-executes itself in a network namespace that has
/// only `lo` (before anything else runs), logs as `RUST_LOG` says, and runs the trials one at a
/// time (each drives browsers and GStreamer; two at once would crowd 2 cores).
pub fn run_trials(trials: impl FnOnce() -> Vec<libtest_mimic::Trial>) -> ! {
    namespace::enter_loopback_only();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut args = libtest_mimic::Arguments::from_args();
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials()).exit()
}

/// Generous bounds for a loaded 2-core CI machine: they bound a hang, they measure nothing.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(45);
pub const MESSAGE_LIMIT: Duration = Duration::from_secs(20);

pub fn run(
    scenario: impl std::future::Future<Output = anyhow::Result<()>>,
) -> Result<(), libtest_mimic::Failed> {
    run_within(Duration::from_secs(240), scenario)
}

/// [`run`] with another bound on the whole scenario.
pub fn run_within(
    limit: Duration,
    scenario: impl std::future::Future<Output = anyhow::Result<()>>,
) -> Result<(), libtest_mimic::Failed> {
    assert!(
        namespace::is_loopback_only(),
        "not in a loopback-only namespace"
    );
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    // A scenario that hangs fails instead of stalling the suite (every wait inside is bounded
    // too; this catches a blocking call), and the runtime does not wait on a stuck thread.
    let result = runtime.block_on(async {
        match tokio::time::timeout(limit, scenario).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "the scenario did not finish within {} s",
                limit.as_secs()
            )),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    result.map_err(|e| format!("{e:#}").into())
}

pub async fn start_gateway() -> anyhow::Result<Gateway> {
    start_gateway_serving(harness_web_root()?).await
}

pub async fn start_gateway_serving(web_root: std::path::PathBuf) -> anyhow::Result<Gateway> {
    let config = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nweb_root = {:?}\n",
        web_root.display().to_string()
    ))
    .map_err(anyhow::Error::msg)?;
    Gateway::start(&config).await
}

pub async fn start_endpoint(gateway: &Gateway, pool: &str) -> anyhow::Result<(Endpoint, String)> {
    start_endpoint_at(SignallingTarget::Hosted(gateway.pools().clone()), pool).await
}

pub async fn start_endpoint_at(
    target: SignallingTarget,
    pool: &str,
) -> anyhow::Result<(Endpoint, String)> {
    start_endpoint_with(target, pool, vec![MediaSource::TestVideo]).await
}

pub async fn start_endpoint_with(
    target: SignallingTarget,
    pool: &str,
    media: Vec<MediaSource>,
) -> anyhow::Result<(Endpoint, String)> {
    let mut endpoint = Endpoint::start(EndpointOptions {
        target,
        pool: pool.to_string(),
        ice_servers: Vec::new(),
        ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        media,
    })
    .await?;
    let deadline = tokio::time::Instant::now() + MESSAGE_LIMIT;
    loop {
        let event = tokio::time::timeout_at(deadline, endpoint.next_event())
            .await
            .context("the endpoint did not join")?
            .context("the endpoint stopped")?;
        if let EndpointEvent::Joined { id, .. } = event {
            return Ok((endpoint, id.to_string()));
        }
    }
}

/// Runs the endpoint's event loop on a task that answers `ping:x` with `pong:x` on the same
/// channel, like the page does; every other event goes to the returned receiver. Aborting the
/// task drops the endpoint, which stops it.
pub fn answer_pings(
    mut endpoint: Endpoint,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<EndpointEvent>,
) {
    let (seen_tx, seen) = tokio::sync::mpsc::unbounded_channel::<EndpointEvent>();
    let handle = endpoint.handle();
    let pump = tokio::spawn(async move {
        while let Some(event) = endpoint.next_event().await {
            if let EndpointEvent::Message {
                peer,
                label,
                payload: Payload::Text(t),
            } = &event
            {
                if let Some(x) = t.strip_prefix("ping:") {
                    handle
                        .send(*peer, label, Payload::Text(format!("pong:{x}")))
                        .await;
                    continue;
                }
            }
            let _ = seen_tx.send(event);
        }
    });
    (pump, seen)
}

/// Waits for an endpoint event that `want` accepts.
pub async fn expect(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<EndpointEvent>,
    what: &str,
    want: impl Fn(&EndpointEvent) -> bool,
) -> anyhow::Result<EndpointEvent> {
    let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
    loop {
        let e = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .with_context(|| format!("no endpoint event: {what}"))?
            .context("the endpoint stopped")?;
        if want(&e) {
            return Ok(e);
        }
    }
}

/// Waits until `page` reports an inbound stream from `peer` of `codec` (a mimeType such as
/// `video/VP8`) that has decoded something, and returns it.
pub async fn decoded_stream(
    b: &mut Browser,
    page: &str,
    peer: &str,
    codec: &str,
) -> anyhow::Result<Value> {
    let found = |streams: &Value| -> Option<Value> {
        streams[peer].as_array()?.iter().find_map(|s| {
            let decoded =
                s["framesDecoded"].as_u64().unwrap_or(0) + s["samples"].as_u64().unwrap_or(0);
            (s["codec"].as_str()?.eq_ignore_ascii_case(codec) && decoded > 0).then(|| s.clone())
        })
    };
    match b
        .wait_for(page, "harness.inbound()", CONNECT_LIMIT, |v| {
            found(v).is_some()
        })
        .await
    {
        Ok(v) => Ok(found(&v).expect("checked by wait_for")),
        Err(e) => {
            let now = b.eval(page, "harness.inbound()").await.unwrap_or_default();
            let trace = b.eval(page, "harness.trace()").await.unwrap_or_default();
            Err(e.context(format!(
                "no decoded {codec} from {peer}; inbound now {now}; signalling trace: {trace:#}"
            )))
        }
    }
}

/// The `failed` connection states among the events seen so far.
pub fn failed_peers(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<EndpointEvent>,
) -> Vec<poolgate::signalling::EndpointId> {
    let mut failed = Vec::new();
    while let Ok(e) = seen.try_recv() {
        if let EndpointEvent::PeerState { id, state } = e {
            if state == "failed" {
                failed.push(id);
            }
        }
    }
    failed
}

/// The last lines of a page's signalling trace.
pub fn trace_tail(trace: &Value) -> String {
    let lines: Vec<&str> = trace
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    lines[lines.len().saturating_sub(12)..].join(" | ")
}
