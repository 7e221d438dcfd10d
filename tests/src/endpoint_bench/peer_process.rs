//! Endpoints in child processes, so their CPU and memory are theirs and not the measured
//! process's. The benchmark binary runs itself with the `peer` subcommand; the child joins a
//! pool over raw WebSocket when told, and reports what happens as JSON lines.
//!
//! Parent to child (stdin, one word a line): `join` starts an endpoint and joins the pool,
//! `leave` stops it, `quit` (or end of input) stops it and exits. Child to parent (stdout):
//! one [`Report`] a line. Incoming tracks are linked to a counting `fakesink`, so the parent
//! learns that media really arrives, not only that ICE connected.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;
use poolgate::endpoint::{Endpoint, EndpointEvent, EndpointOptions, MediaSource};
use poolgate::signalling::SignallingTarget;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The environment variable naming a command to start each child under (a profiler); the
/// child's pid as the parent sees it is then the wrapper's.
pub const PEER_WRAPPER_ENV: &str = "BENCH_PEER_WRAPPER";

/// How long a child may take to stop its endpoint before the parent calls it a hang.
pub const LEAVE_LIMIT: Duration = Duration::from_secs(20);

/// What a child reports, one JSON object a line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Report {
    Joined {
        id: String,
    },
    PeerState {
        peer: String,
        state: String,
    },
    Track {
        peer: String,
        codec: String,
    },
    ChannelOpen {
        peer: String,
        label: String,
    },
    /// Media received so far by this endpoint (all tracks), every second. `keyframes`:
    /// buffers not flagged as delta units (for VP8, key frames).
    Received {
        buffers: u64,
        bytes: u64,
        #[serde(default)]
        keyframes: u64,
    },
    /// The first keyframe (a buffer not flagged delta, depayloaded: the first decodable
    /// frame) since `join`; `ms`: how long after `join` it arrived.
    FirstKeyframe {
        ms: u64,
    },
    /// The first frame decoded since `join` (a viewer started with `--decode`); `ms`: how long
    /// after `join` it came out of the decoder.
    FirstDecoded {
        ms: u64,
    },
    /// The endpoint stopped on its own (not asked to).
    Stopped {
        reason: String,
    },
    /// The endpoint was stopped on request; `ms`: how long stopping took.
    Left {
        ms: u64,
    },
    Error {
        message: String,
    },
}

/// The child's options (the `peer` subcommand).
#[derive(Clone, Debug, clap::Args)]
pub struct PeerArgs {
    /// The pool server, `ws://127.0.0.1:PORT/ws`.
    #[arg(long)]
    pub signalling: String,
    #[arg(long)]
    pub pool: String,
    /// Publish the VP8 test pattern (MediaSource::TestVideo) rather than receive only.
    #[arg(long)]
    pub send_video: bool,
    /// Decode incoming video and report the first frame decoded after each `join`.
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

/// Counts what a fakesink receives.
#[derive(Default)]
struct Counter {
    buffers: AtomicU64,
    bytes: AtomicU64,
    keyframes: AtomicU64,
    /// When the last `join` came, to time the first keyframe after it.
    joined: std::sync::Mutex<Option<std::time::Instant>>,
    /// The same, for the first decoded frame (with `--decode`).
    joined_decoding: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Counter {
    /// Reports [`Report::FirstKeyframe`] for the first keyframe after `join`, once.
    fn keyframe(&self) {
        let joined = self.joined.lock().ok().and_then(|mut j| j.take());
        if let Some(at) = joined {
            emit(&Report::FirstKeyframe {
                ms: at.elapsed().as_millis() as u64,
            });
        }
    }
}

/// One consumer of an incoming track: the tee pad and the fakesink behind it.
struct Consumer {
    track: String,
    tee_pad: gst::Pad,
    sink: gst::Element,
}

/// The child's main loop: runs until `quit` or the end of stdin.
pub async fn run_child(args: PeerArgs) -> anyhow::Result<()> {
    gst::init()?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut endpoint: Option<Endpoint> = None;
    let mut consumers: Vec<Consumer> = Vec::new();
    let counter = Arc::new(Counter::default());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let command = line.ok().flatten();
                match command.as_deref().map(str::trim) {
                    Some("join") if endpoint.is_none() => {
                        counter.buffers.store(0, Ordering::Relaxed);
                        counter.bytes.store(0, Ordering::Relaxed);
                        counter.keyframes.store(0, Ordering::Relaxed);
                        let now = std::time::Instant::now();
                        if let Ok(mut j) = counter.joined.lock() {
                            *j = Some(now);
                        }
                        if let Ok(mut j) = counter.joined_decoding.lock() {
                            *j = args.decode.then_some(now);
                        }
                        match start(&args).await {
                            Ok(e) => endpoint = Some(e),
                            Err(e) => emit(&Report::Error { message: format!("{e:#}") }),
                        }
                    }
                    Some("leave") => {
                        if let Some(e) = endpoint.take() {
                            let ms = stop(e, &mut consumers).await;
                            emit(&Report::Left { ms });
                        }
                    }
                    Some("join") | Some("") => {}
                    Some("quit") | None => {
                        if let Some(e) = endpoint.take() {
                            stop(e, &mut consumers).await;
                        }
                        return Ok(());
                    }
                    Some(other) => emit(&Report::Error { message: format!("unknown command {other:?}") }),
                }
            }
            event = next_event(&mut endpoint) => match event {
                Some(event) => on_event(event, &mut endpoint, &mut consumers, &counter, args.decode),
                None => {
                    endpoint = None;
                    consumers.clear();
                }
            },
            _ = tick.tick() => {
                if endpoint.is_some() && !consumers.is_empty() {
                    emit(&Report::Received {
                        buffers: counter.buffers.load(Ordering::Relaxed),
                        bytes: counter.bytes.load(Ordering::Relaxed),
                        keyframes: counter.keyframes.load(Ordering::Relaxed),
                    });
                }
            }
        }
    }
}

