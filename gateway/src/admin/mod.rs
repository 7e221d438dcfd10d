//! The admin API: JSON over HTTP on its own listener (`[admin]`), built on warp.
//!
//! - [`token`]: where the bearer token comes from (environment, config, or a generated file).
//! - [`auth`]: the bearer check that runs before every route but `/health`.
//! - [`routes`]: the router; one module per resource ([`pools`], [`endpoints`], [`plugins`],
//!   [`bridges`], [`recordings`]) plus [`health`], [`metrics`] and [`openapi`].
//! - [`error`], [`body`], [`path`]: the one error shape, strict JSON bodies, path segments.

pub mod auth;
pub mod body;
pub mod bridge_metrics;
pub mod bridges;
pub mod context;
pub mod endpoints;
pub mod error;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod path;
pub mod plugins;
pub mod pools;
pub mod recordings;
pub mod routes;
pub mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use context::{AdminContext, Readiness};
pub use token::{Access, TokenError, TokenOrigin, TOKEN_ENV};

use crate::bridge::Bridges;
use crate::config::AdminConfig;
use crate::signalling::PoolServer;

/// Why the admin API could not start.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("admin API token: {0}")]
    Token(#[from] TokenError),
    #[error("cannot listen on {addr} (admin.listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running admin listener.
pub struct AdminServer {
    addr: SocketAddr,
    origin: TokenOrigin,
    recording_places: recordings::Places,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Finds or generates the token, binds `admin.listen` and starts serving.
    pub async fn start(
        config: &AdminConfig,
        pools: PoolServer,
        bridges: Bridges,
        readiness: Readiness,
    ) -> Result<AdminServer, AdminError> {
        let (access, origin) = token::resolve(config)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| AdminError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| AdminError::Bind {
            addr: config.listen,
            source,
        })?;
        let ctx = AdminContext::new(pools, bridges, readiness, config.max_body_bytes);
        let recording_places = ctx.recordings.clone();
        let routes = routes::all(ctx, access);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = warp::serve(routes).incoming(listener).graceful(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(server.run());
        log_start(addr, &origin);
        Ok(AdminServer {
            addr,
            origin,
            recording_places,
            stop: Some(stop),
            task,
        })
    }

    /// The address the admin listener is bound to (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token file in use, if the token came from one.
    pub fn token_file(&self) -> Option<&Path> {
        self.origin.file()
    }

    /// Where the token came from.
    pub fn token_origin(&self) -> &TokenOrigin {
        &self.origin
    }

    /// Where the recordings routes look for sessions; the places of recorder bridges are
    /// added as the gateway runs them, and others can be added here.
    pub fn recording_places(&self) -> &recordings::Places {
        &self.recording_places
    }

    /// Stops listening and lets requests in progress finish (for at most 5 s).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("admin API: requests still open after 5 s; closing them");
            self.task.abort();
        }
    }
}

fn log_start(addr: SocketAddr, origin: &TokenOrigin) {
    let from = match origin {
        TokenOrigin::Environment => format!("the token from {TOKEN_ENV}"),
        TokenOrigin::Config => "the token from admin.token".to_string(),
        TokenOrigin::File(p) => format!("the token in {}", display(p)),
        TokenOrigin::Generated(p) => format!(
            "a new random token, written to {} (readable by its owner only)",
            display(p)
        ),
        TokenOrigin::Disabled => {
            tracing::warn!(
                "admin API on http://{addr}/api/v1/ WITHOUT AUTHENTICATION \
                 (admin.insecure_no_auth): anyone who can reach {addr} can close pools and change \
                 descriptions"
            );
            return;
        }
    };
    tracing::info!(
        "admin API listening on http://{addr}/api/v1/ (health: /health, metrics: /metrics); \
         callers need `Authorization: Bearer <token>` with {from}"
    );
}

fn display(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}
