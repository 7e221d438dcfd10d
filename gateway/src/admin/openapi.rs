//! The OpenAPI document, generated from the route handlers' annotations and served at
//! `/api/v1/openapi.json`. `gateway/openapi.json` is a committed copy; a test fails when it
//! differs from what the code generates.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::ErrorBody;
use super::{bridges, endpoints, health, metrics, plugins, pools, recordings};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "poolgate admin API",
        description = "Operate a poolgate gateway: pools, endpoint descriptions, plugins, \
                       bridges, recordings, health and metrics. Every route but /health needs \
                       `Authorization: Bearer <token>`. Errors are `{\"error\": code, \"message\": text}`."
    ),
    paths(
        pools::list,
        pools::create,
        pools::get,
        pools::close,
        endpoints::get,
        endpoints::get_description,
        endpoints::put_description,
        plugins::list,
        bridges::list,
        bridges::create,
        bridges::get,
        bridges::update,
        bridges::delete,
        bridges::restart,
        recordings::list_recorders,
        recordings::start_recorder,
        recordings::get_recorder,
        recordings::stop_recorder,
        recordings::list_sessions,
        recordings::get_session,
        recordings::delete_session,
        recordings::download,
        health::health,
        metrics::metrics,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "pools", description = "Pools and force-closing them"),
        (name = "endpoints", description = "Endpoints and their descriptions"),
        (name = "plugins", description = "The plugin folder: loaded plugins and refused libraries"),
        (name = "bridges", description = "Bridges: plugin instances, each one endpoint in one pool"),
        (name = "recordings", description = "Recorders (recorder bridges) and the sessions they wrote: list, download with Range, delete"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token: POOLGATE_ADMIN_TOKEN, admin.token, or the token file \
                         whose path the gateway logs at start",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, with a final newline (as committed).
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| openapi_json().into_response())
        .boxed()
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    operation_id = "openapi",
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn openapi_json() -> impl Reply {
    warp::reply::with_header(document(), "content-type", "application/json")
}
