//! One bridge's life: start its endpoint, start the plugin instance, feed it the endpoint's
//! events, carry out its requests; on a failure (a panic included) tear both down and start
//! again after the backoff, if the restart policy says so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poolgate_plugin_api::{Event, TrackInfo};
use tokio::sync::{mpsc, watch};

use super::host::{Host, Request};
use super::spec::{BridgeSpec, RestartMode};
use super::status::Live;
use crate::config::IceServer;
use crate::endpoint::{
    ChannelSpec, ChannelTarget, Endpoint, EndpointEvent, EndpointHandle, EndpointOptions,
};
use crate::plugin::{Instance, LoadedPlugin, Plugins};
use crate::signalling::{PoolServer, SignallingTarget};

/// A bridge that ran this long without failing gets its backoff reset.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Everything a bridge needs to run.
#[derive(Clone)]
pub struct Context {
    pub spec: BridgeSpec,
    pub plugins: Plugins,
    pub pools: PoolServer,
    pub ice_servers: Vec<IceServer>,
    /// The bridge's own host-candidate allow-list, or the gateway's.
    pub ice_local_addresses: Vec<std::net::IpAddr>,
    pub live: Arc<Mutex<Live>>,
}

/// How one run ended.
enum End {
    /// Asked to stop.
    Stopped,
    /// Failed; `permanent` failures (unknown plugin, refused config) are not retried.
    Failed { reason: String, permanent: bool },
}

fn failed(reason: impl Into<String>) -> End {
    End::Failed {
        reason: reason.into(),
        permanent: false,
    }
}

impl Context {
    fn set_status(&self, status: impl Into<String>) {
        self.live.lock().unwrap().status = status.into();
    }
}

/// Resolves once the bridge is asked to stop (or its manager is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Only `()` leaves this function: the borrow guard must not live across an await.
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the bridge until `stop` turns true, restarting it after failures as its policy says.
pub async fn supervise(ctx: Context, mut stop: watch::Receiver<bool>) {
    let name = ctx.spec.name.clone();
    let policy = ctx.spec.restart;
    let mut backoff = policy.initial();
    loop {
        let started = Instant::now();
        match run_once(&ctx, &mut stop).await {
            End::Stopped => {
                ctx.set_status("stopped");
                tracing::info!(bridge = %name, "bridge stopped");
                return;
            }
            End::Failed { reason, permanent } => {
                {
                    let mut live = ctx.live.lock().unwrap();
                    live.status = format!("failed: {reason}");
                    live.last_failure = Some(reason.clone());
                    live.endpoint = None;
                }
                if permanent || policy.mode == RestartMode::Never {
                    tracing::error!(bridge = %name, "bridge failed, not restarting: {reason}");
                    // Stay failed until asked to stop (or restarted through the API).
                    stopped(&mut stop).await;
                    return;
                }
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = policy.initial();
                }
                tracing::error!(bridge = %name, "bridge failed: {reason}; restarting in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut stop) => {
                        ctx.set_status("stopped");
                        return;
                    }
                }
                ctx.live.lock().unwrap().restarts += 1;
                backoff = (backoff * 2).min(policy.max());
            }
        }
    }
}

async fn run_once(ctx: &Context, stop: &mut watch::Receiver<bool>) -> End {
    let spec = &ctx.spec;
    ctx.set_status("starting");
    let plugin = match ctx.plugins.find(&spec.plugin) {
        Ok(p) => p,
        Err(e) => {
            return End::Failed {
                reason: e.to_string(),
                permanent: true,
            }
        }
    };
    ctx.live.lock().unwrap().plugin_version = Some(plugin.version.clone());
    if let Err(e) = plugin.validate_config(&spec.config) {
        return End::Failed {
            reason: format!("invalid config for plugin {}: {e}", plugin.name),
            permanent: true,
        };
    }
    let target = match &spec.signalling {
        None => SignallingTarget::Hosted(ctx.pools.clone()),
        Some(url) => SignallingTarget::Remote(url.clone()),
    };
    let mut endpoint = match Endpoint::start(EndpointOptions {
        target,
        pool: spec.pool.clone(),
        ice_servers: ctx.ice_servers.clone(),
        ice_local_addresses: ctx.ice_local_addresses.clone(),
        media: Vec::new(),
    })
    .await
    {
        Ok(e) => e,
        Err(e) => return failed(format!("cannot start the endpoint: {e:#}")),
    };
    let (requests, mut request_rx) = mpsc::unbounded_channel();
    let host = Arc::new(Host {
        bridge: spec.name.clone(),
        plugin: plugin.name.clone(),
        live: ctx.live.clone(),
        requests,
        pipeline: endpoint.pipeline().clone(),
        endpoint: endpoint.handle(),
        runtime: tokio::runtime::Handle::current(),
    });
    let instance = match Instance::create(plugin.clone(), host, &spec.config) {
        Ok(i) => i,
        Err(e) => {
            endpoint.stop().await;
            return failed(e.to_string());
        }
    };
    tracing::info!(bridge = %spec.name, plugin = %plugin.name, version = %plugin.version,
        pool = %spec.pool, signalling = %spec.signalling_shown(), "bridge started");
    let mut bridge = Running {
        ctx,
        plugin,
        instance: Some(instance),
        handle: endpoint.handle(),
    };
    let end = loop {
        tokio::select! {
            event = endpoint.next_event() => match event {
                None => break failed("the endpoint ended"),
                Some(EndpointEvent::Stopped { reason }) => {
                    break failed(format!("the endpoint stopped: {reason}"))
                }
                Some(event) => {
                    if let Err(reason) = bridge.on_endpoint(event) {
                        break failed(reason);
                    }
                }
            },
            Some(request) = request_rx.recv() => bridge.on_request(request).await,
            _ = stopped(stop) => break End::Stopped,
        }
    };
    // The instance goes first: it may still hold elements in the endpoint's pipeline.
    if let Some(instance) = bridge.instance.take() {
        if let Err(e) = instance.destroy() {
            tracing::warn!(bridge = %spec.name, "the plugin failed while stopping: {e}");
        }
    }
    endpoint.stop().await;
    end
}

