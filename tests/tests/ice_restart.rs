//! ICE restart toward a connected browser (real rtcpool in headless Chromium). On GStreamer
//! 1.22 the endpoint restarts ICE by rebuilding the peer's webrtcbin, and the fresh webrtcbin
//! must *offer*: Chromium accepts that offer only if it keeps every media section of the
//! session, in order, with the same mids. Each trial restarts ICE a few times and checks after
//! each restart that the exchange completed and that media still flows both ways; with the
//! page that has a data section, that a channel the endpoint opens works on the fresh
//! webrtcbin too, and that the page's own channel works again (the endpoint reopens it).
//!
//! The test binary re-executes itself in a network namespace that has only `lo`.

use std::time::Duration;

use anyhow::{ensure, Context};
use libtest_mimic::Trial;
use poolgate::endpoint::{
    ChannelSpec, ChannelTarget, EndpointEvent, EndpointHandle, Payload, PeerStats,
};
use poolgate::signalling::EndpointId;
use poolgate_tests::browser::Browser;
use poolgate_tests::scenario::{
    answer_pings, decoded_stream, expect, failed_peers, run, run_trials, start_endpoint,
    start_gateway, trace_tail, CONNECT_LIMIT,
};

/// ICE restarts per trial.
const RESTARTS: u32 = 3;
/// How long one restart may take to settle: bounds a stuck restart, measures nothing.
const RESTART_LIMIT: Duration = Duration::from_secs(20);

