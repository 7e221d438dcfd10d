//! A signalling load for ssp v2 servers (see `shared/ssp-v2.md`), spoken over raw WebSocket.
//!
//! Many clients join pools (`rtc:join`), wait until every member of their pool has joined, send
//! routed `rtc:sdp` and `rtc:candidate` messages to their pool peers, count what the server
//! routes back, then leave by closing their sockets. [`run`] drives one server; the
//! `bench-signalling` program runs it against poolgate and the reference server and compares.
//!
//! Everything is bounded: connects are retried a fixed number of times, each phase has its own
//! time bound, and every bound is capped by the overall deadline the caller passes. When a bound
//! is hit the phase stops, the report says which bound it was, and the next phases go on with
//! whatever clients are left, so a broken server yields a report rather than a hang.
//!
//! The load never sends anything but well-formed JSON objects: the reference server (`pyrtc`)
//! stops serving after a single non-JSON frame.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures_util::future::join_all;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async_with_config, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A plausible (data-channel only) offer: routed messages should carry a realistic payload.
const OFFER_SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:bNch\r\na=ice-pwd:benchmarkbenchmarkbenchm\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 5B:3A:0C:9E:41:77:D2:18:6F:AA:02:C4:93:E1:5D:08:B6:7C:21:F0:3E:99:\
4D:65:A8:12:CE:70:1B:DF:84:36\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n\
a=max-message-size:262144\r\n";

const CANDIDATE: &str = "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host";

/// The shape and bounds of one load run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Number of WebSocket clients.
    pub clients: usize,
    /// Clients per pool (the last pool gets the remainder).
    pub pool_size: usize,
    /// `rtc:sdp` messages each client sends, spread over its peers.
    pub sdp_per_client: usize,
    /// `rtc:candidate` messages each client sends, spread over its peers.
    pub candidates_per_client: usize,
    /// How many clients may be connecting and joining at once.
    pub connect_concurrency: usize,
    /// A connect (TCP + WebSocket upgrade) that has not opened by then is abandoned and retried.
    pub connect_attempt_timeout: Duration,
    /// Connect attempts per client, the first included.
    pub connect_attempts: usize,
    /// Bound on the wait for `rtc:joined` after sending `rtc:join`.
    pub join_timeout: Duration,
    /// Bound on the whole connect-and-join phase.
    pub join_phase_timeout: Duration,
    /// Bound on waiting until every client knows every member of its pool.
    pub peers_timeout: Duration,
    /// Bound on the routing phase (from the first send until every message has arrived).
    pub route_timeout: Duration,
    /// Bound on the leave phase (sending close frames).
    pub close_timeout: Duration,
    /// Pool names are `<prefix>-<index>`.
    pub pool_prefix: String,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            clients: 1000,
            pool_size: 10,
            sdp_per_client: 10,
            candidates_per_client: 20,
            connect_concurrency: 50,
            connect_attempt_timeout: Duration::from_millis(1500),
            connect_attempts: 10,
            join_timeout: Duration::from_secs(10),
            join_phase_timeout: Duration::from_secs(60),
            peers_timeout: Duration::from_secs(10),
            route_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            pool_prefix: "bench".to_string(),
        }
    }
}

impl LoadConfig {
    /// Number of pools the clients are spread over.
    pub fn pools(&self) -> usize {
        self.clients.div_ceil(self.pool_size.max(1))
    }

    /// Routed messages the run sends when every client joins.
    pub fn planned_messages(&self) -> u64 {
        (self.clients * (self.sdp_per_client + self.candidates_per_client)) as u64
    }

