//! Fan-out: one endpoint in this process publishes a 720p30 VP8 stream; N receive-only
//! endpoints, each in its own child process, join the pool and receive it. For each N the
//! publishing process's CPU share and RSS are read over a window, and compared with the
//! publisher alone (encoding, no peers): the difference per peer is what one more peer costs
//! the publishing side. Receivers are added step by step (1, then up to 5, ...) and stay.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use poolgate::endpoint::{Endpoint, EndpointEvent, MediaSource};
use tokio::time::Instant;

use super::peer_process::{PeerProcess, Report};
use super::procstat::{self, rss_mib, CpuMark};
use super::{fmt_opt, Bench, Section};

/// The default published stream: moving SMPTE bars at 1280x720, 30 fps, VP8 at 2 Mbit/s,
/// as the endpoint's own test video is encoded (realtime, fastest speed).
pub const SOURCE_720P: &str = "videotestsrc is-live=true pattern=smpte horizontal-speed=4 \
    ! video/x-raw,width=1280,height=720,framerate=30/1 ! videoconvert \
    ! vp8enc deadline=1 cpu-used=8 target-bitrate=2000000 keyframe-max-dist=60 \
      error-resilient=partitions threads=2 \
    ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit \
    ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\"";

#[derive(Clone, Debug)]
pub struct FanoutArgs {
    pub steps: Vec<usize>,
    pub source: String,
    /// Measuring window per step.
    pub window: Duration,
    /// Wait after every receiver gets media, before measuring.
    pub settle: Duration,
    /// Bound on every receiver of a step connecting and receiving.
    pub limit: Duration,
}

/// One step's readings.
struct Step {
    peers: usize,
    receiving: usize,
    cpu: Option<f64>,
    rss: Option<f64>,
    child_cpu: Vec<f64>,
    child_rss: Vec<f64>,
    /// Received kbit/s per receiver over the window.
    kbps: Vec<f64>,
    /// Key frames received per second, per receiver, over the window.
    keyframes: Vec<f64>,
    /// The publisher's CPU by thread group (% of a core), largest first.
    threads: Vec<(String, f64)>,
}

/// The receivers and what they reported last.
struct Receivers {
    procs: Vec<PeerProcess>,
    bytes: HashMap<u32, u64>,
    keyframes: HashMap<u32, u64>,
    receiving: HashSet<u32>,
    errors: Vec<String>,
}

