//! The camera plugin end to end: a gateway loads the real plugin library, its bridge pulls from
//! a real RTSP server (gst-rtsp-server in this process, on 127.0.0.1) or from the test source,
//! and a real `rtcpool` page in headless Chromium decodes what it publishes.
//!
//! Trials named `endpoint_*` run GStreamer endpoints (the Makefile runs each in its own process).
//! The whole binary re-executes itself in a network namespace that has only `lo`.

use std::time::Duration;

use anyhow::{ensure, Context};
use libtest_mimic::Trial;
use poolgate::bridge::BridgeStatus;
use poolgate::Gateway;
use poolgate_tests::browser::Browser;
use poolgate_tests::plugins::{self, PluginDir};
use poolgate_tests::rtsp_server::{
    Lower, RtspServer, H264_HIGH_PCMU, H264_PCMU, H264_RARE_KEYFRAMES, H265, MJPEG_AAC,
};
use poolgate_tests::scenario::{decoded_stream, run, run_trials, CONNECT_LIMIT};
use serde_json::Value;

/// Bounds a hang on a loaded 2-core machine; measures nothing.
const STATUS_LIMIT: Duration = Duration::from_secs(45);
const CAMERA: &str = "poolgate_plugin_camera";
const VIEWER: &str = "harness.join({transport: 'ws', pool: 'cam', media: false, channel: false})";

fn main() {
    run_trials(|| {
        vec![
            Trial::test("endpoint_camera_test_source_reaches_browser", || {
                run(test_source_scenario())
            }),
            Trial::test("endpoint_camera_h264_passthrough", || {
                run(passthrough_scenario(H264_PCMU, "42", 0.0, "auto", false))
            }),
            Trial::test("endpoint_camera_h264_high_profile_passthrough", || {
                run(passthrough_scenario(
                    H264_HIGH_PCMU,
                    "42e0",
                    1.0,
                    "tcp",
                    false,
                ))
            }),
            Trial::test("endpoint_camera_h264_repacketized", || {
                run(passthrough_scenario(H264_PCMU, "42", 0.0, "auto", true))
            }),
            Trial::test("endpoint_camera_h264_high_per_peer", || {
                run(high_per_peer_scenario())
            }),
            Trial::test("endpoint_camera_transcodes_mjpeg_and_aac", || {
                run(transcode_scenario())
            }),
            Trial::test("endpoint_camera_passthrough_keyframe_on_request", || {
                run(keyframe_request_scenario())
            }),
            Trial::test("endpoint_camera_transcodes_h265", || run(h265_scenario())),
            Trial::test("endpoint_camera_explicit_transports", || {
                run(transports_scenario())
            }),
            Trial::test("endpoint_camera_custom_pipeline", || {
                run(custom_pipeline_scenario())
            }),
            Trial::test("endpoint_camera_reconnects", || run(reconnect_scenario())),
            Trial::test(
                "endpoint_camera_bad_sources",
                || run(bad_sources_scenario()),
            ),
        ]
    });
}

/// A gateway serving the test page, with the camera plugin loaded and `bridges` declared.
async fn start_gateway(dir: &PluginDir, bridges: &str) -> anyhow::Result<Gateway> {
    dir.add_built(CAMERA)?;
    plugins::start_gateway(dir, "", bridges).await
}

/// A `[[bridge]]` of the camera plugin in pool `cam`; `config` is the inline table's inside.
fn camera_bridge(name: &str, config: &str) -> String {
    format!(
        "[[bridge]]\nname = {name:?}\nplugin = \"camera\"\npool = \"cam\"\n\
         ice_local_addresses = [\"127.0.0.1\"]\nrestart = {{ mode = \"never\" }}\n\
         config = {{ {config} }}\n"
    )
}

/// Waits until bridge `name`'s status satisfies `done`, within [`STATUS_LIMIT`].
async fn wait_bridge(
    gateway: &Gateway,
    name: &str,
    done: impl Fn(&BridgeStatus) -> bool,
) -> anyhow::Result<BridgeStatus> {
    plugins::wait_bridge(gateway, name, STATUS_LIMIT, done).await
}

fn metric(status: &BridgeStatus, key: &str) -> Option<f64> {
    status.metrics.get(key).copied()
}

