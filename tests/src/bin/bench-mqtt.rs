//! `bench-mqtt`: data channel -> MQTT through the `mqtt` bridge plugin, against the floor of
//! `rumqttc` publishing directly to the same `mosquitto`, at QoS 0 and 1. Figures are printed,
//! never asserted.
//!
//! ```text
//! cargo build --release -p poolgate-tests --bin bench-mqtt -p poolgate-plugin-mqtt
//! target/release/bench-mqtt --messages 20000 --size 64
//! ```
//!
//! Each message carries its sequence number and its send time; the subscriber (in this process)
//! takes the end-to-end latency from that. Through the bridge, the sender is a poolgate managed
//! endpoint in the bridge's pool (hosted by an in-process gateway), sending on the `bench`
//! channel the bridge opens, pipelined (up to 1,024 sends outstanding), like the floor's
//! publisher. Messages per second: count over first send to last receipt. The
//! program re-executes itself in a network namespace that has only `lo`; every phase is bounded.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use poolgate::endpoint::{EndpointEvent, MediaSource, Payload};
use poolgate::signalling::SignallingTarget;
use poolgate::{Config, Gateway};
use poolgate_tests::mqtt::{Mosquitto, Received, Subscriber};
use poolgate_tests::plugins::PluginDir;
use poolgate_tests::scenario::start_endpoint_with;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::json;

/// Data channel -> MQTT throughput and latency, bridge vs rumqttc floor.
#[derive(Parser, Debug)]
#[command(name = "bench-mqtt")]
struct Cli {
    /// Messages per run.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Payload size in bytes (at least 16: sequence number and send time).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Messages per second of the paced runs (latency without queueing).
    #[arg(long, default_value_t = 2000.0)]
    paced_rate: f64,
    /// Seconds each paced run lasts.
    #[arg(long, default_value_t = 5.0)]
    paced_seconds: f64,
}

/// Messages in a paced run.
fn paced_count(cli: &Cli) -> usize {
    ((cli.paced_rate * cli.paced_seconds) as usize).max(1)
}

/// How long one run may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Sends through the bridge awaiting their result at once, at most.
const SEND_WINDOW: usize = 1024;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn payload(seq: usize, size: usize) -> Vec<u8> {
    let mut p = vec![0x5a; size.max(16)];
    p[..8].copy_from_slice(&(seq as u64).to_le_bytes());
    let sent = origin().elapsed().as_nanos() as u64;
    p[8..16].copy_from_slice(&sent.to_le_bytes());
    p
}

/// Figures of one run.
struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    lost: usize,
}

fn figures(got: &[Received], n: usize, started: Instant) -> Figures {
    let mut latencies: Vec<f64> = Vec::with_capacity(got.len());
    let mut seen = std::collections::HashSet::new();
    let mut last = started;
    for r in got {
        if r.payload.len() < 16 {
            continue;
        }
        let seq = u64::from_le_bytes(r.payload[..8].try_into().unwrap());
        let sent = u64::from_le_bytes(r.payload[8..16].try_into().unwrap());
        if !seen.insert(seq) {
            continue;
        }
        let at = r.at.duration_since(origin()).as_nanos() as u64;
        latencies.push(at.saturating_sub(sent) as f64 / 1e6);
        last = last.max(r.at);
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        latencies[((latencies.len() - 1) as f64 * p).round() as usize]
    };
    let secs = last.duration_since(started).as_secs_f64().max(1e-9);
    Figures {
        rate: seen.len() as f64 / secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        lost: n - seen.len().min(n),
    }
}

