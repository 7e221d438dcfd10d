//! `bench-camera`: what a camera costs per WebRTC viewer, poolgate's camera bridge side by side
//! with the Janus streaming plugin. One H.264 720p30 camera (about 4 Mbit/s, gst-rtsp-server in this
//! process on 127.0.0.1) is served in turn by (a) a `poolgate` process (the release binary, with
//! the camera plugin, passthrough) to N receive-only pool viewers (managed endpoints on
//! webrtcbin, each a child process: `bench-endpoint peer`), and (b) a `janus` process (Debian's
//! Janus, an RTSP mountpoint of the streaming plugin, configured in a temporary folder) to N
//! receive-only webrtcbin viewers driven through its HTTP API (each a child process:
//! `bench-camera janus-viewer`). Both viewers depayload the H.264 and count what arrives. For
//! each N the server process's CPU is read from /proc over a window once every viewer receives,
//! and compared with the server pulling the camera alone. Figures are printed, never asserted.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/bench-camera                      # N = 1, 10, 25, 50, both servers
//! target/release/bench-camera --viewers 1,5 --window-secs 5 --servers janus
//! ```
//!
//! The program first re-executes itself in a network namespace that has only `lo`; Janus, the
//! camera and every viewer run in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use poolgate_tests::browser::repo_root;
use poolgate_tests::endpoint_bench::fmt_opt;
use poolgate_tests::endpoint_bench::peer_process::{PeerProcess, Report};
use poolgate_tests::endpoint_bench::procstat::{load_average, rss_mib, CpuMark};
use poolgate_tests::janus::config::JanusConfig;
use poolgate_tests::janus::server::JanusServer;
use poolgate_tests::janus::viewer::{self, ViewerArgs};
use poolgate_tests::namespace;
use poolgate_tests::rtp_latency::capture::capture_rtp;
use poolgate_tests::rtp_latency::frames::{frames, match_frames, quantile, Latency, RtpPacket};
use poolgate_tests::rtp_latency::ports::udp_ports;
use poolgate_tests::rtsp_server::RtspServer;
use tokio::time::Instant;

/// The camera: H.264 constrained baseline, 1280x720 at 30 fps, a keyframe every `gop_secs`
/// (1 by default). openh264 is asked for 2 Mbit/s but sends about 4 on this moving pattern
/// (measured).
fn camera_720p(gop_secs: u32) -> String {
    format!(
        "( videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
         ! video/x-raw,width=1280,height=720,framerate=30/1 \
         ! openh264enc complexity=low rate-control=bitrate bitrate=2000000 gop-size={} \
         ! video/x-h264,profile=constrained-baseline ! h264parse \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        gop_secs * 30
    )
}

/// The Janus mountpoint's id.
const MOUNTPOINT: u64 = 1;

/// Camera cost per WebRTC viewer, poolgate and Janus.
#[derive(Parser, Debug)]
#[command(name = "bench-camera")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Viewer counts, measured in this order (viewers are added and stay).
    #[arg(long, value_delimiter = ',', default_value = "1,10,25,50")]
    viewers: Vec<usize>,
    /// Measuring window per step.
    #[arg(long, default_value_t = 10)]
    window_secs: u64,
    /// Bound on every viewer of a step receiving media.
    #[arg(long, default_value_t = 120)]
    limit_secs: u64,
    /// Viewers that join one at a time (nobody else watching) to time their first keyframe.
    #[arg(long, default_value_t = 5)]
    joins: usize,
    /// Capture window for the gateway-added latency (taken with 1 viewer).
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// The camera's keyframe interval, seconds.
    #[arg(long, default_value_t = 1)]
    gop_secs: u32,
    /// Run the camera bridge with `request_keyframes = false` (no RTCP PLI to the camera).
    #[arg(long)]
    no_keyframe_requests: bool,
    /// Run the camera bridge with `repacketize = true` (H.264 cut into packets of at most
    /// 1,200 bytes, instead of the camera's RTP packets relayed as they are).
    #[arg(long)]
    repacketize: bool,
    /// Which servers to measure: `poolgate`, `janus`, or both.
    #[arg(long, value_delimiter = ',', default_value = "poolgate,janus")]
    servers: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// (internal) One Janus streaming viewer, driven by the parent over stdin/stdout.
    JanusViewer(ViewerArgs),
}

