//! The MQTT bridge: data-channel messages from a pool's peers are published to an MQTT broker,
//! and messages on subscribed topics are sent into the pool, to one peer or to all.
//!
//! The logic is a sans-IO core ([`template`], [`route`], [`buffer`], [`inflight`], [`loops`],
//! [`delivery`]); [`worker`] is the thin rumqttc adapter, on its own thread so that no plugin
//! callback waits on the network.

pub mod backoff;
pub mod buffer;
pub mod config;
pub mod delivery;
pub mod inflight;
pub mod loops;
pub mod message;
pub mod route;
pub mod stale;
pub mod template;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use poolgate_plugin_api::{export_plugin, ChannelSpec, Event, Host, Payload, Plugin};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;
use crate::delivery::PoolSide;
use crate::message::Message;
use crate::route::{presence, Publish, Router, Sender};
use crate::worker::{Command, Item, Shared};

/// How long `stop` waits for the worker to deliver what it holds and say `offline`.
const STOP_LIMIT: Duration = Duration::from_secs(2);

/// One running MQTT bridge.
pub struct Mqtt {
    shared: Arc<Shared>,
    commands: UnboundedSender<Command>,
    done: std::sync::mpsc::Receiver<()>,
    router: Router,
    presence: bool,
    pool: Option<String>,
    invalid_topics: u64,
}

impl Plugin for Mqtt {
    const NAME: &'static str = "mqtt";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "bridges data channels to and from an MQTT broker";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        config.validate().map(|_| ())
    }

    fn start(host: Host, config: Config) -> Result<Self, String> {
        let (broker, templates) = config.validate()?;
        let ca = config.ca_file.as_deref().map(config::read_ca).transpose()?;
        let router = Router::new(templates);
        host.set_status("connecting");
        let mut pool = PoolSide::default();
        // Our channels to every peer (now and later joiners), so a page gets them without
        // opening any; channels the peers open are forwarded too.
        for label in router.own_channels() {
            host.create_channel(None, &ChannelSpec::reliable(label));
            pool.opened(label);
        }
        let shared = Arc::new(Shared {
            host: Mutex::new(Some(host)),
            pool: Mutex::new(pool),
        });
        let presence = config.presence;
        let (commands, done) = worker::spawn(config, broker, ca, router.clone(), shared.clone())?;
        Ok(Mqtt {
            shared,
            commands,
            done,
            router,
            presence,
            pool: None,
            invalid_topics: 0,
        })
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Joined { id, pool, .. } => {
                if self.pool.is_some() {
                    self.side().rejoined();
                }
                self.shared
                    .with_host(|h| h.info(&format!("joined pool {pool} as {id}")));
                self.pool = Some(pool.clone());
                let _ = self.commands.send(Command::Start { pool, endpoint: id });
            }
            // The pool side first: the worker clears stale peer topics of peers not in it, and
            // must not clear one whose announcement it has yet to receive.
            Event::PeerJoined { id, description } => {
                self.side().peer_joined(&id, description.clone());
                self.announce(&id, Some(&description));
            }
            Event::DescriptionChanged { id, description } => {
                self.side().description_changed(&id, description.clone());
                self.announce(&id, Some(&description));
            }
            Event::PeerLeft { id } => {
                self.announce(&id, None);
                self.side().peer_left(&id);
            }
            Event::ChannelOpen { peer, label } => {
                let actions = self.side().channel_open(&peer, &label);
                self.shared.perform(actions);
            }
            Event::ChannelClosed { peer, label } => self.side().channel_closed(&peer, &label),
            _ => {}
        }
    }

    fn on_message(&mut self, peer: &str, label: &str, payload: Payload<'_>) {
        let Some(pool) = &self.pool else { return };
        if !self.router.forwards(label) {
            return;
        }
        let message = Message::from_payload(payload);
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let routed = {
            let side = self.shared.pool.lock().unwrap_or_else(|p| p.into_inner());
            let sender = Sender {
                peer,
                description: side.description(peer),
            };
            self.router
                .outgoing(pool, &sender, label, &message, timestamp_ms)
        };
        match routed {
            Ok(Some(publish)) => self.send(publish, true),
            Ok(None) => {}
            Err(e) => {
                self.invalid_topics += 1;
                let n = self.invalid_topics;
                self.shared.with_host(|h| {
                    if n == 1 {
                        h.warn(&format!(
                            "a message from {peer} on {label:?} has no topic: {e}"
                        ));
                    }
                    h.set_metric("invalid_topics", n as f64);
                });
            }
        }
    }

    fn stop(&mut self) {
        // The peers are no longer seen through this bridge: clear their retained topics.
        let peers = self.side().peers();
        for peer in peers {
            self.announce(&peer, None);
        }
        let _ = self.commands.send(Command::Stop);
        let _ = self.done.recv_timeout(STOP_LIMIT);
        // From here on the worker (if still running) cannot reach the host.
        self.shared
            .host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Mqtt {
    fn side(&self) -> std::sync::MutexGuard<'_, PoolSide> {
        self.shared.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, publish: Publish, data: bool) {
        let _ = self.commands.send(Command::Publish(Item {
            publish,
            created: Instant::now(),
            data,
        }));
    }

    /// A peer's retained presence: its description (JSON) while it is there, empty once gone.
    fn announce(&self, peer: &str, description: Option<&Option<Value>>) {
        let (true, Some(pool)) = (self.presence, &self.pool) else {
            return;
        };
        let payload = match description {
            Some(d) => serde_json::to_vec(d.as_ref().unwrap_or(&Value::Null))
                .unwrap_or_else(|_| b"null".to_vec()),
            None => Vec::new(),
        };
        self.send(
            Publish {
                topic: presence::peer_topic(pool, peer),
                payload,
                qos: 1,
                retain: true,
            },
            false,
        );
    }
}

export_plugin!(Mqtt);
