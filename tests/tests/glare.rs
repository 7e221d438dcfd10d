//! Forced glare: both ends of a connection change something that needs an offer at the same
//! instant, round after round, and every round must end stable with the change negotiated and
//! media still flowing. Browser (real rtcpool in headless Chromium) against the endpoint with
//! the endpoint impolite and polite, and endpoint against endpoint.
//!
//! The browser flips its audio transceiver between sendrecv and recvonly at a wall-clock instant
//! the test also uses to make the endpoint renegotiate; the instant is shifted a little from
//! round to round so the offers cross at different points of each other's exchange.
//!
//! The test binary re-executes itself in a network namespace that has only `lo`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};
use libtest_mimic::Trial;
use poolgate::endpoint::{EndpointEvent, EndpointHandle, PeerStats};
use poolgate::signalling::{EndpointId, SignallingTarget};
use poolgate_tests::browser::Browser;
use poolgate_tests::scenario::{
    answer_pings, decoded_stream, expect, failed_peers, run, run_trials, start_endpoint,
    start_endpoint_with, start_gateway, trace_tail, CONNECT_LIMIT,
};
use serde_json::json;

/// Collisions forced per trial.
const ROUNDS: u32 = 50;
/// How long one round may take to settle: bounds a stuck round, measures nothing.
const ROUND_LIMIT: Duration = Duration::from_secs(15);
/// Stuck rounds after which a trial stops early (it has failed already).
const MAX_STUCK: usize = 3;

fn main() {
    run_trials(|| {
        vec![
            Trial::test("endpoint_glare_with_a_browser_endpoint_impolite", || {
                run(browser_glare(Politeness::EndpointImpolite))
            }),
            Trial::test("endpoint_glare_with_a_browser_endpoint_polite", || {
                run(browser_glare(Politeness::EndpointPolite))
            }),
            Trial::test("endpoint_glare_between_two_endpoints", || {
                run(endpoint_glare())
            }),
        ]
    });
}

#[derive(Clone, Copy, Debug)]
enum Politeness {
    /// The endpoint joined first: the browser is polite.
    EndpointImpolite,
    /// The browser joined first: the endpoint is polite.
    EndpointPolite,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

/// Waits until the endpoint's connection to `peer` is settled and has completed more than
/// `exchanges_before` exchanges.
async fn endpoint_settles(
    handle: &EndpointHandle,
    peer: EndpointId,
    exchanges_before: u64,
    limit: Duration,
) -> anyhow::Result<PeerStats> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let s = stats_for(handle, peer).await?;
        if s.settled && s.exchanges > exchanges_before {
            return Ok(s);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the endpoint's connection to {peer} did not settle: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The browser's side: 50 rounds in which the page flips its audio direction and the endpoint
/// renegotiates at the same instant.
async fn browser_glare(politeness: Politeness) -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    let join = "harness.join({transport: 'ws', pool: 'glare', media: true, channel: false})";
    let (endpoint, endpoint_id) = match politeness {
        Politeness::EndpointImpolite => {
            let e = start_endpoint(&gateway, "glare").await?;
            b.eval("v", join).await?;
            e
        }
        Politeness::EndpointPolite => {
            b.eval("v", join).await?;
            start_endpoint(&gateway, "glare").await?
        }
    };
    let handle = endpoint.handle();
    let (pump, mut seen) = answer_pings(endpoint);
    let browser_id = b.eval("v", "harness.state().id").await?;
    let browser = EndpointId(uuid::Uuid::parse_str(
        browser_id.as_str().context("page id")?,
    )?);
    decoded_stream(&mut b, "v", &endpoint_id, "video/VP8").await?;
    endpoint_settles(&handle, browser, 0, CONNECT_LIMIT).await?;

    let mut stuck = Vec::new();
    for round in 0..ROUNDS {
        let before = stats_for(&handle, browser).await?;
        // Both sides act at `at`; the endpoint's side is shifted by -20..+20 ms over the rounds.
        let at = now_ms() + 150;
        let shift = (round as i64 % 9) * 5 - 20;
        let direction = b
            .eval(
                "v",
                &format!("harness.toggleAudioAt({endpoint_id:?}, {at})"),
            )
            .await?;
        let ours = (at as i64 + shift).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(ours.saturating_sub(now_ms()))).await;
        handle.renegotiate(Some(browser));

        let settled = b
            .wait_for(
                "v",
                &format!("harness.toggleSettled({endpoint_id:?}, {direction})"),
                ROUND_LIMIT,
                |s| s["settled"] == json!(true),
            )
            .await;
        let ours = endpoint_settles(&handle, browser, before.exchanges, ROUND_LIMIT).await;
        if let Err(e) = settled.and(ours) {
            let trace = b.eval("v", "harness.trace()").await.unwrap_or_default();
            stuck.push(format!(
                "round {round}: {e:#}; page trace tail: {}",
                trace_tail(&trace)
            ));
            if stuck.len() >= MAX_STUCK {
                break;
            }
        }
    }
    let failed = failed_peers(&mut seen);
    let after = stats_for(&handle, browser).await?;
    println!(
        "{ROUNDS} rounds ({politeness:?}): {} stuck, {} failed; endpoint side: {} exchanges, {} rebuilds",
        stuck.len(),
        failed.len(),
        after.exchanges,
        after.rebuilds
    );
    ensure!(stuck.is_empty(), "stuck rounds:\n{}", stuck.join("\n"));
    ensure!(failed.is_empty(), "failed connections: {failed:?}");

