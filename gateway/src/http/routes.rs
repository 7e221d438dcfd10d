//! The warp routes of the public listener.

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::Site;
use crate::signalling::ws;

pub fn all(site: Site) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let rtc_config = warp::path("rtc-config")
        .and(warp::path::end())
        .and(warp::get())
        .map({
            let ice = site.ice_servers.clone();
            move || warp::reply::json(&json!({ "iceServers": ice }))
        });
    let signalling = ws::route(site.server.clone(), site.keepalive);
    rtc_config.or(signalling).or(web(site))
}

/// The demo page and its assets. When `/` has no page to show, it says how to build one
/// instead of a bare 404.
fn web(site: Site) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let root = site.web_root;
    let files = match &root {
        Some(dir) => warp::get().and(warp::fs::dir(dir.clone())).boxed(),
        None => warp::any()
            .and_then(|| async { Err::<warp::fs::File, _>(warp::reject::not_found()) })
            .boxed(),
    };
    let message = match &root {
        Some(r) => format!(
            "The demo page is not built: {} has no index.html. Run `make web`.\n",
            r.display()
        ),
        None => "No demo page configured (server.web_root).\n".to_string(),
    };
    let missing = warp::get()
        .and(warp::path::end())
        .map(move || warp::reply::with_status(message.clone(), StatusCode::SERVICE_UNAVAILABLE));
    files.or(missing)
}