struct Running<'a> {
    ctx: &'a Context,
    plugin: Arc<LoadedPlugin>,
    instance: Option<Instance>,
    handle: EndpointHandle,
}

impl Running<'_> {
    fn instance(&mut self) -> &mut Instance {
        self.instance
            .as_mut()
            .expect("the instance lives while the bridge runs")
    }

    /// Hands an endpoint event to the plugin; `Err` is the reason the bridge failed.
    fn on_endpoint(&mut self, event: EndpointEvent) -> Result<(), String> {
        let result = match event {
            EndpointEvent::Joined { id, pool, peers } => {
                self.ctx.live.lock().unwrap().endpoint = Some(id.to_string());
                self.describe(id);
                self.instance().event(&Event::Joined {
                    id: id.to_string(),
                    pool,
                    peers: peers.iter().map(ToString::to_string).collect(),
                })
            }
            EndpointEvent::PeerJoined { id, description } => {
                self.instance().event(&Event::PeerJoined {
                    id: id.to_string(),
                    description,
                })
            }
            EndpointEvent::PeerLeft { id } => self
                .instance()
                .event(&Event::PeerLeft { id: id.to_string() }),
            EndpointEvent::DescriptionChanged { id, description } => {
                self.instance().event(&Event::DescriptionChanged {
                    id: id.to_string(),
                    description,
                })
            }
            EndpointEvent::PeerState { id, state } => self.instance().event(&Event::PeerState {
                id: id.to_string(),
                state,
            }),
            EndpointEvent::ChannelOpen { peer, label } => {
                self.instance().event(&Event::ChannelOpen {
                    peer: peer.to_string(),
                    label,
                })
            }
            EndpointEvent::ChannelClosed { peer, label } => {
                self.instance().event(&Event::ChannelClosed {
                    peer: peer.to_string(),
                    label,
                })
            }
            EndpointEvent::TrackAdded(track) => {
                let info = TrackInfo {
                    peer: track.peer.to_string(),
                    id: track.id.clone(),
                    kind: track.kind.clone(),
                    codec: track.codec.clone(),
                };
                self.instance().track(&info, &track.source)
            }
            EndpointEvent::TrackRemoved { peer, id } => {
                self.instance().event(&Event::TrackRemoved {
                    peer: peer.to_string(),
                    id,
                })
            }
            EndpointEvent::Message {
                peer,
                label,
                payload,
            } => self.instance().message(&peer.to_string(), &label, &payload),
            EndpointEvent::Stopped { .. } => Ok(()),
        };
        result.map_err(|e| e.to_string())
    }

    /// Applies the bridge's description to its endpoint `id`: through the pool server when it
    /// is ours, as a `describe` event (pyrtc's test server's way) when it is remote.
    fn describe(&self, id: crate::signalling::EndpointId) {
        let spec = &self.ctx.spec;
        let Some(description) = &spec.description else {
            return;
        };
        match &spec.signalling {
            None => {
                if let Err(e) = self
                    .ctx
                    .pools
                    .set_description(id, Some(description.clone()))
                {
                    tracing::warn!(bridge = %spec.name, "cannot set the bridge's description: {e}");
                }
            }
            Some(_) => self.handle.describe_self(description.clone()),
        }
    }

    async fn on_request(&mut self, request: Request) {
        match request {
            Request::CreateChannel { peer, spec } => {
                let target = peer.map_or(ChannelTarget::All, ChannelTarget::Peer);
                self.handle.create_channel(
                    ChannelSpec {
                        label: spec.label,
                        ordered: spec.ordered,
                        max_retransmits: spec.max_retransmits,
                    },
                    target,
                );
            }
            Request::Send {
                peer,
                label,
                payload,
            } => {
                if !self.handle.send(peer, &label, payload).await {
                    tracing::debug!(bridge = %self.ctx.spec.name, plugin = %self.plugin.name,
                        %peer, %label, "message dropped: no open channel");
                }
            }
        }
    }
}