    fn planned_members(&self, pool: usize) -> usize {
        self.pool_size
            .min(self.clients.saturating_sub(pool * self.pool_size))
    }
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Clients whose WebSocket opened.
    pub connected: usize,
    /// Connect attempts beyond each client's first.
    pub connect_retries: usize,
    /// Of the failed attempts: how many did not open in time, and how many failed outright.
    pub connect_attempt_timeouts: usize,
    pub connect_attempt_errors: usize,
    /// Clients that received `rtc:joined`.
    pub joined: usize,
    /// Time from sending `rtc:join` to receiving `rtc:joined`, sorted ascending.
    pub join_latencies: Vec<Duration>,
    /// First few connect or join failures, for the log.
    pub failures: Vec<String>,
    /// Pools whose planned members all joined and all saw each other.
    pub pools_complete: usize,
    /// Number of pools.
    pub pools: usize,
    /// Routed messages written successfully by the clients (the expected deliveries).
    pub sent: u64,
    /// Routed messages delivered (`rtc:sdp` with `peer`, `rtc:candidate` with `from`).
    pub received: u64,
    /// Delivered routed messages whose sender is not a known member of the receiver's pool.
    pub foreign: u64,
    /// Time from the first send to the last routed message received.
    pub route_elapsed: Option<Duration>,
    /// `rtc:error` events received, and the first one's text.
    pub errors: u64,
    pub error_sample: Option<String>,
    /// Sockets the server closed before the clients left.
    pub disconnected_early: usize,
    /// Wall time of the connect-and-join phase and of the leave phase.
    pub join_phase: Duration,
    pub leave_phase: Duration,
    /// Bounds that were hit, in order.
    pub timeouts: Vec<String>,
}

impl LoadReport {
    /// Nearest-rank percentile of the join latency, in milliseconds.
    pub fn join_percentile_ms(&self, p: f64) -> Option<f64> {
        let n = self.join_latencies.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let d = self.join_latencies[rank.clamp(1, n) - 1];
        Some(d.as_secs_f64() * 1000.0)
    }

    /// Routed messages delivered per second, from the first send to the last receive.
    pub fn routed_per_sec(&self) -> Option<f64> {
        let secs = self.route_elapsed?.as_secs_f64();
        (secs > 0.0).then(|| self.received as f64 / secs)
    }

    /// Expected (successfully sent) minus delivered routed messages.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// Counters shared by every client's reader task.
struct Shared {
    base: Instant,
    routed: AtomicU64,
    /// Nanoseconds since `base` of the last routed message received, 0 when none was.
    last_routed_nanos: AtomicU64,
    foreign: AtomicU64,
    errors: AtomicU64,
    error_sample: Mutex<Option<String>>,
    retries: AtomicUsize,
    attempt_timeouts: AtomicUsize,
    attempt_errors: AtomicUsize,
    closing: AtomicBool,
    disconnected_early: AtomicUsize,
}

impl Shared {
    fn record_error(&self, text: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut sample = self.error_sample.lock().unwrap();
        if sample.is_none() {
            *sample = Some(text);
        }
    }
}

/// Aborts the reader task when the client is dropped, so no socket outlives the run.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Client {
    pool: usize,
    id: String,
    sink: SplitSink<Ws, Message>,
    /// Ids of the other members of the pool, as learned from `rtc:joined` and `rtc:peer`.
    peers: watch::Receiver<Vec<String>>,
    _reader: AbortOnDrop,
}

