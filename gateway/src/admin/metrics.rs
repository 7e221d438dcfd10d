//! `GET /metrics`: Prometheus text exposition, built at each scrape from the pool server's
//! counters and current state, so every number is what actually happened.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::context::AdminContext;
use super::error::ErrorBody;

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .map(move || metrics(&ctx))
        .boxed()
}

/// Prometheus metrics.
///
/// Text exposition format 0.0.4: pools, endpoints, connections, signalling messages routed,
/// sent and rejected, joins and leaves, admin API responses, bridges by state, each bridge's
/// state, restarts and plugin-reported metrics (`poolgate_bridge_metric{bridge,plugin,key}`),
/// plugin libraries loaded and refused.
#[utoipa::path(
    get,
    operation_id = "metrics",
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn metrics(ctx: &AdminContext) -> Response {
    match render(ctx) {
        Ok(text) => warp::reply::with_header(text, header::CONTENT_TYPE, TextEncoder.format_type())
            .into_response(),
        Err(e) => {
            tracing::warn!("admin API: cannot render metrics: {e}");
            warp::reply::with_status(e.to_string(), StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
    }
}

/// The metrics text.
pub fn render(ctx: &AdminContext) -> prometheus::Result<String> {
    let registry = Registry::new();
    let stats = ctx.pools.stats();
    let pools = ctx.pools.pools();

    let pool_gauge = gauge_vec(
        &registry,
        "poolgate_pools",
        "Pools that exist now, by origin.",
        "origin",
    )?;
    for origin in ["operator", "joined"] {
        pool_gauge.with_label_values(&[origin]).set(0);
    }
    let mut in_pools = 0;
    for pool in &pools {
        let origin = pool.origin.as_str();
        pool_gauge.with_label_values(&[origin]).inc();
        in_pools += pool.endpoints.len() as i64;
    }
    gauge(
        &registry,
        "poolgate_pool_endpoints",
        "Endpoints that are members of a pool now.",
    )?
    .set(in_pools);
    gauge(
        &registry,
        "poolgate_endpoints",
        "Endpoints connected now (signalling connections, joined or not).",
    )?
    .set(ctx.pools.endpoint_count() as i64);

    let transports = ["websocket", "socketio", "in-process"];
    let connections = gauge_vec(
        &registry,
        "poolgate_connections",
        "Open signalling connections, by transport.",
        "transport",
    )?;
    for t in transports {
        connections.with_label_values(&[t]).set(0);
    }
    for (t, n) in ctx.pools.connections_by_transport() {
        connections.with_label_values(&[t]).set(n as i64);
    }
    let opened = counter_vec(
        &registry,
        "poolgate_connections_opened_total",
        "Signalling connections opened, by transport.",
        "transport",
    )?;
    for t in transports {
        opened.with_label_values(&[t]).inc_by(0);
    }
    for (t, n) in &stats.connections_opened {
        opened.with_label_values(&[t]).inc_by(*n);
    }

    counter(
        &registry,
        "poolgate_pool_joins_total",
        "Endpoints that joined a pool.",
    )?
    .inc_by(stats.joins);
    fill(
        counter_vec(
            &registry,
            "poolgate_pool_leaves_total",
            "Endpoints that left a pool, by reason.",
            "reason",
        )?,
        &stats.leaves,
    );
    let routed = counter_vec(
        &registry,
        "poolgate_signalling_messages_routed_total",
        "rtc:sdp and rtc:candidate messages routed from one endpoint to another, by type.",
        "type",
    )?;
    for t in ["rtc:sdp", "rtc:candidate"] {
        routed.with_label_values(&[t]).inc_by(0);
    }
    fill(routed, &stats.routed);
    fill(
        counter_vec(
            &registry,
            "poolgate_signalling_messages_sent_total",
            "Messages queued to endpoints, by type.",
            "type",
        )?,
        &stats.sent,
    );
    fill(
        counter_vec(
            &registry,
            "poolgate_signalling_messages_rejected_total",
            "Client messages refused with rtc:error, by error code.",
            "code",
        )?,
        &stats.rejected,
    );
    fill(
        counter_vec(
            &registry,
            "poolgate_pools_created_total",
            "Pools created, by origin.",
            "origin",
        )?,
        &stats.pools_created,
    );
    fill(
        counter_vec(
            &registry,
            "poolgate_pools_removed_total",
            "Pools removed, by reason.",
            "reason",
        )?,
        &stats.pools_removed,
    );
    counter(
        &registry,
        "poolgate_descriptions_set_total",
        "Endpoint descriptions set or cleared by the operator.",
    )?
    .inc_by(stats.descriptions_set);

    let responses = counter_vec(
        &registry,
        "poolgate_admin_responses_total",
        "Admin API responses, by HTTP status code.",
        "status",
    )?;
    for (status, n) in ctx.responses() {
        responses
            .with_label_values(&[&status.to_string()])
            .inc_by(n);
    }
    gauge(
        &registry,
        "poolgate_ready",
        "1 while the gateway serves, 0 while starting or stopping.",
    )?
    .set(i64::from(ctx.readiness.is_ready()));
    gauge_vec(
        &registry,
        "poolgate_build_info",
        "Always 1; the label is the poolgate version.",
        "version",
    )?
    .with_label_values(&[env!("CARGO_PKG_VERSION")])
    .set(1);
    gauge(
        &registry,
        "poolgate_glib_slice_always_malloc",
        "1 when GLib's slice allocator is on malloc (G_SLICE=always-malloc at start, \
         memory.glib_slice_malloc), else 0.",
    )?
    .set(i64::from(crate::memory::glib_slice_always_malloc()));
    super::bridge_metrics::register(&registry, &ctx.bridges)?;

    let mut out = Vec::new();
    TextEncoder.encode(&registry.gather(), &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

fn fill(counters: IntCounterVec, values: &std::collections::BTreeMap<&'static str, u64>) {
    for (label, n) in values {
        counters.with_label_values(&[label]).inc_by(*n);
    }
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}
