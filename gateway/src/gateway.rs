//! A running poolgate: the pool server and its public listener, started from a [`Config`].
//! The binary runs one; integration tests start as many as they like in-process.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bridge::Bridges;
use crate::config::Config;
use crate::http::{self, Site};
use crate::plugin::Plugins;
use crate::signalling::PoolServer;

pub struct Gateway {
    pools: PoolServer,
    bridges: Bridges,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Gateway {
    /// Loads the plugin folder, binds the listener, creates the configured operator pools,
    /// starts serving, then starts the configured bridges.
    pub async fn start(config: &Config) -> anyhow::Result<Gateway> {
        let pools = PoolServer::new(config.pools.mode, config.limits);
        for name in &config.pools.create {
            pools
                .create_pool(name)
                .with_context(|| format!("creating pool {name:?} from pools.create"))?;
        }
        // Plugins first: a folder that cannot be read stops the start before anything runs.
        let plugins = Plugins::load_dir(config.plugins.dir.as_deref()).with_context(|| {
            format!(
                "cannot read the plugin folder {} (plugins.dir)",
                config
                    .plugins
                    .dir
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display()
            )
        })?;
        let listener = http::bind(config.server.listen).await.with_context(|| {
            format!("cannot listen on {} (server.listen)", config.server.listen)
        })?;
        let addr = listener.local_addr()?;
        let site = Site {
            server: pools.clone(),
            keepalive: config.keepalive,
            ice_servers: config.ice_servers.clone(),
            web_root: config.server.web_root.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(http::serve(listener, site, async {
            let _ = stopped.await;
        }));
        tracing::info!(
            "pool server listening on http://{addr} (WebSocket /ws, socket.io /socket.io/, pool mode {:?})",
            config.pools.mode
        );
        let bridges = Bridges::new(plugins, pools.clone(), config.ice_servers.clone());
        for spec in &config.bridge {
            bridges
                .start_declared(spec.clone())
                .with_context(|| format!("starting bridge {:?}", spec.name))?;
        }
        Ok(Gateway {
            pools,
            bridges,
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The address the public listener is bound to (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pool server's library API.
    pub fn pools(&self) -> &PoolServer {
        &self.pools
    }

    /// The bridges: list, create, update, restart, delete.
    pub fn bridges(&self) -> &Bridges {
        &self.bridges
    }

    /// The plugin folder's libraries, loaded or refused.
    pub fn plugins(&self) -> &Plugins {
        self.bridges.plugins()
    }

    /// Stops the bridges (last started first), then closes every connection and stops
    /// listening.
    pub async fn stop(mut self) {
        self.bridges.stop_all().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