/// Waits until `n` messages came, or nothing new came for 5 s, or the run limit.
async fn collect(sub: &Subscriber, n: usize) -> Vec<Received> {
    let deadline = Instant::now() + RUN_LIMIT;
    let (mut count, mut changed) = (0, Instant::now());
    loop {
        let now = sub.count();
        if now != count {
            (count, changed) = (now, Instant::now());
        }
        if now >= n || changed.elapsed() > Duration::from_secs(5) || Instant::now() > deadline {
            return sub.received();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until message `i` is due at `rate` messages a second from `started` (`None`: at once).
async fn pace(rate: Option<f64>, started: Instant, i: usize) {
    if let Some(rate) = rate {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// A name for the run: QoS and pacing.
fn run_tag(qos: u8, rate: Option<f64>) -> String {
    match rate {
        None => format!("q{qos}"),
        Some(r) => format!("q{qos}-paced{r:.0}"),
    }
}

async fn floor(
    broker: &Mosquitto,
    qos: QoS,
    n: usize,
    size: usize,
    rate: Option<f64>,
) -> anyhow::Result<Figures> {
    let tag = run_tag(qos as u8, rate);
    let topic = format!("bench/floor/{tag}");
    let sub =
        Subscriber::connect(broker.port(), &format!("floor-sub-{tag}"), true, &[&topic]).await?;
    let mut options = MqttOptions::new(format!("floor-pub-{tag}"), "127.0.0.1", broker.port());
    options
        .set_inflight(100)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let driver = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let started = Instant::now();
    for i in 0..n {
        pace(rate, started, i).await;
        client.publish(&topic, qos, false, payload(i, size)).await?;
    }
    let got = collect(&sub, n).await;
    driver.abort();
    Ok(figures(&got, n, started))
}

async fn bridge(
    broker: &Mosquitto,
    qos: u8,
    n: usize,
    size: usize,
    rate: Option<f64>,
) -> anyhow::Result<Figures> {
    let tag = run_tag(qos, rate);
    let pool = format!("bench-{tag}");
    let sub = Subscriber::connect(
        broker.port(),
        &format!("bridge-sub-{tag}"),
        true,
        &[&format!("poolgate/{pool}/+/bench")],
    )
    .await?;
    let dir = PluginDir::new(&format!("bench-mqtt-{tag}"))?;
    dir.add_built("poolgate_plugin_mqtt")?;
    let config = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[plugins]\ndir = {:?}\n",
        dir.path().display().to_string()
    ))
    .map_err(anyhow::Error::msg)?;
    let gateway = Gateway::start(&config).await?;
    let spec = serde_json::from_value(json!({
        "name": "mqtt", "plugin": "mqtt", "pool": pool,
        "ice_local_addresses": ["127.0.0.1"],
        "config": {"broker": broker.url(), "channels": ["bench"], "qos": qos, "presence": false},
    }))?;
    gateway.bridges().create(spec)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let bridge_id = loop {
        let s = gateway.bridges().get("mqtt")?;
        if s.status == "connected" {
            if let Some(id) = s.endpoint {
                break id;
            }
        }
        if Instant::now() > deadline {
            bail!("the bridge is still {s:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut endpoint, _) = start_endpoint_with(
        SignallingTarget::Hosted(gateway.pools().clone()),
        &pool,
        Vec::<MediaSource>::new(),
    )
    .await?;
    let handle = endpoint.handle();
    let peer = loop {
        let event = tokio::time::timeout(Duration::from_secs(45), endpoint.next_event())
            .await
            .context("the bridge's channel did not open")?
            .context("the endpoint stopped")?;
        if let EndpointEvent::ChannelOpen { peer, label } = event {
            if label == "bench" && peer.to_string() == bridge_id {
                break peer;
            }
        }
    };
    let pump = tokio::spawn(async move { while endpoint.next_event().await.is_some() {} });
    // Right after it opened, the channel sometimes refuses a first message: wait until it takes
    // one (a warm-up message the subscriber ignores: it is shorter than 16 bytes).
    let ready = Instant::now() + Duration::from_secs(10);
    while !handle
        .send(peer, "bench", Payload::Binary(b"warm-up".to_vec()))
        .await
    {
        if Instant::now() > ready {
            bail!("the endpoint cannot send on the bridge's channel");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Pipelined: each send reaches the endpoint's command queue when first polled (at once,
    // so in order), and only the oldest of at most SEND_WINDOW outstanding sends is awaited.
    // The sender thus goes as fast as the endpoint hands messages to the data channel.
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        pace(rate, started, i).await;
        let mut send = Box::pin(handle.send(peer, "bench", Payload::Binary(payload(i, size))));
        if let std::task::Poll::Ready(sent) = futures_util::poll!(send.as_mut()) {
            if !sent {
                bail!("the endpoint could not send message {i}");
            }
            continue;
        }
        pending.push_back((i, send));
        if pending.len() >= SEND_WINDOW {
            let (i, send) = pending.pop_front().expect("not empty");
            if !send.await {
                bail!("the endpoint could not send message {i}");
            }
        }
        if started.elapsed() > RUN_LIMIT {
            bail!("sending {n} messages took over {RUN_LIMIT:?}");
        }
    }
    for (i, send) in pending {
        if !send.await {
            bail!("the endpoint could not send message {i}");
        }
    }
    let sent_in = started.elapsed();
    let got = collect(&sub, n).await;
    eprintln!(
        "QoS {qos}: the endpoint took {n} messages in {:.2} s ({:.0} msg/s)",
        sent_in.as_secs_f64(),
        n as f64 / sent_in.as_secs_f64().max(1e-9)
    );
    pump.abort();
    gateway.stop().await;
    Ok(figures(&got, n, started))
}

fn main() -> anyhow::Result<()> {
    poolgate_tests::namespace::enter_loopback_only();
    let cli = Cli::parse();
    origin();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let broker = Mosquitto::start("bench", None).await?;
        let (n, size) = (cli.messages, cli.size.max(16));
        println!("bench-mqtt: {n} messages of {size} bytes per run, mosquitto on loopback");
        println!(
            "load average at start: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        println!(
            "burst: every message sent at once (throughput; latency is mostly queueing); \
             paced: {} msg/s for {} messages (latency)",
            cli.paced_rate,
            paced_count(&cli)
        );
        println!(
            "{:<36} {:>12} {:>10} {:>10} {:>8}",
            "path", "msgs/s", "p50 ms", "p99 ms", "lost"
        );
        let paced = Some(cli.paced_rate);
        for (qos, level) in [(QoS::AtMostOnce, 0u8), (QoS::AtLeastOnce, 1)] {
            for (mode, rate, count) in [("burst", None, n), ("paced", paced, paced_count(&cli))] {
                eprintln!("QoS {level} {mode}: rumqttc floor...");
                let f = floor(&broker, qos, count, size, rate).await?;
                eprintln!("QoS {level} {mode}: through the bridge...");
                let b = bridge(&broker, level, count, size, rate).await?;
                for (name, x) in [
                    (format!("rumqttc direct, QoS {level}, {mode}"), &f),
                    (format!("bridge, QoS {level}, {mode}"), &b),
                ] {
                    println!(
                        "{name:<36} {:>12.0} {:>10.2} {:>10.2} {:>8}",
                        x.rate, x.p50_ms, x.p99_ms, x.lost
                    );
                }
                println!(
                    "{:<36} {:>11.2}x {:>9.2}x {:>9.2}x",
                    format!("bridge / floor, QoS {level}, {mode}"),
                    b.rate / f.rate,
                    b.p50_ms / f.p50_ms,
                    b.p99_ms / f.p99_ms
                );
            }
        }
        Ok(())
    })
}
