//! The glare soak: two in-process endpoints open a data channel to each other at the same
//! instant, so both offer at once, round after round.
//!
//! Only a peer connection's *first* data channel makes webrtcbin renegotiate (later channels
//! ride the SCTP association already there), so each round uses a fresh peer connection: the
//! pair's second endpoint B joins anew (and is the polite side, having joined later), both
//! let the join settle (neither publishes media, so neither offers on its own), then both
//! call `create_channel` back to back. A round converges when both report the peer connected and
//! both channels open on both sides, and a text message crosses each channel; it fails if that
//! does not happen within the bound. Whether the two offers really collided is read from the
//! negotiation's own log: the impolite A ignoring B's offer, or the polite B dropping,
//! abandoning or rebuilding away its own.
//!
//! Several pairs run at once (each in its own pool) to fit many rounds in the time bound.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use poolgate::endpoint::{ChannelSpec, ChannelTarget, Endpoint, EndpointEvent, Payload};
use poolgate::signalling::EndpointId;
use tokio::time::Instant;

use super::{fmt_opt, percentile_ms, Bench, Section};

#[derive(Clone, Debug)]
pub struct GlareArgs {
    pub rounds: usize,
    pub pairs: usize,
    pub max_time: Duration,
    /// Bound on create_channel -> converged.
    pub limit: Duration,
    /// Wait after the join before colliding.
    pub settle: Duration,
}

/// Log kinds that show a collision on the impolite side (A, about B) ...
const IMPOLITE_COLLISION: &[&str] = &["RemoteOfferIgnored"];
/// ... and on the polite side (B, about A).
const POLITE_COLLISION: &[&str] = &[
    "CreatedOfferDropped",
    "UnsentOfferAbandoned",
    "Rebuild:OfferCollision",
];

/// Every rebuild reason, for the rebuilds a round cost.
const REBUILDS: &[&str] = &[
    "Rebuild:OfferCollision",
    "Rebuild:RemoteTransportChange",
    "Rebuild:IceRestart",
    "Rebuild:OperationFailed",
    "Rebuild:RemoteOfferWithdrawn",
];

/// Shared results of all pairs.
#[derive(Default)]
struct Tally {
    converge: Vec<Duration>,
    failures: Vec<String>,
    hangs: Vec<String>,
    /// Rounds whose offers collided, by what the polite side did.
    collided: usize,
    not_collided: usize,
    polite_action: BTreeMap<String, usize>,
    done: usize,
    /// Per round: webrtcbin rebuilds on both sides, and offer/answer exchanges completed.
    rebuilds: Vec<u64>,
    exchanges: Vec<u64>,
}