fn main() -> ExitCode {
    namespace::enter_loopback_only();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = match cli.role {
        Some(Role::JanusViewer(ref args)) => runtime.block_on(viewer::run(args.clone())),
        None => runtime.block_on(run(cli)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-camera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn release_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = repo_root().join("target/release").join(name);
    if !path.is_file() {
        bail!("{} is missing: run `make build`", path.display());
    }
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The bytes each viewer reported last, by pid; returns how many have received something.
/// Viewer errors are printed once, as they come.
fn drain(viewers: &mut [PeerProcess], bytes: &mut HashMap<u32, u64>) -> usize {
    for v in viewers.iter_mut() {
        for report in v.pending_reports() {
            match report {
                Report::Received { bytes: b, .. } => {
                    bytes.insert(v.pid, b);
                }
                Report::Error { message } => eprintln!("bench-camera: {}: {message}", v.name),
                Report::Stopped { reason } => {
                    eprintln!("bench-camera: {} stopped: {reason}", v.name)
                }
                _ => {}
            }
        }
    }
    viewers
        .iter()
        .filter(|v| bytes.get(&v.pid).copied().unwrap_or(0) > 0)
        .count()
}

/// Viewers numbered from here on join mid-stream, one at a time, and decode (the first frame
/// decoded is timed); the N viewers measured for CPU only depayload.
const JOINING: usize = 1000;

/// One server's figures for one N.
struct Step {
    n: usize,
    receiving: usize,
    cpu: Option<f64>,
    rss: Option<f64>,
    min_kbps: Option<f64>,
}

/// One server's run: the camera pulled with nobody watching, then each N.
struct Series {
    name: &'static str,
    alone: Option<f64>,
    steps: Vec<Step>,
    /// Time from a viewer starting to join to its first keyframe, ms, one per join.
    first_keyframe_ms: Vec<u64>,
    /// Of that, the time from the connection being up to the first keyframe, ms.
    keyframe_after_connected_ms: Vec<u64>,
    /// Time from a viewer starting to join to its first decoded frame, ms, one per join.
    first_decoded_ms: Vec<u64>,
    /// Camera frame in -> frame out to the one viewer.
    latency: Option<Latency>,
}

impl Series {
    /// CPU % per viewer above the server's cost alone, at step `i`.
    fn per_viewer(&self, i: usize) -> Option<f64> {
        let s = self.steps.get(i)?;
        s.cpu.zip(self.alone).map(|(c, a)| (c - a) / s.n as f64)
    }
}

/// Measures `pid` alone, then adds viewers made by `spawn(i)` up to each N of `cli.viewers`.
async fn measure(
    name: &'static str,
    pid: u32,
    cli: &Cli,
    mut spawn: impl FnMut(usize) -> anyhow::Result<PeerProcess>,
    join: bool,
) -> anyhow::Result<Series> {
    let window = Duration::from_secs(cli.window_secs);
    // Pulling the camera with nobody to send to (after it has settled).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mark = CpuMark::now(pid);
    tokio::time::sleep(window).await;
    let alone = mark.and_then(|m| m.percent_since());
    eprintln!(
        "bench-camera: {name} alone: CPU {} %, RSS {} MiB, load {}",
        fmt_opt(alone, 1),
        fmt_opt(rss_mib(pid), 1),
        fmt_opt(load_average(), 2)
    );

    let mut first_keyframe_ms = Vec::new();
    let mut keyframe_after_connected_ms = Vec::new();
    let mut first_decoded_ms = Vec::new();
    for j in 0..cli.joins {
        let t0 = Instant::now();
        let mut connected = None;
        let mut p = spawn(JOINING + j)?;
        if join {
            p.command("join").await?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut got, mut decoded) = (None, None);
        while got.is_none() || decoded.is_none() {
            match p.next_report(deadline).await {
                Some(Report::FirstDecoded { ms }) => decoded = Some(ms),
                Some(Report::FirstKeyframe { ms }) => {
                    got = Some(ms);
                    if let Some(c) = connected {
                        let waited: Duration = t0.elapsed() - c;
                        keyframe_after_connected_ms.push(waited.as_millis() as u64);
                    }
                }
                Some(Report::PeerState { state, .. }) if state == "connected" => {
                    connected.get_or_insert(t0.elapsed());
                }
                Some(Report::Error { message }) => eprintln!("bench-camera: {}: {message}", p.name),
                Some(_) => {}
                None => break,
            }
        }
        match got {
            Some(ms) => first_keyframe_ms.push(ms),
            None => eprintln!("bench-camera: {} saw no keyframe within 30 s", p.name),
        }
        match decoded {
            Some(ms) => first_decoded_ms.push(ms),
            None => eprintln!("bench-camera: {} decoded no frame within 30 s", p.name),
        }
        p.quit(Duration::from_secs(20)).await;
        // Join mid-stream at different points of the keyframe interval.
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    eprintln!(
        "bench-camera: {name}: first keyframe after joining, ms: {first_keyframe_ms:?}; \
         of which after the connection was up: {keyframe_after_connected_ms:?}; \
         first frame decoded: {first_decoded_ms:?}"
    );

    let mut viewers: Vec<PeerProcess> = Vec::new();
    let mut bytes = HashMap::new();
    let mut steps = Vec::new();
    let mut latency = None;
    for &n in &cli.viewers {
        while viewers.len() < n {
            let mut p = spawn(viewers.len())?;
            if join {
                p.command("join").await?;
            }
            viewers.push(p);
        }
        let deadline = Instant::now() + Duration::from_secs(cli.limit_secs);
        let mut receiving = drain(&mut viewers, &mut bytes);
        while receiving < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            receiving = drain(&mut viewers, &mut bytes);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        drain(&mut viewers, &mut bytes);
        let before = bytes.clone();
        let mark = CpuMark::now(pid);
        let t = Instant::now();
        tokio::time::sleep(window).await;
        let cpu = mark.and_then(|m| m.percent_since());
        receiving = drain(&mut viewers, &mut bytes);
        let secs = t.elapsed().as_secs_f64();
        let kbps: Vec<f64> = viewers
            .iter()
            .map(|v| {
                let a = before.get(&v.pid).copied().unwrap_or(0);
                let b = bytes.get(&v.pid).copied().unwrap_or(0);
                b.saturating_sub(a) as f64 * 8.0 / 1000.0 / secs
            })
            .collect();
        let min_kbps = kbps.iter().copied().reduce(f64::min);
        let step = Step {
            n,
            receiving,
            cpu,
            rss: rss_mib(pid),
            min_kbps,
        };
        eprintln!(
            "bench-camera: {name} N={n}: {receiving} receiving, CPU {} %, per viewer {} %, \
             min {} kbit/s, load {}",
            fmt_opt(cpu, 1),
            fmt_opt(cpu.zip(alone).map(|(c, a)| (c - a) / n as f64), 2),
            fmt_opt(min_kbps, 0),
            fmt_opt(load_average(), 2)
        );
        steps.push(step);
        if n == 1 && latency.is_none() {
            latency = Some(wire_latency(pid, Duration::from_secs(cli.latency_secs)).await?);
        }
    }
    for v in viewers.drain(..) {
        v.quit(Duration::from_secs(20)).await;
    }
    Ok(Series {
        name,
        alone,
        steps,
        first_keyframe_ms,
        keyframe_after_connected_ms,
        first_decoded_ms,
        latency,
    })
}

async fn run_poolgate(cli: &Cli, camera: &RtspServer, scratch: &Path) -> anyhow::Result<Series> {
    let poolgate = release_binary("poolgate")?;
    let viewer_exe = release_binary("bench-endpoint")?;
    release_binary("libpoolgate_plugin_camera.so")?;
    let port = free_port()?;
    let config = scratch.join("poolgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndir = {:?}\n\
             [[bridge]]\nname = \"cam\"\nplugin = \"camera\"\npool = \"cam\"\n\
             ice_local_addresses = [\"127.0.0.1\"]\n\
             config = {{ url = {:?}, audio = false, request_keyframes = {}, repacketize = {} }}\n",
            repo_root().join("target/release").display().to_string(),
            camera.url(None, "/cam"),
            !cli.no_keyframe_requests,
            cli.repacketize,
        ),
    )?;
    let log = std::fs::File::create(scratch.join("poolgate.log"))?;
    let mut gateway = tokio::process::Command::new(&poolgate)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting poolgate")?;
    let pid = gateway.id().context("poolgate exited at once")?;
    let url = format!("ws://127.0.0.1:{port}/ws");
    let series = measure(
        "poolgate",
        pid,
        cli,
        |i| {
            let mut cmd = tokio::process::Command::new(&viewer_exe);
            cmd.arg("peer")
                .args(["--signalling", &url, "--pool", "cam"]);
            if i >= JOINING {
                cmd.arg("--decode");
            }
            PeerProcess::spawn_command(
                cmd,
                &format!("pool-viewer-{i}"),
                &scratch.join(format!("pool-viewer-{i}.log")),
            )
        },
        true,
    )
    .await;
    let _ = gateway.kill().await;
    series
}

async fn run_janus(cli: &Cli, camera: &RtspServer, scratch: &Path) -> anyhow::Result<Series> {
    let me = std::env::current_exe()?;
    let dir = scratch.join("janus");
    let config = JanusConfig {
        http_port: free_port()?,
        rtsp_url: camera.url(None, "/cam"),
        mountpoint: MOUNTPOINT,
        rtp_ports: (40000, 49999),
    };
    let janus = JanusServer::start(&config, &dir, Duration::from_secs(20)).await?;
    let api = janus.api.clone();
    let series = measure(
        "janus",
        janus.pid,
        cli,
        |i| {
            let mut cmd = tokio::process::Command::new(&me);
            cmd.args(["janus-viewer", "--api", &api, "--mountpoint"])
                .arg(MOUNTPOINT.to_string());
            if i >= JOINING {
                cmd.arg("--decode");
            }
            PeerProcess::spawn_command(
                cmd,
                &format!("janus-viewer-{i}"),
                &scratch.join(format!("janus-viewer-{i}.log")),
            )
        },
        false,
    )
    .await;
    janus.stop().await;
    series
}

/// Captures `lo` for `window` and matches the camera's frames into `pid` with the frames `pid`
/// sends out (to its one viewer).
async fn wire_latency(pid: u32, window: Duration) -> anyhow::Result<Latency> {
    let ports = udp_ports(pid);
    let packets = tokio::task::spawn_blocking(move || capture_rtp(window)).await??;
    let mine = |p: &u16| ports.contains(p);
    let inbound: Vec<&RtpPacket> = packets
        .iter()
        .filter(|p| mine(&p.dst_port) && !mine(&p.src_port))
        .collect();
    let outbound: Vec<&RtpPacket> = packets
        .iter()
        .filter(|p| mine(&p.src_port) && !mine(&p.dst_port))
        .collect();
    let busiest = |list: &[&RtpPacket]| {
        let mut count: HashMap<u32, usize> = HashMap::new();
        for p in list {
            *count.entry(p.ssrc).or_default() += 1;
        }
        count.into_iter().max_by_key(|(_, c)| *c).map(|(s, _)| s)
    };
    let (Some(a), Some(b)) = (busiest(&inbound), busiest(&outbound)) else {
        bail!(
            "no RTP both into and out of pid {pid} on lo ({} packets captured)",
            packets.len()
        );
    };
    let input = frames(inbound.into_iter().filter(|p| p.ssrc == a));
    let output = frames(outbound.into_iter().filter(|p| p.ssrc == b));
    let sizes = |f: &[poolgate_tests::rtp_latency::frames::Frame]| {
        f.iter().take(8).map(|f| f.bytes).collect::<Vec<_>>()
    };
    eprintln!(
        "bench-camera: pid {pid}: {} frames in, {} out; first sizes in {:?}, out {:?}",
        input.len(),
        output.len(),
        sizes(&input),
        sizes(&output)
    );
    Ok(match_frames(&input, &output))
}

fn print_series(s: &Series) {
    println!(
        "{}: serving the camera to nobody: CPU {} % of a core",
        s.name,
        fmt_opt(s.alone, 1)
    );
    println!("  N | receiving | CPU % | CPU %/viewer (-alone) | RSS MiB | viewer kbit/s min");
    for (i, st) in s.steps.iter().enumerate() {
        println!(
            "{:>3} | {:>9} | {:>5} | {:>21} | {:>7} | {:>17}",
            st.n,
            st.receiving,
            fmt_opt(st.cpu, 1),
            fmt_opt(s.per_viewer(i), 2),
            fmt_opt(st.rss, 1),
            fmt_opt(st.min_kbps, 0),
        );
    }
    let ttff: Vec<f64> = s.first_keyframe_ms.iter().map(|&m| m as f64).collect();
    let waits: Vec<f64> = s
        .keyframe_after_connected_ms
        .iter()
        .map(|&m| m as f64)
        .collect();
    println!(
        "  joining viewer, start of join -> first keyframe depayloaded: p50 {} ms, max {} ms \
         ({} joins); connection up -> first keyframe: p50 {} ms, max {} ms",
        fmt_opt(quantile(&ttff, 0.5), 0),
        fmt_opt(quantile(&ttff, 1.0), 0),
        ttff.len(),
        fmt_opt(quantile(&waits, 0.5), 0),
        fmt_opt(quantile(&waits, 1.0), 0),
    );
    let decoded: Vec<f64> = s.first_decoded_ms.iter().map(|&m| m as f64).collect();
    println!(
        "  joining viewer, start of join -> first frame decoded: p50 {} ms, max {} ms ({} joins)",
        fmt_opt(quantile(&decoded, 0.5), 0),
        fmt_opt(quantile(&decoded, 1.0), 0),
        decoded.len(),
    );
    if let Some(l) = &s.latency {
        println!(
            "  added latency, camera frame in -> frame out (marker packets): p50 {} ms, p99 {} ms, max {} ms; \
             first packets: p50 {} ms, p99 {} ms ({} frames, {} size-mismatched)",
            fmt_opt(quantile(&l.last_ms, 0.5), 2),
            fmt_opt(quantile(&l.last_ms, 0.99), 2),
            fmt_opt(quantile(&l.last_ms, 1.0), 2),
            fmt_opt(quantile(&l.first_ms, 0.5), 2),
            fmt_opt(quantile(&l.first_ms, 0.99), 2),
            l.last_ms.len(),
            l.mismatched
        );
        let (big, other) = (l.last_ms_of(true), l.last_ms_of(false));
        println!(
            "    of which keyframe-sized frames: p50 {} ms, max {} ms ({} frames); other frames: \
             p50 {} ms, p99 {} ms, max {} ms",
            fmt_opt(quantile(&big, 0.5), 2),
            fmt_opt(quantile(&big, 1.0), 2),
            big.len(),
            fmt_opt(quantile(&other, 0.5), 2),
            fmt_opt(quantile(&other, 0.99), 2),
            fmt_opt(quantile(&other, 1.0), 2),
        );
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("bench-camera-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let camera = RtspServer::start(0, &[("/cam", &camera_720p(cli.gop_secs))], None)?;
    eprintln!("bench-camera: load average {}", fmt_opt(load_average(), 2));
    let wants = |name: &str| cli.servers.iter().any(|s| s == name);
    let pool = if wants("poolgate") {
        Some(run_poolgate(&cli, &camera, &scratch).await?)
    } else {
        None
    };
    let janus = if wants("janus") {
        Some(run_janus(&cli, &camera, &scratch).await?)
    } else {
        None
    };
    camera.stop();

    println!(
        "camera: RTSP H.264 720p30 (openh264, about 4 Mbit/s, a keyframe every {} s), \
         gst-rtsp-server over UDP, passthrough (keyframe requests to the camera: {}; poolgate {}); \
         N receive-only webrtcbin viewers",
        cli.gop_secs,
        if cli.no_keyframe_requests {
            "off"
        } else {
            "RTCP PLI"
        },
        if cli.repacketize {
            "re-packetizes to 1,200-byte packets"
        } else {
            "relays the camera's RTP packets"
        }
    );
    for s in pool.iter().chain(janus.iter()) {
        print_series(s);
    }
    if let (Some(p), Some(j)) = (&pool, &janus) {
        println!("  N | poolgate/Janus CPU %/viewer (-alone) | poolgate/Janus total CPU %");
        for (i, (a, b)) in p.steps.iter().zip(&j.steps).enumerate() {
            let per = p.per_viewer(i).zip(j.per_viewer(i)).map(|(x, y)| x / y);
            let total = a.cpu.zip(b.cpu).map(|(x, y)| x / y);
            // A server whose viewers do not all receive is doing less work: say so.
            let note = if a.receiving < a.n || b.receiving < b.n {
                format!(
                    " (not comparable: {}/{} and {}/{} viewers receiving)",
                    a.receiving, a.n, b.receiving, b.n
                )
            } else {
                String::new()
            };
            println!(
                "{:>3} | {:>36} | {:>26}{note}",
                a.n,
                fmt_opt(per, 2),
                fmt_opt(total, 2)
            );
        }
    }
    println!("load average at the end: {}", fmt_opt(load_average(), 2));
    println!("logs: {}", scratch.display());
    Ok(())
}