async fn next_event(endpoint: &mut Option<Endpoint>) -> Option<EndpointEvent> {
    match endpoint {
        Some(e) => e.next_event().await,
        None => std::future::pending().await,
    }
}

async fn start(args: &PeerArgs) -> anyhow::Result<Endpoint> {
    Endpoint::start(EndpointOptions {
        target: SignallingTarget::Remote(args.signalling.clone()),
        pool: args.pool.clone(),
        ice_servers: Vec::new(),
        ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        media: if args.send_video {
            vec![MediaSource::TestVideo]
        } else {
            Vec::new()
        },
    })
    .await
}

/// Stops the endpoint after unlinking our consumers; returns how long it took in ms.
async fn stop(endpoint: Endpoint, consumers: &mut Vec<Consumer>) -> u64 {
    let started = Instant::now();
    for c in consumers.drain(..) {
        release(endpoint.pipeline(), c);
    }
    endpoint.stop().await;
    started.elapsed().as_millis() as u64
}

fn on_event(
    event: EndpointEvent,
    endpoint: &mut Option<Endpoint>,
    consumers: &mut Vec<Consumer>,
    counter: &Arc<Counter>,
    decode: bool,
) {
    match event {
        EndpointEvent::Joined { id, .. } => emit(&Report::Joined { id: id.to_string() }),
        EndpointEvent::PeerState { id, state } => emit(&Report::PeerState {
            peer: id.to_string(),
            state,
        }),
        EndpointEvent::ChannelOpen { peer, label } => emit(&Report::ChannelOpen {
            peer: peer.to_string(),
            label,
        }),
        EndpointEvent::TrackAdded(track) => {
            let Some(e) = endpoint.as_ref() else { return };
            let decode = decode.then_some(track.codec.as_str());
            match consume(
                e.pipeline(),
                &track.source,
                &track.id,
                counter.clone(),
                decode,
            ) {
                Ok(c) => {
                    consumers.push(c);
                    emit(&Report::Track {
                        peer: track.peer.to_string(),
                        codec: track.codec,
                    });
                }
                Err(err) => emit(&Report::Error {
                    message: format!("linking track {}: {err:#}", track.id),
                }),
            }
        }
        EndpointEvent::TrackRemoved { id, .. } => {
            if let (Some(e), Some(i)) = (
                endpoint.as_ref(),
                consumers.iter().position(|c| c.track == id),
            ) {
                release(e.pipeline(), consumers.remove(i));
            }
        }
        EndpointEvent::Stopped { reason } => emit(&Report::Stopped { reason }),
        _ => {}
    }
}

