//! The MQTT bridge plugin (`plugins/mqtt`), end to end against a real `mosquitto` on a loopback
//! port: browser messages reach subscribers byte-equal and in order; broker messages reach the
//! right pages; a broker restart loses nothing at QoS 1; bad credentials, an unreachable broker
//! and a bad template give clear statuses; presence topics follow the bridge and its peers.
//!
//! Trials named `endpoint_*` run GStreamer endpoints (the Makefile runs each in its own process).
//! The whole binary re-executes itself in a network namespace that has only `lo`.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use libtest_mimic::Trial;
use poolgate::bridge::BridgeStatus;
use poolgate::Gateway;
use poolgate_tests::browser::{repo_root, Browser};
use poolgate_tests::mqtt::{free_port, mosquitto_pub, Mosquitto, Received, Subscriber, TestCerts};
use poolgate_tests::plugins::{self, wait_bridge, PluginDir};
use poolgate_tests::scenario::{run, run_trials};
use serde_json::{json, Value};

/// Bounds for a loaded 2-core machine: they bound a hang, they measure nothing.
const CONNECT_LIMIT: Duration = Duration::from_secs(45);
const STATUS_LIMIT: Duration = Duration::from_secs(30);
const DELIVERY_LIMIT: Duration = Duration::from_secs(60);

const MQTT: &str = "poolgate_plugin_mqtt";

fn main() {
    run_trials(|| {
        vec![
            Trial::test("endpoint_mqtt_browser_messages_reach_the_broker", || {
                run(browser_to_broker())
            }),
            Trial::test("endpoint_mqtt_broker_messages_reach_browsers", || {
                run(broker_to_browsers())
            }),
            Trial::test("endpoint_mqtt_broker_restart_loses_nothing", || {
                run(broker_restart())
            }),
            Trial::test("endpoint_mqtt_bad_inputs", || run(bad_inputs())),
            Trial::test("endpoint_mqtt_presence", || run(presence())),
            Trial::test("endpoint_mqtt_tls", || run(tls())),
            Trial::test("endpoint_mqtt_buffer_full_drops", || run(buffer_full())),
        ]
    });
}

/// A gateway serving the browser-test page, with the MQTT plugin in its plugin folder and
/// `bridges` (TOML `[[bridge]]` entries) declared. Its ICE allow-list is the gateway-wide one,
/// which the bridges inherit (none lists its own): without it libnice offers no loopback
/// candidate and no page could connect, so every trial here with a page also proves that.
async fn start_gateway(dir: &PluginDir, bridges: &str) -> anyhow::Result<Gateway> {
    plugins::start_gateway(dir, "ice_local_addresses = [\"127.0.0.1\"]\n", bridges).await
}

fn connected(s: &BridgeStatus) -> bool {
    s.status == "connected" && s.endpoint.is_some()
}

fn metric(s: &BridgeStatus, key: &str) -> f64 {
    s.metrics.get(key).copied().unwrap_or(-1.0)
}

/// Opens page `page` in `b` and joins `pool`. The page opens no channel and sends no media: the
/// bridge offers (with the channels it opens), the page answers, so no offers cross. Before any
/// peer connection can exist, the page starts recording the channels its peers open
/// (`window.chans["<peer>/<label>"]`) and the text messages on them (`window.mq[label]`).
async fn join(
    b: &mut Browser,
    gateway: &Gateway,
    page: &str,
    pool: &str,
) -> anyhow::Result<String> {
    b.open(page, &format!("http://{}/harness.html", gateway.addr()))
        .await?;
    let id = b
        .eval(
            page,
            &format!(
                "harness.join({{transport: 'ws', pool: {pool:?}, media: false, channel: false}}).then((id) => {{
                   window.mq = {{}}; window.chans = {{}};
                   harness.pool.events.addEventListener('datachannel', (e) => {{
                     const ch = e.channel;
                     window.chans[e.connection + '/' + ch.label] = ch;
                     ch.addEventListener('message', (m) => {{
                       if (typeof m.data === 'string') (window.mq[ch.label] ||= []).push(m.data);
                     }});
                   }});
                   return id;
                 }})"
            ),
        )
        .await?;
    Ok(id.as_str().context("join returned no id")?.to_string())
}

/// Waits until the channel `label` the bridge opened to `page` is open there.
async fn channel_open(
    b: &mut Browser,
    page: &str,
    bridge: &str,
    label: &str,
) -> anyhow::Result<()> {
    let expr = format!(
        "(window.chans[{:?}] || {{}}).readyState || 'none'",
        format!("{bridge}/{label}")
    );
    if let Err(e) = b
        .wait_for(page, &expr, CONNECT_LIMIT, |v| v == "open")
        .await
    {
        let trace = b.eval(page, "harness.trace()").await.unwrap_or_default();
        return Err(e.context(format!("page signalling trace: {trace:#}")));
    }
    Ok(())
}