/// Runs the load against the raw WebSocket ssp endpoint at `url` (a `ws://127.0.0.1:...` URL).
///
/// Every phase stops at its own bound or at `deadline`, whichever is first.
pub async fn run(url: &str, cfg: &LoadConfig, deadline: tokio::time::Instant) -> LoadReport {
    let shared = Arc::new(Shared {
        base: Instant::now(),
        routed: AtomicU64::new(0),
        last_routed_nanos: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_sample: Mutex::new(None),
        retries: AtomicUsize::new(0),
        attempt_timeouts: AtomicUsize::new(0),
        attempt_errors: AtomicUsize::new(0),
        closing: AtomicBool::new(false),
        disconnected_early: AtomicUsize::new(0),
    });
    let mut report = LoadReport {
        pools: cfg.pools(),
        ..LoadReport::default()
    };
    let bound = |d: Duration| deadline.min(tokio::time::Instant::now() + d);

    // Phase 1: connect and join, `connect_concurrency` clients at a time.
    let started = Instant::now();
    let mut clients = connect_and_join_all(
        url,
        cfg,
        &shared,
        bound(cfg.join_phase_timeout),
        &mut report,
    )
    .await;
    report.join_phase = started.elapsed();
    report.connect_retries = shared.retries.load(Ordering::Relaxed);
    report.connect_attempt_timeouts = shared.attempt_timeouts.load(Ordering::Relaxed);
    report.connect_attempt_errors = shared.attempt_errors.load(Ordering::Relaxed);
    report.join_latencies.sort();

    // Phase 2: wait until every client knows every member of its pool that joined.
    let mut joined_per_pool = vec![0usize; report.pools];
    for c in &clients {
        joined_per_pool[c.pool] += 1;
    }
    let peers_deadline = bound(cfg.peers_timeout);
    let ready = join_all(clients.iter().map(|c| {
        let want = joined_per_pool[c.pool] - 1;
        let mut rx = c.peers.clone();
        async move {
            matches!(
                timeout_at(peers_deadline, rx.wait_for(|v| v.len() >= want)).await,
                Ok(Ok(_))
            )
        }
    }))
    .await;
    let mut pool_ready: Vec<bool> = (0..report.pools)
        .map(|p| joined_per_pool[p] == cfg.planned_members(p) && joined_per_pool[p] > 0)
        .collect();
    for (c, ok) in clients.iter().zip(&ready) {
        pool_ready[c.pool] &= *ok;
    }
    report.pools_complete = pool_ready.iter().filter(|r| **r).count();
    if ready.iter().any(|ok| !ok) {
        report.timeouts.push(format!(
            "waiting for pool members ({} of {} clients did not learn all their peers)",
            ready.iter().filter(|ok| !**ok).count(),
            ready.len()
        ));
    }

    // Phase 3: everyone sends at once; count deliveries until all arrived or the bound passes.
    let route_deadline = bound(cfg.route_timeout);
    let route_start = Instant::now();
    let mut senders = JoinSet::new();
    for mut client in clients.drain(..) {
        let cfg = cfg.clone();
        senders.spawn(async move {
            let peers = client.peers.borrow().clone();
            let messages = routed_messages(&cfg, &client.id, &peers);
            let n = messages.len() as u64;
            let mut result = Ok(());
            for m in messages {
                if let Err(e) = client.sink.feed(m).await {
                    result = Err(e);
                    break;
                }
            }
            if result.is_ok() {
                result = client.sink.flush().await;
            }
            (client, result.map(|_| n))
        });
    }
    let mut send_failures = 0usize;
    loop {
        match timeout_at(route_deadline, senders.join_next()).await {
            Ok(Some(Ok((client, Ok(n))))) => {
                report.sent += n;
                clients.push(client);
            }
            Ok(Some(Ok((client, Err(e))))) => {
                send_failures += 1;
                note_failure(
                    &mut report,
                    format!("client {} send failed: {e}", client.id),
                );
                clients.push(client);
            }
            Ok(Some(Err(e))) => {
                send_failures += 1;
                note_failure(&mut report, format!("send task failed: {e}"));
            }
            Ok(None) => break,
            Err(_) => {
                report.timeouts.push(format!(
                    "sending ({} clients had not finished writing)",
                    senders.len()
                ));
                senders.abort_all();
                break;
            }
        }
    }
    if send_failures > 0 {
        report
            .timeouts
            .push(format!("{send_failures} clients could not send"));
    }
    while shared.routed.load(Ordering::Acquire) < report.sent {
        if tokio::time::Instant::now() >= route_deadline {
            report.timeouts.push(format!(
                "routing ({} of {} messages delivered within the bound)",
                shared.routed.load(Ordering::Acquire),
                report.sent
            ));
            break;
        }
        sleep(Duration::from_millis(5)).await;
    }
    report.received = shared.routed.load(Ordering::Acquire);
    report.foreign = shared.foreign.load(Ordering::Relaxed);
    let last = shared.last_routed_nanos.load(Ordering::Acquire);
    if last > 0 {
        let last_at = shared.base + Duration::from_nanos(last);
        report.route_elapsed = Some(last_at.saturating_duration_since(route_start));
    }

    // Phase 4: everyone leaves.
    shared.closing.store(true, Ordering::Release);
    report.disconnected_early = shared.disconnected_early.load(Ordering::Relaxed);
    let leave_started = Instant::now();
    let close_deadline = bound(cfg.close_timeout);
    let closed = join_all(
        clients
            .iter_mut()
            .map(|c| timeout_at(close_deadline, c.sink.close())),
    )
    .await;
    if closed.iter().any(|r| r.is_err()) {
        report
            .timeouts
            .push("leaving (close frames not written in time)".to_string());
    }
    drop(clients);
    report.leave_phase = leave_started.elapsed();

    report.errors = shared.errors.load(Ordering::Relaxed);
    report.error_sample = shared.error_sample.lock().unwrap().clone();
    report
}

