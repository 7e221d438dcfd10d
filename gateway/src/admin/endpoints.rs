//! `/api/v1/endpoints/{id}`: one endpoint and its description. `PUT .../description` is the
//! only way descriptions change; the pool's other members get `rtc:describe` and later joiners
//! find it in `rtc:joined`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::body;
use super::context::AdminContext;
use super::error::{from_operator, ApiError, ErrorBody};
use crate::signalling::{EndpointId, EndpointInfo, OperatorError};

/// An endpoint: one signalling connection, in a pool or not yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: uuid::Uuid,
    /// The pool it joined, or null before it joins.
    pub pool: Option<String>,
    /// Its trusted description (a JSON object), or null.
    #[schema(value_type = Option<Object>)]
    pub description: Option<Value>,
}

impl From<EndpointInfo> for EndpointView {
    fn from(e: EndpointInfo) -> Self {
        EndpointView {
            id: e.id.0,
            pool: e.pool,
            description: e.description,
        }
    }
}

/// An endpoint's description, as read and as written.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// A JSON object, or null to clear it. Required in a PUT.
    #[schema(value_type = Option<Object>, example = json!({"name": "front desk"}))]
    pub description: Value,
}

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    let max_body = ctx.max_body_bytes;
    let with_ctx = warp::any().map(move || ctx.clone());
    let get_route = warp::path!("api" / "v1" / "endpoints" / String)
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|id: String, ctx: AdminContext| get(&ctx, &id).into_response());
    let description = warp::path!("api" / "v1" / "endpoints" / String / "description");
    let get_description_route = description
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|id: String, ctx: AdminContext| get_description(&ctx, &id).into_response());
    let put_description_route = description
        .and(warp::put())
        .and(with_ctx)
        .and(body::limited(max_body))
        .map(|id: String, ctx: AdminContext, body: Bytes| {
            put_description(&ctx, &id, &body).into_response()
        });
    get_route
        .or(get_description_route)
        .unify()
        .or(put_description_route)
        .unify()
        .boxed()
}

fn parse_id(id: &str) -> Result<EndpointId, ApiError> {
    uuid::Uuid::parse_str(id).map(EndpointId).map_err(|e| {
        ApiError::bad_request(
            "invalid_field",
            format!("id in the path is not a UUID: {e}"),
        )
    })
}

fn find(ctx: &AdminContext, id: &str) -> Result<EndpointInfo, ApiError> {
    let id = parse_id(id)?;
    ctx.pools
        .endpoint(id)
        .ok_or_else(|| from_operator(OperatorError::UnknownEndpoint(id), "id"))
}

/// Get an endpoint.
#[utoipa::path(
    get,
    operation_id = "get_endpoint",
    path = "/api/v1/endpoints/{id}",
    tag = "endpoints",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id (its `client_id`)")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such endpoint (`unknown_endpoint`)", body = ErrorBody),
    )
)]
pub fn get(ctx: &AdminContext, id: &str) -> Result<Response, ApiError> {
    let endpoint = find(ctx, id)?;
    Ok(warp::reply::json(&EndpointView::from(endpoint)).into_response())
}

/// Get an endpoint's description.
#[utoipa::path(
    get,
    operation_id = "get_description",
    path = "/api/v1/endpoints/{id}/description",
    tag = "endpoints",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id (its `client_id`)")),
    responses(
        (status = 200, description = "The description (null when none is set)", body = Description),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such endpoint (`unknown_endpoint`)", body = ErrorBody),
    )
)]
pub fn get_description(ctx: &AdminContext, id: &str) -> Result<Response, ApiError> {
    let endpoint = find(ctx, id)?;
    let description = endpoint.description.unwrap_or(Value::Null);
    Ok(warp::reply::json(&Description { description }).into_response())
}

/// Set or clear an endpoint's description.
///
/// The other endpoints of its pool get `rtc:describe`; endpoints that join later find it in
/// `rtc:joined`.
#[utoipa::path(
    put,
    operation_id = "put_description",
    path = "/api/v1/endpoints/{id}/description",
    tag = "endpoints",
    params(("id" = uuid::Uuid, Path, description = "Endpoint id (its `client_id`)")),
    request_body = Description,
    responses(
        (status = 200, description = "Set; the body is the new description", body = Description),
        (status = 400, description = "Invalid JSON, field or id (`invalid_json`, `invalid_field`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such endpoint (`unknown_endpoint`)", body = ErrorBody),
        (status = 413, description = "Body over `admin.max_body_bytes`", body = ErrorBody),
    )
)]
pub fn put_description(ctx: &AdminContext, id: &str, body: &Bytes) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let request: Description = body::parse(body)?;
    let description = match request.description {
        Value::Null => None,
        other => Some(other),
    };
    ctx.pools
        .set_description(id, description.clone())
        .map_err(|e| from_operator(e, "description"))?;
    tracing::info!(endpoint = %id, "admin API: description of endpoint {id} {}",
        if description.is_some() { "set" } else { "cleared" });
    Ok(warp::reply::json(&Description {
        description: description.unwrap_or(Value::Null),
    })
    .into_response())
}
