//! A running poolgate: the pool server, its public listener and the admin API, started from a
//! [`Config`].
//! The binary runs one; integration tests start as many as they like in-process.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::{AdminServer, Readiness};
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
    admin: Option<AdminServer>,
    readiness: Readiness,
}

impl Gateway {
    /// Loads the plugin folder, binds the listeners, creates the configured operator pools,
    /// starts serving, then starts the admin API (when the config has an `[admin]` table) and
    /// the configured bridges.
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
        let bridges = Bridges::new(
            plugins,
            pools.clone(),
            config.ice_servers.clone(),
            config.ice_local_addresses.clone(),
        );
        let readiness = Readiness::default();
        let mut gateway = Gateway {
            pools: pools.clone(),
            bridges,
            addr,
            stop: Some(stop),
            task,
            admin: None,
            readiness: readiness.clone(),
        };
        if let Some(admin) = &config.admin {
            match AdminServer::start(admin, pools, gateway.bridges.clone(), readiness.clone()).await
            {
                Ok(server) => gateway.admin = Some(server),
                Err(e) => {
                    gateway.stop().await;
                    return Err(e.into());
                }
            }
        }
        for spec in &config.bridge {
            let started = gateway
                .bridges
                .start_declared(spec.clone())
                .with_context(|| format!("starting bridge {:?}", spec.name));
            if let Err(e) = started {
                gateway.stop().await;
                return Err(e);
            }
        }
        readiness.set(true);
        Ok(gateway)
    }

    /// The address the public listener is bound to (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin API, when configured.
    pub fn admin(&self) -> Option<&AdminServer> {
        self.admin.as_ref()
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

    /// Stops in order: `/health` turns not ready, the bridges stop (last started first), the
    /// public listener closes every connection (endpoints leave their pools), then the admin
    /// listener stops.
    pub async fn stop(mut self) {
        self.readiness.set(false);
        self.bridges.stop_all().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
    }
}
