//! Real browsers meet through poolgate: headless Chromium pages running the real `rtcpool`
//! 3.0.2 bundle join one pool over raw WebSocket and over socket.io, connect in a mesh, decode
//! each other's fake-camera video and exchange data-channel messages; leaving and descriptions
//! reach everyone.
//!
//! The whole test binary re-executes itself in a network namespace that has only `lo`, so
//! Chromium's ICE traffic cannot leave the machine.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use gstreamer::prelude::GstBinExtManual;
use libtest_mimic::Trial;
use poolgate::endpoint::{
    ChannelSpec, ChannelTarget, Endpoint, EndpointEvent, MediaSource, Payload,
};
use poolgate::signalling::{EndpointId, SignallingTarget};
use poolgate_tests::browser::Browser;
use poolgate_tests::scenario::{
    answer_pings, decoded_stream, expect, run, run_trials, start_endpoint, start_endpoint_at,
    start_endpoint_with, start_gateway, start_gateway_serving, CONNECT_LIMIT, MESSAGE_LIMIT,
};
use serde_json::{json, Value};

fn main() {
    run_trials(|| {
        vec![
            Trial::test("three_browsers_mesh_over_websocket", || {
                run(mesh_scenario("ws"))
            }),
            Trial::test("three_browsers_mesh_over_socketio", || {
                run(mesh_scenario("socketio"))
            }),
            Trial::test("demo_page_tabs_see_each_other", || run(demo_scenario())),
            Trial::test("endpoint_video_reaches_a_viewer_only_browser", || {
                run(viewer_only_scenario())
            }),
            Trial::test("endpoint_sends_h264_and_pcmu_to_a_browser", || {
                run(codec_scenario())
            }),
            Trial::test("endpoint_joins_after_a_browser_with_media", || {
                run(endpoint_scenario(JoinOrder::BrowserFirst))
            }),
            Trial::test("endpoint_joins_before_a_browser_with_media", || {
                run(endpoint_scenario(JoinOrder::EndpointFirst))
            }),
            Trial::test("endpoint_data_channels_with_a_browser", || {
                run(data_channel_scenario())
            }),
            Trial::test("endpoint_in_a_pyrtc_pool", || {
                run(remote_endpoint_scenario(Remote::Pyrtc))
            }),
            Trial::test(
                "endpoint_in_a_pool_of_another_poolgate_over_socketio",
                || run(remote_endpoint_scenario(Remote::PoolgateSocketIo)),
            ),
        ]
    });
}

/// Joins `page` to `pool` and returns its endpoint id.
async fn join(b: &mut Browser, page: &str, transport: &str, pool: &str) -> anyhow::Result<String> {
    let id = b
        .eval(
            page,
            &format!("harness.join({{transport: {transport:?}, pool: {pool:?}, media: true}})"),
        )
        .await?;
    id.as_str()
        .map(str::to_string)
        .with_context(|| format!("harness.join returned {id}"))
}

/// The peer entry for `peer` in `page`'s state.
fn peer<'a>(state: &'a Value, peer: &str) -> Option<&'a Value> {
    state["peers"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_str() == Some(peer))
}