/// Message `i` of the browser's stream: every 11th is binary (not UTF-8), the rest text.
fn stream_message(i: usize) -> Vec<u8> {
    if i % 11 == 10 {
        vec![
            255,
            0,
            (i >> 8) as u8,
            (i & 255) as u8,
            128 + (i % 100) as u8,
        ]
    } else {
        format!("text {i} héllo").into_bytes()
    }
}

async fn browser_to_broker() -> anyhow::Result<()> {
    let broker = Mosquitto::start("out", None).await?;
    let sub = Subscriber::connect(broker.port(), "out-sub", true, &["poolgate/mq-out/#"]).await?;
    let dir = PluginDir::new("mqtt-out")?;
    dir.add_built(MQTT)?;
    let gateway = start_gateway(
        &dir,
        &format!(
            r#"
[[bridge]]
name = "mqtt"
plugin = "mqtt"
pool = "mq-out"
config = {{ broker = "{}", qos = 1, routes = [{{ channels = ["telemetry"] }}, {{ channels = ["alarm", "telemetry"], qos = 0, retain = true, topic_template = "poolgate/{{pool}}/alarms/{{peer}}" }}] }}
"#,
            broker.url()
        ),
    )
    .await?;
    let bridge = wait_bridge(&gateway, "mqtt", STATUS_LIMIT, connected)
        .await?
        .endpoint
        .unwrap();
    let mut b = Browser::launch().await?;
    let page = join(&mut b, &gateway, "p", "mq-out").await?;
    channel_open(&mut b, "p", &bridge, "telemetry").await?;

    // 1,000 text and 100 binary messages on the channel the bridge opened, as fast as the
    // channel takes them.
    let sent = b
        .eval(
            "p",
            &format!(
                "(async () => {{
                   const ch = window.chans[{key:?}];
                   for (let i = 0; i < 1100; i++) {{
                     if (i % 11 === 10) ch.send(new Uint8Array([255, 0, i >> 8, i & 255, 128 + (i % 100)]));
                     else ch.send(`text ${{i}} héllo`);
                     while (ch.bufferedAmount > (1 << 20)) await new Promise((r) => setTimeout(r, 5));
                   }}
                   return 1100;
                 }})()",
                key = format!("{bridge}/telemetry")
            ),
        )
        .await?;
    ensure!(sent == json!(1100), "the page sent {sent}");

    let topic = format!("poolgate/mq-out/{page}/telemetry");
    let on_topic = |got: &[Received]| -> Vec<Received> {
        got.iter().filter(|r| r.topic == topic).cloned().collect()
    };
    let got = sub
        .wait_for(
            "1,100 messages on the page's topic",
            DELIVERY_LIMIT,
            |got| on_topic(got).len() >= 1100,
        )
        .await?;
    let got = on_topic(&got);
    ensure!(got.len() == 1100, "{} messages, not 1,100", got.len());
    // The first route naming `telemetry` takes it: QoS 1, not retained.
    ensure!(
        got.iter().all(|r| r.qos == 1 && !r.retain),
        "telemetry not at QoS 1 unretained: {:?}",
        got.iter().find(|r| r.qos != 1 || r.retain)
    );
    for (i, r) in got.iter().enumerate() {
        ensure!(
            r.payload == stream_message(i),
            "message {i} is {:?}, not {:?}",
            r.payload,
            stream_message(i)
        );
    }
    // Nothing on other topics but presence.
    for r in sub.received() {
        ensure!(
            r.topic == topic
                || r.topic.starts_with("poolgate/mq-out/peers/")
                || r.topic.starts_with("poolgate/mq-out/bridges/"),
            "unexpected topic {}",
            r.topic
        );
    }
    // A channel the page opens itself (the SCTP association exists: no renegotiation) is
    // forwarded too.
    let own = "on the page's own channel";
    b.eval(
        "p",
        &format!(
            "(async () => {{
               const conn = harness.pool.connections.find((c) => c.id === {bridge:?});
               const ch = await conn.dataChannel('telemetry', {{}}, false);
               ch.send({own:?});
               return ch.label;
             }})()"
        ),
    )
    .await?;
    let got = sub
        .wait_for("the message on the page's channel", DELIVERY_LIMIT, |got| {
            on_topic(got).len() > 1100
        })
        .await?;
    let got = on_topic(&got);
    ensure!(
        got.len() == 1101 && got[1100].payload == own.as_bytes(),
        "{:?}",
        &got[1100..]
    );
    let bytes: usize = (0..1100).map(|i| stream_message(i).len()).sum::<usize>() + own.len();
    let status = wait_bridge(&gateway, "mqtt", STATUS_LIMIT, |s| {
        metric(s, "messages_out") == 1101.0
    })
    .await?;
    ensure!(metric(&status, "bytes_out") == bytes as f64, "{status:?}");
    ensure!(metric(&status, "dropped") == 0.0, "{status:?}");
    ensure!(
        status.metrics.contains_key("publish_latency_ms"),
        "{status:?}"
    );
    println!(
        "1,100 messages byte-equal and in order; publish latency (moving average) {:.1} ms",
        metric(&status, "publish_latency_ms")
    );

    // The second route: `alarm` (opened by the bridge too) goes to its own topic at QoS 0,
    // retained, so a subscriber that comes later gets it at once, marked retained.
    channel_open(&mut b, "p", &bridge, "alarm").await?;
    b.eval(
        "p",
        &format!("window.chans[{:?}].send('fire')", format!("{bridge}/alarm")),
    )
    .await?;
    let alarm_topic = format!("poolgate/mq-out/alarms/{page}");
    let got = sub
        .wait_for("the alarm", DELIVERY_LIMIT, |got| {
            got.iter().any(|r| r.topic == alarm_topic)
        })
        .await?;
    let alarm = got.iter().find(|r| r.topic == alarm_topic).unwrap();
    ensure!(
        alarm.payload == b"fire" && alarm.qos == 0,
        "alarm: {alarm:?}"
    );
    let late = Subscriber::connect(
        broker.port(),
        "out-late",
        true,
        &["poolgate/mq-out/alarms/#", "poolgate/mq-out/+/telemetry"],
    )
    .await?;
    let got = late
        .wait_for("the retained alarm", STATUS_LIMIT, |got| !got.is_empty())
        .await?;
    ensure!(
        got.len() == 1
            && got[0].topic == alarm_topic
            && got[0].payload == b"fire"
            && got[0].retain
            && got[0].qos == 0,
        "a later subscriber got {got:?}"
    );
    println!("alarm route: QoS 0, retained, on its own topic");
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

