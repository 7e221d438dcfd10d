//! `bench-recorder`: what the recorder bridge costs per recorded track, next to the floor.
//! Figures are printed, never asserted.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/bench-recorder                 # 1, 5, 10, 15, 20 and 25 peers, 20 s each
//! target/release/bench-recorder --peers 2 --seconds 10
//! target/release/bench-recorder --composite --peers 2,4   # composite mode, no floor
//! ```
//!
//! With `--composite`, all N peers send into one pool whose one recorder bridge is in composite
//! mode (its defaults: 1280x720 at 30 fps, VP8): the CPU is that of decoding every track,
//! compositing, mixing and encoding once. There is no floor for it.
//!
//! For each count N of peers (each sends VP8 320x240 at 15 fps and Opus: 2 tracks):
//! - **poolgate**: `target/release/poolgate` runs as a child process with N recorder bridges
//!   (10 s segments, WebM), one per pool. In each pool, one managed endpoint of this process
//!   joins over WebSocket and sends. One pool per sender keeps the senders from also
//!   connecting to each other, which would add work that is not recording. The N senders
//!   share one VP8 and one Opus encoder ([`SharedSender`]): the same RTP goes to every pool,
//!   so 25 peers cost this process two encoders. Once the index shows all N recording, the
//!   child's CPU is measured. This covers all the work needed to record over WebRTC: ICE,
//!   DTLS/SRTP, the jitter buffer, depayloading and muxing.
//! - **loss**: after the window, every finished segment of every peer is demuxed and its
//!   frames counted; frames missing between timestamps ([`loss::count`]) are data the
//!   recording lost. So are a peer's restarts (a new recording after a reconnection) and the
//!   time between its segments that none holds ([`loss::uncovered_s`]). The first N with any
//!   loss is printed. The floor's finished files are counted the same way, and this
//!   process's own CPU (the senders) is printed: a loss seen by both, or with the senders
//!   starved, is the machine's load, not the recorder.
//! - **floor**: a bare `gst-launch-1.0` receives the same kind of streams as plain RTP over
//!   UDP from a second `gst-launch-1.0`, which encodes them once and sends them to every
//!   port (`multiudpsink`). The receiver depayloads and muxes them the same way: a jitter
//!   buffer, then splitmuxsink with webmmux. Its CPU is measured.
//!
//! The ratio poolgate/floor is printed. CPU is % of one core over the window; the machine's
//! load is printed too, because shared cores make the figures noisy. Runs in a loopback-only
//! namespace; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use clap::Parser;
use poolgate::endpoint::{Endpoint, EndpointEvent, EndpointOptions, MediaSource};
use poolgate::signalling::SignallingTarget;
use poolgate_tests::browser::repo_root;
use poolgate_tests::endpoint_bench::procstat::CpuMark;
use poolgate_tests::namespace;
use poolgate_tests::plugins::PluginDir;
use poolgate_tests::recorder_bench::loss::{self, Count};
use poolgate_tests::recorder_bench::shared_sender::SharedSender;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(name = "bench-recorder")]
struct Cli {
    /// Peer counts to measure (each peer: one VP8 and one Opus track).
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,15,20,25")]
    peers: Vec<usize>,
    /// Measuring window per run, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// All peers in one pool, recorded by one composite-mode bridge.
    #[arg(long)]
    composite: bool,
    /// Each sender encodes its own streams (as before the shared sender): costs this process
    /// an encoder per peer.
    #[arg(long)]
    encoder_per_sender: bool,
}

const VIDEO: &str = "videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert \
    ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=150 \
    ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit";
const AUDIO: &str = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
    ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111";

/// Frame interval of [`VIDEO`] (15 fps) and of [`AUDIO`] (opusenc's 20 ms frames).
const VIDEO_INTERVAL_NS: u64 = 1_000_000_000 / 15;
const AUDIO_INTERVAL_NS: u64 = 20_000_000;

struct Row {
    peers: usize,
    poolgate: Option<Recorded>,
    floor: Option<(f64, Count, Count)>,
}

/// A poolgate run: its CPU and what its finished segments hold.
struct Recorded {
    cpu: f64,
    video: Count,
    audio: Count,
    /// Peer tracks with at least one missing frame.
    lossy_tracks: usize,
    segments: usize,
    /// New recordings after a peer's first (each a reconnection: its gap is lost).
    restarts: usize,
    /// Seconds between the peers' segments that no segment holds.
    uncovered_s: f64,
    /// This process's CPU over the window: the senders (one encoder per kind, N endpoints).
    senders_cpu: f64,
}

