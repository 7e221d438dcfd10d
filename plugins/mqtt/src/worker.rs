//! The thin adapter to rumqttc: one thread per bridge with its own tokio runtime runs the MQTT
//! connection, so no plugin callback ever waits on the network. The plugin hands it
//! [`Command`]s; it reaches the pool through [`Shared`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poolgate_plugin_api::{ChannelSpec, Host};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, QoS, StateError, Transport,
};
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::buffer::{Outbox, Pushed};
use crate::config::{Broker, Config, DropPolicy};
use crate::delivery::{Action, PoolSide};
use crate::inflight::{Inflight, Written};
use crate::loops::LoopGuard;
use crate::message::Message;
use crate::route::{presence, Publish, Router};
use crate::stale::{self, PeerTopic};

/// rumqttc's in-flight window (unacknowledged QoS 1/2 publishes).
const INFLIGHT: u16 = 100;
/// How many publishes we hand to rumqttc before it confirms them: a little more than its window,
/// so it always has the next one ready.
const HANDED_MAX: usize = 2 * INFLIGHT as usize;
/// The largest MQTT packet, both ways (data-channel messages reach 256 KiB).
const MAX_PACKET: usize = 1024 * 1024;
/// How often metrics are reported.
const METRICS_EVERY: Duration = Duration::from_millis(250);
/// How long a stopping bridge tries to deliver what it holds and say `offline`.
const GOODBYE_LIMIT: Duration = Duration::from_millis(1500);

/// What the plugin asks of the worker.
#[derive(Debug)]
pub enum Command {
    /// The endpoint joined `pool` as `endpoint`: connect (the first time).
    Start { pool: String, endpoint: String },
    /// Publish, in order, through the buffer.
    Publish(Item),
    /// Deliver what can be delivered quickly, say `offline`, disconnect, end.
    Stop,
}

/// A publish waiting for the broker.
#[derive(Debug)]
pub struct Item {
    pub publish: Publish,
    /// When the pool message arrived, for the latency metric.
    pub created: Instant,
    /// A pool message (counted in the message metrics), not a presence update.
    pub data: bool,
}

/// What the worker and the plugin's callbacks share.
pub struct Shared {
    /// Taken out when the bridge stops: nothing calls the host after that.
    pub host: Mutex<Option<Host>>,
    pub pool: Mutex<PoolSide>,
}

impl Shared {
    /// Runs `f` with the host, unless the bridge has stopped.
    pub fn with_host(&self, f: impl FnOnce(&Host)) {
        if let Some(host) = self.host.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f(host)
        }
    }

    /// Carries out what [`PoolSide`] decided.
    pub fn perform(&self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        self.with_host(|host| {
            for action in actions {
                match action {
                    Action::Send {
                        peer,
                        label,
                        message,
                    } => {
                        host.send(&peer, &label, message.as_payload());
                    }
                    Action::OpenToAll { label } => {
                        host.create_channel(None, &ChannelSpec::reliable(&label));
                    }
                }
            }
        });
    }
}

/// Starts the worker thread. The returned receiver yields once the thread has finished.
pub fn spawn(
    config: Config,
    broker: Broker,
    ca: Option<Vec<u8>>,
    router: Router,
    shared: Arc<Shared>,
) -> Result<
    (
        mpsc::UnboundedSender<Command>,
        std::sync::mpsc::Receiver<()>,
    ),
    String,
> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("mqtt-bridge".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run(config, broker, ca, router, shared, rx)),
                Err(e) => shared.with_host(|h| h.set_status(&format!("failed: tokio: {e}"))),
            }
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("cannot start the MQTT thread: {e}"))?;
    Ok((tx, done))
}