async fn broker_to_browsers() -> anyhow::Result<()> {
    let broker = Mosquitto::start("in", None).await?;
    let sub = Subscriber::connect(broker.port(), "in-sub", true, &["poolgate/mq-in/#"]).await?;
    let dir = PluginDir::new("mqtt-in")?;
    dir.add_built(MQTT)?;
    // Pool messages go to the all-peers topic the bridge subscribes to: without loop prevention
    // one message would circle (pages echo binary messages) without end.
    let gateway = start_gateway(
        &dir,
        &format!(
            r#"
[[bridge]]
name = "mqtt"
plugin = "mqtt"
pool = "mq-in"
config = {{ broker = "{}", topic_template = "poolgate/{{pool}}/to/all/{{label}}" }}
"#,
            broker.url()
        ),
    )
    .await?;
    let bridge = wait_bridge(&gateway, "mqtt", STATUS_LIMIT, connected)
        .await?
        .endpoint
        .unwrap();
    let mut b = Browser::launch().await?;
    let a = join(&mut b, &gateway, "a", "mq-in").await?;
    let b_id = join(&mut b, &gateway, "b", "mq-in").await?;
    // The bridge announces each peer once it knows it.
    for id in [&a, &b_id] {
        let topic = format!("poolgate/mq-in/peers/{id}");
        sub.wait_for("the bridge knows the page", STATUS_LIMIT, |got| {
            got.iter().any(|r| r.topic == topic)
        })
        .await?;
    }
    // The pages open no channel: the bridge opens `cmd` to every peer on its first message
    // for it, and holds messages until the channel is open.

    let port = broker.port();
    mosquitto_pub(port, "poolgate/mq-in/to/all/cmd", "hello all", false).await?;
    mosquitto_pub(port, &format!("poolgate/mq-in/to/{a}/cmd"), "only a", false).await?;
    mosquitto_pub(port, "poolgate/mq-in/to/nobody/cmd", "lost", false).await?;
    mosquitto_pub(port, "poolgate/mq-in/to/all/cmd", "end", false).await?;
    let want = |page: &str| -> Value {
        if page == "a" {
            json!(["hello all", "only a", "end"])
        } else {
            json!(["hello all", "end"])
        }
    };
    for page in ["a", "b"] {
        let got = b
            .wait_for(page, "window.mq.cmd || []", DELIVERY_LIMIT, |v| {
                v.as_array()
                    .is_some_and(|m| m.last() == Some(&json!("end")))
            })
            .await?;
        ensure!(got == want(page), "page {page} got {got}");
    }
    wait_bridge(&gateway, "mqtt", STATUS_LIMIT, |s| {
        metric(s, "messages_in") == 4.0 && metric(s, "undeliverable") == 1.0
    })
    .await?;

    // Loop prevention: page a's binary message goes to the all-peers topic, comes back to the
    // bridge once, and stops there.
    b.eval("a", &format!("harness.sendBinary({bridge:?}, [1, 2, 3])"))
        .await?;
    wait_bridge(&gateway, "mqtt", STATUS_LIMIT, |s| {
        metric(s, "loops_prevented") == 1.0
    })
    .await?;
    // A marker after it: once the pages have it, a looping message would have reached them.
    mosquitto_pub(port, "poolgate/mq-in/to/all/cmd", "marker", false).await?;
    for page in ["a", "b"] {
        b.wait_for(page, "window.mq.cmd || []", DELIVERY_LIMIT, |v| {
            v.as_array()
                .is_some_and(|m| m.last() == Some(&json!("marker")))
        })
        .await?;
        let binary = b.eval(page, "harness.binaryReceived().length").await?;
        ensure!(
            binary == json!(0),
            "page {page} got a looped message back: {binary}"
        );
    }
    let on_loop_topic = sub
        .received()
        .iter()
        .filter(|r| r.payload == [1, 2, 3])
        .count();
    ensure!(
        on_loop_topic == 1,
        "the binary message was published {on_loop_topic} times"
    );
    let status = gateway.bridges().get("mqtt")?;
    ensure!(metric(&status, "loops_prevented") == 1.0, "{status:?}");
    println!(
        "to-all and to-peer topics reached the right pages; a loop stopped after one round; \
         metrics {:?}",
        status.metrics
    );
    // A bridge that stops says `offline` and clears the retained topics of the peers it saw.
    gateway.stop().await;
    let status_topic = format!(
        "poolgate/mq-in/bridges/poolgate-mq-in-{}/status",
        &bridge[..8]
    );
    for (topic, payload) in [
        (status_topic, &b"offline"[..]),
        (format!("poolgate/mq-in/peers/{a}"), b""),
        (format!("poolgate/mq-in/peers/{b_id}"), b""),
    ] {
        sub.wait_for(&format!("{topic} = {payload:?}"), STATUS_LIMIT, |got| {
            got.iter().any(|r| r.topic == topic && r.payload == payload)
        })
        .await?;
    }
    b.quit().await?;
    Ok(())
}