/// Waits for the bridge to be live with its endpoint joined; returns the endpoint's id.
async fn live_endpoint(gateway: &Gateway, name: &str) -> anyhow::Result<String> {
    let status = wait_bridge(gateway, name, |s| {
        s.status == "live" && s.endpoint.is_some()
    })
    .await?;
    Ok(status.endpoint.unwrap())
}

/// A viewer page (no camera, no data channel: the bridge must offer) in pool `cam`.
async fn viewer(gateway: &Gateway) -> anyhow::Result<Browser> {
    let mut b = Browser::launch().await?;
    b.open("v", &format!("http://{}/harness.html", gateway.addr()))
        .await?;
    b.eval("v", VIEWER).await?;
    Ok(b)
}

/// The `url = "test"` camera: the page decodes VP8 video and Opus audio; metrics name them.
async fn test_source_scenario() -> anyhow::Result<()> {
    let dir = PluginDir::new("camera-test")?;
    let gateway = start_gateway(
        &dir,
        &camera_bridge("test", "url = \"test\", width = 320, height = 240"),
    )
    .await?;
    let endpoint = live_endpoint(&gateway, "test").await?;
    let mut b = viewer(&gateway).await?;
    decoded_stream(&mut b, "v", &endpoint, "video/VP8").await?;
    decoded_stream(&mut b, "v", &endpoint, "audio/opus").await?;
    let status = wait_bridge(&gateway, "test", |s| {
        metric(s, "viewers") == Some(1.0)
            // The endpoint asked for a keyframe for the new peer, and the request got here.
            && metric(s, "keyframe_requests").is_some_and(|k| k >= 1.0)
            && metric(s, "width") == Some(320.0)
            && metric(s, "fps").is_some_and(|f| f > 0.0)
    })
    .await?;
    ensure!(
        metric(&status, "codec_vp8") == Some(1.0) && metric(&status, "codec_opus") == Some(1.0),
        "{status:#?}"
    );
    ensure!(metric(&status, "height") == Some(240.0), "{status:#?}");
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// An H.264 + PCMU camera: both reach the page, and the page's negotiated `profile-level-id`
/// starts with `profile`. A constrained-baseline camera (`42`) goes through as it is
/// (`transcoding` 0). A High-profile one is published as it is and as a constrained-baseline
/// fallback: this Chromium decodes no High, so it gets the fallback (`42e0`), the one encoder
/// (`transcoding` 1). The camera's H.264 RTP packets are relayed as they are (`rtp_relay` 1,
/// over RTSP's UDP or TCP `transport`), or, with `repacketize`, cut again (`rtp_relay` 0).
async fn passthrough_scenario(
    camera: &str,
    profile: &str,
    transcoding: f64,
    transport: &str,
    repacketize: bool,
) -> anyhow::Result<()> {
    let server = RtspServer::start(0, &[("/cam", camera)], None)?;
    let dir = PluginDir::new("camera-h264")?;
    let url = server.url(None, "/cam");
    let config = format!("url = {url:?}, transport = {transport:?}, repacketize = {repacketize}");
    let gateway = start_gateway(&dir, &camera_bridge("cam", &config)).await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let mut b = viewer(&gateway).await?;
    let video = decoded_stream(&mut b, "v", &endpoint, "video/H264").await?;
    ensure!(
        video["fmtp"]
            .as_str()
            .is_some_and(|f| f.contains(&format!("profile-level-id={profile}"))),
        "the page did not get profile {profile}: {video}"
    );
    decoded_stream(&mut b, "v", &endpoint, "audio/PCMU").await?;
    let status = wait_bridge(&gateway, "cam", |s| {
        metric(s, "codec_h264") == Some(1.0) && metric(s, "codec_pcmu") == Some(1.0)
    })
    .await?;
    ensure!(
        metric(&status, "transcoding") == Some(transcoding)
            && metric(&status, "h264_fallback").unwrap_or(0.0) == transcoding,
        "expected transcoding {transcoding}: {status:#?}"
    );
    ensure!(
        metric(&status, "rtp_relay") == Some(if repacketize { 0.0 } else { 1.0 }),
        "expected rtp_relay {}: {status:#?}",
        !repacketize
    );
    ensure!(metric(&status, "width") == Some(640.0), "{status:#?}");
    // A relayed stream's metrics come from its packets and its SPS, not from parsed frames.
    let status = wait_bridge(&gateway, "cam", |s| {
        metric(s, "fps").is_some_and(|f| f > 0.0)
            && metric(s, "bitrate_kbps").is_some_and(|k| k > 0.0)
    })
    .await?;
    ensure!(metric(&status, "height") == Some(480.0), "{status:#?}");
    b.quit().await?;
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// A High-profile camera, a webrtcbin endpoint viewer and a Chromium page in one pool: each
/// gets the format it accepts. The endpoint, which takes High, gets the camera's own bitstream
/// (its SPS says High, which openh264 never encodes) under the camera's true
/// `profile-level-id`, and no fallback is encoded. The page (no High decoder) decodes the
/// constrained-baseline fallback, which runs (one encoder) until the page leaves.
async fn high_per_peer_scenario() -> anyhow::Result<()> {
    use gstreamer::prelude::*;
    use poolgate::endpoint::EndpointEvent;
    use poolgate::signalling::SignallingTarget;

    let server = RtspServer::start(0, &[("/cam", H264_HIGH_PCMU)], None)?;
    let dir = PluginDir::new("camera-high")?;
    let url = server.url(None, "/cam");
    let gateway = start_gateway(&dir, &camera_bridge("cam", &format!("url = {url:?}"))).await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let (mut viewer_endpoint, _) = poolgate_tests::scenario::start_endpoint_with(
        SignallingTarget::Hosted(gateway.pools().clone()),
        "cam",
        Vec::new(),
    )
    .await?;

    // The endpoint viewer's video track from the camera.
    let deadline = tokio::time::Instant::now() + STATUS_LIMIT;
    let track = loop {
        let event = tokio::time::timeout_at(deadline, viewer_endpoint.next_event())
            .await
            .context("no H.264 track reached the endpoint viewer")?
            .context("the endpoint viewer stopped")?;
        if let EndpointEvent::TrackAdded(t) = event {
            if t.codec == "H264" && t.peer.to_string() == endpoint {
                break t;
            }
        }
    };
    // The format it was offered and took: the bridge's offer as the viewer's webrtcbin holds
    // it (its own answer and pad caps lose `profile-level-id`: a webrtcbin 1.22 limit).
    let pipeline = viewer_endpoint.pipeline().clone();
    let webrtcbin = pipeline
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.name().starts_with(&format!("peer-{endpoint}-")))
        .context("no webrtcbin for the camera in the endpoint viewer")?;
    let offer = webrtcbin
        .property::<Option<gstreamer_webrtc::WebRTCSessionDescription>>(
            "current-remote-description",
        )
        .and_then(|d| d.sdp().as_text().ok())
        .unwrap_or_default();
    ensure!(
        offer
            .lines()
            .any(|l| l.starts_with("a=fmtp:102") && l.contains("profile-level-id=64")),
        "the camera's High profile-level-id is not in the SDP: {offer}"
    );
    // Its bitstream: the SPS of a keyframe says High.
    let sink = gstreamer_app::AppSink::builder()
        .sync(false)
        .max_buffers(30)
        .drop(true)
        .build();
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    let tee_pad = track
        .source
        .request_pad_simple("src_%u")
        .context("the track's tee gave no pad")?;
    tee_pad.link(&sink.static_pad("sink").unwrap())?;
    let mut sps_profile = None;
    for _ in 0..300 {
        let Some(sample) = sink.try_pull_sample(gstreamer::ClockTime::from_mseconds(200)) else {
            continue;
        };
        // Byte-stream carries the SPS inline; avc (what the depayloader negotiates here) in
        // its caps' codec_data, built from the SPS it received.
        let codec_data = sample
            .caps()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<gstreamer::Buffer>("codec_data").ok());
        sps_profile = match codec_data {
            Some(avcc) => avcc.map_readable().ok().and_then(|m| m.get(1).copied()),
            None => {
                let map = sample.buffer().and_then(|b| b.map_readable().ok());
                map.and_then(|m| sps_profile_idc(m.as_slice()))
            }
        };
        if sps_profile.is_some() {
            break;
        }
    }
    // The payload type it receives (read once media flowed: the caps come with the first
    // packet).
    let payload = track
        .source
        .static_pad("sink")
        .and_then(|p| p.peer())
        .and_then(|p| p.parent_element())
        .and_then(|depay| depay.static_pad("sink"))
        .and_then(|p| p.current_caps())
        .and_then(|c| c.structure(0).and_then(|s| s.get::<i32>("payload").ok()));
    ensure!(
        payload == Some(102),
        "the endpoint viewer receives payload {payload:?}, not the camera's 102"
    );
    ensure!(
        sps_profile == Some(0x64),
        "the endpoint viewer got no High SPS (profile_idc {sps_profile:?}): not the camera's bitstream"
    );
    // Nobody takes the fallback yet: it is not encoded.
    let status = wait_bridge(&gateway, "cam", |s| metric(s, "viewers") == Some(1.0)).await?;
    ensure!(
        metric(&status, "h264_fallback") == Some(0.0)
            && metric(&status, "transcoding") == Some(0.0),
        "the fallback runs with no peer taking it: {status:#?}"
    );

    // The page: the fallback starts, one encoder for it.
    let mut b = viewer(&gateway).await?;
    let video = decoded_stream(&mut b, "v", &endpoint, "video/H264").await?;
    ensure!(
        video["fmtp"]
            .as_str()
            .is_some_and(|f| f.contains("profile-level-id=42e0")),
        "the page did not get the constrained-baseline fallback: {video}"
    );
    let status = wait_bridge(&gateway, "cam", |s| metric(s, "h264_fallback") == Some(1.0)).await?;
    ensure!(
        metric(&status, "transcoding") == Some(1.0),
        "the fallback should be the one encoder: {status:#?}"
    );
    // The page leaves: the fallback stops.
    b.quit().await?;
    wait_bridge(&gateway, "cam", |s| metric(s, "h264_fallback") == Some(0.0)).await?;
    let _ = tee_pad.unlink(&sink.static_pad("sink").unwrap());
    track.source.release_request_pad(&tee_pad);
    let _ = pipeline.remove(&sink);
    let _ = sink.set_state(gstreamer::State::Null);
    drop(viewer_endpoint);
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// The `profile_idc` of the first SPS in an H.264 byte-stream.
fn sps_profile_idc(stream: &[u8]) -> Option<u8> {
    stream
        .windows(5)
        .find(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)
        .map(|w| w[4])
}

/// An MJPEG + AAC camera: transcoded once, to VP8 and Opus, which the page decodes.
async fn transcode_scenario() -> anyhow::Result<()> {
    let server = RtspServer::start(0, &[("/cam", MJPEG_AAC)], None)?;
    let dir = PluginDir::new("camera-mjpeg")?;
    let url = server.url(None, "/cam");
    let gateway = start_gateway(&dir, &camera_bridge("cam", &format!("url = {url:?}"))).await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let mut b = viewer(&gateway).await?;
    decoded_stream(&mut b, "v", &endpoint, "video/VP8").await?;
    decoded_stream(&mut b, "v", &endpoint, "audio/opus").await?;
    let status = gateway.bridges().get("cam")?;
    ensure!(
        metric(&status, "transcoding") == Some(1.0) && metric(&status, "codec_vp8") == Some(1.0),
        "{status:#?}"
    );
    b.quit().await?;
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// A passthrough camera whose only keyframe came before the viewer joined (the next one is 20
/// minutes away): the page decodes because the bridge's keyframe request reached the camera as
/// an RTCP PLI and its encoder made one.
async fn keyframe_request_scenario() -> anyhow::Result<()> {
    let server = RtspServer::start(0, &[("/cam", H264_RARE_KEYFRAMES)], None)?;
    let dir = PluginDir::new("camera-pli")?;
    let url = server.url(None, "/cam");
    let gateway = start_gateway(&dir, &camera_bridge("cam", &format!("url = {url:?}"))).await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let mut b = viewer(&gateway).await?;
    decoded_stream(&mut b, "v", &endpoint, "video/H264").await?;
    let status = wait_bridge(&gateway, "cam", |s| {
        metric(s, "keyframe_requests").is_some_and(|k| k >= 1.0)
    })
    .await?;
    ensure!(metric(&status, "transcoding") == Some(0.0), "{status:#?}");
    b.quit().await?;
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// An H.265 camera: browsers cannot take it, so it is decoded and encoded once to VP8, which the
/// page decodes; the metrics say so.
async fn h265_scenario() -> anyhow::Result<()> {
    let server = RtspServer::start(0, &[("/cam", H265)], None)?;
    let dir = PluginDir::new("camera-h265")?;
    let url = server.url(None, "/cam");
    let gateway = start_gateway(&dir, &camera_bridge("cam", &format!("url = {url:?}"))).await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let mut b = viewer(&gateway).await?;
    let video = decoded_stream(&mut b, "v", &endpoint, "video/VP8").await?;
    let status = wait_bridge(&gateway, "cam", |s| metric(s, "transcoding").is_some()).await?;
    ensure!(
        metric(&status, "transcoding") == Some(1.0)
            && metric(&status, "codec_vp8") == Some(1.0)
            && metric(&status, "codec_h264").is_none(),
        "{status:#?}"
    );
    let size = wait_bridge(&gateway, "cam", |s| metric(s, "width").is_some()).await?;
    ensure!(
        metric(&size, "width") == Some(320.0) && metric(&size, "height") == Some(240.0),
        "{size:#?}"
    );
    ensure!(
        video["framesDecoded"].as_u64().unwrap_or(0) > 0,
        "no frame decoded: {video}"
    );
    b.quit().await?;
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// `transport = "tcp"` and `"udp"` really use that lower transport: the server has a TCP-only
/// and a UDP-only mount, which refuse (461) a SETUP with the other one. Each bridge goes live
/// on the mount of its own transport and keeps retrying on the other.
async fn transports_scenario() -> anyhow::Result<()> {
    let server = RtspServer::start_with_lower(
        0,
        &[
            ("/tcp", H264_PCMU, Lower::TcpOnly),
            ("/udp", H264_PCMU, Lower::UdpOnly),
        ],
        None,
    )?;
    let bridge = |name: &str, transport: &str, path: &str| {
        let url = server.url(None, path);
        camera_bridge(
            name,
            &format!("url = {url:?}, transport = {transport:?}, audio = false"),
        )
    };
    let bridges = [
        bridge("tcp", "tcp", "/tcp"),
        bridge("udp", "udp", "/udp"),
        bridge("tcp-on-udp-only", "tcp", "/udp"),
        bridge("udp-on-tcp-only", "udp", "/tcp"),
    ]
    .concat();
    let dir = PluginDir::new("camera-transports")?;
    let gateway = start_gateway(&dir, &bridges).await?;
    for name in ["tcp", "udp"] {
        let status = wait_bridge(&gateway, name, |s| {
            s.status == "live" && metric(s, "fps").is_some_and(|f| f > 0.0)
        })
        .await?;
        ensure!(metric(&status, "codec_h264") == Some(1.0), "{status:#?}");
    }
    for name in ["tcp-on-udp-only", "udp-on-tcp-only"] {
        let status = wait_bridge(&gateway, name, |s| {
            metric(s, "reconnects").is_some_and(|r| r >= 1.0)
        })
        .await?;
        // rtspsrc: "No supported stream was found. You might need to allow more transport
        // protocols ..." (the server answered 461 to its SETUP).
        ensure!(
            status.status.starts_with("retrying: ")
                && status.status.contains("transport")
                && metric(&status, "codec_h264").is_none(),
            "{name} got media over a transport it was not given: {status:#?}"
        );
    }
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// An operator's own `pipeline` (the README's example): the H.264 camera decoded, scaled down
/// and encoded to VP8 by `{video_encoder}`; credentials come from the URL's placeholders.
async fn custom_pipeline_scenario() -> anyhow::Result<()> {
    let auth = ("viewer", "pw");
    let server = RtspServer::start(0, &[("/cam", H264_PCMU)], Some(auth))?;
    let dir = PluginDir::new("camera-custom")?;
    let pipeline = "rtspsrc location={location} user-id={user} user-pw={password} \
        protocols={protocols} latency={latency_ms} ! rtph264depay ! avdec_h264 ! videoscale \
        ! video/x-raw,width=320,height=180 ! videoconvert ! {video_encoder} ! appsink name=video";
    let config = format!(
        "url = {:?}, video_codec = \"vp8\", pipeline = {pipeline:?}",
        server.url(Some(auth), "/cam")
    );
    let gateway = start_gateway(&dir, &camera_bridge("cam", &config)).await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let mut b = viewer(&gateway).await?;
    decoded_stream(&mut b, "v", &endpoint, "video/VP8").await?;
    let status = wait_bridge(&gateway, "cam", |s| metric(s, "width") == Some(320.0)).await?;
    ensure!(
        metric(&status, "transcoding") == Some(1.0) && metric(&status, "height") == Some(180.0),
        "{status:#?}"
    );
    b.quit().await?;
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// Video frames the page has decoded from `endpoint`.
async fn frames(b: &mut Browser, endpoint: &str) -> anyhow::Result<u64> {
    let all = b.eval("v", "harness.framesDecoded()").await?;
    Ok(all[endpoint].as_u64().unwrap_or(0))
}

/// The RTSP server dies and comes back on the same port: the bridge reports `retrying: …`, then
/// `live` again, and the page decodes new frames on the same connection (no rejoin).
async fn reconnect_scenario() -> anyhow::Result<()> {
    let server = RtspServer::start(0, &[("/cam", H264_PCMU)], None)?;
    let port = server.port();
    let dir = PluginDir::new("camera-reconnect")?;
    let url = server.url(None, "/cam");
    let gateway = start_gateway(
        &dir,
        &camera_bridge("cam", &format!("url = {url:?}, reconnect_max_seconds = 2")),
    )
    .await?;
    let endpoint = live_endpoint(&gateway, "cam").await?;
    let mut b = viewer(&gateway).await?;
    decoded_stream(&mut b, "v", &endpoint, "video/H264").await?;
    let state = b.eval("v", "harness.state()").await?;

    server.stop();
    let down = wait_bridge(&gateway, "cam", |s| s.status.starts_with("retrying: ")).await?;
    // Let the page drain what was in flight before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = frames(&mut b, &endpoint).await?;

    let server = RtspServer::start(port, &[("/cam", H264_PCMU)], None)?;
    let back = wait_bridge(&gateway, "cam", |s| s.status == "live").await?;
    ensure!(
        metric(&back, "reconnects").is_some_and(|r| r >= 1.0),
        "{back:#?}"
    );
    b.wait_for(
        "v",
        "harness.framesDecoded()",
        CONNECT_LIMIT,
        |v: &Value| v[&endpoint].as_u64().unwrap_or(0) > before + 30,
    )
    .await
    .with_context(|| format!("no new frames after the camera came back ({})", down.status))?;
    // The same peer connection: the page neither rejoined nor saw the bridge leave.
    let after = b.eval("v", "harness.state()").await?;
    ensure!(
        after["id"] == state["id"] && after["closed"] == state["closed"],
        "the page rejoined or lost the bridge: before {state}, after {after}"
    );
    b.quit().await?;
    gateway.stop().await;
    server.stop();
    Ok(())
}

/// Wrong credentials, a wrong path and a port nobody listens on each get their own `retrying`
/// status, without the password in it; the right credentials get `live`.
async fn bad_sources_scenario() -> anyhow::Result<()> {
    let auth = ("viewer", "s3cret-pw");
    let server = RtspServer::start(0, &[("/cam", H264_PCMU)], Some(auth))?;
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let wrong = ("viewer", "wrong-pw");
    let bridges = [
        camera_bridge(
            "good",
            &format!("url = {:?}", server.url(Some(auth), "/cam")),
        ),
        camera_bridge(
            "unauthorized",
            &format!("url = {:?}", server.url(Some(wrong), "/cam")),
        ),
        camera_bridge(
            "not-found",
            &format!("url = {:?}", server.url(Some(auth), "/nothing")),
        ),
        camera_bridge(
            "refused",
            &format!("url = \"rtsp://viewer:wrong-pw@127.0.0.1:{closed_port}/cam\""),
        ),
    ]
    .concat();
    let dir = PluginDir::new("camera-bad")?;
    let gateway = start_gateway(&dir, &bridges).await?;
    let cases = [
        ("unauthorized", "retrying: unauthorized"),
        ("not-found", "retrying: not found"),
        ("refused", "retrying: connection refused"),
    ];
    for (name, want) in cases {
        let status = wait_bridge(&gateway, name, |s| s.status.starts_with(want)).await?;
        let shown = format!("{status:?}");
        ensure!(
            !shown.contains("wrong-pw") && !shown.contains("s3cret-pw"),
            "a password leaked: {shown}"
        );
    }
    wait_bridge(&gateway, "good", |s| s.status == "live").await?;
    // They keep retrying, and nothing crashed: every bridge is still there, none restarted.
    for (name, want) in cases {
        let status = wait_bridge(&gateway, name, |s| {
            metric(s, "reconnects").is_some_and(|r| r >= 1.0)
        })
        .await?;
        ensure!(
            status.status.starts_with(want) && status.restarts == 0,
            "{status:#?}"
        );
    }
    gateway.stop().await;
    server.stop();
    Ok(())
}