fn main() -> anyhow::Result<()> {
    namespace::enter_loopback_only();
    let cli = Cli::parse();
    // The senders' logs, with RUST_LOG (none by default).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .try_init();
    let scratch = std::env::temp_dir().join(format!("bench-recorder-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for &n in &cli.peers {
        eprintln!("bench-recorder: {n} peers, poolgate");
        let poolgate = runtime
            .block_on(poolgate_run(&scratch, n, &cli))
            .map_err(|e| eprintln!("  poolgate run failed: {e:#}"))
            .ok();
        let floor = if cli.composite {
            None
        } else {
            eprintln!("bench-recorder: {n} peers, floor");
            floor_run(&scratch, n, cli.seconds)
                .map_err(|e| eprintln!("  floor run failed: {e:#}"))
                .ok()
        };
        rows.push(Row {
            peers: n,
            poolgate,
            floor,
        });
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "recorder{}: CPU % of one core while recording VP8+Opus peers ({} s windows; load {})",
        if cli.composite {
            " (composite 1280x720 30 fps VP8)"
        } else {
            ""
        },
        cli.seconds,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "| peers | tracks | poolgate % | per track | floor % | per track | ratio \
         | segments | video frames (missing) | audio frames (missing) | tracks with loss \
         | restarts | uncovered s \
         | floor video (missing) | floor audio (missing) | senders % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut first_loss = None;
    for r in &rows {
        let tracks = 2 * r.peers;
        let per = |v: Option<f64>| v.map(|v| v / tracks as f64);
        let cpu = r.poolgate.as_ref().map(|p| p.cpu);
        let floor_cpu = r.floor.map(|f| f.0);
        let ratio = match (cpu, floor_cpu) {
            (Some(p), Some(fl)) if fl > 0.0 => format!("{:.1}", p / fl),
            _ => "-".into(),
        };
        let loss = match &r.poolgate {
            Some(p) => {
                let lost = p.lossy_tracks > 0 || p.restarts > 0 || p.uncovered_s > 0.0;
                if lost && first_loss.is_none() {
                    first_loss = Some(r.peers);
                }
                format!(
                    "{} | {} ({}) | {} ({}) | {} | {} | {:.1}",
                    p.segments,
                    p.video.frames,
                    p.video.missing,
                    p.audio.frames,
                    p.audio.missing,
                    p.lossy_tracks,
                    p.restarts,
                    p.uncovered_s
                )
            }
            None => "- | - | - | - | - | -".into(),
        };
        let floor_loss = r.floor.map_or("- | -".into(), |(_, v, a)| {
            format!(
                "{} ({}) | {} ({})",
                v.frames, v.missing, a.frames, a.missing
            )
        });
        println!(
            "| {} | {tracks} | {} | {} | {} | {} | {ratio} | {loss} | {floor_loss} | {} |",
            r.peers,
            f(cpu),
            per(cpu).map_or("-".into(), |v| format!("{v:.2}")),
            f(floor_cpu),
            per(floor_cpu).map_or("-".into(), |v| format!("{v:.2}")),
            f(r.poolgate.as_ref().map(|p| p.senders_cpu)),
        );
    }
    if !cli.composite {
        match first_loss {
            Some(n) => println!("first count with loss: {n} peers ({} tracks)", 2 * n),
            None => println!(
                "no loss up to the largest count that ran{}",
                if rows.iter().any(|r| r.poolgate.is_none()) {
                    " (runs marked - failed: see above)"
                } else {
                    ""
                }
            ),
        }
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("bench-recorder: kept {}", scratch.display());
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(())
}

/// Kills a child process on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Counts the peers with an audio+video recording in progress in pools `bench0..n`.
fn recording_peers(root: &Path, n: usize) -> usize {
    (0..n)
        .map(|i| recording_in(root, &format!("bench{i}")))
        .sum()
}

fn recording_in(root: &Path, pool: &str) -> usize {
    poolgate_tests::recordings::session(root, pool)
        .map(|(_, index)| {
            index["peers"]
                .as_object()
                .map(|p| {
                    p.values()
                        .filter(|p| {
                            p["recordings"].as_array().is_some_and(|r| {
                                r.iter().any(|r| {
                                    r["status"] == "recording"
                                        && r["tracks"].as_array().is_some_and(|t| t.len() == 2)
                                })
                            })
                        })
                        .count()
                })
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// How many tracks are in the composite of pool `bench0` now.
fn composite_tracks(root: &Path) -> usize {
    poolgate_tests::recordings::session(root, "bench0")
        .map(|(_, index)| {
            index["composite"]["tracks"]
                .as_array()
                .map_or(0, |t| t.iter().filter(|t| t["removed"].is_null()).count())
        })
        .unwrap_or(0)
}

async fn poolgate_run(scratch: &Path, n: usize, cli: &Cli) -> anyhow::Result<Recorded> {
    let (seconds, composite) = (cli.seconds, cli.composite);
    // BENCH_POOLGATE=<path> measures another build (e.g. before a change).
    let exe = std::env::var_os("BENCH_POOLGATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/poolgate"));
    ensure!(
        exe.is_file(),
        "{} is missing: run `make build`",
        exe.display()
    );
    let plugins = PluginDir::new("bench-recorder")?;
    plugins.add_built("poolgate_plugin_recorder")?;
    let rec: PathBuf = scratch.join(format!("poolgate-{n}"));
    let port = free_port()?;
    let config = scratch.join(format!("poolgate-{n}.toml"));
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndir = {:?}\n",
        plugins.path().display().to_string()
    );
    // Composite: one bridge, every sender in its pool.
    let pool = |i: usize| if composite { 0 } else { i };
    let extra = if composite { ", composite = true" } else { "" };
    for i in 0..if composite { 1 } else { n } {
        text += &format!(
            "[[bridge]]\nname = \"rec{i}\"\nplugin = \"recorder\"\npool = \"bench{i}\"\n\
             ice_local_addresses = [\"127.0.0.1\"]\n\
             config = {{ directory = {:?}, segment_seconds = 10{extra} }}\n",
            rec.display().to_string()
        );
    }
    std::fs::write(&config, text)?;
    let child = Killed(
        Command::new(&exe)
            .arg("--config")
            .arg(&config)
            // BENCH_POOLGATE_LOG=info shows what the bridges do.
            .env(
                "RUST_LOG",
                std::env::var("BENCH_POOLGATE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .context("starting poolgate")?,
    );
    let pid = child.0.id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "poolgate never listened"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let shared = SharedSender::start(VIDEO, AUDIO)?;
    let mut senders = Vec::new();
    for i in 0..n {
        senders.push(
            Endpoint::start(EndpointOptions {
                target: SignallingTarget::Remote(format!("ws://127.0.0.1:{port}/ws")),
                pool: format!("bench{}", pool(i)),
                ice_servers: Vec::new(),
                ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                media: if cli.encoder_per_sender {
                    vec![
                        MediaSource::Launch(format!(
                            "{VIDEO} ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\""
                        )),
                        MediaSource::Launch(format!(
                            "{AUDIO} ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\""
                        )),
                    ]
                } else {
                    Vec::new()
                },
            })
            .await?,
        );
    }
    // Keep the endpoints' event queues drained. A shared sender's sources are published once
    // the recorder's data channel is open (or after 10 s): an endpoint that starts with
    // sources whose caps are known at once, joining a peer that offers a data section,
    // keeps making offers without that section and rebuilds its connection every 5 s
    // (webrtcbin 1.22 leaves the section out until the channel opens), and each rebuild
    // starts a new recording.
    let mut pumps = Vec::new();
    for mut e in senders {
        let mut sources = if cli.encoder_per_sender {
            Vec::new()
        } else {
            shared.sources()?
        };
        pumps.push(tokio::spawn(async move {
            let handle = e.handle();
            let fallback = tokio::time::sleep(Duration::from_secs(10));
            tokio::pin!(fallback);
            loop {
                let publish = tokio::select! {
                    event = e.next_event() => match event {
                        None => break,
                        Some(EndpointEvent::ChannelOpen { .. }) => true,
                        Some(_) => false,
                    },
                    _ = &mut fallback, if !sources.is_empty() => true,
                };
                if publish {
                    for source in sources.drain(..) {
                        if let Err(err) = handle.publish(source).await {
                            eprintln!("  a sender could not publish: {err:#}");
                        }
                    }
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (got, want) = if composite {
            (composite_tracks(&rec), 2 * n)
        } else {
            (recording_peers(&rec, n), n)
        };
        if got == want {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("only {got} of {want} recording after 90 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mark = CpuMark::now(pid).context("poolgate is gone")?;
    let senders_mark = CpuMark::now(std::process::id()).context("no /proc for this process")?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = mark.percent_since().context("poolgate is gone")?;
    let senders_cpu = senders_mark.percent_since().unwrap_or(0.0);
    for p in pumps {
        p.abort();
    }
    drop(child);
    drop(shared);
    let mut recorded = Recorded {
        cpu,
        video: Count::default(),
        audio: Count::default(),
        lossy_tracks: 0,
        segments: 0,
        restarts: 0,
        uncovered_s: 0.0,
        senders_cpu,
    };
    if !composite {
        for i in 0..n {
            count_pool(&rec, &format!("bench{i}"), &mut recorded)?;
        }
    }
    Ok(recorded)
}

/// Adds what the finished segments of `pool` hold (each peer's tracks) to `recorded`.
fn count_pool(root: &Path, pool: &str, recorded: &mut Recorded) -> anyhow::Result<()> {
    let (dir, index) = poolgate_tests::recordings::session(root, pool)?;
    for peer in index["peers"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        let mut video = Count::default();
        let mut audio = Count::default();
        let recordings = peer["recordings"].as_array().map_or(&[][..], Vec::as_slice);
        recorded.restarts += recordings.len().saturating_sub(1);
        // One span per recording: within one, splitmuxsink's segments are contiguous by
        // construction, and the wall-clock close times are late by the finalizing's delay.
        let mut spans = Vec::new();
        for recording in recordings {
            let segments = recording["segments"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            let closed = |s: &Value| s["closed"]["unix_ms"].as_u64().unwrap_or(0);
            if let (Some(first), Some(last)) = (segments.first(), segments.last()) {
                let start =
                    closed(first) as f64 / 1000.0 - first["duration_s"].as_f64().unwrap_or(0.0);
                spans.push((closed(last), closed(last) as f64 / 1000.0 - start));
            }
            for segment in segments {
                let file = dir.join(segment["file"].as_str().unwrap_or_default());
                let streams = loss::timestamps(&file)?;
                recorded.segments += 1;
                for (kind, ts) in streams {
                    if kind == "video" {
                        video += loss::count(&ts, VIDEO_INTERVAL_NS);
                    } else {
                        audio += loss::count(&ts, AUDIO_INTERVAL_NS);
                    }
                }
            }
        }
        recorded.uncovered_s += loss::uncovered_s(&spans);
        recorded.lossy_tracks += usize::from(video.missing > 0) + usize::from(audio.missing > 0);
        recorded.video += video;
        recorded.audio += audio;
    }
    Ok(())
}

/// The floor's CPU and the frames its finished files hold (each peer's last file, in progress
/// when the receiver is killed, is left out).
fn floor_run(scratch: &Path, n: usize, seconds: u64) -> anyhow::Result<(f64, Count, Count)> {
    let dir = scratch.join(format!("floor-{n}"));
    std::fs::create_dir_all(&dir)?;
    let base = free_port()?.max(20_000).min(60_000 - 2 * n as u16);
    let mut receive = Vec::new();
    let (mut clients_video, mut clients_audio) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (pv, pa) = (base + 2 * i as u16, base + 2 * i as u16 + 1);
        clients_video.push(format!("127.0.0.1:{pv}"));
        clients_audio.push(format!("127.0.0.1:{pa}"));
        receive.push(format!(
            "splitmuxsink name=s{i} muxer=webmmux max-size-time=10000000000 location={}/p{i}-%05d.webm \
             udpsrc port={pv} caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\" \
             ! rtpjitterbuffer latency=200 ! rtpvp8depay ! queue ! s{i}.video \
             udpsrc port={pa} caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\" \
             ! rtpjitterbuffer latency=200 ! rtpopusdepay ! opusparse ! queue ! s{i}.audio_%u",
            dir.display()
        ));
    }
    // One encoder per kind, sent to every peer's port, as the poolgate run's senders do.
    let send = format!(
        "{VIDEO} ! multiudpsink clients={} {AUDIO} ! multiudpsink clients={}",
        clients_video.join(","),
        clients_audio.join(",")
    );
    let launch = |description: &str| -> anyhow::Result<Killed> {
        Ok(Killed(
            Command::new("gst-launch-1.0")
                .arg("-e")
                .args(shell_words(description))
                .stdout(Stdio::null())
                .spawn()
                .context("starting gst-launch-1.0")?,
        ))
    };
    let receiver = launch(&receive.join(" "))?;
    std::thread::sleep(Duration::from_secs(1));
    let _sender = launch(&send)?;
    std::thread::sleep(Duration::from_secs(5));
    let mark = CpuMark::now(receiver.0.id()).context("the floor receiver is gone")?;
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = mark.percent_since().context("the floor receiver is gone")?;
    let written = std::fs::read_dir(&dir)?.count();
    ensure!(
        written >= n,
        "the floor wrote {written} files for {n} peers"
    );
    drop(receiver);
    let (mut video, mut audio) = (Count::default(), Count::default());
    for i in 0..n {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&format!("p{i}-")))
            })
            .collect();
        files.sort();
        files.pop();
        for file in files {
            for (kind, ts) in loss::timestamps(&file)? {
                if kind == "video" {
                    video += loss::count(&ts, VIDEO_INTERVAL_NS);
                } else {
                    audio += loss::count(&ts, AUDIO_INTERVAL_NS);
                }
            }
        }
    }
    Ok((cpu, video, audio))
}

/// Splits a gst-launch description into arguments, keeping double-quoted caps together.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}
