//! One join/leave cycle of a child peer against the long-lived in-process endpoint: the child
//! joins, both ends connect, media (and optionally a data channel) arrives at the child, the
//! child leaves and the long-lived endpoint sees it go. Shared by [`super::connect`] and
//! [`super::churn`].

use std::time::Duration;

use poolgate::endpoint::{Endpoint, EndpointEvent};
use tokio::time::Instant;

use super::hang;
use super::peer_process::{PeerProcess, Report, LEAVE_LIMIT};

/// What one cycle needs to count as complete.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// The child receives media buffers from the long-lived endpoint.
    pub media: bool,
    /// The child sees a data channel open.
    pub channel: bool,
    /// Bound on join -> complete.
    pub limit: Duration,
}

/// What one cycle measured.
#[derive(Debug, Default)]
pub struct Cycle {
    /// The joiner's id, as the long-lived endpoint learnt it from rtc:peer.
    pub peer: Option<String>,
    /// Long-lived endpoint: `PeerJoined` (rtc:peer) -> `PeerState connected`.
    pub peer_to_connected: Option<Duration>,
    /// Child: `Joined` (rtc:joined) -> `PeerState connected`.
    pub joined_to_connected: Option<Duration>,
    /// Child: `Joined` -> first media buffer reported (1 s reporting granularity).
    pub media_seen: bool,
    pub channel_open: bool,
    /// Why the cycle is not complete, if it is not.
    pub failure: Option<String>,
    /// The child took longer than [`LEAVE_LIMIT`] to stop its endpoint: backtrace file and
    /// excerpt. The caller replaces the child.
    pub child_hang: Option<String>,
    /// How long the child's endpoint took to stop.
    pub leave_ms: Option<u64>,
    /// The long-lived endpoint saw the peer leave.
    pub peer_left: bool,
}

/// Runs one cycle. `scratch` receives backtraces of hangs.
pub async fn run(
    long_lived: &mut Endpoint,
    child: &mut PeerProcess,
    expect: Expect,
    scratch: &std::path::Path,
) -> Cycle {
    let mut c = Cycle::default();
    // Drop what is left of the previous cycle.
    let _ = child.pending_reports();
    if let Err(e) = child.command("join").await {
        c.failure = Some(format!("{e:#}"));
        return c;
    }
    let deadline = Instant::now() + expect.limit;
    let mut peer_joined_at = None;
    let mut child_joined_at = None;
    let mut child_connected = false;
    let mut child_id = None;
    loop {
        let complete = c.peer_to_connected.is_some()
            && child_connected
            && (!expect.media || c.media_seen)
            && (!expect.channel || c.channel_open);
        if complete {
            break;
        }
        tokio::select! {
            event = long_lived.next_event() => match event {
                Some(EndpointEvent::PeerJoined { id, .. }) if c.peer.is_none() => {
                    c.peer = Some(id.to_string());
                    peer_joined_at = Some(Instant::now());
                }
                Some(EndpointEvent::PeerState { id, state }) if c.peer.as_deref() == Some(&id.to_string()) => {
                    if state == "connected" && c.peer_to_connected.is_none() {
                        c.peer_to_connected = peer_joined_at.map(|t| t.elapsed());
                    } else if state == "failed" {
                        c.failure.get_or_insert(format!("the long-lived endpoint's connection to {id} failed"));
                    }
                }
                Some(EndpointEvent::Stopped { reason }) => {
                    c.failure = Some(format!("the long-lived endpoint stopped: {reason}"));
                    return c;
                }
                None => {
                    c.failure = Some("the long-lived endpoint's events ended".into());
                    return c;
                }
                Some(_) => {}
            },
            report = child.next_report(deadline) => match report {
                Some(Report::Joined { id }) => {
                    child_joined_at = Some(Instant::now());
                    child_id = Some(id);
                }
                Some(Report::PeerState { state, .. }) if state == "connected" => {
                    if !child_connected {
                        child_connected = true;
                        c.joined_to_connected = child_joined_at.map(|t| t.elapsed());
                    }
                }
                Some(Report::Received { buffers, .. }) if buffers > 0 => c.media_seen = true,
                Some(Report::ChannelOpen { .. }) => c.channel_open = true,
                Some(Report::Error { message }) => {
                    c.failure = Some(format!("child: {message}"));
                    break;
                }
                Some(Report::Stopped { reason }) => {
                    c.failure = Some(format!("child endpoint stopped: {reason}"));
                    break;
                }
                Some(_) => {}
                None => {
                    if Instant::now() >= deadline {
                        c.failure = Some(format!(
                            "not complete within {:?}: long-lived saw peer {:?}, connected {}; child joined as {:?}, connected {}, media {}, channel {}",
                            expect.limit, c.peer, c.peer_to_connected.is_some(), child_id,
                            child_connected, c.media_seen, c.channel_open
                        ));
                    } else {
                        c.failure = Some("the child's output ended (it exited)".into());
                    }
                    break;
                }
            },
        }
    }
    leave(long_lived, child, &mut c, scratch).await;
    c
}

/// Tells the child to leave and waits (bounded) for it to stop and for the long-lived endpoint
/// to see the peer go.
async fn leave(
    long_lived: &mut Endpoint,
    child: &mut PeerProcess,
    c: &mut Cycle,
    scratch: &std::path::Path,
) {
    if child.command("leave").await.is_err() {
        return;
    }
    let deadline = Instant::now() + LEAVE_LIMIT;
    // A child that never joined has nobody to be seen leaving.
    let mut want_left = c.peer.is_some();
    loop {
        if c.leave_ms.is_some() && !want_left {
            return;
        }
        tokio::select! {
            event = long_lived.next_event() => match event {
                Some(EndpointEvent::PeerLeft { id }) if c.peer.as_deref() == Some(&id.to_string()) => {
                    c.peer_left = true;
                    want_left = false;
                }
                // A joiner the long-lived endpoint saw only now (after the cycle gave up).
                Some(EndpointEvent::PeerJoined { id, .. }) if c.peer.is_none() => {
                    c.peer = Some(id.to_string());
                    want_left = true;
                }
                None | Some(EndpointEvent::Stopped { .. }) => return,
                Some(_) => {}
            },
            report = child.next_report(deadline) => match report {
                Some(Report::Left { ms }) => c.leave_ms = Some(ms),
                Some(_) => {}
                None => break,
            },
        }
    }
    if c.leave_ms.is_none() && child.is_running() {
        let what = format!(
            "child {} (pid {}) did not stop its endpoint within {LEAVE_LIMIT:?}",
            child.name, child.pid
        );
        eprintln!("bench-endpoint: HANG: {what}; capturing backtraces with gdb");
        c.child_hang = Some(match hang::capture(child.pid, scratch, &what) {
            Some(bt) => format!(
                "{what}; backtrace in {}:\n{}",
                bt.file.display(),
                bt.excerpt
            ),
            None => what,
        });
    } else if want_left {
        c.failure.get_or_insert(format!(
            "the long-lived endpoint did not see peer {:?} leave within {LEAVE_LIMIT:?}",
            c.peer
        ));
    }
}