pub async fn run(bench: &Bench, args: &GlareArgs) -> anyhow::Result<Section> {
    let claimed = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let totals_before = bench.log.totals();
    let pairs = (0..args.pairs.max(1)).map(|p| pair(bench, args, p, &claimed, &tally, started));
    let results = futures_util::future::join_all(pairs).await;
    let mut setup_errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    let t = tally.into_inner().unwrap_or_else(|p| p.into_inner());

    let mut s = Section::new(format!(
        "glare soak: {} rounds of simultaneous create_channel, {} pairs at once",
        t.done, args.pairs
    ));
    s.row("rounds run", t.done);
    s.row("rounds converged", t.converge.len());
    s.row("FAILURES (not converged / no message)", t.failures.len());
    s.row("rounds where the offers collided", t.collided);
    s.row("rounds without a collision", t.not_collided);
    for (action, n) in &t.polite_action {
        s.row(format!("  polite side: {action}"), n);
    }
    s.row(
        "converge p50 (ms)",
        fmt_opt(percentile_ms(&t.converge, 50.0), 1),
    );
    s.row(
        "converge p99 (ms)",
        fmt_opt(percentile_ms(&t.converge, 99.0), 1),
    );
    s.row(
        "converge max (ms)",
        fmt_opt(percentile_ms(&t.converge, 100.0), 1),
    );
    let spread = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        let at = |p: f64| {
            v.get(((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1)
                .map_or("-".to_string(), |x| x.to_string())
        };
        format!("{} / {} / {}", at(50.0), at(99.0), at(100.0))
    };
    s.row(
        "rebuilds per round, both sides p50/p99/max",
        spread(&t.rebuilds),
    );
    s.row("exchanges per round p50/p99/max", spread(&t.exchanges));
    s.row("in-process endpoint stop hangs", t.hangs.len());
    s.row(
        "open file descriptors at the end",
        fmt_opt(
            super::procstat::open_fds(std::process::id()).map(|n| n as f64),
            0,
        ),
    );
    s.row(
        "wall time (s)",
        format!("{:.0}", started.elapsed().as_secs_f64()),
    );
    let before: BTreeMap<String, u64> = totals_before.into_iter().collect();
    let deltas: Vec<String> = bench
        .log
        .totals()
        .into_iter()
        .map(|(k, n)| (n - before.get(&k).copied().unwrap_or(0), k))
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{k} {n}"))
        .collect();
    s.note(format!(
        "negotiation log counts during the soak: {}",
        deltas.join(", ")
    ));
    s.note(
        "both endpoints receive-only (no media); converge = create_channel on both -> both \
         connected and both channels open on both sides; then a message crosses each channel",
    );
    if t.done < args.rounds {
        s.note(format!(
            "stopped after {} of {} rounds: the time bound of {:?} was reached",
            t.done, args.rounds, args.max_time
        ));
    }
    s.notes.append(&mut setup_errors);
    s.notes
        .extend(t.failures.iter().take(10).map(|f| format!("failure: {f}")));
    s.notes.extend(t.hangs.iter().map(|h| format!("HANG: {h}")));
    Ok(s)
}

/// One pair's rounds, until the shared round count or the time bound is reached.
async fn pair(
    bench: &Bench,
    args: &GlareArgs,
    index: usize,
    claimed: &AtomicUsize,
    tally: &Mutex<Tally>,
    started: Instant,
) -> anyhow::Result<()> {
    let pool = format!("bench-glare-{index}");
    let (mut a, a_id) = bench.endpoint(&pool, Vec::new()).await?;
    loop {
        if started.elapsed() >= args.max_time {
            break;
        }
        let round = claimed.fetch_add(1, Ordering::SeqCst);
        if round >= args.rounds {
            break;
        }
        let outcome = one_round(bench, args, &pool, round, &mut a, a_id).await;
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        t.done += 1;
        match outcome.converged {
            Some(d) if outcome.failure.is_none() => t.converge.push(d),
            _ => {}
        }
        if let Some(f) = outcome.failure {
            eprintln!("bench-endpoint: glare round {round}: FAILED: {f}");
            t.failures.push(format!("round {round} (pool {pool}): {f}"));
        }
        t.hangs.extend(outcome.hang);
        t.rebuilds.extend(outcome.rebuilds);
        t.exchanges.extend(outcome.exchanges);
        match outcome.collision {
            Some(action) => {
                t.collided += 1;
                *t.polite_action.entry(action).or_default() += 1;
            }
            None => t.not_collided += 1,
        }
        if t.done.is_multiple_of(50) {
            eprintln!(
                "bench-endpoint: glare {}/{} rounds, {:.0} s, {} collided, {} failed, p50 {} ms, {} fds open",
                t.done,
                args.rounds,
                started.elapsed().as_secs_f64(),
                t.collided,
                t.failures.len(),
                fmt_opt(percentile_ms(&t.converge, 50.0), 1),
                super::procstat::open_fds(std::process::id()).unwrap_or(0)
            );
        }
    }
    if let Some(h) = bench
        .stop_endpoint(a, &format!("glare endpoint A of {pool}"))
        .await
    {
        tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hangs
            .push(h);
    }
    Ok(())
}

#[derive(Default)]
struct Outcome {
    converged: Option<Duration>,
    failure: Option<String>,
    hang: Option<String>,
    /// What the polite side did, when the offers collided.
    collision: Option<String>,
    rebuilds: Option<u64>,
    exchanges: Option<u64>,
}

/// What each side has seen of the round.
#[derive(Default, Debug)]
struct Seen {
    connected: bool,
    /// Labels open toward the other side.
    open: Vec<String>,
    messages: Vec<String>,
    left: bool,
    stopped: Option<String>,
}

impl Seen {
    fn on(&mut self, event: Option<EndpointEvent>, other: EndpointId) {
        match event {
            Some(EndpointEvent::PeerState { id, state }) if id == other => {
                self.connected = state == "connected";
            }
            Some(EndpointEvent::ChannelOpen { peer, label }) if peer == other => {
                self.open.push(label)
            }
            Some(EndpointEvent::Message { peer, label, .. }) if peer == other => {
                self.messages.push(label)
            }
            Some(EndpointEvent::PeerLeft { id }) if id == other => self.left = true,
            Some(EndpointEvent::Stopped { reason }) => self.stopped = Some(reason),
            None => self.stopped = Some("event stream ended".into()),
            Some(_) => {}
        }
    }

    fn has(&self, labels: &[&str]) -> bool {
        labels.iter().all(|l| self.open.iter().any(|o| o == l))
    }
}

/// Reads both endpoints' events until `done` holds or `deadline` passes; false on timeout or
/// when either endpoint stopped.
async fn watch(
    a: &mut Endpoint,
    b: &mut Endpoint,
    (a_id, b_id): (EndpointId, EndpointId),
    seen: &mut (Seen, Seen),
    deadline: Instant,
    done: impl Fn(&(Seen, Seen)) -> bool,
) -> bool {
    loop {
        if done(seen) {
            return true;
        }
        if seen.0.stopped.is_some() || seen.1.stopped.is_some() {
            return false;
        }
        tokio::select! {
            e = a.next_event() => seen.0.on(e, b_id),
            e = b.next_event() => seen.1.on(e, a_id),
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

async fn one_round(
    bench: &Bench,
    args: &GlareArgs,
    pool: &str,
    round: usize,
    a: &mut Endpoint,
    a_id: EndpointId,
) -> Outcome {
    let mut out = Outcome::default();
    let (mut b, b_id) = match bench.endpoint(pool, Vec::new()).await {
        Ok(x) => x,
        Err(e) => {
            out.failure = Some(format!("B could not join: {e:#}"));
            return out;
        }
    };
    // A learns of B (rtc:peer); with no media and no channel, neither offers yet.
    let mut seen = (Seen::default(), Seen::default());
    let joined_by = Instant::now() + super::JOIN_LIMIT;
    let mut a_knows_b = false;
    while !a_knows_b {
        tokio::select! {
            e = a.next_event() => match e {
                Some(EndpointEvent::PeerJoined { id, .. }) if id == b_id => a_knows_b = true,
                e => seen.0.on(e, b_id),
            },
            e = b.next_event() => seen.1.on(e, a_id),
            _ = tokio::time::sleep_until(joined_by) => break,
        }
    }
    if !a_knows_b {
        out.failure = Some("A never saw B join".into());
    } else {
        tokio::time::sleep(args.settle).await;
        let (a_key, b_key) = (b_id.to_string(), a_id.to_string());
        let count = |key: &str, kinds: &[&str]| -> Vec<u64> {
            kinds.iter().map(|k| bench.log.count(key, k)).collect()
        };
        let (impolite_before, polite_before) = (
            count(&a_key, IMPOLITE_COLLISION),
            count(&b_key, POLITE_COLLISION),
        );
        let sum = |v: Vec<u64>| v.into_iter().sum::<u64>();
        let rebuilds_now = || sum(count(&a_key, REBUILDS)) + sum(count(&b_key, REBUILDS));
        let exchanges_now = || sum(count(&a_key, &["ExchangeCompleted"]));
        let (rebuilds_before, exchanges_before) = (rebuilds_now(), exchanges_now());

        let (la, lb) = (format!("a{round}"), format!("b{round}"));
        let t0 = Instant::now();
        a.handle()
            .create_channel(ChannelSpec::reliable(&la), ChannelTarget::Peer(b_id));
        b.handle()
            .create_channel(ChannelSpec::reliable(&lb), ChannelTarget::Peer(a_id));
        let labels = [la.as_str(), lb.as_str()];
        let converged = watch(
            a,
            &mut b,
            (a_id, b_id),
            &mut seen,
            t0 + args.limit,
            |(sa, sb)| sa.connected && sb.connected && sa.has(&labels) && sb.has(&labels),
        )
        .await;
        if converged {
            out.converged = Some(t0.elapsed());
            let (ha, hb) = (a.handle(), b.handle());
            let sent_a = ha
                .send(b_id, &la, Payload::Text(format!("ping {la}")))
                .await;
            let sent_b = hb
                .send(a_id, &lb, Payload::Text(format!("ping {lb}")))
                .await;
            let delivered = sent_a
                && sent_b
                && watch(
                    a,
                    &mut b,
                    (a_id, b_id),
                    &mut seen,
                    Instant::now() + Duration::from_secs(10),
                    |(sa, sb)| sa.messages.contains(&lb) && sb.messages.contains(&la),
                )
                .await;
            if !delivered {
                out.failure = Some(format!(
                    "converged, but a message did not cross (sent by A {sent_a}, by B {sent_b}; \
                     A got {:?}, B got {:?})",
                    seen.0.messages, seen.1.messages
                ));
            }
        } else {
            out.failure = Some(format!(
                "not converged within {:?}: A {:?}; B {:?}",
                args.limit, seen.0, seen.1
            ));
        }
        out.rebuilds = Some(rebuilds_now() - rebuilds_before);
        out.exchanges = Some(exchanges_now() - exchanges_before);
        let impolite_after = count(&a_key, IMPOLITE_COLLISION);
        let polite_after = count(&b_key, POLITE_COLLISION);
        let polite: Vec<&str> = POLITE_COLLISION
            .iter()
            .zip(polite_before.iter().zip(&polite_after))
            .filter(|(_, (x, y))| y > x)
            .map(|(k, _)| *k)
            .collect();
        let impolite_saw = impolite_after
            .iter()
            .zip(&impolite_before)
            .any(|(y, x)| y > x);
        if impolite_saw || !polite.is_empty() {
            out.collision = Some(if polite.is_empty() {
                "(impolite side only ignored an offer)".to_string()
            } else {
                polite.join("+")
            });
        }
    }

    out.hang = bench
        .stop_endpoint(b, &format!("glare endpoint B of {pool}, round {round}"))
        .await;
    // A sees B go before the next round starts.
    let left_by = Instant::now() + Duration::from_secs(10);
    while !seen.0.left && seen.0.stopped.is_none() {
        tokio::select! {
            e = a.next_event() => seen.0.on(e, b_id),
            _ = tokio::time::sleep_until(left_by) => {
                out.failure.get_or_insert("A did not see B leave within 10 s".into());
                break;
            }
        }
    }
    out
}