async fn broker_restart() -> anyhow::Result<()> {
    const N: usize = 10_000;
    let mut broker = Mosquitto::start("restart", None).await?;
    // A persistent session: the broker keeps what arrives for the subscriber while it is away.
    let sub = Subscriber::connect(
        broker.port(),
        "restart-sub",
        false,
        &["poolgate/mq-restart/+/stream"],
    )
    .await?;
    let dir = PluginDir::new("mqtt-restart")?;
    dir.add_built(MQTT)?;
    let gateway = start_gateway(
        &dir,
        &format!(
            r#"
[[bridge]]
name = "mqtt"
plugin = "mqtt"
pool = "mq-restart"
config = {{ broker = "{}", channels = ["stream"], qos = 1, client_id = "restart-bridge" }}
"#,
            broker.url()
        ),
    )
    .await?;
    let bridge = wait_bridge(&gateway, "mqtt", STATUS_LIMIT, connected)
        .await?
        .endpoint
        .unwrap();
    let mut b = Browser::launch().await?;
    let page = join(&mut b, &gateway, "p", "mq-restart").await?;
    channel_open(&mut b, "p", &bridge, "stream").await?;
    // About 1,000 messages a second for 10 s, in the background.
    b.eval(
        "p",
        &format!(
            "window.sent = 0; (async () => {{
               const ch = window.chans[{key:?}];
               for (let i = 0; i < {N}; i++) {{
                 ch.send(String(i));
                 window.sent = i + 1;
                 if (i % 20 === 19) await new Promise((r) => setTimeout(r, 20));
               }}
             }})(); true",
            key = format!("{bridge}/stream")
        ),
    )
    .await?;
    sub.wait_for("the stream flowing", DELIVERY_LIMIT, |got| {
        got.len() >= 1000
    })
    .await?;
    broker.stop().await?;
    let stopped = tokio::time::Instant::now();
    let down = wait_bridge(&gateway, "mqtt", STATUS_LIMIT, |s| {
        s.status.starts_with("retrying: ") && metric(s, "queue_depth") > 0.0
    })
    .await?;
    println!(
        "broker down: status {:?}, queue {}",
        down.status,
        metric(&down, "queue_depth")
    );
    tokio::time::sleep_until(stopped + Duration::from_secs(5)).await;
    let during = gateway.bridges().get("mqtt")?;
    let sent_during = b.eval("p", "window.sent").await?;
    broker.restart().await?;
    wait_bridge(&gateway, "mqtt", STATUS_LIMIT, connected).await?;

    let topic = format!("poolgate/mq-restart/{page}/stream");
    let first_seen = |got: &[Received]| -> (Vec<usize>, usize, usize) {
        let mut seen = std::collections::HashSet::new();
        let mut order = Vec::new();
        let (mut duplicates, mut foreign) = (0, 0);
        for r in got {
            let n = std::str::from_utf8(&r.payload)
                .ok()
                .and_then(|t| t.parse::<usize>().ok());
            match n {
                Some(n) if r.topic == topic => {
                    if seen.insert(n) {
                        order.push(n);
                    } else {
                        duplicates += 1;
                    }
                }
                _ => foreign += 1,
            }
        }
        (order, duplicates, foreign)
    };
    let got = sub
        .wait_for("all 10,000 messages", DELIVERY_LIMIT, |got| {
            first_seen(got).0.len() >= N
        })
        .await?;
    let (order, duplicates, foreign) = first_seen(&got);
    ensure!(
        foreign == 0,
        "{foreign} messages on other topics or not numbers"
    );
    ensure!(order.len() == N, "{} distinct messages", order.len());
    if let Some(i) = (0..N).find(|&i| order[i] != i) {
        bail!(
            "out of order at position {i}: {:?}",
            &order[i.saturating_sub(3)..(i + 3).min(N)]
        );
    }
    let status = wait_bridge(&gateway, "mqtt", STATUS_LIMIT, |s| {
        metric(s, "messages_out") == N as f64
    })
    .await?;
    ensure!(metric(&status, "dropped") == 0.0, "{status:?}");
    println!(
        "broker down 5 s during a {N}-message QoS 1 stream: 0 lost, order kept; {duplicates} \
         duplicates at the subscriber; the bridge republished {} after reconnecting; {} messages \
         were queued at the broker's restart ({} sent by the page by then); status while down: {:?}",
        metric(&status, "republished"),
        metric(&during, "queue_depth"),
        sent_during,
        during.status,
    );
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

