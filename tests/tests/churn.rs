//! Churn: four real rtcpool pages (fake camera and microphone) and two poolgate endpoints in one
//! pool. The pages leave and join again, twice; every time they have left, each endpoint's
//! pipeline is back to the elements it had before any page came (every pad and element of a
//! departed peer released), and every time they are back, each page decodes both endpoints.
//!
//! The test binary re-executes itself in a network namespace that has only `lo`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{ensure, Context};
use gstreamer::prelude::GstBinExtManual;
use libtest_mimic::Trial;
use poolgate::endpoint::{EndpointEvent, EndpointHandle, MediaSource};
use poolgate::signalling::{EndpointId, SignallingTarget};
use poolgate_tests::browser::Browser;
use poolgate_tests::scenario::{
    answer_pings, run, run_trials, start_endpoint_with, start_gateway, CONNECT_LIMIT, MESSAGE_LIMIT,
};

const PAGES: usize = 4;
const ROUNDS: usize = 2;

fn main() {
    run_trials(|| {
        vec![Trial::test(
            "endpoint_churn_with_four_browsers_releases_everything",
            || run(churn()),
        )]
    });
}

/// Waits until the endpoint's connections are exactly to `peers`, all connected and settled.
async fn connected_to(handle: &EndpointHandle, peers: &HashSet<EndpointId>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
    loop {
        let stats = handle.stats().await;
        let now: HashSet<EndpointId> = stats.iter().filter_map(|s| s.peer).collect();
        if now == *peers && stats.iter().all(|s| s.state == "connected" && s.settled) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the endpoint's connections are not all up: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Applies `e` to `live` (track id → kind of the tracks `from` sends). True if it changed it.
fn track_change(e: &EndpointEvent, live: &mut HashMap<String, String>, from: EndpointId) -> bool {
    match e {
        EndpointEvent::TrackAdded(t) if t.peer == from => {
            live.insert(t.id.clone(), t.kind.clone());
            true
        }
        EndpointEvent::TrackRemoved { peer, id } if *peer == from => live.remove(id).is_some(),
        _ => false,
    }
}

/// Waits until `live` holds both an audio and a video track from `from`.
async fn both_tracks(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<EndpointEvent>,
    live: &mut HashMap<String, String>,
    from: EndpointId,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + MESSAGE_LIMIT;
    loop {
        while let Ok(e) = seen.try_recv() {
            track_change(&e, live, from);
        }
        if live.values().collect::<HashSet<_>>().len() == 2 {
            return Ok(());
        }
        let e = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .with_context(|| format!("live tracks still {live:?}"))?
            .context("the endpoint stopped")?;
        track_change(&e, live, from);
    }
}

async fn churn() -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let target = SignallingTarget::Hosted(gateway.pools().clone());
    let media = vec![MediaSource::TestVideo, MediaSource::TestAudio];
    let (first, first_id) = start_endpoint_with(target.clone(), "churn", media.clone()).await?;
    let (second, second_id) = start_endpoint_with(target, "churn", media).await?;
    let ids = [
        EndpointId(uuid::Uuid::parse_str(&first_id)?),
        EndpointId(uuid::Uuid::parse_str(&second_id)?),
    ];
    let endpoints = [first, second];
    let pipelines: Vec<_> = endpoints.iter().map(|e| e.pipeline().clone()).collect();
    let handles: Vec<_> = endpoints.iter().map(|e| e.handle()).collect();
    let mut pumps: Vec<_> = endpoints.into_iter().map(answer_pings).collect();

    // The baseline: the two endpoints connected to each other and receiving each other's video
    // and tone (each incoming track adds its own elements), no page yet. A glare between them
    // can rebuild a connection after its first tracks came: those are removed and new ones
    // follow, so the baseline waits for tracks that are live, on settled connections.
    let mut live: [HashMap<String, String>; 2] = Default::default();
    loop {
        connected_to(&handles[0], &HashSet::from([ids[1]])).await?;
        connected_to(&handles[1], &HashSet::from([ids[0]])).await?;
        for (i, (_, seen)) in pumps.iter_mut().enumerate() {
            both_tracks(seen, &mut live[i], ids[1 - i])
                .await
                .with_context(|| format!("endpoint {i} gets the other's tracks"))?;
        }
        connected_to(&handles[0], &HashSet::from([ids[1]])).await?;
        connected_to(&handles[1], &HashSet::from([ids[0]])).await?;
        let mut unchanged = true;
        for (i, (_, seen)) in pumps.iter_mut().enumerate() {
            while let Ok(e) = seen.try_recv() {
                unchanged &= !track_change(&e, &mut live[i], ids[1 - i]);
            }
        }
        if unchanged {
            break;
        }
    }
    let baseline: Vec<usize> = pipelines.iter().map(|p| p.children().len()).collect();
    let names = |p: &gstreamer::Pipeline| -> Vec<String> {
        use gstreamer::prelude::GstObjectExt;
        p.children().iter().map(|e| e.name().to_string()).collect()
    };
    let before: Vec<Vec<String>> = pipelines.iter().map(names).collect();

    let mut b = Browser::launch().await?;
    for round in 0..ROUNDS {
        let mut pages = HashSet::new();
        for n in 0..PAGES {
            let page = format!("r{round}p{n}");
            b.open(&page, &url).await?;
            let id = b
                .eval(
                    &page,
                    "harness.join({transport: 'ws', pool: 'churn', media: true, channel: false})",
                )
                .await?;
            let id = id.as_str().context("page id")?;
            pages.insert(EndpointId(uuid::Uuid::parse_str(id)?));
        }
        for n in 0..PAGES {
            let page = format!("r{round}p{n}");
            b.wait_for(&page, "harness.framesDecoded()", CONNECT_LIMIT, |f| {
                ids.iter()
                    .all(|id| f[id.to_string().as_str()].as_u64().unwrap_or(0) > 0)
            })
            .await
            .with_context(|| {
                format!("round {round}: page {page} does not decode both endpoints")
            })?;
        }
        for (i, handle) in handles.iter().enumerate() {
            let mut want = pages.clone();
            want.insert(ids[1 - i]);
            connected_to(handle, &want)
                .await
                .with_context(|| format!("round {round}: endpoint {i} with the pages"))?;
        }

        // Half the pages leave cleanly, half vanish (their tab closes).
        for n in 0..PAGES {
            let page = format!("r{round}p{n}");
            if n % 2 == 0 {
                b.eval(&page, "harness.leave()").await?;
            }
            b.close(&page).await?;
        }
        for (i, pipeline) in pipelines.iter().enumerate() {
            let only_endpoint = HashSet::from([ids[1 - i]]);
            connected_to(&handles[i], &only_endpoint)
                .await
                .with_context(|| format!("round {round}: endpoint {i} after the pages left"))?;
            let deadline = tokio::time::Instant::now() + MESSAGE_LIMIT;
            loop {
                let now = pipeline.children().len();
                if now == baseline[i] {
                    break;
                }
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "round {round}: endpoint {i} has {now} elements after the pages left, \
                     {} before any page came; now {:?}, before {:?}",
                    baseline[i],
                    names(pipeline),
                    before[i]
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    b.quit().await?;
    for (pump, mut seen) in pumps {
        while let Ok(e) = seen.try_recv() {
            ensure!(
                !matches!(&e, EndpointEvent::PeerState { state, .. } if state == "failed"),
                "a connection failed: {e:?}"
            );
        }
        pump.abort();
        let _ = pump.await;
    }
    gateway.stop().await;
    Ok(())
}
