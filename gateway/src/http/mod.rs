//! The public listener: the demo page, `/rtc-config`, raw WebSocket signalling at `/ws`, and
//! socket.io at `/socket.io/`, all on one port. Warp serves the HTTP routes; the socket.io
//! layer wraps warp's service, so both are one tower service under one hyper server.

mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer;

use crate::config::IceServer;
use crate::signalling::{socketio, Keepalive, PoolServer};

/// What the public listener serves.
#[derive(Clone)]
pub struct Site {
    pub server: PoolServer,
    pub keepalive: Keepalive,
    pub ice_servers: Vec<IceServer>,
    pub web_root: Option<PathBuf>,
}

/// Binds the listener; `serve` then runs it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves connections until `shutdown` resolves, then lets open requests finish.
pub async fn serve(listener: TcpListener, site: Site, shutdown: impl Future<Output = ()>) {
    let warp_service = warp::service(routes::all(site.clone()));
    let service = socketio::layer(site.server.clone(), site.keepalive).layer(warp_service);
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service.clone()),
                );
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, "HTTP connection ended with an error: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    site.server.close_all();
    // WebSocket connections end when their queues close; give the rest a moment.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
}