async fn bad_inputs() -> anyhow::Result<()> {
    let broker = Mosquitto::start("auth", Some(("bridge-user", "right-pass"))).await?;
    let closed = free_port()?;
    let dir = PluginDir::new("mqtt-bad")?;
    dir.add_built(MQTT)?;
    let bridge = |name: &str, config: &str| {
        format!(
            "[[bridge]]\nname = {name:?}\nplugin = \"mqtt\"\npool = \"mq-bad\"\n\
             config = {{ {config} }}\n"
        )
    };
    let url = broker.url();
    let bridges = [
        bridge(
            "good",
            &format!("broker = {url:?}, username = \"bridge-user\", password = \"right-pass\""),
        ),
        bridge(
            "wrong-password",
            &format!(
                "broker = {url:?}, username = \"bridge-user\", password = \"wrong-secret-pw\""
            ),
        ),
        bridge(
            "unreachable",
            &format!("broker = \"mqtt://127.0.0.1:{closed}\""),
        ),
        bridge(
            "bad-template",
            &format!("broker = {url:?}, topic_template = \"poolgate/{{pool}}/{{nope}}\""),
        ),
    ]
    .concat();
    let gateway = start_gateway(&dir, &bridges).await?;
    wait_bridge(&gateway, "good", STATUS_LIMIT, connected).await?;
    let refused = wait_bridge(&gateway, "wrong-password", STATUS_LIMIT, |s| {
        s.status
            .starts_with("retrying: the broker refused the connection: ")
    })
    .await?;
    let shown = serde_json::to_string(&refused)?;
    ensure!(
        !shown.contains("wrong-secret-pw"),
        "the password shows: {shown}"
    );
    ensure!(refused.config["password"] == "***", "{shown}");
    let unreachable = wait_bridge(&gateway, "unreachable", STATUS_LIMIT, |s| {
        s.status
            .starts_with(&format!("retrying: 127.0.0.1:{closed}: "))
            && s.status.contains("refused")
    })
    .await?;
    let template = wait_bridge(&gateway, "bad-template", STATUS_LIMIT, |s| {
        s.status.starts_with("failed: ")
            && s.status
                .contains("`topic_template`: unknown placeholder {nope}")
    })
    .await?;
    ensure!(template.restarts == 0, "{template:?}");
    // The gateway runs on: the good bridge is still connected, the others keep retrying.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let good = gateway.bridges().get("good")?;
    ensure!(connected(&good) && good.restarts == 0, "{good:?}");
    for name in ["wrong-password", "unreachable"] {
        let s = gateway.bridges().get(name)?;
        ensure!(
            s.status.starts_with("retrying: ") && s.restarts == 0,
            "{s:?}"
        );
    }
    println!(
        "statuses: {:?} / {:?} / {:?}",
        refused.status, unreachable.status, template.status
    );
    gateway.stop().await;
    Ok(())
}

/// The gateway as its own process, so it can be killed with SIGKILL; killed on drop.
struct GatewayProcess {
    child: tokio::process::Child,
    port: u16,
    _dir: PluginDir,
}

impl GatewayProcess {
    async fn start(bridges: &str) -> anyhow::Result<GatewayProcess> {
        let exe = repo_root().join("target/release/poolgate");
        ensure!(
            exe.is_file(),
            "{} is missing: run `make build`",
            exe.display()
        );
        let dir = PluginDir::new("mqtt-presence")?;
        dir.add_built(MQTT)?;
        let port = free_port()?;
        let file = dir.path().join("poolgate.toml");
        std::fs::write(
            &file,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndir = {:?}\n{bridges}",
                dir.path().display().to_string()
            ),
        )?;
        let child = tokio::process::Command::new(exe)
            .arg("--config")
            .arg(&file)
            .arg("run")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()?;
        Ok(GatewayProcess {
            child,
            port,
            _dir: dir,
        })
    }
}