fn note_failure(report: &mut LoadReport, text: String) {
    if report.failures.len() < 5 {
        report.failures.push(text);
    }
}

async fn connect_and_join_all(
    url: &str,
    cfg: &LoadConfig,
    shared: &Arc<Shared>,
    phase_deadline: tokio::time::Instant,
    report: &mut LoadReport,
) -> Vec<Client> {
    let permits = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..cfg.clients {
        let (url, cfg, shared, permits) = (
            url.to_string(),
            cfg.clone(),
            shared.clone(),
            permits.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            connect_and_join(&url, &cfg, &shared, i).await
        });
    }
    let mut clients = Vec::with_capacity(cfg.clients);
    loop {
        match timeout_at(phase_deadline, tasks.join_next()).await {
            Ok(Some(Ok(Ok((client, latency))))) => {
                report.connected += 1;
                report.joined += 1;
                report.join_latencies.push(latency);
                clients.push(client);
            }
            Ok(Some(Ok(Err(JoinError { connected, error })))) => {
                report.connected += usize::from(connected);
                note_failure(report, format!("{error:#}"));
            }
            Ok(Some(Err(e))) => note_failure(report, format!("join task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                report.timeouts.push(format!(
                    "connect and join ({} clients still pending)",
                    tasks.len()
                ));
                tasks.abort_all();
                break;
            }
        }
    }
    clients
}

struct JoinError {
    connected: bool,
    error: anyhow::Error,
}

async fn connect_and_join(
    url: &str,
    cfg: &LoadConfig,
    shared: &Arc<Shared>,
    index: usize,
) -> Result<(Client, Duration), JoinError> {
    let ws = connect_with_retry(url, cfg, shared)
        .await
        .map_err(|error| JoinError {
            connected: false,
            error: error.context(format!("client {index}: connect")),
        })?;
    let fail = |error: anyhow::Error| JoinError {
        connected: true,
        error: error.context(format!("client {index}: join")),
    };
    let (mut sink, stream) = ws.split();
    let (joined_tx, joined_rx) = oneshot::channel();
    let (peers_tx, peers_rx) = watch::channel(Vec::new());
    let reader = AbortOnDrop(tokio::spawn(read_loop(
        stream,
        shared.clone(),
        joined_tx,
        peers_tx,
    )));
    let pool = index / cfg.pool_size.max(1);
    let join = json!({"type": "rtc:join", "data": {"pool": format!("{}-{pool}", cfg.pool_prefix)}});
    let sent_at = Instant::now();
    sink.send(Message::text(join.to_string()))
        .await
        .map_err(|e| fail(e.into()))?;
    let (joined_at, id) = match timeout(cfg.join_timeout, joined_rx).await {
        Ok(Ok(joined)) => joined,
        Ok(Err(_)) => return Err(fail(anyhow!("socket closed before rtc:joined"))),
        Err(_) => return Err(fail(anyhow!("no rtc:joined within {:?}", cfg.join_timeout))),
    };
    let client = Client {
        pool,
        id,
        sink,
        peers: peers_rx,
        _reader: reader,
    };
    Ok((client, joined_at.saturating_duration_since(sent_at)))
}