    // Media still flows both ways after the last round.
    let before = b.eval("v", "harness.framesDecoded()").await?[endpoint_id.as_str()]
        .as_u64()
        .unwrap_or(0);
    let sent_before = stats_for(&handle, browser).await?.bytes_sent;
    if let Err(e) = b
        .wait_for("v", "harness.framesDecoded()", CONNECT_LIMIT, |f| {
            f[endpoint_id.as_str()].as_u64().unwrap_or(0) > before
        })
        .await
    {
        // What the page receives and what the endpoint sends tell where the video stopped.
        let inbound = b.eval("v", "harness.inbound()").await.unwrap_or_default();
        let transports = b
            .eval("v", "harness.transports()")
            .await
            .unwrap_or_default();
        let sent_after = stats_for(&handle, browser).await?.bytes_sent;
        anyhow::bail!(
            "the endpoint's video stopped after the collisions: {e:#}; the page receives {}; \
             the endpoint sent {} bytes to it meanwhile; the page's transport: {}",
            inbound[endpoint_id.as_str()],
            sent_after.saturating_sub(sent_before),
            transports[endpoint_id.as_str()]
        );
    }
    let received = stats_for(&handle, browser).await?.bytes_received;
    let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
    while stats_for(&handle, browser).await?.bytes_received <= received {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the endpoint receives nothing from the page after the collisions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    b.quit().await?;
    pump.abort();
    let _ = pump.await;
    gateway.stop().await;
    Ok(())
}

/// Two endpoints renegotiate with each other in the same instant, 50 times.
async fn endpoint_glare() -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let target = SignallingTarget::Hosted(gateway.pools().clone());
    let media = vec![poolgate::endpoint::MediaSource::TestVideo];
    let (first, first_id) = start_endpoint_with(target.clone(), "glare2", media.clone()).await?;
    let (second, second_id) = start_endpoint_with(target, "glare2", media).await?;
    let (a, b) = (first.handle(), second.handle());
    let a_id = EndpointId(uuid::Uuid::parse_str(&first_id)?);
    let b_id = EndpointId(uuid::Uuid::parse_str(&second_id)?);
    let (pump_a, mut seen_a) = answer_pings(first);
    let (pump_b, mut seen_b) = answer_pings(second);
    expect(
        &mut seen_b,
        "the first endpoint's video at the second",
        |e| matches!(e, EndpointEvent::TrackAdded(t) if t.peer == a_id),
    )
    .await?;
    endpoint_settles(&a, b_id, 0, CONNECT_LIMIT).await?;
    endpoint_settles(&b, a_id, 0, CONNECT_LIMIT).await?;

    let mut stuck = Vec::new();
    for round in 0..ROUNDS {
        let (before_a, before_b) = (stats_for(&a, b_id).await?, stats_for(&b, a_id).await?);
        // The same instant, or one side a few milliseconds later.
        let gap = Duration::from_millis(u64::from(round % 4) * 3);
        if round % 2 == 0 {
            a.renegotiate(Some(b_id));
            tokio::time::sleep(gap).await;
            b.renegotiate(Some(a_id));
        } else {
            b.renegotiate(Some(a_id));
            tokio::time::sleep(gap).await;
            a.renegotiate(Some(b_id));
        }
        let settled_a = endpoint_settles(&a, b_id, before_a.exchanges, ROUND_LIMIT).await;
        let settled_b = endpoint_settles(&b, a_id, before_b.exchanges, ROUND_LIMIT).await;
        if let Err(e) = settled_a.and(settled_b) {
            stuck.push(format!("round {round}: {e:#}"));
            if stuck.len() >= MAX_STUCK {
                break;
            }
        }
    }
    let mut failed = failed_peers(&mut seen_a);
    failed.extend(failed_peers(&mut seen_b));
    let (sa, sb) = (stats_for(&a, b_id).await?, stats_for(&b, a_id).await?);
    println!(
        "{ROUNDS} rounds endpoint vs endpoint: {} stuck, {} failed; impolite side {} exchanges, \
         {} rebuilds; polite side {} exchanges, {} rebuilds",
        stuck.len(),
        failed.len(),
        sa.exchanges,
        sa.rebuilds,
        sb.exchanges,
        sb.rebuilds
    );
    ensure!(stuck.is_empty(), "stuck rounds:\n{}", stuck.join("\n"));
    ensure!(failed.is_empty(), "failed connections: {failed:?}");
    // Media still flows both ways.
    for (handle, peer, what) in [(&a, b_id, "first"), (&b, a_id, "second")] {
        let before = stats_for(handle, peer).await?.bytes_received;
        let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
        while stats_for(handle, peer).await?.bytes_received <= before {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the {what} endpoint receives no media after the collisions"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for pump in [pump_a, pump_b] {
        pump.abort();
        let _ = pump.await;
    }
    gateway.stop().await;
    Ok(())
}