/// Operator-readable reason for a lost or refused connection (never the credentials).
fn reason(error: &ConnectionError, broker: &Broker) -> String {
    match error {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => "bad user name or password",
                ConnectReturnCode::NotAuthorized => "not authorized",
                ConnectReturnCode::BadClientId => "client id rejected",
                ConnectReturnCode::ServiceUnavailable => "service unavailable",
                ConnectReturnCode::RefusedProtocolVersion => "protocol version refused",
                ConnectReturnCode::Success => "refused",
            };
            format!("the broker refused the connection: {why}")
        }
        ConnectionError::Io(e) | ConnectionError::MqttState(StateError::Io(e)) => {
            format!("{}:{}: {e}", broker.host, broker.port)
        }
        // rumqttc's text is "I/O: invalid peer certificate: UnknownIssuer" and the like.
        ConnectionError::Tls(e) => {
            let text = e.to_string();
            let text = text.strip_prefix("I/O: ").unwrap_or(&text);
            format!("{}:{}: TLS: {text}", broker.host, broker.port)
        }
        ConnectionError::NetworkTimeout => {
            format!("{}:{}: connection timed out", broker.host, broker.port)
        }
        other => format!("{}:{}: {other}", broker.host, broker.port),
    }
}

/// TLS trusting `ca` (PEM), or the system's roots without it.
fn tls_transport(ca: Option<Vec<u8>>) -> Result<Transport, String> {
    match ca {
        Some(pem) => Ok(Transport::tls(pem, None, None)),
        // rumqttc panics when the system's roots cannot be loaded: say so instead.
        None => std::panic::catch_unwind(Transport::tls_with_default_config)
            .map_err(|_| "TLS: cannot load the system's root certificates".to_string()),
    }
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Runs rumqttc's event loop, never cancelled mid-poll, pausing after failures.
async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::UnboundedSender<Result<Event, ConnectionError>>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let event = eventloop.poll().await;
        let failed = event.is_err();
        if matches!(event, Ok(Event::Incoming(Packet::ConnAck(_)))) {
            backoff.reset();
        }
        if events.send(event).is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// A publish handed to rumqttc.
struct Tracked {
    created: Instant,
    bytes: usize,
    data: bool,
}

/// The worker's state once connected.
struct Worker {
    config: Config,
    broker: Broker,
    router: Router,
    shared: Arc<Shared>,
    pool: String,
    client: AsyncClient,
    status_topic: String,
    outbox: Outbox<Item>,
    inflight: Inflight<Tracked>,
    guard: LoopGuard,
    connected: bool,
    /// Connection part of the status (`connecting`, `connected`, `retrying: ...`).
    link: String,
    shown_status: String,
    // Metrics.
    messages_out: u64,
    bytes_out: u64,
    messages_in: u64,
    bytes_in: u64,
    republished: u64,
    loops_prevented: u64,
    unrouted: u64,
    stale_cleared: u64,
    latency_ms: Option<f64>,
}

async fn run(
    config: Config,
    broker: Broker,
    ca: Option<Vec<u8>>,
    router: Router,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut outbox = Outbox::new(config.buffer_messages, config.drop_policy);
    // Nothing is known of the pool (and so of topics and the last will) before the join.
    let (pool, endpoint) = loop {
        match commands.recv().await {
            Some(Command::Start { pool, endpoint }) => break (pool, endpoint),
            Some(Command::Publish(item)) => {
                outbox.push(item);
            }
            Some(Command::Stop) | None => return,
        }
    };
    let client_id = config.client_id.clone().unwrap_or_else(|| {
        format!(
            "poolgate-{pool}-{}",
            endpoint.chars().take(8).collect::<String>()
        )
    });
    let status_topic = presence::status_topic(&pool, &client_id);
    let mut options = MqttOptions::new(&client_id, &broker.host, broker.port);
    options
        .set_keep_alive(Duration::from_secs(config.keep_alive_seconds))
        .set_clean_session(config.clean_session)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &config.username {
        options.set_credentials(user, config.password.as_deref().unwrap_or(""));
    }
    if broker.tls {
        match tls_transport(ca) {
            Ok(transport) => {
                options.set_transport(transport);
            }
            Err(why) => {
                shared.with_host(|h| h.set_status(&format!("failed: {why}")));
                return;
            }
        }
    }
    if config.presence {
        options.set_last_will(LastWill::new(
            &status_topic,
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    }
    let (client, eventloop) = AsyncClient::new(options, HANDED_MAX + 16);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive(eventloop, events_tx));
    let filters = config
        .subscribe
        .iter()
        .map(|f| f.replace("{pool}", &pool))
        .collect();
    let mut w = Worker {
        guard: LoopGuard::new(filters),
        config,
        broker,
        router,
        shared,
        pool,
        client,
        status_topic,
        outbox,
        inflight: Inflight::default(),
        connected: false,
        link: "connecting".into(),
        shown_status: String::new(),
        messages_out: 0,
        bytes_out: 0,
        messages_in: 0,
        bytes_in: 0,
        republished: 0,
        loops_prevented: 0,
        unrouted: 0,
        stale_cleared: 0,
        latency_ms: None,
    };
    w.show_status();
    let mut tick = tokio::time::interval(METRICS_EVERY);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Publish(item)) => w.enqueue(item),
                Some(Command::Start { .. }) => {}
                Some(Command::Stop) | None => break,
            },
            Some(event) = events.recv() => w.on_event(event),
            _ = tick.tick() => w.report(),
        }
        w.pump();
    }
    // Goodbye: deliver what is held while the broker is there, then say offline.
    let deadline = tokio::time::Instant::now() + GOODBYE_LIMIT;
    while w.connected && !(w.outbox.is_empty() && w.inflight.is_empty()) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => w.on_event(event),
            _ => break,
        }
        w.pump();
    }
    if w.connected {
        if w.config.presence {
            let _ = w
                .client
                .try_publish(&w.status_topic, QoS::AtLeastOnce, true, "offline");
        }
        let _ = w.client.try_disconnect();
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
            if matches!(event, Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)) {
                break;
            }
        }
    }
    w.report();
    driver.abort();
}