/// A bare signalling client in `pool` (no WebRTC): enough to be a peer the bridge sees.
async fn signalling_peer(
    port: u16,
    pool: &str,
) -> anyhow::Result<(
    String,
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
)> {
    let url = format!("ws://127.0.0.1:{port}/ws");
    let deadline = tokio::time::Instant::now() + STATUS_LIMIT;
    let mut ws = loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => break ws,
            Err(e) if tokio::time::Instant::now() >= deadline => bail!("{url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let join = json!({"type": "rtc:join", "data": {"pool": pool}}).to_string();
    ws.send(join.into()).await?;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no rtc:joined")?
            .context("the gateway closed the socket")??;
        let Ok(text) = frame.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap_or_default();
        if v["type"] == "rtc:joined" {
            let id = v["data"]["client_id"].as_str().context("no client_id")?;
            return Ok((id.to_string(), ws));
        }
    }
}

async fn presence() -> anyhow::Result<()> {
    let broker = Mosquitto::start("presence", None).await?;
    let sub = Subscriber::connect(
        broker.port(),
        "presence-sub",
        true,
        &["poolgate/mq-presence/#"],
    )
    .await?;
    let status_topic = "poolgate/mq-presence/bridges/presence-bridge/status";
    let config = format!(
        r#"
[[bridge]]
name = "presence"
plugin = "mqtt"
pool = "mq-presence"
config = {{ broker = "{}", client_id = "presence-bridge", keep_alive_seconds = 5 }}
"#,
        broker.url()
    );
    let mut gateway = GatewayProcess::start(&config).await?;
    let has = |topic: &str, payload: &[u8]| {
        let (topic, payload) = (topic.to_string(), payload.to_vec());
        move |got: &[Received]| got.iter().any(|r| r.topic == topic && r.payload == payload)
    };
    sub.wait_for("online", CONNECT_LIMIT, has(status_topic, b"online"))
        .await?;
    // Retained: a subscriber that comes later gets it at once, marked retained.
    let late = Subscriber::connect(broker.port(), "late-1", true, &[status_topic]).await?;
    let got = late
        .wait_for("the retained status", STATUS_LIMIT, |g| !g.is_empty())
        .await?;
    ensure!(got[0].payload == b"online" && got[0].retain, "{got:?}");
    drop(late);

    // A peer joins, then leaves.
    let (peer, mut ws) = signalling_peer(gateway.port, "mq-presence").await?;
    let peer_topic = format!("poolgate/mq-presence/peers/{peer}");
    sub.wait_for(
        "the peer's description",
        STATUS_LIMIT,
        has(&peer_topic, b"null"),
    )
    .await?;
    let late = Subscriber::connect(broker.port(), "late-2", true, &[&peer_topic]).await?;
    let got = late
        .wait_for("the retained peer", STATUS_LIMIT, |g| !g.is_empty())
        .await?;
    ensure!(got[0].payload == b"null" && got[0].retain, "{got:?}");
    drop(late);
    ws.close(None).await?;
    sub.wait_for(
        "the peer's empty retained message",
        STATUS_LIMIT,
        has(&peer_topic, b""),
    )
    .await?;

    // A second peer is there when the gateway dies: its retained topic outlives the process.
    let (stayer, _stayer_ws) = signalling_peer(gateway.port, "mq-presence").await?;
    let stayer_topic = format!("poolgate/mq-presence/peers/{stayer}");
    sub.wait_for(
        "the second peer's description",
        STATUS_LIMIT,
        has(&stayer_topic, b"null"),
    )
    .await?;

    // kill -9: the broker publishes the last will.
    gateway.child.start_kill()?;
    let _ = tokio::time::timeout(STATUS_LIMIT, gateway.child.wait()).await;
    sub.wait_for(
        "offline (the last will)",
        CONNECT_LIMIT,
        has(status_topic, b"offline"),
    )
    .await?;
    let late =
        Subscriber::connect(broker.port(), "late-3", true, &["poolgate/mq-presence/#"]).await?;
    let got = late
        .wait_for("the retained offline", STATUS_LIMIT, |g| {
            g.iter().any(|r| r.topic == status_topic)
        })
        .await?;
    let status: Vec<_> = got.iter().filter(|r| r.topic == status_topic).collect();
    ensure!(
        status[0].payload == b"offline" && status[0].retain,
        "{got:?}"
    );
    ensure!(
        !got.iter().any(|r| r.topic == peer_topic),
        "the departed peer's topic is still retained: {got:?}"
    );
    ensure!(
        got.iter()
            .any(|r| r.topic == stayer_topic && r.payload == b"null" && r.retain),
        "the killed gateway's peer is not retained (nothing to clean): {got:?}"
    );
    drop(late);

    // The gateway comes back (its old peer is gone with the process): the bridge finds the
    // stale retained peer topic when it connects and clears it.
    drop(gateway);
    let gateway = GatewayProcess::start(&config).await?;
    sub.wait_for(
        "the stale peer topic cleared",
        CONNECT_LIMIT,
        has(&stayer_topic, b""),
    )
    .await?;
    // A peer of the new gateway keeps its topic.
    let (newcomer, _newcomer_ws) = signalling_peer(gateway.port, "mq-presence").await?;
    let newcomer_topic = format!("poolgate/mq-presence/peers/{newcomer}");
    sub.wait_for(
        "the new peer's description",
        STATUS_LIMIT,
        has(&newcomer_topic, b"null"),
    )
    .await?;
    let late = Subscriber::connect(
        broker.port(),
        "late-4",
        true,
        &["poolgate/mq-presence/peers/+"],
    )
    .await?;
    let got = late
        .wait_for("the retained new peer", STATUS_LIMIT, |g| {
            g.iter().any(|r| r.topic == newcomer_topic)
        })
        .await?;
    ensure!(
        got.iter().all(|r| r.topic == newcomer_topic && r.retain),
        "retained peer topics after the restart: {got:?}"
    );
    println!(
        "online retained, peer topic followed join and leave, last will after SIGKILL, the \
         killed gateway's stale peer topic cleared after the restart"
    );
    Ok(())
}