/// Links a counting fakesink to a track's tee (counted as it enters), or with `decode` (the
/// track's codec) and a decoder for it, a decoding branch (see [`crate::decoding`]).
fn consume(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    track: &str,
    counter: Arc<Counter>,
    decode: Option<&str>,
) -> anyhow::Result<Consumer> {
    let decodable = decode.filter(|c| crate::decoding::decoder_description(c).is_some());
    let sink = match decodable {
        Some(codec) => crate::decoding::decoding_branch(
            pipeline,
            codec,
            counter.joined_decoding.clone(),
            |ms| emit(&Report::FirstDecoded { ms }),
        )?,
        None => {
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()?;
            pipeline.add(&sink)?;
            sink.sync_state_with_parent()?;
            sink
        }
    };
    let sink_pad = sink
        .static_pad("sink")
        .context("the consumer has no sink pad")?;
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            counter.buffers.fetch_add(1, Ordering::Relaxed);
            counter
                .bytes
                .fetch_add(buffer.size() as u64, Ordering::Relaxed);
            if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                counter.keyframes.fetch_add(1, Ordering::Relaxed);
                counter.keyframe();
            }
        }
        gst::PadProbeReturn::Ok
    });
    let tee_pad = tee
        .request_pad_simple("src_%u")
        .context("the track's tee gave no src pad")?;
    tee_pad.link(&sink_pad)?;
    Ok(Consumer {
        track: track.to_string(),
        tee_pad,
        sink,
    })
}

fn release(pipeline: &gst::Pipeline, c: Consumer) {
    if let Some(peer) = c.tee_pad.peer() {
        let _ = c.tee_pad.unlink(&peer);
    }
    if let Some(tee) = c.tee_pad.parent_element() {
        tee.release_request_pad(&c.tee_pad);
    }
    let _ = c.sink.set_state(gst::State::Null);
    let _ = pipeline.remove(&c.sink);
}

/// The parent's side of one child.
pub struct PeerProcess {
    pub name: String,
    pub pid: u32,
    child: Child,
    stdin: ChildStdin,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl PeerProcess {
    /// Starts `exe peer ...`; its stderr goes to `log`.
    pub fn spawn(
        exe: &Path,
        name: &str,
        signalling: &str,
        pool: &str,
        send_video: bool,
        log: &Path,
    ) -> anyhow::Result<PeerProcess> {
        // A profiler to run the child under (e.g. `heaptrack -o /tmp/joiner`), words split on
        // whitespace: the child's own allocations are what the churn's joiner figure is about.
        let wrapper = std::env::var(PEER_WRAPPER_ENV).unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.arg("peer")
            .args(["--signalling", signalling, "--pool", pool]);
        if send_video {
            cmd.arg("--send-video");
        }
        PeerProcess::spawn_command(cmd, name, log)
    }

    /// Starts `cmd`, any child speaking the same protocol (commands on stdin, [`Report`] lines
    /// on stdout); its stderr goes to `log`.
    pub fn spawn_command(mut cmd: Command, name: &str, log: &Path) -> anyhow::Result<PeerProcess> {
        let err =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let pid = child.id().context("the peer process exited at once")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(report) = serde_json::from_str::<Report>(&line) {
                    if tx.send(report).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(PeerProcess {
            name: name.to_string(),
            pid,
            child,
            stdin,
            reports,
        })
    }

    /// Sends one command line (`join`, `leave`, `quit`).
    pub async fn command(&mut self, command: &str) -> anyhow::Result<()> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .with_context(|| format!("telling {} to {command}", self.name))?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// The next report, or `None` when `deadline` passes or the child's output ended.
    pub async fn next_report(&mut self, deadline: Instant) -> Option<Report> {
        tokio::time::timeout_at(deadline, self.reports.recv())
            .await
            .ok()
            .flatten()
    }

    /// Reports already received, without waiting.
    pub fn pending_reports(&mut self) -> Vec<Report> {
        let mut out = Vec::new();
        while let Ok(r) = self.reports.try_recv() {
            out.push(r);
        }
        out
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `quit`, then kill if it has not exited within `limit`.
    pub async fn quit(mut self, limit: Duration) {
        let _ = self.command("quit").await;
        if tokio::time::timeout(limit, self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "bench-endpoint: {} (pid {}) did not exit within {limit:?} of quit; killing it",
                self.name, self.pid
            );
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
    }
}
