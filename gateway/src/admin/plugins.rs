//! `GET /api/v1/plugins`: the plugin folder as the gateway loaded it, plugins and refusals.

use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::context::AdminContext;
use super::error::ErrorBody;

/// A loaded plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    /// The name bridges use in their `plugin` key.
    #[schema(example = "example-echo")]
    pub name: String,
    #[schema(example = "0.1.0")]
    pub version: String,
    /// One line on what it does.
    pub summary: String,
    /// The library file it was loaded from.
    pub file: String,
}

/// A library of the plugin folder that was not loaded, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedLibrary {
    pub file: String,
    /// The reason, e.g. another plugin ABI version, or not a poolgate plugin at all.
    pub error: String,
}

/// `GET /api/v1/plugins`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    /// The plugin folder (`plugins.dir`), or null when none is configured.
    pub dir: Option<String>,
    /// Loaded plugins, in file order.
    pub plugins: Vec<PluginView>,
    /// Libraries that were refused, in file order.
    pub refused: Vec<RefusedLibrary>,
}

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "v1" / "plugins")
        .and(warp::get())
        .map(move || list(&ctx).into_response())
        .boxed()
}

/// List plugins.
///
/// Every library of the plugin folder: the plugins that loaded (name, version, summary, file)
/// and the libraries that were refused with their reasons.
#[utoipa::path(
    get,
    operation_id = "list_plugins",
    path = "/api/v1/plugins",
    tag = "plugins",
    responses(
        (status = 200, description = "The plugin folder's libraries", body = PluginList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn list(ctx: &AdminContext) -> impl Reply {
    let plugins = ctx.bridges.plugins();
    let mut list = PluginList {
        dir: plugins.dir().map(|d| d.display().to_string()),
        plugins: Vec::new(),
        refused: Vec::new(),
    };
    for info in plugins.list() {
        let file = info.file.display().to_string();
        match (info.name, info.error) {
            (Some(name), _) => list.plugins.push(PluginView {
                name,
                version: info.version.unwrap_or_default(),
                summary: info.summary.unwrap_or_default(),
                file,
            }),
            (None, error) => list.refused.push(RefusedLibrary {
                file,
                error: error.unwrap_or_default(),
            }),
        }
    }
    warp::reply::json(&list)
}
