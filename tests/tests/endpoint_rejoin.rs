//! Signalling drop: the pool server goes away under a poolgate endpoint that joined it over raw
//! WebSocket, and comes back on the same address. The endpoint rejoins by itself, with a new
//! id, and a real rtcpool page in headless Chromium decodes its video again.
//!
//! The test binary re-executes itself in a network namespace that has only `lo`, so neither
//! Chromium's nor webrtcbin's ICE traffic can leave the machine.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use libtest_mimic::Trial;
use poolgate::endpoint::{Endpoint, EndpointEvent, EndpointOptions};
use poolgate::signalling::{EndpointId, SignallingTarget};
use poolgate::{Config, Gateway};
use poolgate_tests::browser::{harness_web_root, Browser};
use poolgate_tests::scenario::{run, run_trials, CONNECT_LIMIT, MESSAGE_LIMIT};
use serde_json::Value;

/// How long the old listener's port may stay unbindable after the gateway stopped.
const REBIND_LIMIT: Duration = Duration::from_secs(10);
/// The endpoint's rejoin once the server is back: its backoff (250 ms doubling, capped at 10 s)
/// over the downtime below fits well inside this.
const REJOIN_LIMIT: Duration = Duration::from_secs(45);
/// How long the pool server stays away, so the endpoint's first reconnect attempts are refused
/// and it has to keep trying (a scenario detail, not a measurement).
const DOWNTIME: Duration = Duration::from_secs(2);

const POOL: &str = "drop";
const JOIN: &str = "harness.join({transport: 'ws', pool: 'drop', media: true, channel: false})";

fn main() {
    run_trials(|| {
        vec![Trial::test(
            "endpoint_rejoins_after_signalling_drop_and_media_resumes",
            || run(rejoin_scenario()),
        )]
    });
}

/// A loopback port nobody listens on right now (we are alone in a fresh namespace).
fn free_port() -> anyhow::Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("probing for a free port")?;
    Ok(probe.local_addr()?.port())
}

/// A gateway on exactly `addr`, serving the browser-test page.
async fn start_gateway_at(addr: SocketAddr) -> anyhow::Result<Gateway> {
    let config = Config::parse(&format!(
        "[server]\nlisten = \"{addr}\"\nweb_root = {:?}\n",
        harness_web_root()?.display().to_string()
    ))
    .map_err(anyhow::Error::msg)?;
    Gateway::start(&config).await
}