impl Receivers {
    fn drain(&mut self) {
        for p in &mut self.procs {
            for r in p.pending_reports() {
                match r {
                    Report::Received {
                        bytes,
                        buffers,
                        keyframes,
                    } => {
                        self.bytes.insert(p.pid, bytes);
                        self.keyframes.insert(p.pid, keyframes);
                        if buffers > 0 {
                            self.receiving.insert(p.pid);
                        }
                    }
                    Report::Error { message } | Report::Stopped { reason: message } => {
                        self.errors.push(format!("{}: {message}", p.name))
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Keeps the publisher's events flowing (and counts its connected peers) for `d`.
async fn pump(publisher: &mut Endpoint, connected: &mut HashSet<String>, d: Duration) {
    let until = Instant::now() + d;
    loop {
        tokio::select! {
            e = publisher.next_event() => match e {
                Some(EndpointEvent::PeerState { id, state }) => {
                    if state == "connected" {
                        connected.insert(id.to_string());
                    } else {
                        connected.remove(&id.to_string());
                    }
                }
                Some(EndpointEvent::PeerLeft { id }) => {
                    connected.remove(&id.to_string());
                }
                None | Some(EndpointEvent::Stopped { .. }) => {
                    tokio::time::sleep_until(until).await;
                    return;
                }
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

pub async fn run(bench: &Bench, args: &FanoutArgs) -> anyhow::Result<Section> {
    let pool = "bench-fanout";
    let me = std::process::id();
    let (mut publisher, _) = bench
        .endpoint(pool, vec![MediaSource::Launch(args.source.clone())])
        .await?;
    let mut connected = HashSet::new();
    let mut rx = Receivers {
        procs: Vec::new(),
        bytes: HashMap::new(),
        keyframes: HashMap::new(),
        receiving: HashSet::new(),
        errors: Vec::new(),
    };

    // The publisher alone: encoding with nobody to send to.
    pump(&mut publisher, &mut connected, args.settle).await;
    let mark = CpuMark::now(me);
    let (threads_before, t) = (procstat::thread_groups(me), Instant::now());
    pump(&mut publisher, &mut connected, args.window).await;
    let base_cpu = mark.and_then(|m| m.percent_since());
    let base_threads =
        procstat::thread_group_percent(&threads_before, &procstat::thread_groups(me), t.elapsed());
    let base_rss = rss_mib(me);
    eprintln!(
        "bench-endpoint: fan-out: publisher alone: CPU {} %, RSS {} MiB",
        fmt_opt(base_cpu, 1),
        fmt_opt(base_rss, 1)
    );

    let mut steps = Vec::new();
    let url = bench.ws_url();
    for &n in &args.steps {
        while rx.procs.len() < n {
            let i = rx.procs.len();
            let mut p = PeerProcess::spawn(
                &bench.exe,
                &format!("fanout-rx-{i}"),
                &url,
                pool,
                false,
                &bench.scratch.join(format!("fanout-rx-{i}.log")),
            )?;
            p.command("join").await?;
            rx.procs.push(p);
        }
        let deadline = Instant::now() + args.limit;
        while (connected.len() < n || rx.receiving.len() < n) && Instant::now() < deadline {
            pump(&mut publisher, &mut connected, Duration::from_millis(250)).await;
            rx.drain();
        }
        eprintln!(
            "bench-endpoint: fan-out N={n}: {} connected, {} receiving; measuring {:?}",
            connected.len(),
            rx.receiving.len(),
            args.window
        );
        pump(&mut publisher, &mut connected, args.settle).await;
        rx.drain();
        let bytes_before = rx.bytes.clone();
        let keyframes_before = rx.keyframes.clone();
        let mark = CpuMark::now(me);
        let threads_before = procstat::thread_groups(me);
        let child_marks: Vec<_> = rx.procs.iter().map(|p| CpuMark::now(p.pid)).collect();
        let t = Instant::now();
        pump(&mut publisher, &mut connected, args.window).await;
        rx.drain();
        let secs = t.elapsed().as_secs_f64();
        let threads = procstat::thread_group_percent(
            &threads_before,
            &procstat::thread_groups(me),
            t.elapsed(),
        );
        let step = Step {
            threads,
            keyframes: rx
                .procs
                .iter()
                .map(|p| {
                    let a = keyframes_before.get(&p.pid).copied().unwrap_or(0);
                    let b = rx.keyframes.get(&p.pid).copied().unwrap_or(0);
                    b.saturating_sub(a) as f64 / secs
                })
                .collect(),
            peers: n,
            receiving: rx.receiving.len(),
            cpu: mark.and_then(|m| m.percent_since()),
            rss: rss_mib(me),
            child_cpu: child_marks
                .iter()
                .filter_map(|m| m.and_then(|m| m.percent_since()))
                .collect(),
            child_rss: rx.procs.iter().filter_map(|p| rss_mib(p.pid)).collect(),
            kbps: rx
                .procs
                .iter()
                .map(|p| {
                    let a = bytes_before.get(&p.pid).copied().unwrap_or(0);
                    let b = rx.bytes.get(&p.pid).copied().unwrap_or(0);
                    (b.saturating_sub(a)) as f64 * 8.0 / 1000.0 / secs
                })
                .collect(),
        };
        eprintln!(
            "bench-endpoint: fan-out N={n}: publisher CPU {} %, RSS {} MiB",
            fmt_opt(step.cpu, 1),
            fmt_opt(step.rss, 1)
        );
        steps.push(step);
    }
    for p in rx.procs.drain(..) {
        p.quit(Duration::from_secs(20)).await;
    }
    let hang = bench
        .stop_endpoint(publisher, "the publishing endpoint")
        .await;

    let mut s =
        Section::new("fan-out: one 720p30 VP8 stream to N receiving endpoints (child processes)");
    let avg = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let min = |v: &[f64]| v.iter().copied().reduce(f64::min);
    s.row("publisher alone: CPU (% of a core)", fmt_opt(base_cpu, 1));
    s.row("publisher alone: RSS (MiB)", fmt_opt(base_rss, 1));
    s.note("per peer = (reading with N peers - publisher alone) / N; CPU in % of one core");
    let mut table = String::from(
        "N | receiving | pub CPU % | CPU %/peer | pub RSS MiB | RSS MiB/peer | rx CPU % avg | rx RSS MiB avg | rx kbit/s min/avg | rx keyframes/s avg",
    );
    for st in &steps {
        let per = |x: Option<f64>, b: Option<f64>| x.zip(b).map(|(x, b)| (x - b) / st.peers as f64);
        table.push_str(&format!(
            "\n{:>2} | {:>9} | {:>9} | {:>10} | {:>11} | {:>12} | {:>12} | {:>14} | {} / {} | {}",
            st.peers,
            st.receiving,
            fmt_opt(st.cpu, 1),
            fmt_opt(per(st.cpu, base_cpu), 2),
            fmt_opt(st.rss, 1),
            fmt_opt(per(st.rss, base_rss), 2),
            fmt_opt(avg(&st.child_cpu), 1),
            fmt_opt(avg(&st.child_rss), 1),
            fmt_opt(min(&st.kbps), 0),
            fmt_opt(avg(&st.kbps), 0),
            fmt_opt(avg(&st.keyframes), 2),
        ));
        s.row(
            format!("N={:>2}: publisher CPU % / per peer", st.peers),
            format!(
                "{} / {}",
                fmt_opt(st.cpu, 1),
                fmt_opt(per(st.cpu, base_cpu), 2)
            ),
        );
        s.row(
            format!("N={:>2}: publisher RSS MiB / per peer", st.peers),
            format!(
                "{} / {}",
                fmt_opt(st.rss, 1),
                fmt_opt(per(st.rss, base_rss), 2)
            ),
        );
    }
    s.note(format!("per-step table:\n{table}"));
    let top = |v: &[(String, f64)]| {
        v.iter()
            .take(6)
            .map(|(n, p)| format!("{n} {p:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    s.note(format!(
        "publisher CPU by thread (digits removed from names, % of a core): alone: {}",
        top(&base_threads)
    ));
    for st in &steps {
        s.note(format!("  N={}: {}", st.peers, top(&st.threads)));
    }
    s.note(format!(
        "source: MediaSource::Launch({})",
        args.source.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    s.note(
        "the publishing process also hosts the pool server (idle during the window); receivers \
         are receive-only endpoints joining over raw WebSocket and count buffers in a fakesink",
    );
    s.notes.extend(
        rx.errors
            .into_iter()
            .take(10)
            .map(|e| format!("receiver: {e}")),
    );
    s.notes.extend(hang.map(|h| format!("HANG: {h}")));
    Ok(s)
}