/// Opens the WebSocket, retrying an attempt that fails or does not open within the attempt
/// timeout (pyrtc's accept loop now and then drops a connection whose upgrade arrives late).
async fn connect_with_retry(url: &str, cfg: &LoadConfig, shared: &Shared) -> anyhow::Result<Ws> {
    let mut last_error = anyhow!("no connect attempt made");
    for attempt in 0..cfg.connect_attempts.max(1) {
        if attempt > 0 {
            shared.retries.fetch_add(1, Ordering::Relaxed);
            sleep(Duration::from_millis(20 * attempt as u64)).await;
        }
        match timeout(
            cfg.connect_attempt_timeout,
            connect_async_with_config(url, None, true),
        )
        .await
        {
            Ok(Ok((ws, _response))) => return Ok(ws),
            Ok(Err(e)) => {
                shared.attempt_errors.fetch_add(1, Ordering::Relaxed);
                last_error = anyhow!(e)
            }
            Err(_) => {
                shared.attempt_timeouts.fetch_add(1, Ordering::Relaxed);
                last_error = anyhow!("did not open within {:?}", cfg.connect_attempt_timeout)
            }
        }
    }
    Err(last_error).context(format!("{} attempts", cfg.connect_attempts.max(1)))
}

/// Reads every event the server sends to one client until the socket closes.
async fn read_loop(
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    joined_tx: oneshot::Sender<(Instant, String)>,
    peers_tx: watch::Sender<Vec<String>>,
) {
    let mut joined_tx = Some(joined_tx);
    let mut own_id: Option<String> = None;
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let now = Instant::now();
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            shared.record_error(format!(
                "non-JSON frame from the server: {:.120}",
                text.as_str()
            ));
            continue;
        };
        let data = &event["data"];
        match event["type"].as_str() {
            Some("rtc:joined") => {
                let Some(id) = data["client_id"].as_str() else {
                    shared.record_error(format!("rtc:joined without client_id: {data}"));
                    continue;
                };
                let peers = data["peers"].as_array().cloned().unwrap_or_default();
                peers_tx.send_modify(|known| {
                    for p in peers.iter().filter_map(Value::as_str) {
                        if p != id && !known.iter().any(|k| k == p) {
                            known.push(p.to_string());
                        }
                    }
                });
                own_id = Some(id.to_string());
                if let Some(tx) = joined_tx.take() {
                    let _ = tx.send((now, id.to_string()));
                }
            }
            Some("rtc:peer") => {
                if let Some(p) = data["id"].as_str() {
                    if own_id.as_deref() != Some(p) {
                        peers_tx.send_if_modified(|known| {
                            let new = !known.iter().any(|k| k == p);
                            if new {
                                known.push(p.to_string());
                            }
                            new
                        });
                    }
                }
            }
            Some(kind @ ("rtc:sdp" | "rtc:candidate")) => {
                let key = if kind == "rtc:sdp" { "peer" } else { "from" };
                match data[key].as_str() {
                    Some(sender) => {
                        let nanos = now.saturating_duration_since(shared.base).as_nanos() as u64;
                        shared
                            .last_routed_nanos
                            .fetch_max(nanos.max(1), Ordering::AcqRel);
                        shared.routed.fetch_add(1, Ordering::AcqRel);
                        if !peers_tx.borrow().iter().any(|p| p == sender) {
                            shared.foreign.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => shared.record_error(format!("{kind} without `{key}`: {data}")),
                }
            }
            Some("rtc:error") => shared.record_error(format!("rtc:error {data}")),
            _ => {}
        }
    }
    if !shared.closing.load(Ordering::Acquire) {
        shared.disconnected_early.fetch_add(1, Ordering::Relaxed);
    }
}

