//! rtc:peer -> connected, endpoint vs endpoint: a long-lived endpoint in this process (hosted
//! pool) publishes the VP8 test pattern; a peer endpoint in a child process joins (over raw
//! WebSocket to the same in-process pool server), connects, receives media and leaves, again
//! and again. Measured on the long-lived side from `PeerJoined` (which it emits on rtc:peer,
//! right after creating that peer's webrtcbin) to `PeerState connected`.

use std::time::{Duration, Instant};

use poolgate::endpoint::MediaSource;

use super::cycle::{self, Expect};
use super::peer_process::PeerProcess;
use super::{fmt_opt, percentile_ms, Bench, Section};

#[derive(Clone, Debug)]
pub struct ConnectArgs {
    pub joins: usize,
    pub max_time: Duration,
    /// The joining peer publishes video too (it then offers at once; receive-only, it waits
    /// for the long-lived endpoint's offer, held 1.5 s toward newcomers).
    pub joiner_video: bool,
    pub limit: Duration,
}

pub async fn run(bench: &Bench, args: &ConnectArgs) -> anyhow::Result<Section> {
    let pool = "bench-connect";
    let (mut long_lived, _) = bench.endpoint(pool, vec![MediaSource::TestVideo]).await?;
    let url = bench.ws_url();
    let spawn = |n: usize| {
        PeerProcess::spawn(
            &bench.exe,
            &format!("connect-peer-{n}"),
            &url,
            pool,
            args.joiner_video,
            &bench.scratch.join(format!("connect-peer-{n}.log")),
        )
    };
    let mut spawned = 0;
    let mut child = spawn(spawned)?;
    let expect = Expect {
        media: true,
        channel: false,
        limit: args.limit,
    };
    let started = Instant::now();
    let (mut long_side, mut child_side, mut leave) = (Vec::new(), Vec::new(), Vec::new());
    let (mut failures, mut hangs, mut not_seen_leaving) = (Vec::new(), Vec::new(), 0);
    let mut done = 0;
    while done < args.joins && started.elapsed() < args.max_time {
        let c = cycle::run(&mut long_lived, &mut child, expect, &bench.scratch).await;
        done += 1;
        long_side.extend(c.peer_to_connected);
        child_side.extend(c.joined_to_connected);
        leave.extend(c.leave_ms.map(Duration::from_millis));
        if c.peer.is_some() && !c.peer_left {
            not_seen_leaving += 1;
        }
        if let Some(f) = c.failure {
            eprintln!("bench-endpoint: connect join {done}: FAILED: {f}");
            failures.push(format!("join {done}: {f}"));
        }
        if let Some(h) = c.child_hang {
            eprintln!("bench-endpoint: connect join {done}: {h}");
            hangs.push(format!("join {done}: {h}"));
            spawned += 1;
            child = spawn(spawned)?;
        }
        if done.is_multiple_of(10) || done == args.joins {
            eprintln!(
                "bench-endpoint: connect {done}/{} joins, {:.0} s, p50 so far {} ms, {} failed",
                args.joins,
                started.elapsed().as_secs_f64(),
                fmt_opt(percentile_ms(&long_side, 50.0), 1),
                failures.len()
            );
        }
    }
    child.quit(Duration::from_secs(20)).await;
    if let Some(h) = bench
        .stop_endpoint(long_lived, "the long-lived endpoint")
        .await
    {
        hangs.push(h);
    }

    let mut s = Section::new(format!(
        "rtc:peer -> connected (endpoint vs endpoint, loopback, hosted pool): {done} joins"
    ));
    s.row("joins run", done);
    s.row("joins connected (long-lived side)", long_side.len());
    s.row("failed joins", failures.len());
    s.row("child hangs on leave", hangs.len());
    s.row("leaves not seen by the long-lived side", not_seen_leaving);
    s.row(
        "rtc:peer -> connected p50 (ms)",
        fmt_opt(percentile_ms(&long_side, 50.0), 1),
    );
    s.row(
        "rtc:peer -> connected p99 (ms)",
        fmt_opt(percentile_ms(&long_side, 99.0), 1),
    );
    s.row(
        "rtc:peer -> connected max (ms)",
        fmt_opt(percentile_ms(&long_side, 100.0), 1),
    );
    s.row(
        "joiner rtc:joined -> connected p50 (ms)",
        fmt_opt(percentile_ms(&child_side, 50.0), 1),
    );
    s.row(
        "joiner rtc:joined -> connected p99 (ms)",
        fmt_opt(percentile_ms(&child_side, 99.0), 1),
    );
    s.row(
        "joiner endpoint stop p50 (ms)",
        fmt_opt(percentile_ms(&leave, 50.0), 0),
    );
    s.row(
        "joiner endpoint stop max (ms)",
        fmt_opt(percentile_ms(&leave, 100.0), 0),
    );
    s.row(
        "wall time (s)",
        format!("{:.1}", started.elapsed().as_secs_f64()),
    );
    s.note(format!(
        "long-lived endpoint publishes MediaSource::TestVideo (640x480 VP8); the joiner {} and \
         runs in a child process, joining over raw WebSocket; a join counts when both ends \
         report connected and the joiner has received video buffers",
        if args.joiner_video {
            "publishes TestVideo too (so it offers at once)"
        } else {
            "is receive-only (so only the long-lived endpoint offers)"
        }
    ));
    if done < args.joins {
        s.note(format!(
            "stopped after {done} of {} joins: the time bound of {:?} was reached",
            args.joins, args.max_time
        ));
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
