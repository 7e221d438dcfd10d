//! Memory over join/leave churn: one long-lived endpoint in this process publishes the VP8 test
//! pattern and opens a data channel to every peer; a peer endpoint in a child process joins,
//! connects (video both ways, the channel open), and leaves, cycle after cycle. This process's
//! RSS after 10 cycles is compared with its RSS after the last cycle. Each reading is taken
//! twice: as is, and after glibc's `malloc_trim` (memory still in use, without what the
//! allocator keeps cached). The pipeline's element count is read too: it must not grow.

use std::time::{Duration, Instant};

use gstreamer::prelude::GstBinExtManual;
use poolgate::endpoint::{ChannelSpec, ChannelTarget, Endpoint, MediaSource};

use super::cycle::{self, Expect};
use super::peer_process::PeerProcess;
use super::procstat::{self, rss_mib};
use super::{fmt_opt, Bench, Section};

#[derive(Clone, Debug)]
pub struct ChurnArgs {
    pub cycles: usize,
    /// The early reading the last one is compared with.
    pub baseline_cycle: usize,
    pub max_time: Duration,
    pub joiner_video: bool,
    pub limit: Duration,
}

/// One memory reading.
#[derive(Clone, Copy, Debug)]
struct Sample {
    cycle: usize,
    rss: Option<f64>,
    rss_trimmed: Option<f64>,
    elements: usize,
    child_rss: Option<f64>,
    fds: Option<usize>,
}

async fn sample(cycle: usize, long_lived: &Endpoint, child_pid: u32) -> Sample {
    // Let the teardown of the last peer finish before reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let me = std::process::id();
    let rss = rss_mib(me);
    procstat::trim_heap();
    Sample {
        cycle,
        rss,
        rss_trimmed: rss_mib(me),
        elements: long_lived.pipeline().children().len(),
        child_rss: rss_mib(child_pid),
        fds: procstat::open_fds(me),
    }
}

fn growth(from: Option<f64>, to: Option<f64>) -> String {
    match (from, to) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:+.1} %", 100.0 * (b - a) / a),
        _ => "-".into(),
    }
}

