//! [`Bridges`]: every bridge of a gateway, for the gateway at boot and for the admin API.

use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::runner::{self, Context};
use super::spec::BridgeSpec;
use super::status::{BridgeStatus, Live};
use crate::config::IceServer;
use crate::plugin::{FindError, Plugins};
use crate::signalling::PoolServer;

/// Why a bridge operation was refused. Each maps to one HTTP status in the admin API.
#[derive(Debug, Error, PartialEq)]
pub enum BridgeError {
    /// 404.
    #[error("no bridge named {0:?}")]
    NotFound(String),
    /// 409.
    #[error("a bridge named {0:?} already exists")]
    Exists(String),
    /// 400: a rule of the bridge declaration.
    #[error("{0}")]
    Invalid(String),
    /// 400: the plugin cannot be used.
    #[error("bridge {bridge:?}: {error}")]
    Plugin { bridge: String, error: FindError },
    /// 400: the plugin refused the config; the message names the field.
    #[error("bridge {bridge:?}: invalid config for plugin {plugin}: {message}")]
    Config {
        bridge: String,
        plugin: String,
        message: String,
    },
}

struct Bridge {
    spec: BridgeSpec,
    live: Arc<Mutex<Live>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Inner {
    plugins: Plugins,
    pools: PoolServer,
    ice_servers: Vec<IceServer>,
    /// The host-candidate allow-list of bridges that set none.
    ice_local_addresses: Vec<std::net::IpAddr>,
    /// In creation order: that is the order they stop in, last first.
    bridges: Mutex<Vec<Bridge>>,
}

/// The gateway's bridges. Cheap to clone.
#[derive(Clone)]
pub struct Bridges {
    inner: Arc<Inner>,
}

impl Bridges {
    /// Bridges of `plugins` in `pools`' pools (or remote ones); their endpoints use
    /// `ice_servers`, and `ice_local_addresses` unless a bridge lists its own.
    pub fn new(
        plugins: Plugins,
        pools: PoolServer,
        ice_servers: Vec<IceServer>,
        ice_local_addresses: Vec<std::net::IpAddr>,
    ) -> Bridges {
        Bridges {
            inner: Arc::new(Inner {
                plugins,
                pools,
                ice_servers,
                ice_local_addresses,
                bridges: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The plugins bridges are made of.
    pub fn plugins(&self) -> &Plugins {
        &self.inner.plugins
    }

    /// Every bridge, in creation order.
    pub fn list(&self) -> Vec<BridgeStatus> {
        let bridges = self.inner.bridges.lock().unwrap();
        bridges
            .iter()
            .map(|b| b.live.lock().unwrap().snapshot(&b.spec))
            .collect()
    }

    /// One bridge.
    pub fn get(&self, name: &str) -> Result<BridgeStatus, BridgeError> {
        let bridges = self.inner.bridges.lock().unwrap();
        bridges
            .iter()
            .find(|b| b.spec.name == name)
            .map(|b| b.live.lock().unwrap().snapshot(&b.spec))
            .ok_or_else(|| BridgeError::NotFound(name.to_string()))
    }

    /// Checks a bridge before it is started: its own rules, its plugin, its plugin's verdict on
    /// its config.
    pub fn check(&self, spec: &BridgeSpec) -> Result<(), BridgeError> {
        spec.validate().map_err(BridgeError::Invalid)?;
        let plugin =
            self.inner
                .plugins
                .find(&spec.plugin)
                .map_err(|error| BridgeError::Plugin {
                    bridge: spec.name.clone(),
                    error,
                })?;
        plugin
            .validate_config(&spec.config)
            .map_err(|e| BridgeError::Config {
                bridge: spec.name.clone(),
                plugin: plugin.name.clone(),
                message: e.to_string(),
            })
    }

    /// Checks and starts a new bridge.
    pub fn create(&self, spec: BridgeSpec) -> Result<BridgeStatus, BridgeError> {
        self.check(&spec)?;
        let mut bridges = self.inner.bridges.lock().unwrap();
        if bridges.iter().any(|b| b.spec.name == spec.name) {
            return Err(BridgeError::Exists(spec.name));
        }
        let bridge = self.spawn(spec, Live::default());
        let status = bridge.live.lock().unwrap().snapshot(&bridge.spec);
        bridges.push(bridge);
        Ok(status)
    }

    /// Starts a bridge declared in the config file. Unlike [`Bridges::create`] it never refuses
    /// for the plugin's sake: a bridge whose plugin is missing or refused, or whose config the
    /// plugin rejects, is listed as `failed` with the reason, and the gateway runs on.
    pub fn start_declared(&self, spec: BridgeSpec) -> Result<(), BridgeError> {
        spec.validate().map_err(BridgeError::Invalid)?;
        let mut bridges = self.inner.bridges.lock().unwrap();
        if bridges.iter().any(|b| b.spec.name == spec.name) {
            return Err(BridgeError::Exists(spec.name));
        }
        let bridge = self.spawn(spec, Live::default());
        bridges.push(bridge);
        Ok(())
    }

    fn spawn(&self, spec: BridgeSpec, mut live: Live) -> Bridge {
        live.status = "starting".into();
        let live = Arc::new(Mutex::new(live));
        let (stop, stopped) = watch::channel(false);
        let ctx = Context {
            spec: spec.clone(),
            plugins: self.inner.plugins.clone(),
            pools: self.inner.pools.clone(),
            ice_servers: self.inner.ice_servers.clone(),
            ice_local_addresses: if spec.ice_local_addresses.is_empty() {
                self.inner.ice_local_addresses.clone()
            } else {
                spec.ice_local_addresses.clone()
            },
            live: live.clone(),
        };
        let task = tokio::spawn(runner::supervise(ctx, stopped));
        Bridge {
            spec,
            live,
            stop,
            task,
        }
    }

    fn take(&self, name: &str) -> Result<Bridge, BridgeError> {
        let mut bridges = self.inner.bridges.lock().unwrap();
        let i = bridges
            .iter()
            .position(|b| b.spec.name == name)
            .ok_or_else(|| BridgeError::NotFound(name.to_string()))?;
        Ok(bridges.remove(i))
    }

    async fn halt(bridge: Bridge) -> Live {
        let _ = bridge.stop.send(true);
        let _ = bridge.task.await;
        let live = bridge.live.lock().unwrap().clone();
        live
    }

    /// Replaces a bridge's declaration (same name) and restarts it with it.
    pub async fn update(&self, name: &str, spec: BridgeSpec) -> Result<BridgeStatus, BridgeError> {
        if spec.name != name {
            return Err(BridgeError::Invalid(format!(
                "name: a bridge cannot be renamed ({name:?} to {:?})",
                spec.name
            )));
        }
        self.check(&spec)?;
        let index = self.position_hint(name);
        let old = self.take(name)?;
        let live = Self::halt(old).await;
        let kept = Live {
            restarts: live.restarts,
            last_failure: live.last_failure,
            ..Live::default()
        };
        let bridge = self.spawn(spec, kept);
        let status = bridge.live.lock().unwrap().snapshot(&bridge.spec);
        self.insert(index, bridge);
        Ok(status)
    }

    /// Stops a bridge and starts it afresh (a failed one included).
    pub async fn restart(&self, name: &str) -> Result<BridgeStatus, BridgeError> {
        let index = self.position_hint(name);
        let old = self.take(name)?;
        let spec = old.spec.clone();
        let live = Self::halt(old).await;
        let kept = Live {
            restarts: live.restarts + 1,
            last_failure: live.last_failure,
            ..Live::default()
        };
        let bridge = self.spawn(spec, kept);
        let status = bridge.live.lock().unwrap().snapshot(&bridge.spec);
        self.insert(index, bridge);
        Ok(status)
    }

    fn position_hint(&self, name: &str) -> usize {
        let bridges = self.inner.bridges.lock().unwrap();
        bridges
            .iter()
            .position(|b| b.spec.name == name)
            .unwrap_or(bridges.len())
    }

    fn insert(&self, index: usize, bridge: Bridge) {
        let mut bridges = self.inner.bridges.lock().unwrap();
        let index = index.min(bridges.len());
        bridges.insert(index, bridge);
    }

    /// Stops and removes a bridge.
    pub async fn delete(&self, name: &str) -> Result<(), BridgeError> {
        let bridge = self.take(name)?;
        Self::halt(bridge).await;
        Ok(())
    }

    /// Stops every bridge, the last created first (each leaves its pool, its plugin finishes).
    pub async fn stop_all(&self) {
        loop {
            let last = self.inner.bridges.lock().unwrap().pop();
            let Some(bridge) = last else { break };
            let name = bridge.spec.name.clone();
            Self::halt(bridge).await;
            tracing::info!(bridge = %name, "bridge stopped for shutdown");
        }
    }
}
