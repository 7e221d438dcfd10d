//! `/api/v1/bridges`: list with status, create (and start), get, update (replace the
//! declaration and restart), delete, restart. Secrets in configs and URLs never appear in an
//! answer: every body is a [`BridgeStatus`], built with the bridge module's redaction.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::body;
use super::context::AdminContext;
use super::error::{ApiError, ErrorBody};
use super::path;
use crate::bridge::{BridgeError, BridgeSpec, BridgeStatus};

/// `GET /api/v1/bridges`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BridgeList {
    /// Every bridge, in creation order (the reverse of the order they stop in).
    pub bridges: Vec<BridgeStatus>,
}

/// A bridge operation's refusal, as an API error. Every variant's message names the field at
/// fault or the bridge.
pub fn from_bridge(error: BridgeError) -> ApiError {
    let message = error.to_string();
    match error {
        BridgeError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_bridge", message),
        BridgeError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "bridge_exists", message),
        // Its message already names the key (`bridge "x": pool: ...`, `name: ...`).
        BridgeError::Invalid(_) => ApiError::bad_request("invalid_field", message),
        BridgeError::Plugin { .. } => {
            ApiError::bad_request("invalid_field", format!("plugin: {message}"))
        }
        BridgeError::Config { .. } => {
            ApiError::bad_request("invalid_field", format!("config: {message}"))
        }
    }
}

/// The bridge a path segment names, or 404 (`unknown_bridge`); 400 when the segment is not
/// valid percent-encoded UTF-8. Returns the decoded name too.
fn find(ctx: &AdminContext, segment: &str) -> Result<(String, BridgeStatus), ApiError> {
    let name = path::decode(segment, "name")?;
    let status = ctx.bridges.get(&name).map_err(from_bridge)?;
    Ok((name, status))
}

fn json(status: &BridgeStatus) -> Response {
    warp::reply::json(status).into_response()
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    let max_body = ctx.max_body_bytes;
    let with_ctx = warp::any().map(move || ctx.clone());
    let collection = warp::path!("api" / "v1" / "bridges");
    let item = warp::path!("api" / "v1" / "bridges" / String);
    let list_route = collection
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|ctx: AdminContext| list(&ctx).into_response());
    let create_route = collection
        .and(warp::post())
        .and(with_ctx.clone())
        .and(body::limited(max_body))
        .map(|ctx: AdminContext, body: Bytes| answer(create(&ctx, &body)));
    let get_route = item
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|name: String, ctx: AdminContext| answer(get(&ctx, &name)));
    let update_route = item
        .and(warp::put())
        .and(with_ctx.clone())
        .and(body::limited(max_body))
        .then(|name: String, ctx: AdminContext, body: Bytes| async move {
            answer(update(&ctx, &name, &body).await)
        });
    let delete_route = item
        .and(warp::delete())
        .and(with_ctx.clone())
        .then(|name: String, ctx: AdminContext| async move { answer(delete(&ctx, &name).await) });
    let restart_route = warp::path!("api" / "v1" / "bridges" / String / "restart")
        .and(warp::post())
        .and(with_ctx)
        .then(|name: String, ctx: AdminContext| async move { answer(restart(&ctx, &name).await) });
    list_route
        .or(create_route)
        .unify()
        .or(get_route)
        .unify()
        .or(update_route)
        .unify()
        .or(delete_route)
        .unify()
        .or(restart_route)
        .unify()
        .boxed()
}

/// List bridges.
#[utoipa::path(
    get,
    operation_id = "list_bridges",
    path = "/api/v1/bridges",
    tag = "bridges",
    responses(
        (status = 200, description = "Every bridge with its status", body = BridgeList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn list(ctx: &AdminContext) -> impl Reply {
    warp::reply::json(&BridgeList {
        bridges: ctx.bridges.list(),
    })
}

/// Create and start a bridge.
///
/// The declaration is the same as a `[[bridge]]` table of the config file. The plugin must be
/// loaded and must accept `config`; the bridge then starts (status `starting`, then what the
/// plugin reports).
#[utoipa::path(
    post,
    operation_id = "create_bridge",
    path = "/api/v1/bridges",
    tag = "bridges",
    request_body = BridgeSpec,
    responses(
        (status = 201, description = "Created and starting", body = BridgeStatus,
            headers(("location" = String, description = "The new bridge's URL"))),
        (status = 400, description = "Invalid JSON or field, unknown plugin, or a config the plugin refuses (`invalid_json`, `invalid_field`); the message names the field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A bridge of that name exists (`bridge_exists`)", body = ErrorBody),
        (status = 413, description = "Body over `admin.max_body_bytes`", body = ErrorBody),
    )
)]
pub fn create(ctx: &AdminContext, body: &Bytes) -> Result<Response, ApiError> {
    let spec: BridgeSpec = body::parse(body)?;
    let status = ctx.bridges.create(spec).map_err(from_bridge)?;
    ctx.recordings.remember_bridges(&ctx.bridges);
    tracing::info!(bridge = %status.name, plugin = %status.plugin, pool = %status.pool,
        "admin API: bridge \"{}\" created", status.name);
    let location = format!("/api/v1/bridges/{}", path::encode(&status.name));
    let reply = warp::reply::with_status(json(&status), StatusCode::CREATED);
    Ok(warp::reply::with_header(reply, header::LOCATION, location).into_response())
}

