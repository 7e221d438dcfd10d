//! `bench-camera`: what a camera bridge costs poolgate per viewer. One H.264 720p30 camera
//! (~2 Mbit/s, gst-rtsp-server in this process) is bridged by a `poolgate` process (the release
//! binary, with the camera plugin, passthrough) into a pool; N receive-only WebRTC viewers
//! (managed endpoints on webrtcbin, each a child process: `bench-endpoint peer`) join it. For
//! each N the gateway process's CPU is read over a window and compared with the bridge alone.
//! Figures are printed, never asserted.
//!
//! Not measured yet (see the README, "Camera bridge"): the same load on the Janus streaming
//! plugin, and the gateway-added latency.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/bench-camera                      # N = 1, 10, 25, 50
//! target/release/bench-camera --viewers 1,5 --window-secs 5
//! ```
//!
//! The program first re-executes itself in a network namespace that has only `lo`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use poolgate_tests::browser::repo_root;
use poolgate_tests::endpoint_bench::fmt_opt;
use poolgate_tests::endpoint_bench::peer_process::{PeerProcess, Report};
use poolgate_tests::endpoint_bench::procstat::{load_average, rss_mib, CpuMark};
use poolgate_tests::namespace;
use poolgate_tests::rtsp_server::RtspServer;
use tokio::time::Instant;

/// The camera: H.264 constrained baseline, 1280x720 at 30 fps, ~2 Mbit/s, a keyframe a second.
const CAMERA_720P: &str = "( videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
    ! video/x-raw,width=1280,height=720,framerate=30/1 \
    ! openh264enc complexity=low rate-control=bitrate bitrate=2000000 gop-size=30 \
    ! video/x-h264,profile=constrained-baseline ! h264parse \
    ! rtph264pay name=pay0 pt=96 config-interval=-1 )";

/// Camera bridge cost per WebRTC viewer.
#[derive(Parser, Debug)]
#[command(name = "bench-camera")]
struct Cli {
    /// Viewer counts, measured in this order (viewers are added and stay).
    #[arg(long, value_delimiter = ',', default_value = "1,10,25,50")]
    viewers: Vec<usize>,
    /// Measuring window per step.
    #[arg(long, default_value_t = 10)]
    window_secs: u64,
    /// Bound on every viewer of a step receiving media.
    #[arg(long, default_value_t = 120)]
    limit_secs: u64,
}

fn main() -> ExitCode {
    namespace::enter_loopback_only();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
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

/// The bytes each viewer reported last, by pid; returns how many have received something.
fn drain(viewers: &mut [PeerProcess], bytes: &mut HashMap<u32, u64>) -> usize {
    for v in viewers.iter_mut() {
        for report in v.pending_reports() {
            if let Report::Received { bytes: b, .. } = report {
                bytes.insert(v.pid, b);
            }
        }
    }
    bytes.values().filter(|b| **b > 0).count()
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let poolgate = release_binary("poolgate")?;
    let viewer_exe = release_binary("bench-endpoint")?;
    release_binary("libpoolgate_plugin_camera.so")?;
    let scratch = std::env::temp_dir().join(format!("bench-camera-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;

    let camera = RtspServer::start(0, &[("/cam", CAMERA_720P)], None)?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let config = scratch.join("poolgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndir = {:?}\n\
             [[bridge]]\nname = \"cam\"\nplugin = \"camera\"\npool = \"cam\"\n\
             ice_local_addresses = [\"127.0.0.1\"]\nconfig = {{ url = {:?}, audio = false }}\n",
            repo_root().join("target/release").display().to_string(),
            camera.url(None, "/cam"),
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
    let window = Duration::from_secs(cli.window_secs);
    eprintln!("bench-camera: load average {}", fmt_opt(load_average(), 2));

    // The bridge alone: pulling the camera with nobody to send to.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mark = CpuMark::now(pid);
    tokio::time::sleep(window).await;
    let base = mark.and_then(|m| m.percent_since());
    eprintln!(
        "bench-camera: bridge alone: CPU {} %, RSS {} MiB",
        fmt_opt(base, 1),
        fmt_opt(rss_mib(pid), 1)
    );

    let mut viewers: Vec<PeerProcess> = Vec::new();
    let mut bytes = HashMap::new();
    let mut rows = Vec::new();
    for &n in &cli.viewers {
        while viewers.len() < n {
            let i = viewers.len();
            let mut p = PeerProcess::spawn(
                &viewer_exe,
                &format!("viewer-{i}"),
                &url,
                "cam",
                false,
                &scratch.join(format!("viewer-{i}.log")),
            )?;
            p.command("join").await?;
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
        drain(&mut viewers, &mut bytes);
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
        let per = cpu.zip(base).map(|(c, b)| (c - b) / n as f64);
        eprintln!(
            "bench-camera: N={n}: {receiving} receiving, gateway CPU {} %, per viewer {} %",
            fmt_opt(cpu, 1),
            fmt_opt(per, 2)
        );
        rows.push(format!(
            "{n:>3} | {receiving:>9} | {:>14} | {:>16} | {:>11} | {:>17}",
            fmt_opt(cpu, 1),
            fmt_opt(per, 2),
            fmt_opt(rss_mib(pid), 1),
            fmt_opt(min_kbps, 0),
        ));
    }
    for v in viewers.drain(..) {
        v.quit(Duration::from_secs(20)).await;
    }
    let _ = gateway.kill().await;
    camera.stop();

    println!("camera bridge: H.264 720p30 ~2 Mbit/s passthrough, N receive-only webrtcbin viewers");
    println!("bridge alone: gateway CPU {} % of a core", fmt_opt(base, 1));
    println!(
        "  N | receiving | gateway CPU % | CPU %/viewer (-alone) | RSS MiB | viewer kbit/s min"
    );
    for row in rows {
        println!("{row}");
    }
    println!("not measured: Janus streaming plugin side by side, gateway-added latency");
    println!("logs: {}", scratch.display());
    Ok(())
}
