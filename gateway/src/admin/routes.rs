//! The admin router: `/health` open to all, everything else behind the bearer token. Each
//! resource is its own module with its own `routes`; a new resource (bridges, plugins) adds a
//! module and one line here.

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::context::AdminContext;
use super::token::Access;
use super::{
    auth, bridges, endpoints, error, health, metrics, openapi, plugins, pools, recordings,
};

/// Every admin route, with errors in the API's one shape and each response counted.
pub fn all(ctx: AdminContext, access: Access) -> BoxedFilter<(Response,)> {
    let protected = pools::routes(ctx.clone())
        .or(endpoints::routes(ctx.clone()))
        .unify()
        .or(plugins::routes(ctx.clone()))
        .unify()
        .or(bridges::routes(ctx.clone()))
        .unify()
        .or(recordings::routes(ctx.clone()))
        .unify()
        .or(metrics::routes(ctx.clone()))
        .unify()
        .or(openapi::routes())
        .unify();
    let counter = ctx.clone();
    health::routes(ctx)
        .or(auth::require(access).and(protected))
        .unify()
        .recover(error::recover)
        .unify()
        .with(warp::log::custom(move |info| {
            counter.count_response(info.status().as_u16())
        }))
        .map(Reply::into_response)
        .boxed()
}
