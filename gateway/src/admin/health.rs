//! `GET /health`: liveness and readiness, without authentication (for probes).

use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::context::AdminContext;

/// The gateway's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always true: an answer at all means the process is alive.
    pub live: bool,
    /// True while the gateway's listeners serve; false during start-up and shutdown.
    pub ready: bool,
    /// Pools that exist now.
    pub pools: usize,
    /// Connected endpoints.
    pub endpoints: usize,
}

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    warp::path!("health")
        .and(warp::get())
        .map(move || health(&ctx))
        .boxed()
}

/// Liveness and readiness.
///
/// The only route that needs no token.
#[utoipa::path(
    get,
    operation_id = "health",
    path = "/health",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Alive and ready", body = Health),
        (status = 503, description = "Alive but not ready (starting or shutting down)", body = Health),
    )
)]
pub fn health(ctx: &AdminContext) -> Response {
    // Taking the pool server's lock proves it is not wedged.
    let health = Health {
        live: true,
        ready: ctx.readiness.is_ready(),
        pools: ctx.pools.pools().len(),
        endpoints: ctx.pools.endpoint_count(),
    };
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    warp::reply::with_status(warp::reply::json(&health), status).into_response()
}
