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

/// The demo page. Without a built page, `/` explains how to build it instead of a bare 404.
fn web(site: Site) -> warp::filters::BoxedFilter<(Box<dyn Reply>,)> {
    match site.web_root {
        Some(root) if root.join("index.html").is_file() => warp::get()
            .and(warp::fs::dir(root))
            .map(|f| Box::new(f) as Box<dyn Reply>)
            .boxed(),
        root => {
            let message = match root {
                Some(r) => format!(
                    "The demo page is not built: {} has no index.html. Run `make web`.\n",
                    r.display()
                ),
                None => "No demo page configured (server.web_root).\n".to_string(),
            };
            warp::get()
                .and(warp::path::end())
                .map(move || {
                    Box::new(warp::reply::with_status(
                        message.clone(),
                        StatusCode::SERVICE_UNAVAILABLE,
                    )) as Box<dyn Reply>
                })
                .boxed()
        }
    }
}