/// Get a bridge.
#[utoipa::path(
    get,
    operation_id = "get_bridge",
    path = "/api/v1/bridges/{name}",
    tag = "bridges",
    params(("name" = String, Path, description = "Bridge name")),
    responses(
        (status = 200, description = "The bridge", body = BridgeStatus),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such bridge (`unknown_bridge`)", body = ErrorBody),
    )
)]
pub fn get(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let (_, status) = find(ctx, name)?;
    Ok(json(&status))
}

/// Replace a bridge's declaration and restart it.
///
/// The body is a whole declaration, as for create; `name` may be left out, and if given must
/// be the bridge's own (bridges are not renamed). A refused update leaves the bridge running
/// as it was.
#[utoipa::path(
    put,
    operation_id = "update_bridge",
    path = "/api/v1/bridges/{name}",
    tag = "bridges",
    params(("name" = String, Path, description = "Bridge name")),
    request_body = BridgeSpec,
    responses(
        (status = 200, description = "Updated and restarting", body = BridgeStatus),
        (status = 400, description = "Invalid JSON or field, unknown plugin, or a config the plugin refuses (`invalid_json`, `invalid_field`); the message names the field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such bridge (`unknown_bridge`)", body = ErrorBody),
        (status = 413, description = "Body over `admin.max_body_bytes`", body = ErrorBody),
    )
)]
pub async fn update(ctx: &AdminContext, name: &str, body: &Bytes) -> Result<Response, ApiError> {
    let (name, _) = find(ctx, name)?;
    let spec = parse_update(&name, body)?;
    // A recorder's old directory stays listed in /api/v1/recordings.
    ctx.recordings.remember_bridges(&ctx.bridges);
    let status = ctx.bridges.update(&name, spec).await.map_err(from_bridge)?;
    tracing::info!(bridge = %name, "admin API: bridge \"{name}\" updated and restarted");
    Ok(json(&status))
}

/// An update's body: a declaration whose `name` defaults to the path's.
fn parse_update(name: &str, body: &Bytes) -> Result<BridgeSpec, ApiError> {
    let mut object: serde_json::Map<String, Value> = body::parse(body)?;
    object
        .entry("name")
        .or_insert_with(|| Value::String(name.to_string()));
    let filled = Bytes::from(Value::Object(object).to_string());
    body::parse(&filled)
}

/// Stop and remove a bridge.
///
/// Its plugin instance stops (finishing what it writes), then its endpoint leaves the pool.
#[utoipa::path(
    delete,
    operation_id = "delete_bridge",
    path = "/api/v1/bridges/{name}",
    tag = "bridges",
    params(("name" = String, Path, description = "Bridge name")),
    responses(
        (status = 204, description = "Stopped and removed"),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such bridge (`unknown_bridge`)", body = ErrorBody),
    )
)]
pub async fn delete(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let name = path::decode(name, "name")?;
    // A recorder's sessions stay listed in /api/v1/recordings after it is gone.
    ctx.recordings.remember_bridges(&ctx.bridges);
    ctx.bridges.delete(&name).await.map_err(from_bridge)?;
    tracing::info!(bridge = %name, "admin API: bridge \"{name}\" deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Restart a bridge.
///
/// Stops it and starts it afresh with the same declaration, a failed bridge included (its
/// `restarts` count goes up by one).
#[utoipa::path(
    post,
    operation_id = "restart_bridge",
    path = "/api/v1/bridges/{name}/restart",
    tag = "bridges",
    params(("name" = String, Path, description = "Bridge name")),
    responses(
        (status = 200, description = "Restarting", body = BridgeStatus),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such bridge (`unknown_bridge`)", body = ErrorBody),
    )
)]
pub async fn restart(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let name = path::decode(name, "name")?;
    let status = ctx.bridges.restart(&name).await.map_err(from_bridge)?;
    tracing::info!(bridge = %name, "admin API: bridge \"{name}\" restarted");
    Ok(json(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_body_takes_its_name_from_the_path() {
        let spec =
            parse_update("cam", &Bytes::from_static(br#"{"plugin":"p","pool":"x"}"#)).unwrap();
        assert_eq!(spec.name, "cam");
        let spec = parse_update(
            "cam",
            &Bytes::from_static(br#"{"name":"other","plugin":"p","pool":"x"}"#),
        )
        .unwrap();
        assert_eq!(
            spec.name, "other",
            "a rename is refused later, by the manager"
        );
        let e = parse_update("cam", &Bytes::from_static(br#"{"plugin":"p"}"#)).unwrap_err();
        assert!(e.message.contains("missing field `pool`"), "{}", e.message);
        let e = parse_update("cam", &Bytes::from_static(b"[]")).unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn bridge_errors_map_to_statuses() {
        let cases = [
            (BridgeError::NotFound("a".into()), 404, "unknown_bridge"),
            (BridgeError::Exists("a".into()), 409, "bridge_exists"),
            (BridgeError::Invalid("pool: x".into()), 400, "invalid_field"),
            (
                BridgeError::Config {
                    bridge: "a".into(),
                    plugin: "p".into(),
                    message: "`k`: bad".into(),
                },
                400,
                "invalid_field",
            ),
        ];
        for (error, status, code) in cases {
            let e = from_bridge(error);
            assert_eq!((e.status.as_u16(), e.code), (status, code));
        }
    }
}