async fn mesh_scenario(transport: &'static str) -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    let pages = ["a", "b", "c"];
    let mut ids = Vec::new();
    for page in pages {
        b.open(page, &url).await?;
        ids.push(join(&mut b, page, transport, "mesh").await?);
    }
    ensure!(
        gateway.pools().pool("mesh").map(|p| p.endpoints.len()) == Some(3),
        "the pool server does not hold the three pages"
    );

    // Every pair connects and decodes the other's fake-camera video.
    for (i, page) in pages.iter().enumerate() {
        let others: Vec<&String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, id)| id)
            .collect();
        let connected = b
            .wait_for(page, "harness.state()", CONNECT_LIMIT, |s| {
                others
                    .iter()
                    .all(|o| peer(s, o).is_some_and(|p| p["connectionState"] == "connected"))
            })
            .await;
        if let Err(e) = connected {
            let trace = b.eval(page, "harness.trace()").await.unwrap_or_default();
            return Err(e.context(format!(
                "peer connections; signalling trace of {page}: {trace:#}"
            )));
        }
        b.wait_for(page, "harness.framesDecoded()", CONNECT_LIMIT, |f| {
            others
                .iter()
                .all(|o| f[o.as_str()].as_u64().unwrap_or(0) > 0)
        })
        .await
        .context("decoding video")?;
    }

    // A data-channel message goes round trip between every pair, in both directions.
    for (i, page) in pages.iter().enumerate() {
        for (j, other) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let text = format!("{page}-to-{}", pages[j]);
            let ok = b
                .eval(
                    page,
                    &format!(
                        "harness.ping({other:?}, {text:?}, {})",
                        MESSAGE_LIMIT.as_millis()
                    ),
                )
                .await?;
            ensure!(ok == json!(true), "ping {text} returned {ok}");
        }
    }

    // A description set through the library API reaches every other page...
    let a_id = EndpointId(uuid::Uuid::parse_str(&ids[0])?);
    let description = json!({"name": "alice", "role": "presenter"});
    gateway
        .pools()
        .set_description(a_id, Some(description.clone()))?;
    for page in ["b", "c"] {
        b.wait_for(page, "harness.state()", MESSAGE_LIMIT, |s| {
            peer(s, &ids[0]).is_some_and(|p| p["description"] == description)
        })
        .await
        .context("rtc:describe")?;
    }
    // ...and a page that joins later.
    b.open("d", &url).await?;
    let d_id = join(&mut b, "d", transport, "mesh").await?;
    let state = b.eval("d", "harness.state()").await?;
    ensure!(
        peer(&state, &ids[0]).is_some_and(|p| p["description"] == description),
        "late joiner does not see the description from rtc:joined: {state}"
    );
    ensure!(
        peer(&state, &ids[1]).is_some_and(|p| p["description"].is_null()),
        "an endpoint without description must have null: {state}"
    );

    // A page that leaves is reported to the others (rtc:close).
    b.eval("c", "harness.leave()").await?;
    for page in ["a", "b", "d"] {
        b.wait_for(page, "harness.state()", MESSAGE_LIMIT, |s| {
            s["closed"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x.as_str() == Some(ids[2].as_str())))
        })
        .await
        .context("rtc:close")?;
    }
    // Closing the page itself (not just leaving) also frees its endpoint.
    b.close("d").await?;
    let deadline = tokio::time::Instant::now() + MESSAGE_LIMIT;
    loop {
        let members: Vec<String> = gateway
            .pools()
            .pool("mesh")
            .map(|p| p.endpoints.iter().map(|e| e.id.to_string()).collect())
            .unwrap_or_default();
        if members == ids[..2] {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("pool members after c left and d closed: {members:?} (d was {d_id})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// What a newcomer sees after `make run`: two tabs of the demo page (one over raw WebSocket,
/// one over socket.io) show each other's camera, descriptions and chat.
async fn demo_scenario() -> anyhow::Result<()> {
    let web_root = poolgate_tests::browser::repo_root().join("gateway/web/dist");
    ensure!(
        web_root.join("index.html").is_file(),
        "demo page not built: run `make web`"
    );
    let gateway = start_gateway_serving(web_root).await?;
    let mut b = Browser::launch().await?;
    let base = format!("http://{}/?pool=demo-e2e", gateway.addr());
    b.open("d1", &base).await?;
    b.open("d2", &format!("{base}&transport=socketio")).await?;

    // Each tab shows one remote tile whose video plays with real frames.
    let playing = "(() => { const v = [...document.querySelectorAll('.tile.remote video')]; \
        return v.map(x => ({w: x.videoWidth, t: x.currentTime})); })()";
    for page in ["d1", "d2"] {
        b.wait_for(page, playing, CONNECT_LIMIT, |v| {
            v.as_array().is_some_and(|tiles| {
                tiles.len() == 1
                    && tiles[0]["w"].as_u64().unwrap_or(0) > 0
                    && tiles[0]["t"].as_f64().unwrap_or(0.0) > 0.0
            })
        })
        .await
        .context("remote video tile")?;
    }

    // The operator describes d1's endpoint (the first to join): d2's tile shows it.
    let members = gateway
        .pools()
        .pool("demo-e2e")
        .context("pool demo-e2e")?
        .endpoints;
    ensure!(members.len() == 2, "pool members: {members:?}");
    gateway
        .pools()
        .set_description(members[0].id, Some(json!({"name": "front desk"})))?;
    b.wait_for(
        "d2",
        "document.querySelector('.tile.remote .desc').textContent",
        MESSAGE_LIMIT,
        |t| t.as_str().is_some_and(|t| t.contains("front desk")),
    )
    .await
    .context("description shown on the tile")?;

    // Chat from one tab appears in the other.
    b.wait_for(
        "d1",
        "(() => { const f = document.getElementById('chat-form'); f.text.value = 'hello from d1'; \
         f.requestSubmit(); return document.getElementById('chat-log').textContent; })()",
        MESSAGE_LIMIT,
        |t| t.as_str().is_some_and(|t| t.contains("hello from d1")),
    )
    .await
    .context("chat echo in the sender's own log")?;
    b.wait_for(
        "d2",
        "document.getElementById('chat-log').textContent",
        MESSAGE_LIMIT,
        |t| t.as_str().is_some_and(|t| t.contains("hello from d1")),
    )
    .await
    .context("chat message received")?;

    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum JoinOrder {
    EndpointFirst,
    BrowserFirst,
}

/// The poolgate endpoint publishes a VP8 test pattern in a hosted pool; a real rtcpool page
/// with a fake camera and microphone joins before or after it (both sides offer at once):
/// each decodes the other's video, and the page's departure releases everything it caused.
async fn endpoint_scenario(order: JoinOrder) -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    let join = "harness.join({transport: 'ws', pool: 'ep', media: true, channel: false})";
    let (mut endpoint, endpoint_id, baseline) = match order {
        JoinOrder::EndpointFirst => {
            let (e, id) = start_endpoint(&gateway, "ep").await?;
            let baseline = e.pipeline().children().len();
            b.eval("v", join).await?;
            (e, id, Some(baseline))
        }
        JoinOrder::BrowserFirst => {
            b.eval("v", join).await?;
            let (e, id) = start_endpoint(&gateway, "ep").await?;
            (e, id, None)
        }
    };
    let connected = b
        .wait_for("v", "harness.framesDecoded()", CONNECT_LIMIT, |f| {
            f[endpoint_id.as_str()].as_u64().unwrap_or(0) > 0
        })
        .await;
    if let Err(e) = connected {
        let trace = b.eval("v", "harness.trace()").await.unwrap_or_default();
        let state = b.eval("v", "harness.state()").await.unwrap_or_default();
        return Err(e.context(format!(
            "browser state {state}; signalling trace: {trace:#}"
        )));
    }
    endpoint_decodes_the_browser(&mut endpoint).await?;
    // The page leaves: its tracks are removed and every element it caused is released.
    b.close("v").await?;
    let deadline = tokio::time::Instant::now() + MESSAGE_LIMIT;
    let mut removed = 0;
    loop {
        let e = tokio::time::timeout_at(deadline, endpoint.next_event())
            .await
            .context("no PeerLeft after the page closed")?
            .context("endpoint stopped")?;
        match e {
            EndpointEvent::TrackRemoved { .. } => removed += 1,
            EndpointEvent::PeerLeft { .. } => break,
            _ => {}
        }
    }
    ensure!(
        removed == 2,
        "{removed} TrackRemoved events for an audio+video page"
    );
    if let Some(baseline) = baseline {
        let now = endpoint.pipeline().children().len();
        ensure!(
            now == baseline,
            "pipeline has {now} elements after the peer left, {baseline} before it joined"
        );
    }
    b.quit().await?;
    endpoint.stop().await;
    gateway.stop().await;
    Ok(())
}

/// Waits for the page's video track, decodes it with `vp8dec` and counts decoded frames; then
/// releases its elements when the track goes.
async fn endpoint_decodes_the_browser(endpoint: &mut Endpoint) -> anyhow::Result<()> {
    use gstreamer as gst;
    use gstreamer::prelude::{ElementExt, ElementExtManual, GstBinExt, PadExt, PadExtManual};
    let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
    let mut kinds = Vec::new();
    let mut video = None;
    while kinds.len() < 2 {
        let e = tokio::time::timeout_at(deadline, endpoint.next_event())
            .await
            .with_context(|| format!("tracks seen so far: {kinds:?}"))?
            .context("endpoint stopped")?;
        if let EndpointEvent::TrackAdded(t) = e {
            kinds.push(format!("{} {}", t.kind, t.codec));
            if t.kind == "video" {
                video = Some(t);
            }
        }
    }
    kinds.sort();
    ensure!(kinds == ["audio OPUS", "video VP8"], "tracks: {kinds:?}");
    let track = video.unwrap();
    let pipeline = endpoint.pipeline().clone();
    let consumer =
        gst::parse::bin_from_description("queue ! vp8dec ! fakesink name=sink async=false", true)?;
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = frames.clone();
    consumer
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    pipeline.add(&consumer)?;
    consumer.sync_state_with_parent()?;
    let pad = track
        .source
        .request_pad_simple("src_%u")
        .context("tee pad")?;
    pad.link(&consumer.static_pad("sink").unwrap())?;
    while frames.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the endpoint decoded no frame of the page's video"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The consumer's own elements are ours to remove; the endpoint releases the tee pad.
    let c = consumer.clone();
    let p = pipeline.clone();
    tokio::spawn(async move {
        // Removed at once here: the test then checks the endpoint released everything else.
        let _ = c.set_state(gst::State::Null);
        let _ = p.remove(&c);
    })
    .await?;
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Remote {
    /// The reference server, PyPI pyrtc 2.0.2, over raw WebSocket.
    Pyrtc,
    /// A second poolgate, joined over socket.io (not in-process).
    PoolgateSocketIo,
}

/// The endpoint joins a pool on another ssp server by URL, with a browser (camera, no data
/// channel) that joined first: the browser decodes the endpoint's video.
async fn remote_endpoint_scenario(remote: Remote) -> anyhow::Result<()> {
    // This gateway serves the test page; with PoolgateSocketIo it also hosts the pool, but the
    // endpoint reaches it over socket.io like any remote server.
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let pyrtc = match remote {
        Remote::Pyrtc => Some(poolgate_tests::pyrtc::Pyrtc::start().await?),
        Remote::PoolgateSocketIo => None,
    };
    let (join, target) = match &pyrtc {
        Some(p) => (
            format!("harness.join({{transport: 'ws', pool: 'remote', media: true, channel: false, url: {:?}}})", p.url()),
            p.url(),
        ),
        None => (
            "harness.join({transport: 'socketio', pool: 'remote', media: true, channel: false})".to_string(),
            format!("http://{}", gateway.addr()),
        ),
    };
    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    b.eval("v", &join).await?;
    let (endpoint, endpoint_id) =
        start_endpoint_at(SignallingTarget::Remote(target), "remote").await?;
    let decoded = b
        .wait_for("v", "harness.framesDecoded()", CONNECT_LIMIT, |f| {
            f[endpoint_id.as_str()].as_u64().unwrap_or(0) > 0
        })
        .await;
    if let Err(e) = decoded {
        let trace = b.eval("v", "harness.trace()").await.unwrap_or_default();
        return Err(e.context(format!("signalling trace: {trace:#}")));
    }
    // pyrtc stops serving when a peer vanishes abruptly: leave cleanly first.
    b.eval("v", "harness.leave()").await?;
    endpoint.stop().await;
    b.quit().await?;
    if let Some(p) = pyrtc {
        p.stop().await;
    }
    gateway.stop().await;
    Ok(())
}

/// A viewer-only page (no camera, no channel: it never offers) joins after the endpoint, so
/// the endpoint must offer: the page decodes its VP8. Then the endpoint publishes an Opus tone
/// at run time (it offers again) and the page hears it; then the page opens a data channel (now
/// the page offers) and pings over it. The page's DTLS role is the same throughout, and the
/// video kept flowing.
async fn viewer_only_scenario() -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    let (endpoint, endpoint_id) = start_endpoint(&gateway, "viewer").await?;
    let handle = endpoint.handle();
    let (pump, mut seen) = answer_pings(endpoint);
    b.eval(
        "v",
        "harness.join({transport: 'ws', pool: 'viewer', media: false, channel: false})",
    )
    .await?;
    let video = decoded_stream(&mut b, "v", &endpoint_id, "video/VP8").await?;
    let roles = b
        .wait_for("v", "harness.dtlsRoles()", MESSAGE_LIMIT, |r| {
            r[endpoint_id.as_str()].is_string()
        })
        .await
        .context("the page reports no DTLS role")?;
    let role = roles[endpoint_id.as_str()].clone();

    handle
        .publish(MediaSource::TestAudio)
        .await
        .context("publishing the tone at run time")?;
    decoded_stream(&mut b, "v", &endpoint_id, "audio/opus")
        .await
        .context("the tone published at run time")?;

    b.eval(
        "v",
        &format!("harness.openChannel({endpoint_id:?}, 'late')"),
    )
    .await?;
    let pong = b
        .eval(
            "v",
            &format!(
                "harness.ping({endpoint_id:?}, 'late-hello', {}, 'late')",
                CONNECT_LIMIT.as_millis()
            ),
        )
        .await?;
    ensure!(
        pong == json!(true),
        "ping over the page's late channel: {pong}"
    );

    let roles = b.eval("v", "harness.dtlsRoles()").await?;
    ensure!(
        roles[endpoint_id.as_str()] == role,
        "the page's DTLS role changed from {role} to {} in renegotiation",
        roles[endpoint_id.as_str()]
    );
    let before = video["framesDecoded"].as_u64().unwrap_or(0);
    b.wait_for("v", "harness.framesDecoded()", MESSAGE_LIMIT, |f| {
        f[endpoint_id.as_str()].as_u64().unwrap_or(0) > before
    })
    .await
    .context("the endpoint's video stopped after the renegotiations")?;
    while let Ok(e) = seen.try_recv() {
        ensure!(
            !matches!(&e, EndpointEvent::PeerState { state, .. } if state == "failed"),
            "the endpoint's peer connection failed: {e:?}"
        );
    }

    b.quit().await?;
    pump.abort();
    let _ = pump.await;
    gateway.stop().await;
    Ok(())
}

/// The endpoint sends H.264 (constrained baseline, from openh264) and PCMU: the page decodes
/// both, and its stats name those codecs.
async fn codec_scenario() -> anyhow::Result<()> {
    let h264 = "videotestsrc is-live=true pattern=ball \
        ! video/x-raw,width=640,height=480,framerate=30/1 ! videoconvert \
        ! openh264enc complexity=low rate-control=bitrate bitrate=1000000 gop-size=60 \
        ! video/x-h264,profile=constrained-baseline ! h264parse \
        ! rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency \
        ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000\"";
    let pcmu = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
        ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc \
        ! rtppcmupay pt=0 \
        ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=PCMU,payload=0,clock-rate=8000\"";
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    let (endpoint, endpoint_id) = start_endpoint_with(
        SignallingTarget::Hosted(gateway.pools().clone()),
        "codecs",
        vec![
            MediaSource::Launch(h264.to_string()),
            MediaSource::Launch(pcmu.to_string()),
        ],
    )
    .await?;
    b.eval(
        "v",
        "harness.join({transport: 'ws', pool: 'codecs', media: false, channel: false})",
    )
    .await?;
    let video = decoded_stream(&mut b, "v", &endpoint_id, "video/H264").await?;
    ensure!(
        video["fmtp"]
            .as_str()
            .is_some_and(|f| f.contains("profile-level-id=42")),
        "H.264 is not constrained baseline: {video}"
    );
    decoded_stream(&mut b, "v", &endpoint_id, "audio/PCMU").await?;
    b.quit().await?;
    endpoint.stop().await;
    gateway.stop().await;
    Ok(())
}

/// Data channels both ways between the endpoint and a browser: the endpoint opens `gw` to every
/// peer before the browser joins, the browser opens `harness` after its first exchange; text
/// and binary messages go round trip on both.
async fn data_channel_scenario() -> anyhow::Result<()> {
    let gateway = start_gateway().await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let (endpoint, endpoint_id) = start_endpoint(&gateway, "dc").await?;
    let handle = endpoint.handle();
    handle.create_channel(ChannelSpec::reliable("gw"), ChannelTarget::All);

    let (pump, mut seen) = answer_pings(endpoint);

    let mut b = Browser::launch().await?;
    b.open("v", &url).await?;
    let browser_id = b
        .eval(
            "v",
            "harness.join({transport: 'ws', pool: 'dc', media: true})",
        )
        .await?
        .as_str()
        .map(str::to_string)
        .context("browser id")?;
    let browser = EndpointId(uuid::Uuid::parse_str(&browser_id)?);

    // Browser -> endpoint, on the channel the browser opened.
    let ok = b
        .eval(
            "v",
            &format!(
                "harness.ping({endpoint_id:?}, 'hello', {})",
                CONNECT_LIMIT.as_millis()
            ),
        )
        .await?;
    ensure!(ok == json!(true), "browser ping over its own channel: {ok}");

    // Endpoint -> browser, on the endpoint's `gw` channel.
    expect(&mut seen, "gw open", |e| {
        matches!(e, EndpointEvent::ChannelOpen { peer, label } if *peer == browser && label == "gw")
    })
    .await?;
    ensure!(
        handle
            .send(browser, "gw", Payload::Text("ping:from-gw".into()))
            .await,
        "no open gw channel to the browser"
    );
    expect(&mut seen, "pong on gw", |e| {
        matches!(e, EndpointEvent::Message { peer, label, payload: Payload::Text(t) }
            if *peer == browser && label == "gw" && t == "pong:from-gw")
    })
    .await?;

    // Binary both ways: the page sends bytes on its channel; the endpoint sends bytes on `gw`,
    // which the page echoes back.
    let label = b
        .eval(
            "v",
            &format!("harness.sendBinary({endpoint_id:?}, [1, 2, 3, 250])"),
        )
        .await?;
    expect(&mut seen, "binary from the browser", |e| {
        matches!(e, EndpointEvent::Message { peer, label: l, payload: Payload::Binary(bytes) }
            if *peer == browser && Some(l.as_str()) == label.as_str() && bytes == &[1, 2, 3, 250])
    })
    .await?;
    ensure!(
        handle
            .send(browser, "gw", Payload::Binary(vec![9, 8, 7, 0]))
            .await,
        "no open gw channel for binary"
    );
    expect(&mut seen, "binary echo", |e| {
        matches!(e, EndpointEvent::Message { label, payload: Payload::Binary(bytes), .. }
            if label == "gw" && bytes == &[9, 8, 7, 0])
    })
    .await?;
    let received = b.eval("v", "harness.binaryReceived()").await?;
    ensure!(
        received.as_array().is_some_and(|r| r
            .iter()
            .any(|m| m["label"] == "gw" && m["bytes"] == json!([9, 8, 7, 0]))),
        "the page did not record the endpoint's binary message: {received}"
    );

    b.quit().await?;
    // The pump owns the endpoint: aborting it drops the endpoint, which stops it.
    pump.abort();
    let _ = pump.await;
    gateway.stop().await;
    Ok(())
}