/// A temporary folder removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("poolgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `mqtts://` end to end: a bridge trusting the test CA (`ca_file`) carries messages both ways
/// through mosquitto's TLS listener (the subscriber and `mosquitto_pub` use the plain one, so
/// only the bridge speaks TLS); bridges trusting the system's roots or another CA are refused
/// with a status naming the certificate.
async fn tls() -> anyhow::Result<()> {
    let certs_dir = TempDir::new("mqtt-tls-certs")?;
    let certs = TestCerts::generate(&certs_dir.0.join("good"))?;
    let other = TestCerts::generate(&certs_dir.0.join("other"))?;
    let broker = Mosquitto::start_with("tls", None, Some(&certs)).await?;
    let tls_port = broker.tls_port().context("no TLS listener")?;
    let sub = Subscriber::connect(broker.port(), "tls-sub", true, &["poolgate/mq-tls/#"]).await?;
    let dir = PluginDir::new("mqtt-tls")?;
    dir.add_built(MQTT)?;
    let url = format!("mqtts://127.0.0.1:{tls_port}");
    let gateway = start_gateway(
        &dir,
        &format!(
            r#"
[[bridge]]
name = "tls"
plugin = "mqtt"
pool = "mq-tls"
config = {{ broker = "{url}", ca_file = {ca:?}, channels = ["stream"], client_id = "tls-bridge" }}

[[bridge]]
name = "system-roots"
plugin = "mqtt"
pool = "mq-tls-refused"
config = {{ broker = "{url}" }}

[[bridge]]
name = "other-ca"
plugin = "mqtt"
pool = "mq-tls-refused"
config = {{ broker = "{url}", ca_file = {other:?} }}
"#,
            ca = certs.ca.display().to_string(),
            other = other.ca.display().to_string(),
        ),
    )
    .await?;
    let bridge = wait_bridge(&gateway, "tls", STATUS_LIMIT, connected)
        .await?
        .endpoint
        .unwrap();
    let status_topic = "poolgate/mq-tls/bridges/tls-bridge/status";
    sub.wait_for("online over TLS", STATUS_LIMIT, |got| {
        got.iter()
            .any(|r| r.topic == status_topic && r.payload == b"online")
    })
    .await?;
    let mut refused = Vec::new();
    for name in ["system-roots", "other-ca"] {
        let s = wait_bridge(&gateway, name, STATUS_LIMIT, |s| {
            s.status
                .starts_with(&format!("retrying: 127.0.0.1:{tls_port}: TLS: "))
                && s.status.contains("certificate")
        })
        .await?;
        ensure!(s.restarts == 0, "{s:?}");
        refused.push(s.status);
    }

    let mut b = Browser::launch().await?;
    let page = join(&mut b, &gateway, "p", "mq-tls").await?;
    channel_open(&mut b, "p", &bridge, "stream").await?;
    b.eval(
        "p",
        &format!(
            "const ch = window.chans[{key:?}]; for (let i = 0; i < 20; i++) ch.send('tls ' + i); 20",
            key = format!("{bridge}/stream")
        ),
    )
    .await?;
    let topic = format!("poolgate/mq-tls/{page}/stream");
    let got = sub
        .wait_for("20 messages through TLS", DELIVERY_LIMIT, |got| {
            got.iter().filter(|r| r.topic == topic).count() >= 20
        })
        .await?;
    let payloads: Vec<_> = got
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| String::from_utf8_lossy(&r.payload).to_string())
        .collect();
    let expected: Vec<_> = (0..20).map(|i| format!("tls {i}")).collect();
    ensure!(payloads == expected, "{payloads:?}");
    // And back: the broker's message reaches the page through the bridge's TLS connection.
    mosquitto_pub(
        broker.port(),
        "poolgate/mq-tls/to/all/stream",
        "over tls",
        false,
    )
    .await?;
    b.wait_for("p", "window.mq.stream || []", DELIVERY_LIMIT, |v| {
        v.as_array().is_some_and(|m| m.contains(&json!("over tls")))
    })
    .await?;
    // Metrics are reported every 250 ms.
    wait_bridge(&gateway, "tls", STATUS_LIMIT, |s| {
        connected(s) && metric(s, "messages_in") == 1.0
    })
    .await?;
    println!("mqtts:// with ca_file: 20 messages out and 1 in over TLS; untrusted: {refused:?}");
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// A full buffer while the broker is down: two bridges with `buffer_messages = 50` get 80 QoS 1
/// messages each; `drop_policy = "oldest"` keeps the last 50, `"newest"` the first 50; both say
/// so in status and metrics, and once the broker is back the subscriber gets exactly the kept
/// messages, in order.
async fn buffer_full() -> anyhow::Result<()> {
    const SENT: usize = 80;
    const KEPT: usize = 50;
    let mut broker = Mosquitto::start("drop", None).await?;
    // A persistent session: the broker keeps what arrives for the subscriber across its restart.
    let sub = Subscriber::connect(broker.port(), "drop-sub", false, &["mq-drop/#"]).await?;
    let dir = PluginDir::new("mqtt-drop")?;
    dir.add_built(MQTT)?;
    let policies = ["oldest", "newest"];
    let bridges: String = policies
        .iter()
        .map(|policy| {
            format!(
                r#"
[[bridge]]
name = "{policy}"
plugin = "mqtt"
pool = "mq-drop"
config = {{ broker = "{url}", channels = ["stream"], qos = 1, buffer_messages = {KEPT}, drop_policy = "{policy}", presence = false, topic_template = "mq-drop/{policy}/{{label}}" }}
"#,
                url = broker.url()
            )
        })
        .collect();
    let gateway = start_gateway(&dir, &bridges).await?;
    let mut endpoints = Vec::new();
    for policy in policies {
        let s = wait_bridge(&gateway, policy, STATUS_LIMIT, connected).await?;
        endpoints.push(s.endpoint.unwrap());
    }
    let mut b = Browser::launch().await?;
    join(&mut b, &gateway, "p", "mq-drop").await?;
    for endpoint in &endpoints {
        channel_open(&mut b, "p", endpoint, "stream").await?;
    }
    broker.stop().await?;
    for policy in policies {
        wait_bridge(&gateway, policy, STATUS_LIMIT, |s| {
            s.status.starts_with("retrying: ")
        })
        .await?;
    }
    for endpoint in &endpoints {
        b.eval(
            "p",
            &format!(
                "const ch = window.chans[{key:?}]; for (let i = 0; i < {SENT}; i++) ch.send(String(i)); {SENT}",
                key = format!("{endpoint}/stream")
            ),
        )
        .await?;
    }
    let mut full = Vec::new();
    for policy in policies {
        let s = wait_bridge(&gateway, policy, STATUS_LIMIT, |s| {
            metric(s, "dropped") == (SENT - KEPT) as f64
                && metric(s, "queue_depth") == KEPT as f64
                && s.status.starts_with("retrying: ")
                && s.status
                    .ends_with(&format!(" (buffer full: dropping the {policy} messages)"))
        })
        .await?;
        full.push(s.status);
    }
    broker.restart().await?;
    for (policy, kept) in [("oldest", SENT - KEPT..SENT), ("newest", 0..KEPT)] {
        let s = wait_bridge(&gateway, policy, STATUS_LIMIT, |s| {
            connected(s) && metric(s, "messages_out") == KEPT as f64
        })
        .await?;
        ensure!(
            metric(&s, "dropped") == (SENT - KEPT) as f64 && metric(&s, "queue_depth") == 0.0,
            "{s:?}"
        );
        let topic = format!("mq-drop/{policy}/stream");
        let on_topic = |got: &[Received]| -> Vec<String> {
            got.iter()
                .filter(|r| r.topic == topic)
                .map(|r| String::from_utf8_lossy(&r.payload).to_string())
                .collect()
        };
        let got = sub
            .wait_for(
                &format!("{KEPT} messages on {topic}"),
                DELIVERY_LIMIT,
                |got| on_topic(got).len() >= KEPT,
            )
            .await?;
        let expected: Vec<_> = kept.map(|i| i.to_string()).collect();
        ensure!(on_topic(&got) == expected, "{policy}: {:?}", on_topic(&got));
    }
    // Nothing more arrives (no duplicate, no dropped message): the broker's retry of anything
    // left would come within this time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let total = sub.received().len();
    ensure!(
        total == 2 * KEPT,
        "{total} messages in all, not {}",
        2 * KEPT
    );
    println!(
        "buffer of {KEPT}, {SENT} sent while the broker was down: {} dropped each; statuses \
         {full:?}; after the restart the subscriber got exactly the kept {KEPT} per policy",
        SENT - KEPT
    );
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}