/// The routed messages one client sends: offers and candidates interleaved the way a trickling
/// client sends them (an offer to a peer, then its candidates for that peer), round-robin over
/// its peers. A client without peers sends nothing.
fn routed_messages(cfg: &LoadConfig, own_id: &str, peers: &[String]) -> Vec<Message> {
    if peers.is_empty() {
        return Vec::new();
    }
    let (s, c) = (cfg.sdp_per_client, cfg.candidates_per_client);
    let mut out = Vec::with_capacity(s + c);
    let (mut next_sdp, mut next_cand) = (0usize, 0usize);
    // Merge the two sequences by their position in [0, 1): sdp j at j/s, candidate k at k/c.
    while next_sdp < s || next_cand < c {
        let sdp_first = next_cand >= c || (next_sdp < s && next_sdp * c <= next_cand * s);
        if sdp_first {
            let to = &peers[next_sdp % peers.len()];
            let m = json!({"type": "rtc:sdp", "data": {
                "to": to,
                "description": {"type": "offer", "sdp": OFFER_SDP},
            }});
            out.push(Message::text(m.to_string()));
            next_sdp += 1;
        } else {
            // The candidate belongs to the offer sent at the same point of the sequence.
            let offer = if s == 0 { next_cand } else { next_cand * s / c };
            let to = &peers[offer % peers.len()];
            let m = json!({"type": "rtc:candidate", "data": {
                "for": to,
                "from": own_id,
                "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0},
            }});
            out.push(Message::text(m.to_string()));
            next_cand += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(m: &Message) -> Value {
        serde_json::from_str(m.to_text().unwrap()).unwrap()
    }

    #[test]
    fn messages_interleave_offers_and_their_candidates() {
        let cfg = LoadConfig::default();
        let peers: Vec<String> = (0..9).map(|i| format!("p{i}")).collect();
        let msgs: Vec<Value> = routed_messages(&cfg, "me", &peers)
            .iter()
            .map(parse)
            .collect();
        assert_eq!(msgs.len(), 30);
        let kinds: Vec<&str> = msgs.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(
            &kinds[..6],
            [
                "rtc:sdp",
                "rtc:candidate",
                "rtc:candidate",
                "rtc:sdp",
                "rtc:candidate",
                "rtc:candidate"
            ]
        );
        assert_eq!(msgs.iter().filter(|m| m["type"] == "rtc:sdp").count(), 10);
        // Each offer's two candidates go to the offer's target.
        for chunk in msgs.chunks(3) {
            let to = &chunk[0]["data"]["to"];
            assert_eq!(&chunk[1]["data"]["for"], to);
            assert_eq!(&chunk[2]["data"]["for"], to);
            assert_eq!(chunk[1]["data"]["from"], "me");
        }
        // Offers go round-robin: the tenth wraps to the first peer.
        assert_eq!(msgs[27]["data"]["to"], "p0");
    }

    #[test]
    fn no_peers_no_messages() {
        assert!(routed_messages(&LoadConfig::default(), "me", &[]).is_empty());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let report = LoadReport {
            join_latencies: (1..=100).map(Duration::from_millis).collect(),
            ..LoadReport::default()
        };
        assert_eq!(report.join_percentile_ms(50.0), Some(50.0));
        assert_eq!(report.join_percentile_ms(99.0), Some(99.0));
        assert_eq!(LoadReport::default().join_percentile_ms(50.0), None);
    }

    #[test]
    fn last_pool_gets_the_remainder() {
        let cfg = LoadConfig {
            clients: 25,
            ..LoadConfig::default()
        };
        assert_eq!(cfg.pools(), 3);
        assert_eq!(cfg.planned_members(2), 5);
        assert_eq!(cfg.planned_members(0), 10);
    }
}
