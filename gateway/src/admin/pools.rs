//! `/api/v1/pools`: list, create (an operator pool, the only kind in private mode), detail
//! with endpoints and descriptions, and force-close.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::body;
use super::context::AdminContext;
use super::endpoints::EndpointView;
use super::error::{from_operator, ApiError, ErrorBody};
use super::path;
use crate::signalling::pool::PoolOrigin;
use crate::signalling::PoolInfo;

/// Who made a pool, which decides whether it outlives its last endpoint.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Created by the operator (config or API); lives until force-closed.
    Operator,
    /// Created by an endpoint joining it (public mode); gone when it empties.
    Joined,
}

impl From<PoolOrigin> for Origin {
    fn from(o: PoolOrigin) -> Self {
        match o {
            PoolOrigin::Operator => Origin::Operator,
            PoolOrigin::Joined => Origin::Joined,
        }
    }
}

/// A pool in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolSummary {
    pub name: String,
    pub origin: Origin,
    /// Number of endpoints in the pool.
    pub endpoints: usize,
}

/// `GET /api/v1/pools`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolList {
    pub pools: Vec<PoolSummary>,
}

/// One pool with its endpoints, in join order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolDetail {
    pub name: String,
    pub origin: Origin,
    pub endpoints: Vec<EndpointView>,
}

impl From<PoolInfo> for PoolDetail {
    fn from(p: PoolInfo) -> Self {
        PoolDetail {
            name: p.name,
            origin: p.origin.into(),
            endpoints: p.endpoints.into_iter().map(EndpointView::from).collect(),
        }
    }
}

/// `POST /api/v1/pools`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePool {
    /// 1 to 256 bytes, no control characters.
    #[schema(example = "lobby")]
    pub name: String,
}

/// `DELETE /api/v1/pools/{name}`: what the force-close did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedPool {
    pub name: String,
    /// The endpoints that were sent `rtc:stop` and disconnected.
    pub disconnected: Vec<uuid::Uuid>,
}

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    let max_body = ctx.max_body_bytes;
    let with_ctx = warp::any().map(move || ctx.clone());
    let collection = warp::path!("api" / "v1" / "pools");
    let item = warp::path!("api" / "v1" / "pools" / String);
    let list_route = collection
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|ctx: AdminContext| list(&ctx).into_response());
    let create_route = collection
        .and(warp::post())
        .and(with_ctx.clone())
        .and(body::limited(max_body))
        .map(|ctx: AdminContext, body: Bytes| create(&ctx, &body).into_response());
    let get_route = item
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|name: String, ctx: AdminContext| get(&ctx, &name).into_response());
    let close_route = item
        .and(warp::delete())
        .and(with_ctx)
        .map(|name: String, ctx: AdminContext| close(&ctx, &name).into_response());
    list_route
        .or(create_route)
        .unify()
        .or(get_route)
        .unify()
        .or(close_route)
        .unify()
        .boxed()
}

/// List pools.
#[utoipa::path(
    get,
    operation_id = "list_pools",
    path = "/api/v1/pools",
    tag = "pools",
    responses(
        (status = 200, description = "Every pool, by name", body = PoolList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn list(ctx: &AdminContext) -> impl Reply {
    let pools = ctx
        .pools
        .pools()
        .into_iter()
        .map(|p| PoolSummary {
            name: p.name,
            origin: p.origin.into(),
            endpoints: p.endpoints.len(),
        })
        .collect();
    warp::reply::json(&PoolList { pools })
}

/// Create an operator pool.
///
/// Operator pools exist until force-closed, empty or not. In private mode they are the only
/// pools endpoints can join.
#[utoipa::path(
    post,
    operation_id = "create_pool",
    path = "/api/v1/pools",
    tag = "pools",
    request_body = CreatePool,
    responses(
        (status = 201, description = "Created", body = PoolDetail,
            headers(("location" = String, description = "The new pool's URL"))),
        (status = 400, description = "Invalid JSON or field (`invalid_json`, `invalid_field`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "The pool exists (`pool_exists`) or the pool limit is reached (`too_many_pools`)", body = ErrorBody),
        (status = 413, description = "Body over `admin.max_body_bytes`", body = ErrorBody),
    )
)]
pub fn create(ctx: &AdminContext, body: &Bytes) -> Result<Response, ApiError> {
    let request: CreatePool = body::parse(body)?;
    ctx.pools
        .create_pool(&request.name)
        .map_err(|e| from_operator(e, "name"))?;
    tracing::info!(pool = %request.name, "admin API: pool \"{}\" created", request.name);
    let detail = PoolDetail {
        name: request.name.clone(),
        origin: Origin::Operator,
        endpoints: Vec::new(),
    };
    let location = format!("/api/v1/pools/{}", path::encode(&request.name));
    let reply = warp::reply::with_status(warp::reply::json(&detail), StatusCode::CREATED);
    Ok(warp::reply::with_header(reply, header::LOCATION, location).into_response())
}

/// Get a pool with its endpoints and their descriptions.
#[utoipa::path(
    get,
    operation_id = "get_pool",
    path = "/api/v1/pools/{name}",
    tag = "pools",
    params(("name" = String, Path, description = "Pool name, percent-encoded")),
    responses(
        (status = 200, description = "The pool", body = PoolDetail),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such pool (`unknown_pool`)", body = ErrorBody),
    )
)]
pub fn get(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let name = path::decode(name, "name")?;
    let pool = ctx.pools.pool(&name).ok_or_else(|| {
        from_operator(crate::signalling::OperatorError::UnknownPool(name), "name")
    })?;
    Ok(warp::reply::json(&PoolDetail::from(pool)).into_response())
}

/// Force-close a pool.
///
/// Each endpoint in it gets `rtc:stop`, then its connection is closed; the pool is removed.
#[utoipa::path(
    delete,
    operation_id = "close_pool",
    path = "/api/v1/pools/{name}",
    tag = "pools",
    params(("name" = String, Path, description = "Pool name, percent-encoded")),
    responses(
        (status = 200, description = "Closed", body = ClosedPool),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such pool (`unknown_pool`)", body = ErrorBody),
    )
)]
pub fn close(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let name = path::decode(name, "name")?;
    let members: Vec<uuid::Uuid> = ctx
        .pools
        .pool(&name)
        .map(|p| p.endpoints.iter().map(|e| e.id.0).collect())
        .unwrap_or_default();
    ctx.pools
        .close_pool(&name)
        .map_err(|e| from_operator(e, "name"))?;
    tracing::info!(pool = %name, "admin API: pool \"{name}\" force-closed ({} endpoints stopped)", members.len());
    Ok(warp::reply::json(&ClosedPool {
        name,
        disconnected: members,
    })
    .into_response())
}
