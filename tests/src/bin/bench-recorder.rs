//! `bench-recorder`: what the recorder bridge costs per recorded track, next to the floor.
//! Figures are printed, never asserted.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/bench-recorder                 # 1, 4 and 8 peers, 20 s each
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
//!   connecting to each other, which would add work that is not recording. Once the index shows all N recording, the child's CPU is measured. This covers
//!   all the work needed to record over WebRTC: ICE, DTLS/SRTP, the jitter buffer,
//!   depayloading and muxing.
//! - **floor**: a bare `gst-launch-1.0` receives the same kind of streams as plain RTP over
//!   UDP from a second `gst-launch-1.0`, which encodes them. The receiver depayloads and muxes
//!   them the same way: a jitter buffer, then splitmuxsink with webmmux. Its CPU is measured.
//!
//! The ratio poolgate/floor is printed. CPU is % of one core over the window; the machine's
//! load is printed too, because shared cores make the figures noisy. Runs in a loopback-only
//! namespace; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use clap::Parser;
use poolgate::endpoint::{Endpoint, EndpointOptions, MediaSource};
use poolgate::signalling::SignallingTarget;
use poolgate_tests::browser::repo_root;
use poolgate_tests::endpoint_bench::procstat::CpuMark;
use poolgate_tests::namespace;
use poolgate_tests::plugins::PluginDir;

#[derive(Parser, Debug)]
#[command(name = "bench-recorder")]
struct Cli {
    /// Peer counts to measure (each peer: one VP8 and one Opus track).
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    peers: Vec<usize>,
    /// Measuring window per run, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// All peers in one pool, recorded by one composite-mode bridge.
    #[arg(long)]
    composite: bool,
}

const VIDEO: &str = "videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert \
    ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=150 \
    ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit";
const AUDIO: &str = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
    ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111";

struct Row {
    peers: usize,
    poolgate: Option<f64>,
    floor: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    namespace::enter_loopback_only();
    let cli = Cli::parse();
    let scratch = std::env::temp_dir().join(format!("bench-recorder-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for &n in &cli.peers {
        eprintln!("bench-recorder: {n} peers, poolgate");
        let poolgate = runtime
            .block_on(poolgate_run(&scratch, n, cli.seconds, cli.composite))
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
    println!("| peers | tracks | poolgate % | per track | floor % | per track | ratio |");
    println!("|---|---|---|---|---|---|---|");
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for r in rows {
        let tracks = 2 * r.peers;
        let per = |v: Option<f64>| v.map(|v| v / tracks as f64);
        let ratio = match (r.poolgate, r.floor) {
            (Some(p), Some(fl)) if fl > 0.0 => format!("{:.1}", p / fl),
            _ => "-".into(),
        };
        println!(
            "| {} | {tracks} | {} | {} | {} | {} | {ratio} |",
            r.peers,
            f(r.poolgate),
            per(r.poolgate).map_or("-".into(), |v| format!("{v:.2}")),
            f(r.floor),
            per(r.floor).map_or("-".into(), |v| format!("{v:.2}")),
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
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

async fn poolgate_run(
    scratch: &Path,
    n: usize,
    seconds: u64,
    composite: bool,
) -> anyhow::Result<f64> {
    let exe = repo_root().join("target/release/poolgate");
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
            .env("RUST_LOG", "warn")
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
    let mut senders = Vec::new();
    for i in 0..n {
        senders.push(
            Endpoint::start(EndpointOptions {
                target: SignallingTarget::Remote(format!("ws://127.0.0.1:{port}/ws")),
                pool: format!("bench{}", pool(i)),
                ice_servers: Vec::new(),
                ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                media: vec![
                    MediaSource::Launch(format!(
                        "{VIDEO} ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\""
                    )),
                    MediaSource::Launch(format!(
                        "{AUDIO} ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\""
                    )),
                ],
            })
            .await?,
        );
    }
    // Keep the endpoints' event queues drained.
    let pumps: Vec<_> = senders
        .into_iter()
        .map(|mut e| tokio::spawn(async move { while e.next_event().await.is_some() {} }))
        .collect();
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
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = mark.percent_since().context("poolgate is gone")?;
    for p in pumps {
        p.abort();
    }
    drop(child);
    Ok(cpu)
}

fn floor_run(scratch: &Path, n: usize, seconds: u64) -> anyhow::Result<f64> {
    let dir = scratch.join(format!("floor-{n}"));
    std::fs::create_dir_all(&dir)?;
    let base = free_port()?.max(20_000).min(60_000 - 2 * n as u16);
    let mut receive = Vec::new();
    let mut send = Vec::new();
    for i in 0..n {
        let (pv, pa) = (base + 2 * i as u16, base + 2 * i as u16 + 1);
        receive.push(format!(
            "splitmuxsink name=s{i} muxer=webmmux max-size-time=10000000000 location={}/p{i}-%05d.webm \
             udpsrc port={pv} caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\" \
             ! rtpjitterbuffer latency=200 ! rtpvp8depay ! queue ! s{i}.video \
             udpsrc port={pa} caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\" \
             ! rtpjitterbuffer latency=200 ! rtpopusdepay ! opusparse ! queue ! s{i}.audio_%u",
            dir.display()
        ));
        send.push(format!(
            "{VIDEO} ! udpsink host=127.0.0.1 port={pv} {AUDIO} ! udpsink host=127.0.0.1 port={pa}"
        ));
    }
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
    let _sender = launch(&send.join(" "))?;
    std::thread::sleep(Duration::from_secs(5));
    let mark = CpuMark::now(receiver.0.id()).context("the floor receiver is gone")?;
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = mark.percent_since().context("the floor receiver is gone")?;
    let written = std::fs::read_dir(&dir)?.count();
    ensure!(
        written >= n,
        "the floor wrote {written} files for {n} peers"
    );
    Ok(cpu)
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