pub async fn run(bench: &Bench, args: &ChurnArgs) -> anyhow::Result<Section> {
    let pool = "bench-churn";
    let (mut long_lived, _) = bench.endpoint(pool, vec![MediaSource::TestVideo]).await?;
    long_lived
        .handle()
        .create_channel(ChannelSpec::reliable("churn"), ChannelTarget::All);
    let url = bench.ws_url();
    let spawn = |n: usize| {
        PeerProcess::spawn(
            &bench.exe,
            &format!("churn-peer-{n}"),
            &url,
            pool,
            args.joiner_video,
            &bench.scratch.join(format!("churn-peer-{n}.log")),
        )
    };
    let mut spawned = 0;
    let mut child = spawn(spawned)?;
    let expect = Expect {
        media: true,
        channel: true,
        limit: args.limit,
    };
    let started = Instant::now();
    let before = sample(0, &long_lived, child.pid).await;
    eprintln!(
        "bench-endpoint: churn: before any join: RSS {} MiB, {} elements",
        fmt_opt(before.rss, 1),
        before.elements
    );
    let mut samples = vec![before];
    let mut baseline: Option<Sample> = None;
    let (mut failures, mut hangs, mut done, mut not_seen_leaving) = (Vec::new(), Vec::new(), 0, 0);
    let mut per_cycle = Vec::new();
    while done < args.cycles && started.elapsed() < args.max_time {
        let t = Instant::now();
        let c = cycle::run(&mut long_lived, &mut child, expect, &bench.scratch).await;
        per_cycle.push(t.elapsed());
        done += 1;
        if c.peer.is_some() && !c.peer_left {
            not_seen_leaving += 1;
        }
        if let Some(f) = c.failure {
            eprintln!("bench-endpoint: churn cycle {done}: FAILED: {f}");
            failures.push(format!("cycle {done}: {f}"));
        }
        if let Some(h) = c.child_hang {
            eprintln!("bench-endpoint: churn cycle {done}: {h}");
            hangs.push(format!("cycle {done}: {h}"));
            spawned += 1;
            child = spawn(spawned)?;
        }
        if done == args.baseline_cycle {
            let s = sample(done, &long_lived, child.pid).await;
            baseline = Some(s);
            samples.push(s);
        } else if done.is_multiple_of(100) {
            samples.push(sample(done, &long_lived, child.pid).await);
        }
        if done.is_multiple_of(25) {
            eprintln!(
                "bench-endpoint: churn {done}/{} cycles, {:.0} s, RSS {} MiB, {} fds, {} elements, {} failed",
                args.cycles,
                started.elapsed().as_secs_f64(),
                fmt_opt(rss_mib(std::process::id()), 1),
                procstat::open_fds(std::process::id()).unwrap_or(0),
                long_lived.pipeline().children().len(),
                failures.len()
            );
        }
    }
    // A reading taken at the last cycle already is the last one: a second reading right
    // after its trim would show less than was resident after that many cycles.
    let last = match samples.last() {
        Some(s) if s.cycle == done => *s,
        _ => {
            let s = sample(done, &long_lived, child.pid).await;
            samples.push(s);
            s
        }
    };
    let child_pid = child.pid;
    child.quit(Duration::from_secs(20)).await;
    if let Some(h) = bench
        .stop_endpoint(long_lived, "the long-lived endpoint")
        .await
    {
        hangs.push(h);
    }

    let mut s = Section::new(format!(
        "memory over join/leave churn: {done} cycles against one long-lived endpoint"
    ));
    s.row("cycles run", done);
    s.row("failed cycles", failures.len());
    s.row("child hangs on leave", hangs.len());
    s.row("leaves not seen by the long-lived side", not_seen_leaving);
    s.row(
        "cycle time p50 (ms)",
        fmt_opt(super::percentile_ms(&per_cycle, 50.0), 0),
    );
    s.row(
        "wall time (s)",
        format!("{:.0}", started.elapsed().as_secs_f64()),
    );
    let base = baseline.unwrap_or(before);
    s.row(
        format!("RSS after {} cycles (MiB)", base.cycle),
        fmt_opt(base.rss, 1),
    );
    s.row(
        format!("RSS after {done} cycles (MiB)"),
        fmt_opt(last.rss, 1),
    );
    s.row(
        format!("RSS growth {} -> {done}", base.cycle),
        growth(base.rss, last.rss),
    );
    s.row(
        format!("RSS after trim, {} cycles (MiB)", base.cycle),
        fmt_opt(base.rss_trimmed, 1),
    );
    s.row(
        format!("RSS after trim, {done} cycles (MiB)"),
        fmt_opt(last.rss_trimmed, 1),
    );
    s.row(
        format!("trimmed RSS growth {} -> {done}", base.cycle),
        growth(base.rss_trimmed, last.rss_trimmed),
    );
    s.row(
        format!("pipeline elements: 0 / {} / {done} cycles", base.cycle),
        format!(
            "{} / {} / {}",
            before.elements, base.elements, last.elements
        ),
    );
    s.row(
        format!("open file descriptors: 0 / {} / {done} cycles", base.cycle),
        format!(
            "{} / {} / {}",
            fmt_opt(before.fds.map(|n| n as f64), 0),
            fmt_opt(base.fds.map(|n| n as f64), 0),
            fmt_opt(last.fds.map(|n| n as f64), 0)
        ),
    );
    s.row(
        "VmHWM of this process (MiB)",
        fmt_opt(procstat::hwm_mib(std::process::id()), 1),
    );
    s.row(
        format!(
            "joiner process RSS after {} / {done} cycles (MiB)",
            base.cycle
        ),
        format!(
            "{} / {}",
            fmt_opt(base.child_rss, 1),
            fmt_opt(last.child_rss, 1)
        ),
    );
    let trend: Vec<String> = samples
        .iter()
        .map(|x| format!("{}:{}", x.cycle, fmt_opt(x.rss_trimmed, 1)))
        .collect();
    s.note(format!("trimmed RSS by cycle (MiB): {}", trend.join(" ")));
    let rss_trend: Vec<String> = samples
        .iter()
        .map(|x| format!("{}:{}", x.cycle, fmt_opt(x.rss, 1)))
        .collect();
    s.note(format!("RSS by cycle (MiB): {}", rss_trend.join(" ")));
    let child_trend: Vec<String> = samples
        .iter()
        .map(|x| format!("{}:{}", x.cycle, fmt_opt(x.child_rss, 1)))
        .collect();
    s.note(format!(
        "joiner process RSS by cycle (MiB): {}",
        child_trend.join(" ")
    ));
    s.note(format!(
        "the joiner (pid {child_pid}, {}) starts and stops a fresh endpoint in the same child \
         process every cycle, so its RSS shows what endpoint start/stop leaves behind",
        if args.joiner_video {
            "publishing TestVideo"
        } else {
            "receive-only"
        }
    ));
    if done < args.cycles {
        s.note(format!(
            "stopped after {done} of {} cycles: the time bound of {:?} was reached",
            args.cycles, args.max_time
        ));
    }
    if done < args.baseline_cycle {
        s.note("fewer cycles than the baseline: compared with the reading before any join");
    }
    s.notes.extend(
        failures
            .into_iter()
            .take(10)
            .map(|f| format!("failure: {f}")),
    );
    s.notes
        .extend(hangs.into_iter().map(|h| format!("HANG: {h}")));
    Ok(s)
}