impl Worker {
    fn enqueue(&mut self, item: Item) {
        let was_full = self.outbox.is_full();
        match self.outbox.push(item) {
            Pushed::Queued => {}
            Pushed::DroppedOldest(_) | Pushed::DroppedNewest(_) => {
                if !was_full || self.outbox.dropped() == 1 {
                    self.show_status();
                }
            }
        }
    }

    /// Hands buffered publishes to rumqttc while connected and under the window.
    fn pump(&mut self) {
        let was_full = self.outbox.is_full();
        while self.connected && self.inflight.len() < HANDED_MAX {
            let Some(item) = self.outbox.pop() else { break };
            let p = &item.publish;
            match self
                .client
                .try_publish(&p.topic, qos(p.qos), p.retain, p.payload.clone())
            {
                Ok(()) => {
                    self.guard.published(&p.topic, &p.payload);
                    self.inflight.handed(
                        p.qos,
                        Tracked {
                            created: item.created,
                            bytes: p.payload.len(),
                            data: item.data,
                        },
                    );
                }
                Err(_) => {
                    // rumqttc's channel is full: try again after its next event.
                    self.outbox.unpop(item);
                    break;
                }
            }
        }
        if was_full && !self.outbox.is_full() {
            self.show_status();
        }
    }

    fn on_event(&mut self, event: Result<Event, ConnectionError>) {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                self.connected = true;
                self.link = "connected".into();
                self.show_status();
                self.on_connected();
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                self.on_incoming(&p.topic, &p.payload, p.retain)
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => self.confirmed(ack.pkid),
            Ok(Event::Incoming(Packet::PubComp(comp))) => self.confirmed(comp.pkid),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => match self.inflight.written(pkid) {
                Written::Done(t) => self.count_out(t),
                Written::Replayed => self.republished += 1,
                Written::Awaiting | Written::Unknown => {}
            },
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => self.inflight.collision(pkid),
            Ok(_) => {}
            Err(e) => {
                self.connected = false;
                let why = reason(&e, &self.broker);
                self.shared
                    .with_host(|h| h.warn(&format!("MQTT connection: {why}")));
                self.link = format!("retrying: {why}");
                self.show_status();
                self.report();
            }
        }
    }

    /// Presence and subscriptions, on every (re)connection.
    fn on_connected(&mut self) {
        if self.config.presence
            && self
                .client
                .try_publish(&self.status_topic, QoS::AtLeastOnce, true, "online")
                .is_ok()
        {
            self.inflight.handed(
                1,
                Tracked {
                    created: Instant::now(),
                    bytes: 0,
                    data: false,
                },
            );
        }
        let mut filters: Vec<_> = self
            .config
            .subscribe
            .iter()
            .map(|f| {
                rumqttc::SubscribeFilter::new(f.replace("{pool}", &self.pool), qos(self.config.qos))
            })
            .collect();
        if self.config.presence {
            // The broker replays the retained peer topics: stale ones get cleared.
            filters.push(rumqttc::SubscribeFilter::new(
                stale::filter(&self.pool),
                QoS::AtLeastOnce,
            ));
        }
        if !filters.is_empty() {
            if let Err(e) = self.client.try_subscribe_many(filters) {
                self.shared
                    .with_host(|h| h.warn(&format!("cannot subscribe: {e}")));
            }
        }
    }

    fn confirmed(&mut self, pkid: u16) {
        if let Some(t) = self.inflight.acknowledged(pkid) {
            self.count_out(t);
        }
    }

    fn count_out(&mut self, t: Tracked) {
        if !t.data {
            return;
        }
        self.messages_out += 1;
        self.bytes_out += t.bytes as u64;
        let ms = t.created.elapsed().as_secs_f64() * 1000.0;
        // A moving average: recent publishes weigh most.
        self.latency_ms = Some(match self.latency_ms {
            None => ms,
            Some(avg) => avg + (ms - avg) * 0.05,
        });
    }

    fn on_incoming(&mut self, topic: &str, payload: &[u8], retained: bool) {
        if self.config.presence {
            let decision = {
                let side = self.shared.pool.lock().unwrap_or_else(|p| p.into_inner());
                stale::classify(&self.pool, topic, payload, retained, |peer| {
                    side.has_peer(peer)
                })
            };
            match decision {
                PeerTopic::NotPresence => {}
                PeerTopic::Keep => return,
                PeerTopic::Clear(peer) => {
                    // Through the buffer, so it keeps its place behind announcements.
                    self.enqueue(Item {
                        publish: Publish {
                            topic: presence::peer_topic(&self.pool, peer),
                            payload: Vec::new(),
                            qos: 1,
                            retain: true,
                        },
                        created: Instant::now(),
                        data: false,
                    });
                    self.stale_cleared += 1;
                    return;
                }
            }
        }
        if self.guard.is_echo(topic, payload) {
            self.loops_prevented += 1;
            return;
        }
        let Some(target) = self.router.incoming(&self.pool, topic) else {
            self.unrouted += 1;
            return;
        };
        self.messages_in += 1;
        self.bytes_in += payload.len() as u64;
        let actions = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .deliver(target, Message::from_mqtt(payload));
        self.shared.perform(actions);
    }

    fn show_status(&mut self) {
        let status = if self.outbox.is_full() && self.outbox.dropped() > 0 {
            let which = match self.config.drop_policy {
                DropPolicy::Oldest => "oldest",
                DropPolicy::Newest => "newest",
            };
            format!("{} (buffer full: dropping the {which} messages)", self.link)
        } else {
            self.link.clone()
        };
        if status != self.shown_status {
            self.shared.with_host(|h| h.set_status(&status));
            self.shown_status = status;
        }
    }

    fn report(&mut self) {
        self.show_status();
        let undeliverable = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .undeliverable;
        let metrics = [
            ("messages_out", self.messages_out as f64),
            ("bytes_out", self.bytes_out as f64),
            ("messages_in", self.messages_in as f64),
            ("bytes_in", self.bytes_in as f64),
            (
                "queue_depth",
                (self.outbox.len() + self.inflight.len()) as f64,
            ),
            ("dropped", self.outbox.dropped() as f64),
            ("republished", self.republished as f64),
            ("loops_prevented", self.loops_prevented as f64),
            ("unrouted", self.unrouted as f64),
            ("stale_peers_cleared", self.stale_cleared as f64),
            ("undeliverable", undeliverable as f64),
            ("connected", if self.connected { 1.0 } else { 0.0 }),
        ];
        let latency = self.latency_ms;
        self.shared.with_host(|h| {
            for (key, value) in metrics {
                h.set_metric(key, value);
            }
            if let Some(ms) = latency {
                h.set_metric("publish_latency_ms", ms);
            }
        });
    }
}
