//! A receive-only viewer of a Janus streaming mountpoint, in its own process (so its CPU is
//! not the server's): `watch` over the HTTP API, answer Janus's offer from a webrtcbin with
//! every candidate in the SDP, `start`, then depayload the video and count what arrives.
//! It reports on stdout as [`Report`] JSON lines, like the pool viewers of
//! [`crate::endpoint_bench::peer_process`], and stops on `quit` or the end of stdin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use super::api::JanusHandle;
use crate::endpoint_bench::peer_process::Report;

/// The viewer's options.
#[derive(Clone, Debug, clap::Args)]
pub struct ViewerArgs {
    /// `http://127.0.0.1:PORT/janus`.
    #[arg(long)]
    pub api: String,
    /// The mountpoint id.
    #[arg(long)]
    pub mountpoint: u64,
    /// Decode the video and report the first frame decoded.
    #[arg(long)]
    pub decode: bool,
}

fn emit(report: &Report) {
    use std::io::Write;
    let line = serde_json::to_string(report).expect("a report serialises");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[derive(Default)]
struct Counter {
    buffers: AtomicU64,
    bytes: AtomicU64,
    keyframes: AtomicU64,
    /// When the viewer started to watch, to time the first keyframe; taken at the first one.
    started: std::sync::Mutex<Option<std::time::Instant>>,
    /// The same, for the first decoded frame (with `--decode`).
    started_decoding: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// Runs one viewer until `quit` or the end of stdin.
pub async fn run(args: ViewerArgs) -> anyhow::Result<()> {
    gst::init()?;
    let result = watch(&args, std::time::Instant::now()).await;
    if let Err(e) = &result {
        emit(&Report::Error {
            message: format!("{e:#}"),
        });
    }
    result
}

async fn watch(args: &ViewerArgs, started: std::time::Instant) -> anyhow::Result<()> {
    let janus = JanusHandle::attach(&args.api, "janus.plugin.streaming").await?;
    janus
        .message(json!({"request": "watch", "id": args.mountpoint}), None)
        .await?;
    let offer = next_offer(&janus, Instant::now() + Duration::from_secs(30)).await?;
    let counter = Arc::new(Counter {
        started: std::sync::Mutex::new(Some(started)),
        started_decoding: Arc::new(std::sync::Mutex::new(args.decode.then_some(started))),
        ..Counter::default()
    });
    let (pipeline, webrtc) = build(counter.clone(), args.decode)?;
    let answer = answer(&webrtc, &offer).await?;
    janus
        .message(
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": answer, "trickle": false})),
        )
        .await?;
    janus.trickle_completed().await?;

    // Events are drained so Janus's queue stays short; a `hangup` ends the viewer.
    let poller = janus.clone();
    let (hangup_tx, mut hangup) = tokio::sync::mpsc::unbounded_channel::<String>();
    let events = tokio::spawn(async move {
        loop {
            match poller.poll(10).await {
                Ok(list) => {
                    for e in list {
                        if e["janus"] == "hangup" || e["janus"] == "detached" {
                            let _ = hangup_tx.send(e.to_string());
                        }
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    });

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    let outcome = loop {
        tokio::select! {
            line = stdin.next_line() => match line.ok().flatten().as_deref().map(str::trim) {
                Some("quit") | None => break Ok(()),
                _ => {}
            },
            _ = tick.tick() => emit(&Report::Received {
                buffers: counter.buffers.load(Ordering::Relaxed),
                bytes: counter.bytes.load(Ordering::Relaxed),
                keyframes: counter.keyframes.load(Ordering::Relaxed),
            }),
            _ = keepalive.tick() => {
                if let Err(e) = janus.keepalive().await {
                    emit(&Report::Error { message: format!("keepalive: {e:#}") });
                }
            }
            Some(reason) = hangup.recv() => {
                emit(&Report::Stopped { reason: reason.clone() });
                break Ok(());
            }
        }
    };
    events.abort();
    let _ = janus.destroy().await;
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// Polls events until one carries Janus's JSEP offer; returns its SDP.
async fn next_offer(janus: &JanusHandle, deadline: Instant) -> anyhow::Result<String> {
    while Instant::now() < deadline {
        for event in janus.poll(1).await? {
            if event["plugindata"]["data"]["error"].is_string() {
                bail!("watch refused: {}", event["plugindata"]["data"]);
            }
            if event["jsep"]["type"] == "offer" {
                return event["jsep"]["sdp"]
                    .as_str()
                    .map(str::to_string)
                    .context("an offer without SDP");
            }
        }
    }
    bail!("no offer from Janus within the limit")
}

/// A pipeline with a webrtcbin whose incoming RTP goes through a depayloader to a counting
/// fakesink. 127.0.0.1 is listed as a host candidate address: libnice leaves loopback out.
fn build(counter: Arc<Counter>, decode: bool) -> anyhow::Result<(gst::Pipeline, gst::Element)> {
    let pipeline = gst::Pipeline::new();
    let webrtc = gst::ElementFactory::make("webrtcbin")
        .property_from_str("bundle-policy", "max-bundle")
        .build()?;
    let agent = webrtc.property::<gst::glib::Object>("ice-agent");
    agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
    pipeline.add(&webrtc)?;
    webrtc.connect_notify(Some("connection-state"), |w, _| {
        let state = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        if state == gst_webrtc::WebRTCPeerConnectionState::Connected {
            emit(&Report::PeerState {
                peer: "janus".into(),
                state: "connected".into(),
            });
        }
    });
    let weak = pipeline.downgrade();
    webrtc.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let encoding = pad
            .current_caps()
            .and_then(|c| {
                c.structure(0)
                    .and_then(|s| s.get::<String>("encoding-name").ok())
            })
            .unwrap_or_default();
        let depay = match encoding.as_str() {
            "H264" => "rtph264depay",
            "VP8" => "rtpvp8depay",
            _ => "fakesink",
        };
        let Ok(head) = gst::ElementFactory::make(depay).build() else {
            return;
        };
        // Counted as it enters the sink, or the decoding branch (see its module).
        let decoding = (decode && depay != "fakesink")
            .then(|| {
                crate::decoding::decoding_branch(
                    &pipeline,
                    &encoding,
                    counter.started_decoding.clone(),
                    |ms| emit(&Report::FirstDecoded { ms }),
                )
            })
            .transpose();
        let sink = match decoding {
            Ok(Some(branch)) => branch,
            Ok(None) => gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .expect("fakesink"),
            Err(e) => {
                emit(&Report::Error {
                    message: format!("decoding {encoding}: {e:#}"),
                });
                return;
            }
        };
        let counter = counter.clone();
        sink.static_pad("sink").expect("a sink pad").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, info| {
                if let Some(buffer) = info.buffer() {
                    counter.buffers.fetch_add(1, Ordering::Relaxed);
                    counter
                        .bytes
                        .fetch_add(buffer.size() as u64, Ordering::Relaxed);
                    if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                        counter.keyframes.fetch_add(1, Ordering::Relaxed);
                        let started = counter.started.lock().ok().and_then(|mut s| s.take());
                        if let Some(at) = started {
                            emit(&Report::FirstKeyframe {
                                ms: at.elapsed().as_millis() as u64,
                            });
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            },
        );
        if depay == "fakesink" {
            let _ = pipeline.add(&sink);
            let _ = sink.sync_state_with_parent();
            let _ = pad.link(&sink.static_pad("sink").expect("sink pad"));
            return;
        }
        // The decoding branch is in the pipeline already.
        let _ = pipeline.add(&head);
        if sink.parent().is_none() {
            let _ = pipeline.add(&sink);
        }
        let _ = head.link(&sink);
        let _ = sink.sync_state_with_parent();
        let _ = head.sync_state_with_parent();
        let _ = pad.link(&head.static_pad("sink").expect("depayloader sink pad"));
        emit(&Report::Track {
            peer: "janus".into(),
            codec: encoding,
        });
    });
    pipeline.set_state(gst::State::Playing)?;
    Ok((pipeline, webrtc))
}

/// Sets `offer`, creates and sets the answer, waits for ICE gathering to finish and returns
/// the local SDP with every candidate in it.
async fn answer(webrtc: &gst::Element, offer: &str) -> anyhow::Result<String> {
    let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).context("Janus's offer")?;
    let offer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let promise = gst::Promise::with_change_func(move |_| {
        let _ = tx.send(());
    });
    webrtc.emit_by_name::<()>("set-remote-description", &[&offer, &promise]);
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .context("set-remote-description timed out")??;

    let (tx, rx) = tokio::sync::oneshot::channel();
    let promise = gst::Promise::with_change_func(move |reply| {
        let answer = reply
            .ok()
            .flatten()
            .and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok());
        let _ = tx.send(answer);
    });
    webrtc.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
    let answer = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .context("create-answer timed out")??
        .context("webrtcbin made no answer")?;
    webrtc.emit_by_name::<()>("set-local-description", &[&answer, &None::<gst::Promise>]);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = webrtc.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
        if state == gst_webrtc::WebRTCICEGatheringState::Complete {
            break;
        }
        if Instant::now() > deadline {
            bail!("ICE gathering did not complete");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let local = webrtc
        .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
        .context("no local description")?;
    Ok(local.sdp().as_text()?)
}