fn main() {
    run_trials(|| {
        vec![
            Trial::test(
                "endpoint_restarts_ice_toward_a_browser_that_offered_first",
                || run(restarts(Page::OfferedFirst)),
            ),
            Trial::test(
                "endpoint_restarts_ice_toward_a_browser_with_channels",
                || run(restarts(Page::WithChannels)),
            ),
            Trial::test("endpoint_restarts_ice_toward_a_viewer_only_browser", || {
                run(restarts(Page::ViewerOnly))
            }),
        ]
    });
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Page {
    /// Fake camera and microphone and a data channel; joins before the endpoint, so its offer
    /// numbers the session's sections (the fresh webrtcbin's own order differs) and the
    /// endpoint is polite. Media is checked after each restart.
    OfferedFirst,
    /// Joins after the endpoint, which opens a `gw` channel to every peer, with camera,
    /// microphone and a channel of its own: the session mixes webrtcbin's sections and the
    /// page's. Media and a `gw` round trip are checked after each restart.
    WithChannels,
    /// No media, no channel: never offers; joins after the endpoint.
    ViewerOnly,
}

/// The endpoint's figures for one peer.
async fn stats_for(handle: &EndpointHandle, peer: EndpointId) -> anyhow::Result<PeerStats> {
    handle
        .stats()
        .await
        .into_iter()
        .find(|s| s.peer == Some(peer))
        .with_context(|| format!("the endpoint has no peer connection to {peer}"))
}

/// Waits until the endpoint's connection to `peer` is settled, with more rebuilds and more
/// exchanges than `before`.
async fn restarted(
    handle: &EndpointHandle,
    peer: EndpointId,
    before: &PeerStats,
) -> anyhow::Result<PeerStats> {
    let deadline = tokio::time::Instant::now() + RESTART_LIMIT;
    loop {
        let s = stats_for(handle, peer).await?;
        if s.settled && s.rebuilds > before.rebuilds && s.exchanges > before.exchanges {
            return Ok(s);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the ICE restart toward {peer} did not complete: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn restarts(page: Page) -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    let pool = "restart";
    let (endpoint, endpoint_id) = match page {
        Page::OfferedFirst => {
            b.eval(
                "v",
                &format!("harness.join({{transport: 'ws', pool: '{pool}', media: true}})"),
            )
            .await?;
            start_endpoint(&gateway, pool).await?
        }
        Page::WithChannels => {
            let e = start_endpoint(&gateway, pool).await?;
            e.0.handle()
                .create_channel(ChannelSpec::reliable("gw"), ChannelTarget::All);
            b.eval(
                "v",
                &format!("harness.join({{transport: 'ws', pool: '{pool}', media: true}})"),
            )
            .await?;
            e
        }
        Page::ViewerOnly => {
            let e = start_endpoint(&gateway, pool).await?;
            b.eval(
                "v",
                &format!(
                    "harness.join({{transport: 'ws', pool: '{pool}', media: false, channel: false}})"
                ),
            )
            .await?;
            e
        }
    };
    let handle = endpoint.handle();
    let (pump, mut seen) = answer_pings(endpoint);
    let browser_id = b.eval("v", "harness.state().id").await?;
    let browser = EndpointId(uuid::Uuid::parse_str(
        browser_id.as_str().context("page id")?,
    )?);
    decoded_stream(&mut b, "v", &endpoint_id, "video/VP8").await?;
    if page == Page::WithChannels {
        gw_round_trip(&handle, &mut seen, browser, 0)
            .await
            .context("the endpoint's channel before any restart")?;
    }
    if page == Page::OfferedFirst {
        // The page's own channel works on the endpoint's first webrtcbin, which got there
        // without a rebuild (webrtcbin 1.22 left the page's data section out of our offers).
        b.eval("v", &format!("harness.ping({endpoint_id:?}, 'first')"))
            .await
            .context("the page's channel before any restart")?;
        let first = wait_settled(&handle, browser).await?;
        ensure!(
            first.rebuilds == 0,
            "the first connection needed {} rebuilds",
            first.rebuilds
        );
    }
    let errors_before = page_errors(&mut b).await?;

    for n in 1..=RESTARTS {
        // Settled first: a restart owed during an exchange waits for it anyway.
        let before = wait_settled(&handle, browser).await?;
        handle.restart_ice(Some(browser));
        if let Err(e) = restarted(&handle, browser, &before).await {
            let trace = b.eval("v", "harness.trace()").await.unwrap_or_default();
            let errors = page_errors(&mut b).await.unwrap_or_default();
            anyhow::bail!(
                "restart {n}: {e:#}; page errors: {errors:?}; page trace tail: {}",
                trace_tail(&trace)
            );
        }
        media_flows(&mut b, &handle, browser, &endpoint_id, page)
            .await
            .with_context(|| format!("after restart {n}"))?;
        if page == Page::WithChannels {
            gw_round_trip(&handle, &mut seen, browser, n)
                .await
                .with_context(|| format!("the endpoint's channel after restart {n}"))?;
        }
        if page != Page::ViewerOnly {
            // The page's own `harness` channel died with the old SCTP association; the fresh
            // webrtcbin opened it again from our side, and the page took it as a new one.
            b.eval(
                "v",
                &format!("harness.ping({endpoint_id:?}, 'restart{n}', 10000, 'harness')"),
            )
            .await
            .with_context(|| format!("the page's channel after restart {n}"))?;
        }
    }
    let after = stats_for(&handle, browser).await?;
    let errors = page_errors(&mut b).await?;
    let failed = failed_peers(&mut seen);
    println!(
        "{RESTARTS} ICE restarts ({page:?}): {} exchanges, {} rebuilds; page errors {}; failed {}",
        after.exchanges,
        after.rebuilds,
        errors.len() - errors_before.len(),
        failed.len()
    );
    ensure!(
        errors.len() == errors_before.len(),
        "the page reported errors: {:?}",
        &errors[errors_before.len()..]
    );
    ensure!(failed.is_empty(), "failed connections: {failed:?}");
    b.quit().await?;
    pump.abort();
    let _ = pump.await;
    gateway.stop().await;
    Ok(())
}

/// The endpoint's `gw` channel opens to the page and carries a ping there and back.
async fn gw_round_trip(
    handle: &EndpointHandle,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<EndpointEvent>,
    browser: EndpointId,
    n: u32,
) -> anyhow::Result<()> {
    expect(seen, "gw open", |e| {
        matches!(e, EndpointEvent::ChannelOpen { peer, label } if *peer == browser && label == "gw")
    })
    .await?;
    ensure!(
        handle
            .send(browser, "gw", Payload::Text(format!("ping:restart{n}")))
            .await,
        "no open gw channel to the page"
    );
    let pong = format!("pong:restart{n}");
    expect(seen, "pong on gw", |e| {
        matches!(e, EndpointEvent::Message { peer, label, payload: Payload::Text(t) }
            if *peer == browser && label == "gw" && *t == pong)
    })
    .await?;
    Ok(())
}

/// Waits until the endpoint's connection to `peer` is settled.
async fn wait_settled(handle: &EndpointHandle, peer: EndpointId) -> anyhow::Result<PeerStats> {
    let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
    loop {
        let s = stats_for(handle, peer).await?;
        if s.settled {
            return Ok(s);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the endpoint's connection to {peer} did not settle: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The page decodes more of the endpoint's video, and (with a camera) the endpoint receives.
async fn media_flows(
    b: &mut Browser,
    handle: &EndpointHandle,
    browser: EndpointId,
    endpoint_id: &str,
    page: Page,
) -> anyhow::Result<()> {
    let frames = b.eval("v", "harness.framesDecoded()").await?[endpoint_id]
        .as_u64()
        .unwrap_or(0);
    if let Err(e) = b
        .wait_for("v", "harness.framesDecoded()", CONNECT_LIMIT, |f| {
            f[endpoint_id].as_u64().unwrap_or(0) > frames
        })
        .await
    {
        let inbound = b.eval("v", "harness.inbound()").await.unwrap_or_default();
        let transports = b
            .eval("v", "harness.transports()")
            .await
            .unwrap_or_default();
        anyhow::bail!(
            "the page decodes no more of the endpoint's video: {e:#}; inbound {}; transport {}",
            inbound[endpoint_id],
            transports[endpoint_id]
        );
    }
    if page != Page::ViewerOnly {
        let received = stats_for(handle, browser).await?.bytes_received;
        let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
        while stats_for(handle, browser).await?.bytes_received <= received {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the endpoint receives nothing from the page"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn page_errors(b: &mut Browser) -> anyhow::Result<Vec<String>> {
    let state = b.eval("v", "harness.state()").await?;
    Ok(state["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e.to_string()).collect())
        .unwrap_or_default())
}