/// Starts a gateway on `addr`, retrying while the port is still held (e.g. by the gateway that
/// just stopped), for at most [`REBIND_LIMIT`].
async fn restart_gateway_at(addr: SocketAddr) -> anyhow::Result<Gateway> {
    let deadline = tokio::time::Instant::now() + REBIND_LIMIT;
    loop {
        match start_gateway_at(addr).await {
            Ok(gateway) => return Ok(gateway),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context(format!("restarting the gateway on {addr}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits for the endpoint's next `Joined` and returns its id, skipping other events. Fails if
/// the endpoint stops instead.
async fn next_joined(endpoint: &mut Endpoint, limit: Duration) -> anyhow::Result<EndpointId> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = tokio::time::timeout_at(deadline, endpoint.next_event())
            .await
            .with_context(|| format!("the endpoint did not (re)join within {limit:?}"))?
            .context("the endpoint's event stream ended")?;
        match event {
            EndpointEvent::Joined { id, pool, .. } => {
                ensure!(
                    pool == POOL,
                    "the endpoint joined pool {pool:?}, not {POOL:?}"
                );
                return Ok(id);
            }
            EndpointEvent::Stopped { reason } => {
                bail!("the endpoint stopped instead of rejoining: {reason}")
            }
            _ => {}
        }
    }
}

/// What the page's connections negotiated and receive: tells "nothing arrives" from "arrives
/// but is not decoded".
const RTP_DIAGNOSTICS: &str = "(async () => { const out = []; \
    for (const pc of harness.pool ? harness.pool._raw_connections : []) { \
      const rtp = []; \
      (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') rtp.push({kind: s.kind, \
        mid: s.mid, ssrc: s.ssrc, packets: s.packetsReceived, bytes: s.bytesReceived, \
        framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, plis: s.pliCount}); }); \
      out.push({transceivers: pc.getTransceivers().map((t) => ({mid: t.mid, \
        direction: t.direction, current: t.currentDirection})), inboundRtp: rtp}); \
    } return out; })()";

/// Opens the harness page as `page`, joins the pool with camera and microphone (no data
/// channel) and returns the page's endpoint id.
async fn open_and_join(b: &mut Browser, page: &str, url: &str) -> anyhow::Result<String> {
    b.open(page, url).await?;
    let id = b.eval(page, JOIN).await?;
    id.as_str()
        .map(str::to_string)
        .with_context(|| format!("harness.join returned {id}"))
}

/// Waits until `page` has decoded video frames from `endpoint`; on failure the error carries
/// the page's state and signalling trace.
async fn wait_decoding(b: &mut Browser, page: &str, endpoint: EndpointId) -> anyhow::Result<()> {
    let endpoint = endpoint.to_string();
    let decoded = b
        .wait_for(page, "harness.framesDecoded()", CONNECT_LIMIT, |f| {
            f[endpoint.as_str()].as_u64().unwrap_or(0) > 0
        })
        .await;
    if let Err(e) = decoded {
        let state = b.eval(page, "harness.state()").await.unwrap_or(Value::Null);
        let rtp = b.eval(page, RTP_DIAGNOSTICS).await.unwrap_or(Value::Null);
        let trace = b.eval(page, "harness.trace()").await.unwrap_or(Value::Null);
        return Err(e.context(format!(
            "page {page} decoding the endpoint {endpoint}; state {state}; transceivers and \
             inbound RTP {rtp}; signalling trace: {trace:#}"
        )));
    }
    Ok(())
}

/// The ids of the pool's members, as the gateway holds them.
fn members(gateway: &Gateway) -> Vec<EndpointId> {
    gateway
        .pools()
        .pool(POOL)
        .map(|p| p.endpoints.iter().map(|e| e.id).collect())
        .unwrap_or_default()
}

async fn rejoin_scenario() -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let url = format!("http://{addr}/harness.html");
    let gateway = start_gateway_at(addr).await?;

    // The endpoint reaches the gateway like any remote ssp server: over raw WebSocket.
    let mut endpoint = Endpoint::start(EndpointOptions {
        target: SignallingTarget::Remote(format!("ws://{addr}/ws")),
        pool: POOL.to_string(),
        ice_servers: Vec::new(),
        ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        media: vec![poolgate::endpoint::MediaSource::TestVideo],
    })
    .await?;
    let first_id = next_joined(&mut endpoint, MESSAGE_LIMIT)
        .await
        .context("first join")?;

    let mut b = Browser::launch().await?;
    let first_page = open_and_join(&mut b, "before", &url).await?;
    wait_decoding(&mut b, "before", first_id)
        .await
        .context("before the drop")?;

    // Drop signalling: stopping the gateway closes both WebSocket connections and the listener.
    gateway.stop().await;
    tokio::time::sleep(DOWNTIME).await;
    let gateway = restart_gateway_at(addr).await?;

    let second_id = next_joined(&mut endpoint, REJOIN_LIMIT)
        .await
        .context("rejoin after the signalling drop")?;
    ensure!(
        second_id != first_id,
        "the endpoint rejoined with its old id {first_id}"
    );
    let now = members(&gateway);
    ensure!(
        now.contains(&second_id),
        "the new pool does not hold the endpoint's new id {second_id}: {now:?}"
    );
    ensure!(
        !now.contains(&first_id),
        "the new pool holds the endpoint's old id {first_id}: {now:?}"
    );

    // rtcpool does not rejoin by itself: the viewer reloads (a fresh page) and joins again.
    b.close("before").await?;
    let second_page = open_and_join(&mut b, "after", &url).await?;
    ensure!(
        second_page != first_page,
        "the reloaded page got its old id {first_page}"
    );
    wait_decoding(&mut b, "after", second_id)
        .await
        .context("after the rejoin")?;

    // Exactly the two rejoined endpoints, and nothing of the first session.
    let mut now: Vec<String> = members(&gateway).iter().map(|id| id.to_string()).collect();
    now.sort();
    let mut expected = vec![second_id.to_string(), second_page];
    expected.sort();
    ensure!(
        now == expected,
        "pool {POOL:?} members after the rejoin: {now:?}, expected {expected:?} \
         (first session: endpoint {first_id}, page {first_page})"
    );

    b.quit().await?;
    endpoint.stop().await;
    gateway.stop().await;
    Ok(())
}
